"""Tests for core.config.hosts: the Host names of security.md S3.1 and the remote login URL."""

from __future__ import annotations

import socket

import pytest

from core.config import default_config, hosts

FIB_TRIE = """\
Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        |-- 127.0.0.1
           /32 host LOCAL
     |-- 192.0.2.2
        /32 host LOCAL
     |-- 192.0.2.9
        /32 host LOCAL
     |-- 192.0.2.255
        /32 link BROADCAST
Local:
  +-- 0.0.0.0/0 3 0 5
     |-- 192.0.2.2
        /32 host LOCAL
"""
IF_INET6 = """\
00000000000000000000000000000001 01 80 10 80       lo
fd000000000000000000000000000002 02 40 00 80     eth0
fe8000000000000000fc00fffe000001 02 40 20 80     eth0
"""


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """A machine called `clawbox` with the interfaces of FIB_TRIE and IF_INET6 and LAN address 192.0.2.2."""
    (tmp_path / "fib_trie").write_text(FIB_TRIE)
    (tmp_path / "if_inet6").write_text(IF_INET6)
    monkeypatch.setattr(hosts, "_FIB_TRIE", tmp_path / "fib_trie")
    monkeypatch.setattr(hosts, "_IF_INET6", tmp_path / "if_inet6")
    monkeypatch.setattr(socket, "gethostname", lambda: "ClawBox")
    monkeypatch.setattr(hosts, "lan_ipv4", lambda: "192.0.2.2")
    return tmp_path


@pytest.mark.timeout(10)
def test_interface_addresses_include_secondaries_and_skip_link_local(machine):
    assert hosts.interface_addresses() == ["127.0.0.1", "192.0.2.2", "192.0.2.9", "::1", "fd00::2"]


@pytest.mark.timeout(10)
def test_interface_addresses_fall_back_to_the_hostname(machine, monkeypatch):
    monkeypatch.setattr(hosts, "_FIB_TRIE", machine / "missing")
    monkeypatch.setattr(hosts, "_IF_INET6", machine / "missing")
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args: [(2, 1, 6, "", ("10.1.2.3", 0))])
    assert hosts.interface_addresses() == ["10.1.2.3"]


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("listen_addr", "expected"),
    [
        (
            "0.0.0.0:18080",
            ["localhost", "127.0.0.1", "[::1]", "clawbox", "192.0.2.2", "192.0.2.9", "[fd00::2]"],
        ),
        (
            "[::]:18080",
            ["localhost", "127.0.0.1", "[::1]", "clawbox", "192.0.2.2", "192.0.2.9", "[fd00::2]"],
        ),
        ("127.0.0.1:18080", ["localhost", "127.0.0.1", "[::1]", "clawbox"]),
        ("192.0.2.9:9000", ["localhost", "127.0.0.1", "[::1]", "clawbox", "192.0.2.9"]),
        ("[fd00::2]:9000", ["localhost", "127.0.0.1", "[::1]", "clawbox", "[fd00::2]"]),
        ("Claw.Lan:9000", ["localhost", "127.0.0.1", "[::1]", "clawbox", "claw.lan"]),
    ],
)
def test_allowed_hosts_follow_the_listen_address(machine, listen_addr, expected):
    assert hosts.allowed_hosts(default_config(), listen_addr) == expected


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("advertise_base_url", "host"),
    [
        ("http://claw.example:8080/base", "claw.example"),
        ("https://user:pw@Claw.Example", "claw.example"),
        ("http://[fd00::9]:80", "[fd00::9]"),
        ("http://10.9.8.7", "10.9.8.7"),
    ],
)
def test_allowed_hosts_include_the_advertised_host(machine, advertise_base_url, host):
    config = default_config()
    config.server.advertise_base_url = advertise_base_url
    assert hosts.allowed_hosts(config, "127.0.0.1:18080")[-1] == host


@pytest.mark.timeout(10)
def test_allowed_hosts_extensions_and_extra(machine):
    config = default_config()
    config.server.allowed_hosts = ["claw.example", ".lan", "fd00::7", "*"]
    assert hosts.allowed_hosts(config, "127.0.0.1:1", extra=["Extra.Example", "localhost"])[4:] == [
        "claw.example",
        ".lan",
        "[fd00::7]",
        "*",
        "extra.example",
    ]


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("listen_addr", "url"),
    [
        ("0.0.0.0:18080", "http://192.0.2.2:18080/login"),
        ("[::]:9000", "http://192.0.2.2:9000/login"),
        ("192.0.2.9:9000", "http://192.0.2.9:9000/login"),
        ("[fd00::2]:9000", "http://[fd00::2]:9000/login"),
        ("claw.lan:80", "http://claw.lan:80/login"),
        ("127.0.0.1:18080", None),
        ("127.0.0.2:18080", None),
        ("[::1]:18080", None),
        ("localhost:18080", None),
    ],
)
def test_remote_login_url(machine, listen_addr, url):
    assert hosts.remote_login_url(listen_addr) == url


@pytest.mark.timeout(10)
def test_remote_login_url_without_a_lan_address_names_the_host(machine, monkeypatch):
    monkeypatch.setattr(hosts, "lan_ipv4", lambda: "")
    assert hosts.remote_login_url("0.0.0.0:18080") == "http://ClawBox:18080/login"
