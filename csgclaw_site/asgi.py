"""ASGI entry point: Daphne serves REST, streams, the LLM proxy, the web UI and admin through it."""

import os
from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csgclaw_site.settings")


class ReusedThreadASGIHandler(ASGIHandler):
    """Django's ASGI handler, giving each request a reused thread for its sync work instead of a new one.

    Django runs a request's thread-sensitive work (the request_started/request_finished receivers, sync
    views and middleware, `sync_to_async` calls) on one thread of the request's own: asgiref starts a
    one-thread executor per request, and when the request ends a second thread to join it. Each start
    blocks the event loop until the new thread runs: on a busy two-core machine about 1.4 ms of the
    loop per request (py-spy under bench/llm_proxy.py), /healthz included. Here a request borrows an idle
    one-thread executor and hands it back when it is done, as WSGI servers reuse their threads.

    What does not change: a running request's sync work has its thread to itself; request_finished still
    runs on that thread before the request ends, so close_old_connections() has closed the request's
    database connections (CONN_MAX_AGE = 0) before the thread serves another request; and a task that
    outlives its request cannot reach the thread any more (asgiref raises RuntimeError for its
    thread-sensitive calls once the request's context has exited).
    """

    # Idle threads kept for reuse. Beyond this many concurrent requests, the extra executors are shut
    # down after their request, which ends their thread as asgiref would have.
    max_idle_executors = 32

    def __init__(self) -> None:
        super().__init__()
        self._idle_executors: list[ThreadPoolExecutor] = []

    async def __call__(self, scope, receive, send) -> None:
        # Most recently used first: its thread and its memory are the warmest.
        executor = (
            self._idle_executors.pop()
            if self._idle_executors
            else ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")
        )
        try:
            # Django's own ThreadSensitiveContext inside super().__call__ finds this one and reuses it.
            async with ThreadSensitiveContext(executor=executor):
                await super().__call__(scope, receive, send)
        finally:
            # The thread is idle again: Django awaits the request's last sync call, response.close() (or
            # request_finished after a disconnect), before returning. Were a cancelled call still running,
            # the next request's calls would queue behind it on this one thread, and that request's
            # request_started (close_old_connections) would close any connection it left open.
            if len(self._idle_executors) < self.max_idle_executors:
                self._idle_executors.append(executor)
            else:
                executor.shutdown(wait=False)


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
