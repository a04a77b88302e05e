"""Base URLs (spec §7, llm-bridge.md §7): the bind address, the API base and the base boxes call back on."""

from __future__ import annotations

import ipaddress
import logging
import re
import socket

from django.conf import settings

from core.config.schema import DEFAULT_LISTEN_ADDR, DEFAULT_PORT, Config, ConfigError

logger = logging.getLogger(__name__)

_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})
_MAX_PORT = 65535
# Underscores are allowed: container runtimes resolve service names such as `csgclaw_server`.
_HOSTNAME_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
_BAD_PORT = f"the port must be a number from 1 to {_MAX_PORT}"
_BAD_HOST = "the host must be empty, an IPv4 address, [an IPv6 address] or a hostname"


def effective_listen_addr(config: Config, addrport: str | None = None) -> str:
    """The bind address: runserver/serve's addrport, else [server].listen_addr; IPv6 hosts in brackets.

    A bare port (`runserver 9000`) keeps the configured host, so boxes can still reach the server.
    Raises ConfigError for an address nothing could bind (see _normalise_listen_addr).
    """
    addrport = (addrport or "").strip()
    if addrport.isdigit():
        host, _ = _split_host_port(_normalise_listen_addr(config.server.listen_addr))
        return _normalise_listen_addr(_join_host_port(host, addrport))
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
    """`host:port` with an empty or missing port filled in (`0.0.0.0:` → `0.0.0.0:18080`).

    Raises ConfigError for a port outside 1–65535 or a malformed host, so that load, save and the
    command line report it, rather than the server when it binds, after migrating.
    """
    addr = addr.strip()
    if not addr:
        return DEFAULT_LISTEN_ADDR
    host, port = _split_host_port(addr)
    if not _is_listen_host(host):
        raise ConfigError(f'invalid listen address "{addr}": {_BAD_HOST}')
    if not (port.isascii() and port.isdigit() and 1 <= int(port) <= _MAX_PORT):
        raise ConfigError(f'invalid listen address "{addr}": {_BAD_PORT}')
    return _join_host_port(host, port)


def _is_listen_host(host: str) -> bool:
    """Empty (every interface), an IP address or a hostname of dot-separated labels."""
    if not host:
        return True
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        labels = host.removesuffix(".").split(".")
        return len(host) <= 253 and all(_HOSTNAME_LABEL.fullmatch(label) for label in labels)


def _split_host_port(addr: str) -> tuple[str, str]:
    host, closing_bracket, rest = addr[1:].partition("]")
    # Anything but `:port` after `[host]` leaves the brackets in the host, which then fails validation.
    if addr.startswith("[") and closing_bracket and rest[:1] in ("", ":"):
        port = rest[1:]
    elif addr.count(":") == 1:
        host, _, port = addr.partition(":")
    else:
        # No colon is a bare host; several colons without brackets are a bare IPv6 address.
        host, port = addr, ""
    return host, port or DEFAULT_PORT


def _join_host_port(host: str, port: str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
