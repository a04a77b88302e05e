"""ASGI entry point: Daphne serves REST, streams, the LLM proxy, the web UI and admin through it."""

import os

import django
from django.core.handlers.asgi import ASGIHandler

from core.db.threads import REQUEST_THREAD, RequestThreads

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csgclaw_site.settings")


class ReusedThreadASGIHandler(ASGIHandler):
    """Django's ASGI handler, each request's sync work on a reused thread (core.db.threads.RequestThreads)."""

    def __init__(self, request_threads: RequestThreads = REQUEST_THREAD) -> None:
        super().__init__()
        self.request_threads = request_threads

    async def __call__(self, scope, receive, send) -> None:
        async with self.request_threads.lent():
            await super().__call__(scope, receive, send)


def get_application():
    """Like django.core.asgi.get_asgi_application(), with the reused-thread handler behind the body limits.

    Under Daphne the limits also apply at the socket (security.md S6, S7.1): see server.daphne_guards.
    """
    django.setup(set_prefix=False)
    # Imported once settings are loaded: they use Django REST framework, which reads them at import.
    from server import daphne_guards
    from server.asgi_guards import BodyLimitMiddleware

    daphne_guards.install()
    return BodyLimitMiddleware(ReusedThreadASGIHandler())


application = get_application()
