"""The health endpoint (builtin-runtime.md §1.5): /health, /ready, other paths, and a taken port."""

from __future__ import annotations

import logging
import os
import socket

import httpx

from agent_runtime.health import HealthServer
from agent_runtime.tests.channel_fakes import make_settings


async def test_health_and_ready(tmp_path):
    ready = [False]
    server = HealthServer(make_settings(tmp_path, health_enabled=True, health_port=0), ready=lambda: ready[0])
    assert await server.start()
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{server.bound_port}", trust_env=False
        ) as client:
            health = await client.get("/health")
            assert health.status_code == 200
            assert health.json() == {"status": "ok", "uptime": "0s", "pid": os.getpid()}
            not_ready = await client.get("/ready")
            assert (not_ready.status_code, not_ready.json()["status"]) == (503, "not ready")
            ready[0] = True
            is_ready = await client.get("/ready?x=1")
            assert (is_ready.status_code, is_ready.json()["status"]) == (200, "ready")
            assert (await client.get("/other")).status_code == 404
            assert (await client.post("/health")).status_code == 404
    finally:
        await server.close()


async def test_a_taken_port_is_logged_and_skipped(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = HealthServer(
            make_settings(tmp_path, health_enabled=True, health_port=port), ready=lambda: True
        )
        assert await server.start() is False
    assert f"health endpoint not started: 127.0.0.1:{port} is in use" in caplog.text
    await server.close()


async def test_off_means_no_listener(tmp_path):
    server = HealthServer(make_settings(tmp_path, health_enabled=False), ready=lambda: True)
    assert await server.start() is False
    assert server.bound_port is None
