"""Tests for core.config.load: reading, rejecting, type-checking and normalising config.toml (§5.1, §3)."""

from __future__ import annotations

import tomllib

import pytest

from core import config as cfgmod
from core.config import ConfigError, ConfigNotFound, FeishuApp, ProviderConfig
from core.tests.config.builders import BAD_HOST, BAD_PORT, canonical_config, load_text, write


def test_missing_file_message(tmp_path):
    path = tmp_path / "nope" / "config.toml"
    with pytest.raises(ConfigNotFound) as info:
        cfgmod.load_config(path)
    assert str(info.value) == f"config not found at {path}; run `python manage.py onboard` first"


def test_read_error_message(tmp_path):
    with pytest.raises(ConfigError) as info:
        cfgmod.load_config(tmp_path)
    assert str(info.value).startswith("read config: [Errno")
    assert not isinstance(info.value, ConfigNotFound)


def test_toml_syntax_error_message(tmp_path):
    text = "[server\nlisten_addr = 1\n"
    with pytest.raises(tomllib.TOMLDecodeError) as toml_error:
        tomllib.loads(text)
    path = write(tmp_path / "config.toml", text)
    with pytest.raises(ConfigError) as info:
        cfgmod.load_config(path)
    assert str(info.value) == f"parse config {path}: {toml_error.value}"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ('[llm]\ndefault = "x"\n', "llm"),
        ('[model]\nprovider = "llm-api"\n', "model"),
        ('[llm.profiles.default]\nmodel_id = "x"\n', "llm"),
    ],
)
def test_legacy_sections_are_rejected(tmp_path, text, name):
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text)
    assert str(info.value) == (
        f"legacy config section [{name}] is no longer supported; "
        "migrate to [models] and [models.providers.<name>]"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nlisten_addr = 1", "parse server.listen_addr: expected a string"),
        ("[server]\naccess_token = true", "parse server.access_token: expected a string"),
        ("[server]\nno_auth = 1", "parse server.no_auth: expected a boolean"),
        ("[bootstrap]\nmanager_image = 1.5", "parse bootstrap.manager_image: expected a string"),
        (
            '[sandbox]\ndebian_registries = "x"',
            "parse sandbox.debian_registries: expected an array of strings",
        ),
        (
            "[sandbox]\ndebian_registries = [1]",
            "parse sandbox.debian_registries: expected an array of strings",
        ),
        ("[sandbox]\nlocal_isolation = []", "parse sandbox.local_isolation: expected a string"),
        ("[sandbox]\nruntime = 1", "parse sandbox.runtime: expected a string"),
        ("[models]\ndefault = 1", "parse models.default: expected a string"),
        ("[models]\nrequest_timeout = true", "parse models.request_timeout: expected a number"),
        ("[models]\nidle_timeout = [1]", "parse models.idle_timeout: expected a number"),
        ('[models]\nrequest_timeout = "soon"', 'parse models.request_timeout: invalid number "soon"'),
        (
            "[models]\nrequest_timeout = 0",
            "parse models.request_timeout: must be a positive number of seconds",
        ),
        ('[models]\nidle_timeout = "-1"', "parse models.idle_timeout: must be a positive number of seconds"),
        ("[models.providers.p]\nbase_url = 1", "parse models.providers.p.base_url: expected a string"),
        ("[models.providers.p]\napi_key = 5", "parse models.providers.p.api_key: expected a string"),
        (
            '[models.providers.p]\nmodels = "m"',
            "parse models.providers.p.models: expected an array of strings",
        ),
        (
            "[models.providers.p]\nreasoning_effort = 2",
            "parse models.providers.p.reasoning_effort: expected a string",
        ),
        ("[channels.feishu]\nadmin_open_id = 1", "parse channels.feishu.admin_open_id: expected a string"),
        (
            "[channels.feishu.u-dev]\napp_secret = 1",
            "parse channels.feishu.u-dev.app_secret: expected a string",
        ),
        ('server = "x"', "parse server: expected a table"),
        ("[models]\nproviders = 1", "parse models.providers: expected a table"),
    ],
)
def test_wrong_types_are_reported(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text + "\n")
    assert str(info.value) == message


def test_provider_name_with_dot_is_rejected(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, '[models.providers."a.b"]\nbase_url = "x"\n')
    assert str(info.value) == 'models provider "a.b" must not contain "."'


def test_empty_feishu_section_name_is_rejected(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, '[channels.feishu.""]\napp_id = "x"\n')
    assert str(info.value) == "invalid feishu channel section"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("false", False),
        *[(f'"{text}"', True) for text in ("1", "t", "T", "TRUE", "true", "True")],
        *[(f'"{text}"', False) for text in ("0", "f", "F", "FALSE", "false", "False", "")],
        ('"${CSGCLAW_TEST_NO_AUTH}"', True),
        ('"${CSGCLAW_TEST_UNSET}"', False),
    ],
)
def test_no_auth_values(tmp_path, monkeypatch, value, expected):
    monkeypatch.setenv("CSGCLAW_TEST_NO_AUTH", "true")
    monkeypatch.delenv("CSGCLAW_TEST_UNSET", raising=False)
    assert load_text(tmp_path, f"[server]\nno_auth = {value}\n").server.no_auth is expected


@pytest.mark.parametrize("value", ["yes", "on", "2"])
def test_no_auth_invalid_string(tmp_path, value):
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, f'[server]\nno_auth = " {value} "\n')
    assert str(info.value) == f'parse server.no_auth: invalid boolean "{value}"'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "0.0.0.0:18080"),
        ("${CSGCLAW_TEST_UNSET}", "0.0.0.0:18080"),
        ("0.0.0.0:", "0.0.0.0:18080"),
        ("0.0.0.0", "0.0.0.0:18080"),
        (" 127.0.0.1:9000 ", "127.0.0.1:9000"),
        (":9000", ":9000"),
        ("[::]", "[::]:18080"),
        ("::", "[::]:18080"),
        ("[::1]:9000", "[::1]:9000"),
        ("localhost:1", "localhost:1"),
        ("csgclaw_server.internal:65535", "csgclaw_server.internal:65535"),
    ],
)
def test_listen_addr_normalisation(tmp_path, monkeypatch, value, expected):
    monkeypatch.delenv("CSGCLAW_TEST_UNSET", raising=False)
    assert load_text(tmp_path, f'[server]\nlisten_addr = "{value}"\n').server.listen_addr == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("127.0.0.1:abc", BAD_PORT),
        ("127.0.0.1:99999", BAD_PORT),
        ("127.0.0.1:0", BAD_PORT),
        (":-1", BAD_PORT),
        ("127.0.0.1:１８０８０", BAD_PORT),
        ("[::1]:abc", BAD_PORT),
        ("local host:9000", BAD_HOST),
        ("-localhost:9000", BAD_HOST),
        ("[::1]x:9000", BAD_HOST),
        ("[::1:9000", BAD_HOST),
    ],
)
def test_invalid_listen_addr_is_a_load_error(tmp_path, value, problem):
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, f'[server]\nlisten_addr = "{value}"\n')
    assert str(info.value) == f'parse server.listen_addr: invalid listen address "{value}": {problem}'


def test_empty_file_loads_defaults(tmp_path):
    loaded = load_text(tmp_path, "")
    expected = cfgmod.default_config()
    expected.path = tmp_path / "config.toml"
    assert loaded == expected


def test_normalisation_and_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("CSGCLAW_TEST_KEY", " sk-env ")
    monkeypatch.setenv("CSGCLAW_TEST_REGISTRY", "mirror.example")
    monkeypatch.delenv("CSGCLAW_TEST_UNSET", raising=False)
    loaded = load_text(
        tmp_path,
        """
        unknown_top = 1
        [server]
        advertise_base_url = " http://example.test/base// "
        access_token = "  "
        surprise = "kept"
        [bootstrap]
        manager_image = "${CSGCLAW_TEST_UNSET}"
        [sandbox]
        provider = ""
        home_dir_name = " "
        boxlite_cli_path = ""
        debian_registries = [" a ", "", "a", "$CSGCLAW_TEST_REGISTRY", "${CSGCLAW_TEST_UNSET}"]
        local_isolation = "bwrap"
        runtime = " builtin "
        [models]
        default = " remote:gpt-5.4 "
        [models.providers.remote]
        base_url = " https://api.example/v1/ "
        api_key = "${CSGCLAW_TEST_KEY}"
        models = [" gpt-5.4 ", "gpt-5.4", "", "o3"]
        reasoning_effort = " MEDIUM "
        [channels.feishu]
        admin_open_id = " ou_admin "
        [channels.feishu.u-dev]
        app_id = " cli_x "
        app_secret = " s3cret "
        [other]
        x = 1
        """,
    )
    assert loaded.server.advertise_base_url == "http://example.test/base"
    assert loaded.server.access_token == "your_access_token"
    assert loaded.bootstrap.manager_image == cfgmod.DEFAULT_MANAGER_IMAGE
    assert (loaded.sandbox.provider, loaded.sandbox.home_dir_name, loaded.sandbox.boxlite_cli_path) == (
        "boxlite-sdk",
        "boxlite",
        "boxlite",
    )
    assert loaded.sandbox.debian_registries == ["a", "mirror.example"]
    assert loaded.sandbox.local_isolation == "bwrap"
    assert loaded.sandbox.runtime == "builtin"
    assert loaded.sandbox.docker_path == "docker"
    assert loaded.models.default == "remote:gpt-5.4"
    assert loaded.models.providers == {
        "remote": ProviderConfig(
            name="remote",
            base_url="https://api.example/v1",
            api_key="sk-env",
            models=["gpt-5.4", "o3"],
            reasoning_effort="medium",
        )
    }
    assert loaded.feishu.admin_open_id == "ou_admin"
    assert loaded.feishu.apps == {"u-dev": FeishuApp(app_id="cli_x", app_secret="s3cret")}


def test_sandbox_runtime_blank_is_auto_and_a_chosen_one_is_saved(tmp_path):
    assert load_text(tmp_path, '[sandbox]\nruntime = "  "\n').sandbox.runtime == "auto"
    assert cfgmod.default_config().sandbox.runtime == "auto"
    config = canonical_config()
    config.sandbox.runtime = "builtin"
    path = cfgmod.save_config(config, tmp_path / "saved.toml")
    assert 'runtime = "builtin"\n' in path.read_text()
    assert cfgmod.load_config(path).sandbox.runtime == "builtin"
    # An unknown value loads as written: the local provider reports it when a box starts.
    assert load_text(tmp_path, '[sandbox]\nruntime = "jvm"\n').sandbox.runtime == "jvm"


def test_empty_registry_list_falls_back_to_default(tmp_path):
    loaded = load_text(tmp_path, '[sandbox]\ndebian_registries = ["", " "]\n')
    assert loaded.sandbox.debian_registries == ["harbor.opencsg.com", "docker.io"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30", 30.0),
        ("2.5", 2.5),
        ('"45"', 45.0),
        ('"${CSGCLAW_TEST_TIMEOUT}"', 12.5),
        ('"${CSGCLAW_TEST_UNSET}"', 300.0),
    ],
)
def test_request_timeout_forms(tmp_path, monkeypatch, value, expected):
    monkeypatch.setenv("CSGCLAW_TEST_TIMEOUT", "12.5")
    monkeypatch.delenv("CSGCLAW_TEST_UNSET", raising=False)
    loaded = load_text(tmp_path, f"[models]\nrequest_timeout = {value}\nidle_timeout = {value}\n")
    assert loaded.models.request_timeout == expected
    assert loaded.models.idle_timeout == (60.0 if expected == 300.0 else expected)


def test_allowed_hosts_load_expanded_trimmed_and_unique(tmp_path, monkeypatch):
    monkeypatch.setenv("CSGCLAW_TEST_HOST", "claw.example")
    loaded = load_text(
        tmp_path, '[server]\nallowed_hosts = [" ${CSGCLAW_TEST_HOST} ", "*", "claw.example", " "]\n'
    )
    assert loaded.server.allowed_hosts == ["claw.example", "*"]


def test_allowed_hosts_default_to_none(tmp_path):
    assert load_text(tmp_path, "[server]\n").server.allowed_hosts == []


@pytest.mark.parametrize("value", ['"claw.example"', "[1]", "true"])
def test_allowed_hosts_must_be_an_array_of_strings(tmp_path, value):
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, f"[server]\nallowed_hosts = {value}\n")
    assert str(info.value) == "parse server.allowed_hosts: expected an array of strings"
