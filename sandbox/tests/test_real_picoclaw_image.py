"""Opt-in: a real PicoClaw 2026.6 image on Docker connects to a live server with the §6.2 environment alone.

participants.md §6.4 leaves this to an integration test: this server keeps its own mounts and command, so
the image is configured only by the box environment. The test needs a Docker daemon and registry access,
which this project's CI machine does not have, so it runs only when asked:

    CSGCLAW_IT_DOCKER=1 .venv/bin/python -m pytest sandbox/tests/test_real_picoclaw_image.py -m live

`CSGCLAW_IT_PICOCLAW_IMAGE` picks the image (default: upstream's 2026.6.10), `CSGCLAW_IT_DOCKER_PATH` the
docker CLI and `CSGCLAW_IT_BOX_HOST` the address containers reach this machine on (default: its LAN
IPv4; Docker Desktop: `host.docker.internal`). The live server listens on loopback only, so the test
relays that address's port to it. The agent's container is removed afterwards, also when the test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bots.tests.fake_openai import FakeOpenAI
from core.config.base_urls import lan_ipv4
from csgclaw_site.testing.live import LOOPBACK, LiveServer, LiveState, eventually, stream_started
from im.identity import ADMIN_ID
from sandbox.providers import get_provider
from sandbox.providers.base import BoxNotFound
from sandbox.tests.factories import sandbox_config

IMAGE = os.environ.get(
    "CSGCLAW_IT_PICOCLAW_IMAGE", "opencsg-registry.cn-beijing.cr.aliyuncs.com/opencsghq/picoclaw:2026.6.10"
)
DOCKER_PATH = os.environ.get("CSGCLAW_IT_DOCKER_PATH", "docker")
SERVER_TOKEN = "picoclaw-image-it-server-token"
PROVIDER_KEY = "sk-picoclaw-image-it-provider"
MODEL = "fake-model"
# Pulling the image on first use dominates; the gateway itself connects within seconds.
RUNNING_SECONDS = 420.0
CONNECT_SECONDS = 120.0
ANSWER_SECONDS = 120.0

pytestmark = [
    pytest.mark.live,
    pytest.mark.subprocess,
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        os.environ.get("CSGCLAW_IT_DOCKER") != "1",
        reason=(
            "real PicoClaw 2026.6 image on Docker: set CSGCLAW_IT_DOCKER=1 to run (a Docker daemon and "
            "registry access needed; CSGCLAW_IT_PICOCLAW_IMAGE, CSGCLAW_IT_DOCKER_PATH, CSGCLAW_IT_BOX_HOST "
            "optional)"
        ),
    ),
]


def config_toml(provider_base_url: str, *, box_host: str, advertise_base_url: str = "") -> str:
    advertise = f'advertise_base_url = "{advertise_base_url}"\n' if advertise_base_url else ""
    return (
        f'[server]\naccess_token = "{SERVER_TOKEN}"\nallowed_hosts = ["{box_host}"]\n{advertise}\n'
        f'[bootstrap]\nmanager_image = "{IMAGE}"\n\n'
        f'[sandbox]\nprovider = "docker"\ndocker_path = "{DOCKER_PATH}"\n\n'
        f'[models]\ndefault = "fake.{MODEL}"\n\n'
        "[models.providers.fake]\n"
        f'base_url = "{provider_base_url}"\n'
        f'api_key = "{PROVIDER_KEY}"\n'
        f'models = ["{MODEL}"]\n'
    )


async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        return
    finally:
        writer.close()


async def relay_to(port: int) -> asyncio.Server:
    """A TCP relay on every interface to the live server on loopback `port`, so containers reach it."""

    async def connect(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(LOOPBACK, port)
        await asyncio.gather(relay(client_reader, server_writer), relay(server_reader, client_writer))

    return await asyncio.start_server(connect, "0.0.0.0", 0)


@pytest.fixture
def container_cleanup(tmp_path: Path):
    """Names of agent slugs whose containers are removed at teardown, whatever the server did."""
    slugs: list[str] = []
    yield slugs
    runtime = get_provider(sandbox_config(provider="docker", docker_path=DOCKER_PATH)).open(
        tmp_path / "docker"
    )
    for slug in slugs:
        with contextlib.suppress(BoxNotFound):
            runtime.remove(slug, force=True)
    runtime.close()


async def test_a_2026_6_box_subscribes_to_its_participant_stream_and_answers_the_admin(
    live_state_factory: Callable[..., LiveState],
    daphne_factory: Callable[..., LiveServer],
    container_cleanup: list[str],
) -> None:
    box_host = os.environ.get("CSGCLAW_IT_BOX_HOST") or lan_ipv4()
    assert box_host, "no LAN IPv4 address for containers to reach; set CSGCLAW_IT_BOX_HOST"
    slug = f"it{uuid.uuid4().hex[:8]}"
    agent_id, participant_id = f"u-{slug}", f"pt-{slug}"
    with FakeOpenAI(models=[MODEL]) as provider:
        state = live_state_factory()
        config = state.home / "config.toml"
        config.write_text(config_toml(provider.base_url, box_host=box_host))
        server = daphne_factory(
            state=state,
            extra_env={
                "CSGCLAW_SANDBOX_PROVIDER_CLASS": "",
                "CSGCLAW_SANDBOX_INLINE": "false",
                "CSGCLAW_SSE_MAX_LIFETIME": "1800",
            },
        )
        relay_server = await relay_to(server.port)
        relay_port = relay_server.sockets[0].getsockname()[1]
        config.write_text(
            config_toml(
                provider.base_url, box_host=box_host, advertise_base_url=f"http://{box_host}:{relay_port}"
            )
        )
        try:
            async with server.client() as api:
                container_cleanup.append(slug)
                created = await api.post("/api/v1/agents", json={"name": slug, "description": "2026.6 image"})
                assert created.status_code == 201, created.text

                async def running() -> bool:
                    agent = (await api.get(f"/api/v1/agents/{agent_id}")).json()
                    if agent["status"] == "failed":
                        pytest.fail(f"the box failed: {agent}")
                    return agent["status"] == "running"

                await eventually(
                    running, "the agent's container to run", timeout=RUNNING_SECONDS, interval=1.0
                )
                await eventually(
                    lambda: asyncio.to_thread(stream_started, state, kind="participant", key=participant_id),
                    f"the box to subscribe to {participant_id}'s event stream",
                    timeout=CONNECT_SECONDS,
                    interval=1.0,
                )

                rooms = (await api.get("/api/v1/rooms")).json()
                room_id = next(
                    room["id"]
                    for room in rooms
                    if room["is_direct"] and sorted(room["members"]) == [ADMIN_ID, agent_id]
                )
                asked = await api.post(
                    "/api/v1/messages",
                    json={"room_id": room_id, "sender_id": ADMIN_ID, "content": "Reply with one word."},
                )
                assert asked.status_code == 201, asked.text

                # The box may first answer the admin's intro, which it catches up on; any answer will do.
                async def answers() -> list[dict[str, Any]]:
                    history = (await api.get("/api/v1/messages", params={"room_id": room_id})).json()
                    return [message for message in history if message["sender_id"] == agent_id]

                replies = await eventually(
                    answers, "the agent's answer in its direct room", timeout=ANSWER_SECONDS, interval=1.0
                )
        finally:
            relay_server.close()
            await relay_server.wait_closed()

    assert replies[0]["content"].strip()
    upstream = [request for request in provider.requests if request.method == "POST"]
    assert upstream, "the box answered without calling the model through the server"
    assert {request.headers["authorization"] for request in upstream} == {f"Bearer {PROVIDER_KEY}"}
