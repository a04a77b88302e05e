"""Attachments on a live Daphne: a 20 MiB upload and download streamed end to end, a Range request, a
1 GiB body refused, the server's memory throughout (/proc/<pid>/status), and a participant delivery
that copies the file into the agent's workspace."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from httpx_sse import aconnect_sse

from csgclaw_site.testing.live import next_sse_event
from csgclaw_site.tests.proc_memory import PeakRss, rss_bytes
from im.identity import ADMIN_ID

pytestmark = [pytest.mark.live, pytest.mark.timeout(300, func_only=True)]

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
TOKEN = "attachments-live-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Creating an agent needs a default model; nothing calls it.
CONFIG = f"""
[server]
access_token = "{TOKEN}"

[models]
default = "remote.test-model"

[models.providers.remote]
base_url = "http://127.0.0.1:9/v1"
api_key = "sk-test"
models = ["test-model"]
"""
UPLOAD_BYTES = 20 * MIB
REFUSED_BYTES = 1024 * MIB
MAX_GROWTH_BYTES = 64 * MIB
BOUNDARY = "live-boundary"


@pytest.fixture
def server(live_state_factory, daphne_factory):
    state = live_state_factory()
    (state.home / "config.toml").write_text(CONFIG)
    return daphne_factory(state=state)


@pytest.fixture
def big_file(tmp_path) -> Path:
    path = tmp_path / "big.bin"
    with path.open("wb") as file:
        for _ in range(UPLOAD_BYTES // MIB):
            file.write(os.urandom(MIB))
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def new_room(client: httpx.Client) -> str:
    created = client.post("/api/v1/rooms", json={"title": "files", "creator_id": ADMIN_ID, "member_ids": []})
    assert created.status_code == 201, created.text
    return created.json()["id"]


def upload(client: httpx.Client, room_id: str, path: Path, content_type: str = "application/octet-stream"):
    payload = json.dumps({"room_id": room_id, "sender_id": ADMIN_ID, "content": ""})
    with path.open("rb") as file:
        return client.post(
            "/api/v1/messages", data={"payload": payload}, files={"files": (path.name, file, content_type)}
        )


def download_digest(client: httpx.Client, url: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with client.stream("GET", url) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def zeros(total: int) -> Iterator[bytes]:
    chunk = bytes(MIB)
    sent = 0
    while sent < total:
        part = chunk[: min(MIB, total - sent)]
        sent += len(part)
        yield part


def memory_line(label: str, pid: int, rss: PeakRss) -> str:
    return (
        f"{label}: VmRSS before {rss.before / MIB:.1f} MiB, after {rss_bytes(pid) / MIB:.1f} MiB, "
        f"peak (VmHWM) {rss.peak / MIB:.1f} MiB, growth {rss.growth / MIB:.1f} MiB"
    )


def test_a_20_mib_file_goes_up_and_down_streamed_and_the_server_stays_small(server, big_file, tmp_path):
    pid = server.process.pid
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=120.0) as client:
        room_id = new_room(client)
        # Warm up: the first multipart send and download import and allocate on their own.
        warm = tmp_path / "warm.txt"
        warm.write_bytes(b"warm up")
        warmed = upload(client, room_id, warm).json()["attachments"][0]
        assert download_digest(client, warmed["download_url"])[1] == 7

        with PeakRss(pid) as rss:
            response = upload(client, room_id, big_file)
            assert response.status_code == 201, response.text
            (attachment,) = response.json()["attachments"]
            digest, size = download_digest(client, attachment["download_url"])
            ranged = client.get(attachment["download_url"], headers={"Range": "bytes=1000000-1999999"})

        print(memory_line("20 MiB upload + download + range", pid, rss))
        expected = sha256_of(big_file)
        assert (attachment["sha256"], attachment["size_bytes"]) == (expected, UPLOAD_BYTES)
        assert (digest, size) == (expected, UPLOAD_BYTES)
        assert ranged.status_code == 206
        assert ranged.headers["Content-Range"] == f"bytes 1000000-1999999/{UPLOAD_BYTES}"
        with big_file.open("rb") as file:
            file.seek(1000000)
            assert ranged.content == file.read(1000000)
        blob = server.home / "im" / "assets" / "blobs" / "sha256" / expected[:2] / expected
        assert blob.stat().st_size == UPLOAD_BYTES
        assert rss.growth < MAX_GROWTH_BYTES, memory_line("grew too much", pid, rss)


@pytest.mark.parametrize("announce", [True, False], ids=["announced", "chunked"])
def test_a_1_gib_multipart_body_is_refused_and_the_server_stays_small(server, announce):
    pid = server.process.pid
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    if announce:
        headers["Content-Length"] = str(REFUSED_BYTES)
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=120.0) as client:
        client.get("/api/v1/rooms")
        with PeakRss(pid) as rss:
            response = client.post("/api/v1/messages", content=zeros(REFUSED_BYTES), headers=headers)

    print(memory_line(f"1 GiB body ({'announced' if announce else 'chunked'})", pid, rss))
    assert (response.status_code, response.text) == (413, "request body too large\n")
    assert rss.growth < MAX_GROWTH_BYTES, memory_line("grew too much", pid, rss)
    assert httpx.get(f"{server.base_url}/healthz", trust_env=False).text == "ok"


async def test_a_thread_reply_with_a_file_reaches_the_box_with_its_workspace_copy(server, tmp_path):
    data = b"notes for the agent\n" * 1000
    async with server.client() as api, server.client(timeout=httpx.Timeout(10.0, read=None)) as sse:
        created = await api.post("/api/v1/agents", json={"name": "dev", "description": "builder"})
        assert created.status_code == 201, created.text
        workspace = server.home / "agents" / "dev" / "workspace"
        assert workspace.is_dir()
        room = await api.post(
            "/api/v1/rooms", json={"title": "files", "creator_id": ADMIN_ID, "member_ids": ["u-dev"]}
        )
        room_id = room.json()["id"]
        root = await api.post(
            "/api/v1/messages", json={"room_id": room_id, "sender_id": ADMIN_ID, "content": "the plan"}
        )
        root_id = root.json()["id"]
        newest = (await api.get("/api/v1/bootstrap")).json()["last_event_id"]

        events_url = f"/api/v1/channels/csgclaw/participants/pt-dev/events?last_event_id={newest}"
        async with aconnect_sse(sse, "GET", events_url, headers=AUTH) as source:
            events = source.aiter_sse()
            payload = {
                "room_id": room_id,
                "sender_id": ADMIN_ID,
                "content": '<at user_id="u-dev">dev</at> read',
                "relates_to": {"rel_type": "m.thread", "event_id": root_id},
            }
            sent = await api.post(
                "/api/v1/messages",
                data={"payload": json.dumps(payload)},
                files={"files": ("notes.txt", data, "text/plain")},
            )
            assert sent.status_code == 201, sent.text
            message_id = sent.json()["id"]
            frame = None
            while frame is None or frame["message_id"] != message_id:
                event = await next_sse_event(events, timeout=10)
                frame = json.loads(event.data)

    assert frame["thread_root_id"] == frame["context"]["topic_id"] == root_id
    assert frame["thread_context"]["root_message_id"] == root_id
    (attachment,) = frame["attachments"]
    expected_path = f".csgclaw/attachments/{room_id}/{message_id}/{attachment['id']}-notes.txt"
    assert attachment["workspace_path"] == expected_path
    copied = workspace / expected_path
    assert copied.read_bytes() == data
    assert hashlib.sha256(copied.read_bytes()).hexdigest() == attachment["sha256"]
    assert os.stat(copied).st_mode & 0o777 == 0o600


def test_a_client_that_stops_reading_a_download_does_not_grow_the_server(server, big_file):
    pid = server.process.pid
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=120.0) as client:
        room_id = new_room(client)
        (attachment,) = upload(client, room_id, big_file).json()["attachments"]
        with PeakRss(pid) as rss, client.stream("GET", attachment["download_url"]) as response:
            chunks = response.iter_raw(64 * 1024)
            first = next(chunks)
            # The socket buffers fill; the server must wait instead of buffering the rest of the file.
            time.sleep(2)
            paused = rss_bytes(pid) - rss.before
            rest = sum(len(chunk) for chunk in chunks)

    print(memory_line("20 MiB download, paused reader", pid, rss), f"while paused +{paused / MIB:.1f} MiB")
    assert len(first) + rest == UPLOAD_BYTES
    assert paused < 8 * MIB
