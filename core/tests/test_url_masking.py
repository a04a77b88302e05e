"""Security S9: credentials in URLs (`user:pass@`) are masked as `***@` where the config prints URLs."""

from __future__ import annotations

import tomllib

import pytest

from core import config as cfgmod

pytestmark = pytest.mark.timeout(10)

SECRET_BASE = "https://alice:pa@ss-9f2e@llm.example.test/v1"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("https://user:pw@host:8443/v1", "https://***@host:8443/v1"),
        (SECRET_BASE, "https://***@llm.example.test/v1"),
        ("http://token@host/p?q=a@b", "http://***@host/p?q=a@b"),
        ("at http://h/v1 and socks5://u:p@proxy:1080", "at http://h/v1 and socks5://***@proxy:1080"),
        ("http://host/path@not-userinfo", "http://host/path@not-userinfo"),
        ("mail me at a@b.example", "mail me at a@b.example"),
        ("", ""),
    ],
)
def test_url_credentials_are_masked(text: str, masked: str) -> None:
    assert cfgmod.mask_url_credentials(text) == masked


def test_the_effective_config_masks_credentials_in_urls(tmp_path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[server]\nadvertise_base_url = "http://ops:adm1n@10.0.0.8:18080"\n'
        f'[models.providers.remote]\nbase_url = "{SECRET_BASE}"\napi_key = "sk-secret"\n'
        'models = ["gpt-5.4"]\n'
    )

    text = cfgmod.render_effective_config(cfgmod.load_config(path))

    rendered = tomllib.loads(text)
    assert rendered["models"]["providers"]["remote"]["base_url"] == "https://***@llm.example.test/v1"
    assert rendered["server"]["advertise_base_url"] == "http://***@10.0.0.8:18080"
    for secret in ("pa@ss-9f2e", "alice", "adm1n"):
        assert secret not in text


def test_the_csghub_lite_advice_masks_credentials_in_its_url() -> None:
    text = cfgmod.csghub_lite_unreachable_message("http://u:lite-pw@127.0.0.1:11435/v1", "refused")

    assert text.startswith("csghub-lite is not reachable at http://***@127.0.0.1:11435/v1 (refused); ")
    assert "lite-pw" not in text
