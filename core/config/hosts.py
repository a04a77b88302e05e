"""The Host names the server answers to (security.md S3.1), in the form of Django's ALLOWED_HOSTS.

A DNS-rebinding page reaches the server under the attacker's own name; only names and addresses that
really lead here are accepted. The machine's addresses are read once, when the list is computed (settings
import and server start-up): an address added later needs a restart or `[server].allowed_hosts`.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from pathlib import Path

from core.config.base_urls import _WILDCARD_HOSTS, _split_host_port, lan_ipv4
from core.config.schema import Config

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
# Every local IPv4 address, secondary ones included (the SIOCGIFCONF ioctl misses unlabelled secondaries).
_FIB_TRIE = Path("/proc/net/fib_trie")
# Every IPv6 address of every interface: 32 hex digits, index, prefix, scope, flags, name.
_IF_INET6 = Path("/proc/net/if_inet6")


def allowed_hosts(config: Config, listen_addr: str, *, extra: Iterable[str] = ()) -> list[str]:
    """ALLOWED_HOSTS for a server bound to `listen_addr` (a normalised `host:port`) with `config`.

    Loopback names, the listen host (every interface address and the hostname when it is a wildcard),
    the host of advertise_base_url, `[server].allowed_hosts` (`*` allows any) and `extra`. IPv6
    addresses come in brackets, as Django compares them.
    """
    listen_host, _ = _split_host_port(listen_addr)
    hosts = [*LOOPBACK_HOSTS, socket.gethostname()]
    if listen_host in _WILDCARD_HOSTS:
        hosts.extend(interface_addresses())
    else:
        hosts.append(listen_host)
    advertised = _url_host(config.server.advertise_base_url)
    if advertised:
        hosts.append(advertised)
    hosts.extend(config.server.allowed_hosts)
    hosts.extend(extra)
    out: list[str] = []
    for host in hosts:
        entry = _django_host(host)
        if entry and entry not in out:
            out.append(entry)
    return out


def remote_login_url(listen_addr: str) -> str | None:
    """`http://<host>:<port>/login` for remote browsers, or None when the server listens on loopback only.

    A wildcard listen address is shown with the LAN address (the hostname when there is none).
    """
    host, port = _split_host_port(listen_addr)
    if host in _WILDCARD_HOSTS:
        host = lan_ipv4() or socket.gethostname()
    elif _is_loopback(host):
        return None
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/login"


def interface_addresses() -> list[str]:
    """Every address of the machine's interfaces (from Linux /proc), else the addresses of its hostname."""
    addresses = _proc_ipv4_addresses() + _proc_ipv6_addresses()
    if addresses:
        return addresses
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None)
    except OSError:
        return []
    return [str(info[4][0]) for info in infos]


def _proc_ipv4_addresses() -> list[str]:
    # In fib_trie a local address is the `|-- <address>` line followed by `/32 host LOCAL`.
    try:
        lines = _FIB_TRIE.read_text().splitlines()
    except OSError:
        return []
    addresses: list[str] = []
    previous = ""
    for line in lines:
        text = line.strip()
        if text == "/32 host LOCAL" and previous.startswith("|-- "):
            address = previous.removeprefix("|-- ")
            if address not in addresses:
                addresses.append(address)
        previous = text
    return addresses


def _proc_ipv6_addresses() -> list[str]:
    try:
        lines = _IF_INET6.read_text().splitlines()
    except OSError:
        return []
    addresses: list[str] = []
    for line in lines:
        fields = line.split()
        if not fields or len(fields[0]) != 32:
            continue
        try:
            address = ipaddress.IPv6Address(bytes.fromhex(fields[0]))
        except ValueError:
            continue
        # A link-local address needs a zone (`%eth0`) to be used, which a Host header cannot carry.
        if not address.is_link_local:
            addresses.append(str(address))
    return addresses


def _url_host(url: str) -> str:
    """The host of an `http(s)://host[:port]/…` URL, IPv6 without brackets; "" when there is none."""
    rest = url.strip().partition("://")[2]
    authority = rest.split("/", 1)[0].rpartition("@")[2]
    if authority.startswith("["):
        return authority[1:].partition("]")[0]
    return authority.partition(":")[0]


def _django_host(host: str) -> str:
    """A host as ALLOWED_HOSTS spells it: lower case, IPv6 addresses in brackets."""
    host = host.strip().lower()
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
