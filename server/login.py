"""`/login` and `/logout` for remote browsers (security.md S4): the access token or a Django user's password.

Django's auth and sessions do the work: `authenticate` and `login` for users, the session engine for
the cookie, `url_has_allowed_host_and_scheme` for `next`, CSRF protection for both forms (the site
middleware). A token login has no Django user, so its session holds an HMAC of the server token instead.
"""

from __future__ import annotations

import threading
import time

from django.contrib import auth
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.csrf import rotate_token
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

from agents.credentials import is_server_token
from core.http import error_response, method_not_allowed
from server import access

WRONG_CREDENTIALS_TEXT = "wrong token or password"
TOO_MANY_ATTEMPTS_TEXT = "too many attempts"
# More than this many failures from one address within the window lock it out of /login for the block
# time: enough for typos, far too few for guessing even a short password.
FAILURE_LIMIT = 10
FAILURE_WINDOW_SECONDS = 300
BLOCK_SECONDS = 300
_FAILURES_KEY = "csgclaw:login:failures:{}"
_BLOCKED_KEY = "csgclaw:login:blocked:{}"
# Read-modify-write of an address's failure list; the cache is per process (Django's default LocMem).
_failures_lock = threading.Lock()


def login_page(request: HttpRequest) -> HttpResponse:
    """GET: the form. POST: check the token or username/password and redirect to `next`."""
    if request.method == "GET":
        return _form(request, next_url=request.GET.get("next", ""))
    if request.method != "POST":
        return method_not_allowed(request)
    address = access.client_address(request)
    retry_after = login_blocked_for(address)
    if retry_after:
        return _too_many(request, retry_after)
    next_url = request.POST.get("next", "")
    if _log_in(request):
        return HttpResponseRedirect(_safe_next(request, next_url))
    retry_after = login_failure_record(address)
    if retry_after:
        return _too_many(request, retry_after)
    return _form(request, next_url=next_url, error=WRONG_CREDENTIALS_TEXT)


def logout_page(request: HttpRequest) -> HttpResponse:
    """POST ends the session (whichever way it was opened) and shows the form again."""
    if request.method != "POST":
        return method_not_allowed(request)
    auth.logout(request)
    return HttpResponseRedirect(access.LOGIN_PATH)


def login_blocked_for(address: str) -> int:
    """Seconds `address` must still wait before it may try again; 0 when it may try now."""
    until = cache.get(_BLOCKED_KEY.format(address))
    if until is None:
        return 0
    return max(1, round(until - time.time()))


def login_failure_record(address: str) -> int:
    """Count a failed attempt; returns the block time when this one was one too many, else 0."""
    now = time.time()
    key = _FAILURES_KEY.format(address)
    with _failures_lock:
        recent = [stamp for stamp in cache.get(key, []) if stamp > now - FAILURE_WINDOW_SECONDS]
        recent.append(now)
        if len(recent) <= FAILURE_LIMIT:
            cache.set(key, recent, FAILURE_WINDOW_SECONDS)
            return 0
        cache.delete(key)
        cache.set(_BLOCKED_KEY.format(address), now + BLOCK_SECONDS, BLOCK_SECONDS)
    return BLOCK_SECONDS


def _log_in(request: HttpRequest) -> bool:
    token = request.POST.get("token", "").strip()
    if token:
        if not is_server_token(token):
            return False
        # A fresh session key (no fixation) holding only the token mark, and a fresh CSRF token, as
        # auth.login does for users.
        request.session.flush()
        request.session[access.TOKEN_SESSION_KEY] = access.token_mark(token)
        rotate_token(request)
        return True
    username = request.POST.get("username", "").strip()
    password = request.POST.get("password", "")
    if not username or not password:
        return False
    user = auth.authenticate(request, username=username, password=password)
    if user is None:
        return False
    auth.login(request, user)
    request.session.pop(access.TOKEN_SESSION_KEY, None)
    return True


def _safe_next(request: HttpRequest, next_url: str) -> str:
    """`next` when it stays on this site (a path, or a URL of this very host), else `/`."""
    if next_url and url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return next_url
    return "/"


def _form(request: HttpRequest, *, next_url: str, error: str = "") -> HttpResponse:
    context = {
        "next": _safe_next(request, next_url),
        "error": error,
        "signed_in": access.login_session_valid(request),
    }
    return render(request, "login.html", context)


def _too_many(request: HttpRequest, retry_after: int) -> HttpResponse:
    response = error_response(request, 429, TOO_MANY_ATTEMPTS_TEXT)
    response["Retry-After"] = str(retry_after)
    return response
