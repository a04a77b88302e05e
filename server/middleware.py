"""Middleware of the site: who may call it (AccessMiddleware), and what only the admin and pages need.

Under ASGI every built-in Django middleware costs two thread hops per request. The API is stateless
(CSRF-exempt, bearer auth checked by its views; cross-site writes are refused by AccessMiddleware), so
sessions, auth, CSRF, messages and the security/clickjacking headers serve only `/admin/`, `/` and
`/login`; skipping them on `/api/` and `/healthz` keeps the streams and the LLM proxy on the event loop.
The one API caller that needs a session, a remote browser without a bearer, has it loaded by
server.access.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.module_loading import import_string

from core.db.threads import REQUEST_THREAD
from core.http import ADMIN_BROWSER_FLAG
from server import access

SITE_MIDDLEWARE = (
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
)


def is_api_path(path: str) -> bool:
    return path.startswith("/api/") or path == "/healthz"


class SitePagesMiddleware:
    """Runs SITE_MIDDLEWARE, in order, for every path except the API's."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        site_handler = get_response
        for path in reversed(SITE_MIDDLEWARE):
            site_handler = import_string(path)(site_handler)
            if isinstance(site_handler, CsrfViewMiddleware):
                self.csrf = site_handler
        self.site_handler = site_handler
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)
            # Django calls process_view for every request: an async one costs API requests no thread hop.
            self.process_view = self._process_view_async

    def __call__(self, request: HttpRequest):
        if is_api_path(request.path_info):
            return self.get_response(request)
        return self.site_handler(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        if is_api_path(request.path_info):
            return None
        return self.csrf.process_view(request, view_func, view_args, view_kwargs)

    async def _process_view_async(self, request: HttpRequest, view_func, view_args, view_kwargs):
        if is_api_path(request.path_info):
            return None
        return await REQUEST_THREAD.run(self.csrf.process_view, request, view_func, view_args, view_kwargs)


class AccessMiddleware:
    """security.md S3 and S4 for every request, before any other middleware or view reads it.

    In order: the Host check, cross-site writes, then a credential for callers that are not local. Local
    requests (the upstream web UI, PicoClaw on the same machine, scripts) cost no thread hop here; only a
    non-local request's agent token or session may need the database.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self._acall(request)
        refusal = access.host_refusal(request) or access.cross_site_refusal(request)
        checked = refusal is None and access.needs_credential(request)
        if checked and not access.remote_allowed(request):
            refusal = access.unauthenticated_answer(request)
        if refusal is not None:
            return _finish(request, refusal)
        _mark_admin_browser(request, credential_checked=checked)
        return _finish(request, self.get_response(request))

    async def _acall(self, request: HttpRequest):
        refusal = access.host_refusal(request) or access.cross_site_refusal(request)
        checked = refusal is None and access.needs_credential(request)
        if checked and not await access.aremote_allowed(request):
            refusal = access.unauthenticated_answer(request)
        if refusal is not None:
            return _finish(request, refusal)
        _mark_admin_browser(request, credential_checked=checked)
        return _finish(request, await self.get_response(request))


def _mark_admin_browser(request: HttpRequest, *, credential_checked: bool) -> None:
    """Flag a caller without a bearer that passed as local or by its /login session (core.http)."""
    if "HTTP_AUTHORIZATION" not in request.META and (credential_checked or access.is_local(request)):
        setattr(request, ADMIN_BROWSER_FLAG, True)


def _finish(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    # No site may read answers through the browser (S3.3), whatever a view set.
    response.headers.pop("Access-Control-Allow-Origin", None)
    if request.is_secure():
        # Django's Secure flag is one setting for all requests; over HTTPS the login cookies must have it.
        for name in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME):
            if name in response.cookies:
                response.cookies[name]["secure"] = True
    return response
