"""Tests for core.config.base_urls: the bind address, the API base and the box-facing base (§7)."""

from __future__ import annotations

import logging
import socket

import pytest

from core import config as cfgmod
from core.config import Config, ConfigError, base_urls
from core.tests.config.builders import BAD_HOST, BAD_PORT


@pytest.fixture()
def lan(monkeypatch, settings):
    settings.CSGCLAW_LISTEN_ADDR = ""
    monkeypatch.setattr(base_urls, "lan_ipv4", lambda: "10.0.0.8")


def server_config(**server) -> Config:
    config = cfgmod.default_config()
    for key, value in server.items():
        setattr(config.server, key, value)
    return config


@pytest.mark.parametrize(
    ("server", "api_base", "box_base"),
    [
        ({"listen_addr": "0.0.0.0:19090"}, "http://127.0.0.1:19090", "http://10.0.0.8:19090"),
        (
            {"advertise_base_url": "http://example.test/base/"},
            "http://example.test/base",
            "http://example.test/base",
        ),
        (
            {"advertise_base_url": "http://example.test/base///"},
            "http://example.test/base",
            "http://example.test/base",
        ),
        ({}, "http://127.0.0.1:18080", "http://10.0.0.8:18080"),
        ({"listen_addr": "[::]:18080"}, "http://127.0.0.1:18080", "http://10.0.0.8:18080"),
        ({"listen_addr": "[::1]:9000"}, "http://[::1]:9000", "http://10.0.0.8:9000"),
        ({"listen_addr": ":9000"}, "http://127.0.0.1:9000", "http://10.0.0.8:9000"),
        ({"listen_addr": "192.168.1.2:9000"}, "http://192.168.1.2:9000", "http://10.0.0.8:9000"),
    ],
)
def test_base_url_rows(lan, server, api_base, box_base):
    config = server_config(**server)
    assert cfgmod.api_base_url(config) == api_base
    assert cfgmod.box_facing_base_url(config, local_provider=False) == box_base


def test_local_provider_uses_the_api_base(lan):
    config = server_config(listen_addr="0.0.0.0:19090")
    assert cfgmod.box_facing_base_url(config, local_provider=True) == "http://127.0.0.1:19090"


def test_serving_listen_addr_wins_over_config(lan, settings):
    config = server_config(listen_addr="0.0.0.0:19090")
    settings.CSGCLAW_LISTEN_ADDR = "0.0.0.0:7000"
    assert cfgmod.api_base_url(config) == "http://127.0.0.1:7000"
    assert cfgmod.box_facing_base_url(config, local_provider=False) == "http://10.0.0.8:7000"
    assert cfgmod.api_base_url(config, listen_addr="127.0.0.1:7001") == "http://127.0.0.1:7001"


def test_no_lan_address_gives_empty_base_and_a_warning(monkeypatch, settings, caplog):
    settings.CSGCLAW_LISTEN_ADDR = ""
    monkeypatch.setattr(base_urls, "lan_ipv4", lambda: "")
    with caplog.at_level(logging.WARNING, logger=base_urls.__name__):
        assert cfgmod.box_facing_base_url(cfgmod.default_config(), local_provider=False) == ""
    assert "advertise_base_url" in caplog.text
    assert cfgmod.llm_bridge_url("", "u-dev") == "/api/bots/u-dev/llm"


@pytest.mark.parametrize(
    ("listen_addr", "addrport", "expected"),
    [
        ("0.0.0.0:18080", None, "0.0.0.0:18080"),
        ("0.0.0.0:18080", "127.0.0.1:8000", "127.0.0.1:8000"),
        ("0.0.0.0:18080", "9000", "0.0.0.0:9000"),
        ("0.0.0.0:18080", "::", "[::]:18080"),
        ("[::]:18080", "9000", "[::]:9000"),
        ("", "", "0.0.0.0:18080"),
    ],
)
def test_effective_listen_addr(listen_addr, addrport, expected):
    assert cfgmod.effective_listen_addr(server_config(listen_addr=listen_addr), addrport) == expected


@pytest.mark.parametrize(
    ("addrport", "message"),
    [
        ("127.0.0.1:99999", f'invalid listen address "127.0.0.1:99999": {BAD_PORT}'),
        ("127.0.0.1:abc", f'invalid listen address "127.0.0.1:abc": {BAD_PORT}'),
        # A bare port keeps the configured host, and the message shows the address it would have bound.
        ("99999", f'invalid listen address "0.0.0.0:99999": {BAD_PORT}'),
        ("0", f'invalid listen address "0.0.0.0:0": {BAD_PORT}'),
        ("bad host:80", f'invalid listen address "bad host:80": {BAD_HOST}'),
    ],
)
def test_effective_listen_addr_rejects_an_unbindable_addrport(addrport, message):
    with pytest.raises(ConfigError) as info:
        cfgmod.effective_listen_addr(server_config(listen_addr="0.0.0.0:18080"), addrport)
    assert str(info.value) == message


def test_llm_bridge_url():
    assert (
        cfgmod.llm_bridge_url("http://10.0.0.8:18080", "u-dev") == "http://10.0.0.8:18080/api/bots/u-dev/llm"
    )


@pytest.mark.parametrize(
    ("udp", "host_addresses", "expected"),
    [
        ("192.168.1.5", ["10.1.1.1"], "192.168.1.5"),
        ("127.0.0.1", ["127.0.1.1", "10.1.1.1"], "10.1.1.1"),
        ("0.0.0.0", ["10.1.1.1"], "10.1.1.1"),
        ("", ["127.0.0.1"], ""),
    ],
)
def test_lan_ipv4(monkeypatch, udp, host_addresses, expected):
    monkeypatch.setattr(base_urls, "_udp_source_ipv4", lambda: udp)
    infos = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 0)) for address in host_addresses]
    monkeypatch.setattr(base_urls.socket, "getaddrinfo", lambda *args, **kwargs: infos)
    assert cfgmod.lan_ipv4() == expected
