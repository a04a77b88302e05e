"""Tests for core.config.cache: the per-process cache of the loaded file (§5.1)."""

from __future__ import annotations

import os

import pytest

from core import config as cfgmod
from core.config import ConfigNotFound
from core.tests.config.builders import CANONICAL_FILE, write


@pytest.fixture()
def config_file(settings, tmp_path):
    path = tmp_path / "config.toml"
    settings.CSGCLAW_CONFIG = str(path)
    return path


def test_config_path_comes_from_settings(config_file):
    assert cfgmod.config_path() == config_file


def test_get_config_caches(config_file):
    write(config_file, '[server]\nlisten_addr = "0.0.0.0:1"\n')
    first = cfgmod.get_config()
    assert cfgmod.get_config() is first
    assert first.server.listen_addr == "0.0.0.0:1"


def test_get_config_reloads_on_mtime_change(config_file):
    write(config_file, '[server]\nlisten_addr = "0.0.0.0:1"\n')
    assert cfgmod.get_config().server.listen_addr == "0.0.0.0:1"
    before = config_file.stat()
    config_file.write_text('[server]\nlisten_addr = "0.0.0.0:2"\n')  # same size, same inode
    os.utime(config_file, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    assert cfgmod.get_config().server.listen_addr == "0.0.0.0:2"


def test_get_config_reloads_on_size_change(config_file):
    write(config_file, '[server]\nlisten_addr = "0.0.0.0:1"\n')
    assert cfgmod.get_config().server.listen_addr == "0.0.0.0:1"
    before = config_file.stat()
    config_file.write_text('[server]\nlisten_addr = "0.0.0.0:22"\n')
    os.utime(config_file, ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime, same inode
    assert cfgmod.get_config().server.listen_addr == "0.0.0.0:22"


def test_get_config_raises_when_missing(config_file):
    with pytest.raises(ConfigNotFound):
        cfgmod.get_config()


def test_get_config_or_default(config_file):
    assert cfgmod.get_config_or_default() == (cfgmod.default_config(), None)
    write(config_file, "[llm]\nx = 1\n")
    config, error = cfgmod.get_config_or_default()
    assert config == cfgmod.default_config()
    assert str(error).startswith("legacy config section [llm]")
    write(config_file, CANONICAL_FILE)
    config, error = cfgmod.get_config_or_default()
    assert (config.models.default, error) == ("csghub-lite.Qwen/Qwen3-0.6B-GGUF", None)


def test_last_loaded_config_outlives_a_broken_edit_but_not_a_path_change(config_file, settings, tmp_path):
    assert cfgmod.last_loaded_config() is None
    write(config_file, '[server]\naccess_token = "kept"\n')
    loaded = cfgmod.get_config()
    write(config_file, "[server\n")
    assert cfgmod.get_config_or_default()[1] is not None

    assert cfgmod.last_loaded_config() is loaded
    settings.CSGCLAW_CONFIG = str(tmp_path / "other.toml")
    assert cfgmod.last_loaded_config() is None
