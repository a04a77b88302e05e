"""Tests for core.config.csghub_lite: model discovery, advice and detection (§9.4)."""

from __future__ import annotations

import httpx
import pytest
import respx

from core import config as cfgmod
from core.config import ConfigError
from core.tests.config.builders import provider

LITE = "http://127.0.0.1:11435/v1"


@respx.mock
def test_discovery_lists_trimmed_unique_ids_with_bearer_key():
    route = respx.get(f"{LITE}/models").mock(
        return_value=httpx.Response(200, json={"data": [{"id": " a "}, {"id": "a"}, {"id": "b"}, {"x": 1}]})
    )
    assert cfgmod.discover_csghub_lite_models(LITE + "/") == ["a", "b"]
    assert route.calls.last.request.headers["Authorization"] == "Bearer local"


@respx.mock
def test_discovery_without_key_sends_no_authorization():
    route = respx.get(f"{LITE}/models").mock(return_value=httpx.Response(200, json={"data": [{"id": "m"}]}))
    assert cfgmod.discover_csghub_lite_models(LITE, api_key="") == ["m"]
    assert "Authorization" not in route.calls.last.request.headers


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(503, text="down"), f"request models from {LITE}: status 503"),
        (httpx.Response(200, json={"data": []}), f"no models returned from {LITE}"),
        (httpx.Response(200, json={"data": [{"id": "  "}]}), f"no models returned from {LITE}"),
        (httpx.Response(200, json=[1, 2]), f"no models returned from {LITE}"),
    ],
)
@respx.mock
def test_discovery_errors(response, message):
    respx.get(f"{LITE}/models").mock(return_value=response)
    with pytest.raises(ConfigError) as info:
        cfgmod.discover_csghub_lite_models(LITE)
    assert str(info.value) == message


@respx.mock
def test_discovery_connection_error():
    respx.get(f"{LITE}/models").mock(side_effect=httpx.ConnectError("connection refused"))
    with pytest.raises(ConfigError) as info:
        cfgmod.discover_csghub_lite_models(LITE)
    assert str(info.value) == f"request models from {LITE}: connection refused"


@respx.mock
def test_discovery_of_a_key_no_header_can_carry_sends_nothing():
    with pytest.raises(ConfigError) as info:
        cfgmod.discover_csghub_lite_models(LITE, api_key="ключ")
    assert str(info.value) == (
        f"request models from {LITE}: the API key must be printable ASCII for an Authorization header"
    )
    assert not respx.calls


@respx.mock
def test_discovery_of_a_key_with_control_characters_never_echoes_it():
    # h11 would reject the header with a message quoting it, key and all.
    with pytest.raises(ConfigError) as info:
        cfgmod.discover_csghub_lite_models(LITE, api_key="sk-secret\nX-Injected: 1")
    assert "sk-secret" not in str(info.value)
    assert not respx.calls


@pytest.mark.parametrize(
    ("base_url", "error"),
    [
        ("http://h:abc/v1", "Invalid port: 'abc'"),
        ("http://[::1/v1", "Invalid port: ':1'"),
        ("http://a..b:1/v1", "label empty or too long"),
    ],
)
def test_discovery_of_an_unparsable_base_url(base_url, error):
    # Not mocked: each URL fails before a connection is attempted, the last one only in the transport.
    with pytest.raises(ConfigError) as info:
        cfgmod.discover_csghub_lite_models(base_url)
    assert str(info.value).startswith(f"request models from {base_url}: ")
    assert error in str(info.value)


@respx.mock
def test_discovery_undecodable_body():
    respx.get(f"{LITE}/models").mock(return_value=httpx.Response(200, text="<html>"))
    with pytest.raises(ConfigError) as info:
        cfgmod.discover_csghub_lite_models(LITE)
    assert str(info.value).startswith(f"decode models from {LITE}: ")


def test_unreachable_messages():
    assert cfgmod.csghub_lite_unreachable_message(LITE, "boom") == (
        f"csghub-lite is not reachable at {LITE} (boom); "
        "start it with `csghub-lite run <model>` or `csghub-lite serve`, then retry"
    )
    assert cfgmod.csghub_lite_unreachable_message(LITE, "boom", subject="csghub-lite provider").startswith(
        f"csghub-lite provider is not reachable at {LITE} (boom); "
    )


@pytest.mark.parametrize(
    ("name", "base_url", "expected"),
    [
        ("csghub-lite", "https://anything/v1", True),
        ("local", "http://127.0.0.1:11435/v1", True),
        ("local", "http://localhost:11435/v1/", True),
        ("local", "http://localhost:11434/v1", False),
        ("remote", "https://api.example/v1", False),
        ("remote", "http://[bad", False),
    ],
)
def test_is_csghub_lite(name, base_url, expected):
    assert cfgmod.is_csghub_lite(provider(name, ["m"], base_url)) is expected
