"""`send_file`: the file tools' confinement, the 25 MiB limit, what is sent and what the model reads back."""

from __future__ import annotations

import json
import os

import pytest

from agent_runtime.contracts import SendResult
from agent_runtime.tests.agent_fakes import FakeRest, make_settings
from agent_runtime.tools import ToolBox
from agent_runtime.tools.attachments import MAX_FILE_BYTES
from agent_runtime.tools.base import ToolContext


class FileSends:
    def __init__(self, result: SendResult | None = None):
        self.sent = []
        self.result = result

    async def __call__(self, room_id, thread_root_id, text, *, file=None):
        self.sent.append((room_id, thread_root_id, text, file))
        return self.result or SendResult(message_id="msg-stored-1", ok=True)


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path, bot_id="u-alice", participant_id="pt-alice")


async def _send_file(settings, sends, **args):
    ctx = ToolContext(
        settings=settings, rest=FakeRest(), room_id="room-1", thread_root_id="msg-root", send=sends
    )
    return await ToolBox(settings).call(ctx, "send_file", json.dumps(args))


async def test_a_workspace_file_is_sent_into_the_current_thread(settings):
    (settings.workspace / "out").mkdir()
    (settings.workspace / "out" / "chart.png").write_bytes(b"\x89PNG\r\n\x1a\n....")
    sends = FileSends()
    result = await _send_file(settings, sends, path="out/chart.png", caption="the chart")
    assert result == "File chart.png (12 bytes) sent to room-1 (message msg-stored-1)"
    ((room_id, thread_root_id, text, file),) = sends.sent
    assert (room_id, thread_root_id, text) == ("room-1", "msg-root", "the chart")
    real = os.path.realpath(settings.workspace / "out" / "chart.png")
    assert (file.path, file.name, file.media_type, file.size) == (real, "chart.png", "image/png", 12)


async def test_a_file_under_the_projects_link_is_allowed_and_unknown_types_are_octet_stream(
    settings, tmp_path
):
    shared = tmp_path / "shared-projects"
    (shared / "demo").mkdir(parents=True)
    (shared / "demo" / "data.xyz123").write_bytes(b"abc")
    os.symlink(shared, settings.workspace / "projects")
    sends = FileSends()
    result = await _send_file(settings, sends, path="projects/demo/data.xyz123")
    assert result.startswith("File data.xyz123 (3 bytes) sent to room-1")
    ((_, _, text, file),) = sends.sent
    assert (text, file.media_type) == ("", "application/octet-stream")


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "~/.picoclaw/config.json", "link/passwd"])
async def test_paths_outside_the_workspace_are_refused_like_the_file_tools(settings, path):
    (settings.home / ".picoclaw" / "config.json").write_text("{}")
    os.symlink("/etc", settings.workspace / "link")
    sends = FileSends()
    result = await _send_file(settings, sends, path=path)
    assert result == f'Error: access denied: "{path}" is outside the workspace'
    assert sends.sent == []


async def test_missing_files_and_directories_are_errors(settings):
    (settings.workspace / "dir").mkdir()
    sends = FileSends()
    assert await _send_file(settings, sends, path="nope.txt") == "Error: file not found: nope.txt"
    assert await _send_file(settings, sends, path="dir") == (
        "Error: path is a directory: dir. send_file sends one file"
    )
    assert sends.sent == []


async def test_more_than_25_mib_is_refused_before_sending(settings):
    big, limit = settings.workspace / "big.bin", settings.workspace / "limit.bin"
    with open(big, "wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)
    with open(limit, "wb") as handle:
        handle.truncate(MAX_FILE_BYTES)
    sends = FileSends()
    assert await _send_file(settings, sends, path="big.bin") == (
        "Error: file is too large to send: big.bin has 26214401 bytes, attachments are limited to 26214400 "
        "bytes (25 MiB)"
    )
    assert sends.sent == []
    assert (await _send_file(settings, sends, path="limit.bin")).startswith("File limit.bin (26214400 bytes)")


async def test_the_servers_error_text_comes_back(settings):
    (settings.workspace / "a.txt").write_text("hi")
    sends = FileSends(SendResult(message_id="m", ok=False, error='400 attachment "a.txt" is empty'))
    result = await _send_file(settings, sends, path="a.txt")
    assert result == 'Error: send failed: 400 attachment "a.txt" is empty'


@pytest.mark.parametrize("bot_id", ["u-manager", "u-alice"])
def test_every_agent_has_send_file(tmp_path, bot_id):
    schemas = ToolBox(make_settings(tmp_path, bot_id=bot_id)).schemas
    (schema,) = [s["function"] for s in schemas if s["function"]["name"] == "send_file"]
    assert schema["parameters"]["required"] == ["path"]
    assert set(schema["parameters"]["properties"]) == {"path", "caption"}
