"""security.md S3 and S4 through Django's test client: Host check, cross-site writes, remote callers.

The client sends `REMOTE_ADDR` 127.0.0.1 unless a test passes another one, so each test says which caller
it plays. The live-server tests (test_access_live.py) run the same rules over real sockets.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.management.base import OutputWrapper

from core.config import clear_config_cache, default_config
from core.config import hosts as hosts_module
from im.identity import ADMIN_ID
from im.models import Room
from im.tests.factories import make_agent, make_user, post_json
from server import login, startup

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(30)]

TOKEN = "access-test-server-token"
REMOTE = "192.0.2.50"
OTHER_REMOTE = "192.0.2.51"
ROOM = {"title": "launch", "creator_id": ADMIN_ID, "member_ids": ["u-bob"]}


@pytest.fixture(autouse=True)
def server_config(settings, tmp_path: Path):
    """config.toml with a real server token; a fresh login failure count."""
    path = tmp_path / "config.toml"
    path.write_text(f'[server]\naccess_token = "{TOKEN}"\n')
    settings.CSGCLAW_CONFIG = path
    clear_config_cache()
    cache.clear()
    make_user("u-bob")
    yield path
    clear_config_cache()
    cache.clear()


def rooms() -> int:
    return Room.objects.count()


def remote(**extra: str) -> dict[str, str]:
    return {"REMOTE_ADDR": REMOTE, **extra}


def remote_post(client, path: str, body: dict, **headers: str):
    """`post_json` from a non-loopback peer."""
    return client.post(
        path, data=json.dumps(body), content_type="text/plain", headers=headers, REMOTE_ADDR=REMOTE
    )


# --- S3.1 Host check ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/api/v1/rooms", "/", "/login"])
def test_a_foreign_host_is_refused(client, path):
    response = client.get(path, HTTP_HOST="rebind.attacker.example")

    assert response.status_code == 400
    assert response.content == b"invalid host header\n"
    assert response["Content-Type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1:18080", "[::1]:9", "LOCALHOST:1"])
def test_loopback_hosts_pass_whatever_the_port(client, host):
    assert client.get("/healthz", HTTP_HOST=host).content == b"ok"


def test_a_refused_host_writes_nothing(client):
    before = rooms()

    response = post_json(client, "/api/v1/rooms", ROOM, Host="rebind.attacker.example")

    assert response.status_code == 400
    assert rooms() == before


# --- S3.2 cross-site writes, S3.3 no CORS ------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "https://testserver"},
        {"Origin": "http://testserver:8080"},
        {"Origin": "not a url"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://testserver"},
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/rooms", "/api/v1/im/messages", "/login", "/logout"])
def test_cross_site_writes_are_refused_and_store_nothing(client, headers, path):
    before = rooms()

    response = post_json(client, path, ROOM, **headers)

    assert response.status_code == 403
    assert response.content == b"cross-site request refused\n"
    assert rooms() == before


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "http://testserver"},
        {"Origin": "http://TestServer:80"},
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"},
        {"Sec-Fetch-Site": "none"},
    ],
)
def test_same_origin_and_headerless_writes_pass(client, headers):
    response = post_json(client, "/api/v1/rooms", ROOM, **headers)

    assert response.status_code == 201, response.content
    assert "Access-Control-Allow-Origin" not in response


def test_behind_a_trusted_https_proxy_a_same_origin_write_passes(client, settings):
    # What the proxy forwards: the browser's Host, and the scheme it was asked with.
    headers = {"Host": "testserver", "Origin": "https://testserver", "X-Forwarded-Proto": "https"}
    assert post_json(client, "/api/v1/rooms", ROOM, **headers).status_code == 403

    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    assert post_json(client, "/api/v1/rooms", ROOM, **headers).status_code == 201


def test_cross_site_reads_pass_without_cors(client):
    response = client.get(
        "/api/v1/rooms", headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
    )

    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response


def test_cross_site_delete_is_refused(client):
    room_id = post_json(client, "/api/v1/rooms", ROOM).json()["id"]

    response = client.delete(f"/api/v1/rooms/{room_id}", headers={"Origin": "http://evil.example"})

    assert response.status_code == 403
    assert Room.objects.filter(id=room_id).exists()


# --- S4 remote callers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "caller",
    [
        {"REMOTE_ADDR": REMOTE},
        {"REMOTE_ADDR": "::ffff:192.0.2.50"},
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "192.0.2.50"},
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": "for=192.0.2.50"},
        {"REMOTE_ADDR": ""},
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/rooms", "/api/v1/im/events", "/api/v1/agents", "/api/v1/nowhere"])
def test_a_remote_caller_without_a_credential_gets_401(client, caller, path):
    response = client.get(path, **caller)

    assert response.status_code == 401
    assert response.content == b"unauthorized\n"
    assert "WWW-Authenticate" not in response


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_local_callers_need_nothing(client, address):
    assert client.get("/api/v1/rooms", REMOTE_ADDR=address).status_code == 200


def test_a_remote_write_without_a_credential_stores_nothing(client):
    before = rooms()

    response = remote_post(client, "/api/v1/rooms", ROOM)

    assert response.status_code == 401
    assert rooms() == before


def test_a_remote_browser_is_sent_to_login(client):
    response = client.get("/", **remote())

    assert response.status_code == 302
    assert response["Location"] == "/login?next=/"


@pytest.mark.parametrize(("path", "status"), [("/healthz", 200), ("/login", 200), ("/admin/", 302)])
def test_open_paths_stay_open_to_remote_callers(client, path, status):
    response = client.get(path, **remote())

    assert response.status_code == status
    if path == "/admin/":
        assert response["Location"].startswith("/admin/login/")


def test_the_server_token_opens_the_api_remotely(client):
    headers = {"Authorization": f"Bearer {TOKEN}"}

    assert client.get("/api/v1/rooms", headers=headers, **remote()).status_code == 200
    assert remote_post(client, "/api/v1/rooms", ROOM, Authorization=f"Bearer {TOKEN}").status_code == 201


def test_any_agent_token_opens_the_rest_api_remotely(client):
    agent = make_agent("u-alice")

    response = client.get("/api/v1/rooms", headers={"Authorization": f"Bearer {agent.api_token}"}, **remote())

    assert response.status_code == 200


@pytest.mark.parametrize(
    "authorization",
    ["Bearer wrong", "Bearer your_access_token", f"bearer {TOKEN}", f"Basic {TOKEN}", "Bearer "],
)
def test_other_credentials_do_not(client, authorization):
    response = client.get("/api/v1/rooms", headers={"Authorization": authorization}, **remote())

    assert response.status_code == 401


def test_the_placeholder_token_in_config_opens_nothing(client, server_config):
    server_config.write_text('[server]\naccess_token = "your_access_token"\n')
    clear_config_cache()

    response = client.get("/api/v1/rooms", headers={"Authorization": "Bearer your_access_token"}, **remote())

    assert response.status_code == 401


def test_no_auth_lets_remote_callers_in_but_still_refuses_cross_site_writes(client, server_config):
    server_config.write_text("[server]\nno_auth = true\n")
    clear_config_cache()

    assert client.get("/api/v1/rooms", **remote()).status_code == 200
    assert client.get("/", **remote()).status_code == 200
    refused = remote_post(client, "/api/v1/rooms", ROOM, Origin="http://evil.example")
    assert refused.status_code == 403
    assert client.get("/healthz", HTTP_HOST="rebind.attacker.example", **remote()).status_code == 400


# --- /login, /logout ---------------------------------------------------------------------------------


def log_in(client, address: str = REMOTE, **fields: str):
    return client.post("/login", fields, REMOTE_ADDR=address)


def test_the_login_form(client):
    response = client.get("/login?next=/", **remote())

    assert response.status_code == 200
    html = response.content.decode()
    for name in ("csrfmiddlewaretoken", 'name="token"', 'name="username"', 'name="password"', 'value="/"'):
        assert name in html


def test_token_login_sets_the_session_cookie_and_opens_api_page_and_stream(client):
    response = log_in(client, token=TOKEN, next="/")

    assert response.status_code == 302
    assert response["Location"] == "/"
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert not cookie["secure"]
    assert client.get("/api/v1/rooms", **remote()).status_code == 200
    assert client.get("/", **remote()).status_code == 200
    assert remote_post(client, "/api/v1/rooms", ROOM).status_code == 201


def test_password_login_of_any_active_user(client):
    User.objects.create_user("carol", password="a long passphrase")

    response = log_in(client, username="carol", password="a long passphrase")

    assert response.status_code == 302
    assert client.get("/api/v1/rooms", **remote()).status_code == 200


@pytest.mark.parametrize(
    "fields",
    [
        {"token": "wrong"},
        {"token": "your_access_token"},
        {"username": "carol", "password": "wrong"},
        {"username": "inactive", "password": "a long passphrase"},
        {"username": "carol"},
        {},
    ],
)
def test_failed_logins_show_the_form_again(client, fields):
    User.objects.create_user("carol", password="a long passphrase")
    User.objects.create_user("inactive", password="a long passphrase", is_active=False)

    response = log_in(client, **fields)

    assert response.status_code == 200
    assert "wrong token or password" in response.content.decode()
    assert "sessionid" not in response.cookies
    assert client.get("/api/v1/rooms", **remote()).status_code == 401


def test_the_cookie_is_secure_over_https(client):
    response = client.post("/login", {"token": TOKEN}, secure=True, REMOTE_ADDR=REMOTE)

    assert response.cookies["sessionid"]["secure"] is True


@pytest.mark.parametrize(
    ("next_url", "location"),
    [
        ("/", "/"),
        ("/admin/?x=1", "/admin/?x=1"),
        ("http://testserver/api/v1/rooms", "http://testserver/api/v1/rooms"),
        ("http://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("https://testserver/", "https://testserver/"),
        ("http://testserver.evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("/\\evil.example", "/"),
        ("", "/"),
    ],
)
def test_next_stays_on_this_site(client, next_url, location):
    response = log_in(client, token=TOKEN, next=next_url)

    assert response["Location"] == location


def test_logout_ends_the_session(client):
    log_in(client, token=TOKEN)

    response = client.post("/logout", REMOTE_ADDR=REMOTE)

    assert response.status_code == 302
    assert response["Location"] == "/login"
    assert client.get("/api/v1/rooms", **remote()).status_code == 401


def test_logout_is_post_only(client):
    assert client.get("/logout").status_code == 405


def test_changing_the_server_token_ends_token_sessions(client, server_config):
    log_in(client, token=TOKEN)
    server_config.write_text('[server]\naccess_token = "a-new-token"\n')
    clear_config_cache()

    assert client.get("/api/v1/rooms", **remote()).status_code == 401


def test_a_password_change_ends_the_users_sessions(client):
    user = User.objects.create_user("carol", password="a long passphrase")
    log_in(client, username="carol", password="a long passphrase")
    user.set_password("another long passphrase")
    user.save()

    assert client.get("/api/v1/rooms", **remote()).status_code == 401


def test_more_than_ten_failures_block_the_address_for_five_minutes(client, monkeypatch):
    now = [1_000_000.0]
    monkeypatch.setattr(login.time, "time", lambda: now[0])
    for _ in range(login.FAILURE_LIMIT):
        assert log_in(client, token="guess").status_code == 200

    blocked = log_in(client, token="guess")

    assert blocked.status_code == 429
    assert blocked.content == b"too many attempts\n"
    assert blocked["Retry-After"] == "300"
    # Even the right token is refused while blocked; another address is not.
    now[0] += 299
    assert log_in(client, token=TOKEN).status_code == 429
    assert log_in(client, OTHER_REMOTE, token=TOKEN).status_code == 302
    now[0] += 2
    assert log_in(client, token=TOKEN).status_code == 302


def test_failures_older_than_five_minutes_do_not_count(client, monkeypatch):
    now = [1_000_000.0]
    monkeypatch.setattr(login.time, "time", lambda: now[0])
    for _ in range(login.FAILURE_LIMIT):
        log_in(client, token="guess")
    now[0] += login.FAILURE_WINDOW_SECONDS + 1

    assert log_in(client, token="guess").status_code == 200


def test_a_local_proxy_counts_failures_per_forwarded_address(client, monkeypatch):
    for _ in range(login.FAILURE_LIMIT + 1):
        client.post(
            "/login", {"token": "guess"}, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.1"
        )

    assert (
        client.post("/login", {"token": TOKEN}, HTTP_X_FORWARDED_FOR="10.0.0.1, 198.51.100.1").status_code
        == 429
    )
    assert client.post("/login", {"token": TOKEN}, HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 302


# --- start-up --------------------------------------------------------------------------------------


def run_access_prepare(listen_addr: str, *, no_auth: bool = False) -> str:
    out = io.StringIO()
    config = default_config()
    config.server.no_auth = no_auth
    startup.serving_access_prepare(config=config, listen_addr=listen_addr, stdout=OutputWrapper(out))
    return out.getvalue()


def test_start_up_on_a_non_loopback_address_says_where_to_log_in(settings, monkeypatch):
    monkeypatch.setattr(hosts_module, "lan_ipv4", lambda: "192.0.2.2")

    assert run_access_prepare("0.0.0.0:18080") == (
        "remote browsers log in at http://192.0.2.2:18080/login with the access token\n"
    )
    assert run_access_prepare("192.0.2.7:9000").startswith(
        "remote browsers log in at http://192.0.2.7:9000/login"
    )
    assert run_access_prepare("127.0.0.1:18080") == ""
    assert run_access_prepare("0.0.0.0:18080", no_auth=True) == ""


def test_start_up_accepts_the_bound_host(settings, client):
    run_access_prepare("claw.lan:9000")

    assert "claw.lan" in settings.ALLOWED_HOSTS
    assert "testserver" in settings.ALLOWED_HOSTS
    assert client.get("/healthz", HTTP_HOST="claw.lan:9000").content == b"ok"
