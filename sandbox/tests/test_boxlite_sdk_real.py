"""The boxlite-sdk provider against the real `boxlite` package, as far as a test can go without a VM.

The fakes of test_boxlite_sdk.py accept calls made outside a running event loop; the real SDK does not
("no running event loop"), which is how the provider once failed on every call.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sandbox.providers.base import BoxNotFound
from sandbox.providers.boxlite_sdk import BoxliteSdkProvider
from sandbox.tests.factories import sandbox_config

boxlite = pytest.importorskip("boxlite", reason="the boxlite package is not installed in this environment")

pytestmark = pytest.mark.timeout(30)


def test_the_real_sdk_refuses_calls_outside_a_running_loop(tmp_path: Path):
    """The premise of the provider's design: if this ever passes, the SDK changed and the test must too."""
    runtime = boxlite.Boxlite(boxlite.Options(home_dir=str(tmp_path), image_registries=[]))

    with pytest.raises(RuntimeError, match="no running event loop"):
        runtime.get("missing")


def test_open_get_list_and_remove_run_inside_a_loop(tmp_path: Path):
    runtime = BoxliteSdkProvider(sandbox_config(debian_registries=["docker.io"])).open(tmp_path)
    try:
        with pytest.raises(BoxNotFound, match="get boxlite box: sandbox not found: missing"):
            runtime.get("missing")
        assert runtime.call("list boxlite boxes", runtime.runtime.list_info) == []
        with pytest.raises(BoxNotFound, match="remove boxlite box: not found: missing"):
            runtime.remove("missing", force=True)
    finally:
        runtime.close()


def test_closing_releases_the_home_for_the_next_runtime(tmp_path: Path):
    """The SDK allows one runtime per home directory; each provider operation opens its own."""
    provider = BoxliteSdkProvider(sandbox_config())
    for _ in range(2):
        runtime = provider.open(tmp_path)
        try:
            with pytest.raises(BoxNotFound):
                runtime.get("missing")
        finally:
            runtime.close()


def test_the_provider_works_from_a_thread_without_a_loop(tmp_path: Path):
    """Lifecycle operations run on worker threads, which have no event loop of their own."""

    def in_thread() -> str:
        runtime = BoxliteSdkProvider(sandbox_config()).open(tmp_path)
        try:
            runtime.get("missing")
        except BoxNotFound as error:
            return str(error)
        finally:
            runtime.close()
        return "found"

    async def main() -> str:
        return await asyncio.to_thread(in_thread)

    assert asyncio.run(main()) == "get boxlite box: sandbox not found: missing"
