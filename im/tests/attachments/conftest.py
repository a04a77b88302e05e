"""Every attachment test gets its own state directory, so blobs and workspaces never mix."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def attachment_home(settings, tmp_path):
    settings.CSGCLAW_HOME = tmp_path
    return tmp_path
