"""security.md S3 and S4 on a live server, the way users run it: real sockets, real peers, real headers.

Two kinds of non-local caller: a request through a proxy (`X-Forwarded-For`, which makes any peer
non-local), and a client in its own network namespace that reaches `manage.py serve` over a veth pair,
so the server sees a peer address that is not loopback. The namespace needs root; without it that test
is skipped and says why.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from csgclaw_site.testing.live import REPO_ROOT, free_port

pytestmark = [pytest.mark.live]

TOKEN = "live-access-server-token"
CONFIG_TOML = f'[server]\naccess_token = "{TOKEN}"\n'
ROOM = {"title": "launch", "creator_id": "u-admin", "member_ids": ["u-manager"]}
PROXIED = {"X-Forwarded-For": "198.51.100.7"}
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
STARTUP_SECONDS = 45.0
STOP_SECONDS = 5.0
NAMESPACE_CLIENT_SECONDS = 30.0


@pytest.fixture
def server(daphne_factory, live_state_factory):
    state = live_state_factory()
    (state.home / "config.toml").write_text(CONFIG_TOML)
    return daphne_factory(state=state)


def room_count(server) -> int:
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=10.0) as client:
        return len(client.get("/api/v1/rooms").json())


# --- S3 ------------------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
async def test_a_rebinding_host_is_refused(server):
    async with server.client() as client:
        refused = await client.get("/api/v1/rooms", headers={"Host": "rebind.attacker.example"})
        page = await client.get("/", headers={"Host": "rebind.attacker.example:18080"})
        accepted = await client.get("/api/v1/rooms", headers={"Host": "localhost:1"})

    assert refused.status_code == 400
    assert refused.text == "invalid host header\n"
    assert page.status_code == 400
    assert accepted.status_code == 200


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "headers",
    [{"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}],
    ids=["origin", "sec-fetch-site", "null-origin"],
)
async def test_cross_site_writes_are_refused_and_the_same_write_without_them_works(server, headers):
    before = room_count(server)
    async with server.client() as client:
        # What `fetch(…, {mode: "no-cors"})` from another site sends: a simple text/plain POST.
        refused = await client.post(
            "/api/v1/rooms", json=ROOM, headers={**headers, "Content-Type": "text/plain;charset=UTF-8"}
        )
        assert refused.status_code == 403
        assert refused.text == "cross-site request refused\n"
        assert "access-control-allow-origin" not in refused.headers
        assert room_count(server) == before

        accepted = await client.post("/api/v1/rooms", json=ROOM)
        same_origin = await client.post("/api/v1/rooms", json=ROOM, headers={"Origin": server.base_url})

    assert accepted.status_code == 201
    assert same_origin.status_code == 201
    assert "access-control-allow-origin" not in accepted.headers
    assert room_count(server) == before + 2


# --- S4 through a proxy header ---------------------------------------------------------------------


@pytest.mark.timeout(60)
async def test_a_proxied_caller_needs_a_credential(server):
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    async with server.client() as client:
        refused = await client.get("/api/v1/rooms", headers=PROXIED)
        refused_write = await client.post("/api/v1/rooms", json=ROOM, headers=PROXIED)
        placeholder = await client.get(
            "/api/v1/rooms", headers={**PROXIED, "Authorization": "Bearer your_access_token"}
        )
        page = await client.get("/", headers=PROXIED)
        health = await client.get("/healthz", headers=PROXIED)
        accepted = await client.get("/api/v1/rooms", headers={**PROXIED, **bearer})
        async with client.stream("GET", "/api/v1/im/events", headers=PROXIED) as stream_refused:
            refused_stream_status = stream_refused.status_code
        async with client.stream("GET", "/api/v1/im/events", headers={**PROXIED, **bearer}) as stream:
            stream_status = stream.status_code
            stream_type = stream.headers["content-type"]

    assert (refused.status_code, refused.text) == (401, "unauthorized\n")
    assert refused_write.status_code == 401
    assert placeholder.status_code == 401
    assert (page.status_code, page.headers["location"]) == (302, "/login?next=/")
    assert health.text == "ok"
    assert accepted.status_code == 200
    assert refused_stream_status == 401
    assert (stream_status, stream_type.split(";")[0]) == (200, "text/event-stream")


def login_form(client: httpx.Client, next_url: str = "/") -> str:
    """GET /login; returns the CSRF field (the CSRF cookie stays in the client)."""
    response = client.get("/login", params={"next": next_url})
    assert response.status_code == 200
    return CSRF_FIELD.search(response.text).group(1)


@pytest.mark.timeout(60)
def test_a_proxied_browser_logs_in_with_the_token_and_next_stays_on_this_site(server):
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=10.0, headers=PROXIED) as client:
        csrf = login_form(client)
        failed = client.post("/login", data={"csrfmiddlewaretoken": csrf, "token": "guess", "next": "/"})
        assert failed.status_code == 200
        assert "wrong token or password" in failed.text
        assert client.get("/api/v1/rooms").status_code == 401

        csrf = login_form(client)
        logged_in = client.post(
            "/login", data={"csrfmiddlewaretoken": csrf, "token": TOKEN, "next": "http://evil.example/"}
        )
        assert (logged_in.status_code, logged_in.headers["location"]) == (302, "/")
        cookie = logged_in.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert client.get("/api/v1/rooms").status_code == 200
        assert client.get("/").status_code == 200
        assert client.post("/api/v1/rooms", json=ROOM).status_code == 201

        csrf = CSRF_FIELD.search(client.get("/login").text).group(1)
        assert client.post("/logout", data={"csrfmiddlewaretoken": csrf}).status_code == 302
        assert client.get("/api/v1/rooms").status_code == 401


@pytest.mark.timeout(60)
def test_more_than_ten_failed_logins_from_one_address_get_429(server):
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=10.0, headers=PROXIED) as client:
        csrf = login_form(client)
        answers = [
            client.post("/login", data={"csrfmiddlewaretoken": csrf, "token": f"guess-{n}"}).status_code
            for n in range(11)
        ]
        blocked = client.post("/login", data={"csrfmiddlewaretoken": csrf, "token": TOKEN})

    assert answers == [200] * 10 + [429]
    assert (blocked.status_code, blocked.text) == (429, "too many attempts\n")
    assert 290 <= int(blocked.headers["retry-after"]) <= 300
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=10.0) as other:
        other_csrf = login_form(other)
        other_answer = other.post(
            "/login",
            data={"csrfmiddlewaretoken": other_csrf, "token": TOKEN},
            headers={"X-Forwarded-For": "198.51.100.8"},
        )
    assert other_answer.status_code == 302


# --- S4 from another network namespace -----------------------------------------------------------------


@dataclass
class Veth:
    """A network namespace whose end of a veth pair reaches the host's end at `host_address`."""

    namespace: str
    host_address: str

    def run_python(self, code: str) -> str:
        """Run `code` with this interpreter inside the namespace; returns its stdout."""
        result = subprocess.run(
            ["ip", "netns", "exec", self.namespace, sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=NAMESPACE_CLIENT_SECONDS,
            env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO_ROOT)},
        )
        assert result.returncode == 0, result.stderr
        return result.stdout


def _netns_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "a network namespace with a veth pair needs root"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def veth() -> Iterator[Veth]:
    reason = _netns_unavailable()
    if reason:
        pytest.skip(reason)
    # Unique per process, so parallel runs on one machine never share a namespace or a subnet.
    tag = os.getpid() % 60000
    namespace, host_end, peer_end = f"csgacc{tag}", f"csga{tag}h", f"csga{tag}p"
    subnet = f"10.{200 + tag % 50}.{tag % 250}"
    try:
        _ip("netns", "add", namespace)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot create a network namespace: {exc.stderr.decode().strip()}")
    try:
        _ip("link", "add", host_end, "type", "veth", "peer", "name", peer_end)
        _ip("link", "set", peer_end, "netns", namespace)
        _ip("addr", "add", f"{subnet}.1/30", "dev", host_end)
        _ip("link", "set", host_end, "up")
        _ip("netns", "exec", namespace, "ip", "addr", "add", f"{subnet}.2/30", "dev", peer_end)
        _ip("netns", "exec", namespace, "ip", "link", "set", peer_end, "up")
        yield Veth(namespace=namespace, host_address=f"{subnet}.1")
    finally:
        subprocess.run(["ip", "link", "del", host_end], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=10)


@pytest.fixture
def serve_on_veth(veth: Veth, live_state_factory) -> Iterator[tuple[Veth, str, Path]]:
    """`manage.py serve` bound to the host end of the veth pair only (never to the LAN)."""
    state = live_state_factory(extra_env={"CSGCLAW_AUTO_MIGRATE": "false"})
    (state.home / "config.toml").write_text(CONFIG_TOML)
    port = free_port()
    log_path = state.home / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--no-bootstrap", f"{veth.host_address}:{port}"],
            cwd=REPO_ROOT,
            env=state.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://{veth.host_address}:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        with httpx.Client(base_url=base_url, trust_env=False, timeout=2.0) as client:
            while True:
                assert process.poll() is None, log_path.read_text(errors="replace")
                assert time.monotonic() < deadline, log_path.read_text(errors="replace")
                try:
                    if client.get("/healthz").text == "ok":
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
        yield veth, base_url, log_path
    finally:
        process.terminate()
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print(f"--- manage.py serve output ---\n{log_path.read_text(errors='replace')[-6000:]}")


@pytest.mark.timeout(120)
def test_a_caller_on_another_address_needs_a_credential(serve_on_veth):
    veth, base_url, log_path = serve_on_veth

    output = veth.run_python(
        f"""
        import httpx
        with httpx.Client(base_url={base_url!r}, trust_env=False, timeout=10.0) as client:
            bearer = {{"Authorization": "Bearer {TOKEN}"}}
            print(client.get("/api/v1/rooms").status_code)
            print(client.get("/api/v1/rooms", headers=bearer).status_code)
            print(client.post("/api/v1/rooms", json={ROOM!r}).status_code)
            print(client.post("/api/v1/rooms", json={ROOM!r}, headers=bearer).status_code)
            print(client.get("/").headers.get("location"))
            print(client.get("/healthz").text)
            print(client.get("/api/v1/rooms", headers={{"Host": "rebind.attacker.example"}}).status_code)
        """
    )

    assert output.split() == ["401", "200", "401", "201", "/login?next=/", "ok", "400"]
    log = log_path.read_text(errors="replace")
    assert f"remote browsers log in at {base_url}/login with the access token" in log
