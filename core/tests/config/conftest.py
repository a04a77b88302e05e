"""The config cache starts and ends empty around every test of core.config."""

from __future__ import annotations

import pytest

from core import config as cfgmod


@pytest.fixture(autouse=True)
def _fresh_cache():
    cfgmod.clear_config_cache()
    yield
    cfgmod.clear_config_cache()
