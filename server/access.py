"""Who may call the server (security.md S3, S4): the Host check, cross-site writes and remote callers.

The rules only look at the request; server.middleware applies them before any view runs, and
server.login issues the session that S4 accepts besides a bearer token.
"""

from __future__ import annotations

import hmac
import ipaddress
from importlib import import_module
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import auth
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.crypto import salted_hmac

from agents.credentials import (
    acredential_kind,
    auth_disabled,
    bearer_token,
    credential_kind,
    is_server_token,
    server_config,
)
from core.db.threads import REQUEST_THREAD
from core.http import error_response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
INVALID_HOST_TEXT = "invalid host header"
CROSS_SITE_TEXT = "cross-site request refused"
UNAUTHORIZED_TEXT = "unauthorized"
LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
# Always open (S4); `/admin/` keeps Django's own staff login.
_OPEN_PATHS = frozenset({"/healthz", LOGIN_PATH, LOGOUT_PATH})
_OPEN_PREFIXES = ("/static/", "/admin/")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# The peers of nearly every local request, answered without parsing the address.
_LOOPBACK_PEERS = frozenset({"127.0.0.1", "::1"})
# A token login stores an HMAC of the server token, never the token: changing [server].access_token ends
# every session that was opened with the old one.
TOKEN_SESSION_KEY = "_csgclaw_token_login"
# The salt keeps the module's former name: a new salt would end every token session on upgrade.
_TOKEN_MARK_SALT = "csgclaw_site.access.token_login"


def host_refusal(request: HttpRequest) -> HttpResponse | None:
    """400 `invalid host header` unless Django's ALLOWED_HOSTS accepts the Host header (S3.1)."""
    try:
        request.get_host()
    except DisallowedHost:
        # Most likely a DNS-rebinding page: the attacker's name now points at this machine.
        return error_response(request, 400, INVALID_HOST_TEXT)
    return None


def cross_site_refusal(request: HttpRequest) -> HttpResponse | None:
    """403 for a write that a browser sent on behalf of another site (S3.2)."""
    if request.method in SAFE_METHODS:
        return None
    # META rather than request.headers: this runs on every write, and building `headers` copies all of META.
    if request.META.get("HTTP_SEC_FETCH_SITE", "").strip().lower() == "cross-site":
        return error_response(request, 403, CROSS_SITE_TEXT)
    origin = request.META.get("HTTP_ORIGIN")
    if origin is None:
        return None
    own = f"{request.scheme}://{request.get_host()}"
    if origin != own and _origin_tuple(origin) != _origin_tuple(own):
        return error_response(request, 403, CROSS_SITE_TEXT)
    return None


def is_local(request: HttpRequest) -> bool:
    """A loopback peer that no proxy stands in front of (S4): a proxy hides who the real caller is."""
    meta = request.META
    if "HTTP_FORWARDED" in meta or "HTTP_X_FORWARDED_FOR" in meta:
        return False
    return is_loopback_address(meta.get("REMOTE_ADDR", ""))


def is_loopback_address(address: str) -> bool:
    if address in _LOOPBACK_PEERS:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def client_address(request: HttpRequest) -> str:
    """The caller's address: the peer, or behind a local reverse proxy the address it put in X-Forwarded-For.

    Only the last entry counts, the one the proxy added; earlier ones are whatever the client claimed.
    """
    peer = request.META.get("REMOTE_ADDR", "")
    forwarded_for = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded_for and is_loopback_address(peer):
        last = forwarded_for.rsplit(",", 1)[-1].strip()
        if last:
            return last
    return peer


def needs_credential(request: HttpRequest) -> bool:
    """True for a non-local request to a protected path while auth is on (S4)."""
    path = request.path_info
    if path in _OPEN_PATHS or path.startswith(_OPEN_PREFIXES) or is_local(request):
        return False
    return not auth_disabled()


def remote_allowed(request: HttpRequest) -> bool:
    """A non-local caller's credential: a bearer with the server's or an agent's token, else a session."""
    token = bearer_token(request.headers.get("Authorization", ""))
    if token is not None:
        return credential_kind(token) is not None
    return session_allows(request)


async def aremote_allowed(request: HttpRequest) -> bool:
    """`remote_allowed` for the async middleware: a bearer is checked on the event loop where it can be."""
    token = bearer_token(request.headers.get("Authorization", ""))
    if token is not None:
        return await acredential_kind(token) is not None
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return False
    return await REQUEST_THREAD.run(session_allows, request)


def unauthenticated_answer(request: HttpRequest) -> HttpResponse:
    """401 `unauthorized` for the API and the IM stream; pages send the browser to /login."""
    path = request.path_info
    if path.startswith("/api/"):
        return error_response(request, 401, UNAUTHORIZED_TEXT)
    return HttpResponseRedirect(f"{LOGIN_PATH}?{urlencode({'next': request.get_full_path()}, safe='/')}")


def session_allows(request: HttpRequest) -> bool:
    """True when the request's session cookie belongs to a live `/login` session.

    API paths run without Django's session middleware (server.middleware), so the session is
    loaded here, and only for the non-local requests that carry no bearer.
    """
    session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not session_key:
        return False
    if getattr(request, "session", None) is None:
        request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return login_session_valid(request)


def login_session_valid(request: HttpRequest) -> bool:
    """The session was opened with the current server token, or holds an active Django user."""
    mark = request.session.get(TOKEN_SESSION_KEY)
    if mark is not None:
        server = server_config()
        token = server.access_token if server is not None else ""
        return is_server_token(token) and hmac.compare_digest(str(mark), token_mark(token))
    user = auth.get_user(request)
    return user.is_authenticated and user.is_active


def token_mark(token: str) -> str:
    return salted_hmac(_TOKEN_MARK_SALT, token).hexdigest()


def _origin_tuple(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) with the default port filled in; None for `null` or anything unparsable."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]
