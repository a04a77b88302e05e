"""Base URLs (spec §7, llm-bridge.md §7): the bind address, the API base and the base boxes call back on."""

from __future__ import annotations

import ipaddress
import logging
import socket

from django.conf import settings

from csgclaw_site.config.schema import DEFAULT_LISTEN_ADDR, DEFAULT_PORT, Config

logger = logging.getLogger(__name__)

_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})


def effective_listen_addr(config: Config, addrport: str | None = None) -> str:
    """The bind address: runserver/serve's addrport, else [server].listen_addr; IPv6 hosts in brackets.

    A bare port (`runserver 9000`) keeps the configured host, so boxes can still reach the server.
    """
    addrport = (addrport or "").strip()
    if addrport.isdigit():
        host, _ = _split_host_port(_normalise_listen_addr(config.server.listen_addr))
        return _join_host_port(host, addrport)
    return _normalise_listen_addr(addrport or config.server.listen_addr)


def api_base_url(config: Config, listen_addr: str | None = None) -> str:
    """advertise_base_url, else http://<listen host>:<port> with wildcard hosts shown as 127.0.0.1."""
    advertised = config.server.advertise_base_url.strip().rstrip("/")
    if advertised:
        return advertised
    host, port = _split_host_port(_serving_listen_addr(config, listen_addr))
    if host in _WILDCARD_HOSTS:
        host = "127.0.0.1"
    return f"http://{_join_host_port(host, port)}"


def box_facing_base_url(config: Config, *, local_provider: bool, listen_addr: str | None = None) -> str:
    """The base URL injected into boxes: advertised, the API base for host processes, else the LAN IPv4.

    Returns "" (and logs a warning) when no LAN address exists; box variables then become relative paths.
    """
    advertised = config.server.advertise_base_url.strip().rstrip("/")
    if advertised:
        return advertised
    if local_provider:
        return api_base_url(config, listen_addr)
    address = lan_ipv4()
    if not address:
        logger.warning(
            "no LAN IPv4 address found; boxes get relative server URLs (set [server] advertise_base_url)"
        )
        return ""
    _, port = _split_host_port(_serving_listen_addr(config, listen_addr))
    return f"http://{address}:{port}"


def llm_bridge_url(base: str, agent_id: str) -> str:
    """The OpenAI-compatible base an agent's box calls (no `/v1`; clients append /chat/completions)."""
    return f"{base.rstrip('/')}/api/bots/{agent_id}/llm"


def lan_ipv4() -> str:
    """The host's LAN IPv4 address, or "" when it has none besides loopback."""
    address = _udp_source_ipv4()
    if _is_lan_ipv4(address):
        return address
    return _first_host_ipv4()


def _udp_source_ipv4() -> str:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            # connect() on a UDP socket only picks the route and source address; no packet is sent.
            sock.connect(("8.8.8.8", 80))
            return str(sock.getsockname()[0])
    except OSError:
        return ""


def _first_host_ipv4() -> str:
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        return ""
    for info in infos:
        address = str(info[4][0])
        if _is_lan_ipv4(address):
            return address
    return ""


def _is_lan_ipv4(address: str) -> bool:
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        return False
    return not ip.is_loopback and not ip.is_unspecified


def _serving_listen_addr(config: Config, listen_addr: str | None) -> str:
    return _normalise_listen_addr(
        listen_addr or getattr(settings, "CSGCLAW_LISTEN_ADDR", "") or config.server.listen_addr
    )


def _normalise_listen_addr(addr: str) -> str:
    """`host:port` with an empty or missing port filled in (`0.0.0.0:` → `0.0.0.0:18080`)."""
    addr = addr.strip()
    if not addr:
        return DEFAULT_LISTEN_ADDR
    return _join_host_port(*_split_host_port(addr))


def _split_host_port(addr: str) -> tuple[str, str]:
    if addr.startswith("[") and "]" in addr:
        host, _, rest = addr[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif addr.count(":") == 1:
        host, _, port = addr.partition(":")
    else:
        # No colon is a bare host; several colons without brackets are a bare IPv6 address.
        host, port = addr, ""
    return host, port or DEFAULT_PORT


def _join_host_port(host: str, port: str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
