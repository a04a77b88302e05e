"""Middleware that only the admin and the web page need, kept off the API paths.

Under ASGI every built-in Django middleware costs two thread hops per request. The API is stateless (no
cookies, CSRF-exempt, no auth or bearer auth checked by its views), so sessions, auth, CSRF, messages and
the security/clickjacking headers serve only `/admin/` and `/`; skipping them on `/api/` and `/healthz`
keeps the streams and the LLM proxy on the event loop.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.module_loading import import_string

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
        return await sync_to_async(self.csrf.process_view)(request, view_func, view_args, view_kwargs)
