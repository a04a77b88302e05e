"""`manage.py serve`: the production entry point, Daphne in-process on the effective listen address
(spec config-and-commands §11)."""

from __future__ import annotations

from daphne.endpoints import build_endpoint_description_strings
from daphne.management.commands.runserver import get_default_application
from daphne.server import Server
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.management.base import BaseCommand

from server import startup


class Command(BaseCommand):
    help = (
        "Serve CSGClaw in production: Daphne in-process, static files included, no autoreload; "
        "SIGINT/SIGTERM stop it gracefully and leave the agent boxes running."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "addrport", nargs="?", help="host:port (or a port) to bind; default [server].listen_addr"
        )
        parser.add_argument(
            "--no-bootstrap",
            action="store_true",
            help="Skip the start-up bootstrap (IM seed, manager agent and box) after the server starts.",
        )

    def handle(self, *args, addrport: str | None, no_bootstrap: bool, **options):
        config, config_error = startup.serving_config()
        listen_addr = startup.serving_listen_addr(config, addrport)
        startup.listen_addr_export(listen_addr)
        startup.serving_prepare(
            config=config, config_error=config_error, listen_addr=listen_addr, stdout=self.stdout
        )
        host, port = startup.bind_address(listen_addr)
        server = Server(
            application=ASGIStaticFilesHandler(get_default_application()),
            endpoints=build_endpoint_description_strings(host=host, port=port),
            signal_handlers=True,
            # Streams stay open for up to CSGCLAW_SSE_MAX_LIFETIME; a request deadline would cut them.
            http_timeout=None,
            root_path=getattr(settings, "FORCE_SCRIPT_NAME", "") or "",
            ready_callable=startup.bootstrap_start
            if startup.bootstrap_enabled(no_bootstrap=no_bootstrap)
            else None,
        )
        server.run()
        if not server.listening_addresses:
            # Daphne has already logged why (address in use, permission denied).
            self.stderr.write(f"cannot listen on {listen_addr}")
            raise SystemExit(1)
