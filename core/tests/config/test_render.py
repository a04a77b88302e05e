"""Tests for core.config.render: the masked effective config of the start-up log (§8)."""

from __future__ import annotations

import tomllib

import pytest

from core import config as cfgmod
from core.tests.config.builders import load_text


@pytest.mark.parametrize(
    ("secret", "masked"),
    [
        ("", ""),
        ("abc", "***"),
        ("abcd", "****"),
        ("abcde", "ab*de"),
        ("abcdef", "ab**ef"),
        ("sk-secret", "sk*****et"),
    ],
)
def test_mask_rows(secret, masked):
    assert cfgmod.mask_secret(secret) == masked


def test_mask_trims_first():
    assert cfgmod.mask_secret("  abcde \n") == "ab*de"


def test_effective_config_is_expanded_filled_and_masked(tmp_path, monkeypatch):
    monkeypatch.setenv("CSGCLAW_TEST_TOKEN", "token-value")
    loaded = load_text(
        tmp_path,
        '[server]\naccess_token = "${CSGCLAW_TEST_TOKEN}"\n'
        '[models.providers.remote]\nbase_url = "https://api.example/v1"\napi_key = "sk-secret"\n'
        'models = ["gpt-5.4"]\n'
        '[channels.feishu.u-dev]\napp_id = "cli"\napp_secret = "feishu-secret"\n',
    )
    text = cfgmod.render_effective_config(loaded)
    rendered = tomllib.loads(text)
    assert rendered["server"]["access_token"] == "to*******ue"
    assert rendered["models"]["providers"]["remote"]["api_key"] == "sk*****et"
    assert rendered["channels"]["feishu"]["u-dev"]["app_secret"] == "fe*********et"
    assert rendered["models"]["default"] == "remote.gpt-5.4"
    assert rendered["models"]["request_timeout"] == 300
    assert rendered["sandbox"]["local_isolation"] == "auto"
    assert rendered["sandbox"]["runtime"] == "auto"
    for secret in ("token-value", "sk-secret", "feishu-secret", "${"):
        assert secret not in text


def test_effective_config_shows_allowed_hosts(tmp_path):
    loaded = load_text(tmp_path, '[server]\nallowed_hosts = ["claw.example"]\n')
    assert tomllib.loads(cfgmod.render_effective_config(loaded))["server"]["allowed_hosts"] == [
        "claw.example"
    ]
    assert (
        tomllib.loads(cfgmod.render_effective_config(cfgmod.default_config()))["server"]["allowed_hosts"]
        == []
    )
