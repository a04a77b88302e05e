"""Tests for core.config.save: new files, and edits that keep comments and placeholders (§5.2)."""

from __future__ import annotations

import os
import stat

import pytest

from core import config as cfgmod
from core.config import ConfigError, FeishuApp
from core.tests.config.builders import CANONICAL_FILE, canonical_config, config_with, provider, write


def test_new_file_is_the_canonical_example(tmp_path):
    path = cfgmod.save_config(canonical_config(), tmp_path / "config.toml")
    assert path.read_text() == CANONICAL_FILE


def test_new_file_mode_and_parent_directory(tmp_path):
    # A strict umask shows that the modes are set explicitly rather than inherited.
    old = os.umask(0o077)
    try:
        path = cfgmod.save_config(canonical_config(), tmp_path / "home" / "config.toml")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o755
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.toml"]


def test_existing_file_keeps_mode_0600_after_rewrite(tmp_path):
    path = write(tmp_path / "config.toml", CANONICAL_FILE)
    path.chmod(0o644)
    loaded = cfgmod.load_config(path)
    loaded.server.no_auth = True
    cfgmod.save_config(loaded)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_new_file_round_trips(tmp_path):
    config = canonical_config()
    config.server.listen_addr = "[::]:19090"
    config.sandbox.docker_path = "/usr/local/bin/docker"
    config.models.request_timeout = 12.5
    config.models.providers["remote"] = provider("remote", ["gpt-5.4"], reasoning_effort="high")
    config.feishu = cfgmod.FeishuConfig(admin_open_id="ou", apps={"u-manager": FeishuApp("cli", "sec")})
    path = cfgmod.save_config(config, tmp_path / "config.toml")
    loaded = cfgmod.load_config(path)
    config.path = path
    assert loaded == config


def test_new_file_optional_keys_and_ordering(tmp_path):
    config = config_with(
        provider("zeta", ["z"]),
        provider("alpha", ["a"], reasoning_effort="low"),
        default="alpha:a",
    )
    config.sandbox.picoclaw_path = "/opt/picoclaw"
    config.models.idle_timeout = 90.0
    config.feishu.apps = {"u-zz": FeishuApp("z", "zs"), "u-aa": FeishuApp("a", "as")}
    text = cfgmod.save_config(config, tmp_path / "config.toml").read_text()
    assert 'picoclaw_path = "/opt/picoclaw"\n' in text
    assert "docker_path" not in text and "local_isolation" not in text and "request_timeout" not in text
    assert "runtime" not in text
    assert "idle_timeout = 90\n" in text
    assert 'default = "alpha.a"\n' in text
    assert text.index("[models.providers.alpha]") < text.index("[models.providers.zeta]")
    assert text.count("reasoning_effort") == 1
    assert "[channels.feishu]" not in text
    assert text.index("[channels.feishu.u-aa]") < text.index("[channels.feishu.u-zz]")


def test_feishu_section_only_with_content(tmp_path):
    text = cfgmod.save_config(canonical_config(), tmp_path / "a.toml").read_text()
    assert "channels" not in text
    config = canonical_config()
    config.feishu.admin_open_id = "ou_admin"
    text = cfgmod.save_config(config, tmp_path / "b.toml").read_text()
    assert text.endswith('[channels.feishu]\nadmin_open_id = "ou_admin"\n')


EXISTING = """\
# my own notes
[server]
listen_addr = "0.0.0.0:18080"   # bind everywhere
access_token = "${CSGCLAW_TEST_TOKEN}"
custom_key = "kept"

[models]
default = "remote.gpt-5.4"

[models.providers.remote]
base_url = "https://api.example/v1"
api_key = "${CSGCLAW_TEST_KEY}"
models = ["gpt-5.4"]

[models.providers.old]
base_url = "https://old.example/v1"
api_key = "old"
models = ["legacy"]

[channels.feishu.u-dev]
app_id = "cli_dev"
app_secret = "${CSGCLAW_TEST_SECRET}"

[unknown_section]
answer = 42
"""


@pytest.fixture()
def existing(tmp_path, monkeypatch):
    monkeypatch.setenv("CSGCLAW_TEST_TOKEN", "token-at-load")
    monkeypatch.setenv("CSGCLAW_TEST_KEY", "key-at-load")
    monkeypatch.setenv("CSGCLAW_TEST_SECRET", "secret-at-load")
    return write(tmp_path / "config.toml", EXISTING)


def test_unchanged_save_keeps_the_file_byte_for_byte_even_if_env_changed(existing, monkeypatch):
    loaded = cfgmod.load_config(existing)
    assert loaded.server.access_token == "token-at-load"
    monkeypatch.setenv("CSGCLAW_TEST_TOKEN", "token-later")
    cfgmod.save_config(loaded)
    assert existing.read_text() == EXISTING


def test_changed_value_replaces_its_placeholder_only(existing):
    loaded = cfgmod.load_config(existing)
    loaded.server.access_token = "literal-token"
    cfgmod.save_config(loaded)
    text = existing.read_text()
    assert 'access_token = "literal-token"\n' in text
    assert "CSGCLAW_TEST_TOKEN" not in text
    assert 'api_key = "${CSGCLAW_TEST_KEY}"' in text
    assert 'app_secret = "${CSGCLAW_TEST_SECRET}"' in text
    assert text.startswith("# my own notes\n")
    assert 'listen_addr = "0.0.0.0:18080"   # bind everywhere\n' in text
    assert 'custom_key = "kept"' in text
    assert "[unknown_section]\nanswer = 42\n" in text


def test_changed_value_keeps_its_trailing_comment(existing):
    loaded = cfgmod.load_config(existing)
    loaded.server.listen_addr = "0.0.0.0:19090"
    cfgmod.save_config(loaded)
    assert 'listen_addr = "0.0.0.0:19090"   # bind everywhere\n' in existing.read_text()


def test_removed_provider_and_feishu_app_are_removed(existing):
    loaded = cfgmod.load_config(existing)
    del loaded.models.providers["old"]
    loaded.feishu.apps.clear()
    cfgmod.save_config(loaded)
    text = existing.read_text()
    assert "[models.providers.old]" not in text and "legacy" not in text
    assert "u-dev" not in text and "cli_dev" not in text
    reloaded = cfgmod.load_config(existing)
    assert list(reloaded.models.providers) == ["remote"]
    assert reloaded.feishu.apps == {}
    assert "[unknown_section]\nanswer = 42\n" in text


def test_added_provider_and_keys_are_written(existing):
    loaded = cfgmod.load_config(existing)
    loaded.models.providers["csghub-lite"] = provider(
        "csghub-lite", ["q"], "http://127.0.0.1:11435/v1", "local"
    )
    loaded.models.default = "csghub-lite:q"
    loaded.sandbox.provider = "docker"
    loaded.models.request_timeout = 30.0
    cfgmod.save_config(loaded)
    text = existing.read_text()
    reloaded = cfgmod.load_config(existing)
    assert reloaded.models.providers["csghub-lite"].models == ["q"]
    assert reloaded.models.default == "csghub-lite.q"
    assert reloaded.sandbox.provider == "docker"
    assert reloaded.models.request_timeout == 30
    assert 'default = "csghub-lite.q"\n' in text
    assert "request_timeout = 30\n" in text
    assert 'access_token = "${CSGCLAW_TEST_TOKEN}"' in text


def test_tables_added_to_an_existing_file_get_blank_lines_around_them(tmp_path):
    path = write(
        tmp_path / "config.toml",
        '[models.providers.a]\nbase_url = "u"\napi_key = "k"\nmodels = ["m"]\n'
        '[channels.feishu.u-dev]\napp_id = "i"\napp_secret = "s"\n[extra]\nq = 1',
    )
    loaded = cfgmod.load_config(path)
    loaded.models.providers["b"] = provider("b", ["n"])
    loaded.sandbox.provider = "docker"
    cfgmod.save_config(loaded)
    assert path.read_text() == (
        '[models.providers.a]\nbase_url = "u"\napi_key = "k"\nmodels = ["m"]\n\n'
        '[models.providers.b]\nbase_url = "http://h/v1"\napi_key = "k"\nmodels = ["n"]\n\n'
        '[channels.feishu.u-dev]\napp_id = "i"\napp_secret = "s"\n[extra]\nq = 1\n\n'
        '[sandbox]\nprovider = "docker"\n'
    )


def test_inline_and_dotted_tables_are_edited_in_place(tmp_path):
    path = write(
        tmp_path / "config.toml",
        'server.listen_addr = "0.0.0.0:5"\n[models]\n'
        'providers = { a = { base_url = "u", api_key = "k", models = ["m"] } }\n',
    )
    loaded = cfgmod.load_config(path)
    loaded.server.listen_addr = "0.0.0.0:6"
    loaded.models.providers["a"].api_key = "k2"
    loaded.models.providers["b"] = provider("b", ["n"])
    cfgmod.save_config(loaded)
    text = path.read_text()
    assert text.startswith('server.listen_addr = "0.0.0.0:6"\n')
    assert "providers = { a = {" in text
    reloaded = cfgmod.load_config(path)
    assert reloaded.models.providers["a"].api_key == "k2"
    assert reloaded.models.providers["b"] == provider("b", ["n"])


def test_colon_default_is_written_back_canonically(tmp_path):
    path = write(
        tmp_path / "config.toml",
        '[models]\ndefault = "remote:gpt-5.4"\n\n[models.providers.remote]\nbase_url = "u"\n'
        'api_key = "k"\nmodels = ["gpt-5.4"]\n',
    )
    cfgmod.save_config(cfgmod.load_config(path))
    assert 'default = "remote.gpt-5.4"\n' in path.read_text()


def test_placeholder_default_that_resolves_canonically_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("CSGCLAW_TEST_MODEL", "remote.gpt-5.4")
    text = '[models]\ndefault = "${CSGCLAW_TEST_MODEL}"\n'
    path = write(tmp_path / "config.toml", text)
    cfgmod.save_config(cfgmod.load_config(path))
    assert path.read_text() == text


def test_extension_key_present_in_file_is_kept_and_reset_removes_it(tmp_path):
    text = '[sandbox]\ndocker_path = "/usr/bin/docker"\n'
    path = write(tmp_path / "config.toml", text)
    loaded = cfgmod.load_config(path)
    cfgmod.save_config(loaded)
    assert path.read_text() == text
    loaded.sandbox.docker_path = "docker"
    cfgmod.save_config(loaded)
    assert "docker_path" not in path.read_text()
    assert cfgmod.load_config(path).sandbox.docker_path == "docker"


def test_clearing_reasoning_effort_removes_the_key(tmp_path):
    path = write(
        tmp_path / "config.toml",
        '[models.providers.p]\nbase_url = "u"\napi_key = "k"\nmodels = ["m"]\nreasoning_effort = "high"\n',
    )
    loaded = cfgmod.load_config(path)
    loaded.models.providers["p"].reasoning_effort = ""
    cfgmod.save_config(loaded)
    assert "reasoning_effort" not in path.read_text()


def test_save_twice_is_idempotent(existing):
    loaded = cfgmod.load_config(existing)
    loaded.server.no_auth = True
    cfgmod.save_config(loaded)
    first = existing.read_text()
    cfgmod.save_config(loaded)
    assert existing.read_text() == first


def test_save_defaults_to_the_loaded_path(existing, settings, tmp_path):
    settings.CSGCLAW_CONFIG = str(tmp_path / "elsewhere.toml")
    loaded = cfgmod.load_config(existing)
    assert cfgmod.save_config(loaded) == existing
    assert not (tmp_path / "elsewhere.toml").exists()


def test_save_of_unparsable_existing_file_fails_without_writing(tmp_path):
    path = write(tmp_path / "config.toml", "[server\n")
    with pytest.raises(ConfigError) as info:
        cfgmod.save_config(canonical_config(), path)
    assert str(info.value).startswith(f"parse config {path}: ")
    assert path.read_text() == "[server\n"


def test_allowed_hosts_are_saved_only_when_set_and_round_trip(tmp_path):
    text = cfgmod.save_config(canonical_config(), tmp_path / "a.toml").read_text()
    assert "allowed_hosts" not in text
    config = canonical_config()
    config.server.allowed_hosts = ["claw.example", "*"]
    path = cfgmod.save_config(config, tmp_path / "b.toml")
    assert 'no_auth = false\nallowed_hosts = ["claw.example", "*"]\n' in path.read_text()
    assert cfgmod.load_config(path).server.allowed_hosts == ["claw.example", "*"]


def test_clearing_allowed_hosts_removes_the_key(tmp_path):
    path = write(
        tmp_path / "config.toml",
        CANONICAL_FILE.replace("no_auth = false\n", 'no_auth = false\nallowed_hosts = ["a"]\n'),
    )
    loaded = cfgmod.load_config(path)
    loaded.server.allowed_hosts = []
    cfgmod.save_config(loaded)
    assert path.read_text() == CANONICAL_FILE
