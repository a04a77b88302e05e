"""`manage.py runserver`: Daphne's development server on the configured listen address, with migrations,
the effective config and the start-up bootstrap (spec config-and-commands §10)."""

from __future__ import annotations

import functools

from daphne.management.commands.runserver import Command as DaphneRunserverCommand
from daphne.server import Server

from server import startup


class Command(DaphneRunserverCommand):
    help = (
        "Serve CSGClaw with Daphne (REST, streams, LLM proxy, web UI, admin and static files) on "
        "[server].listen_addr or the given addrport."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--no-bootstrap",
            action="store_true",
            help="Skip the start-up bootstrap (IM seed, manager agent and box) after the server starts.",
        )

    def handle(self, *args, **options):
        # Runs in the autoreloader's parent and again in its child; only inner_run is the serving process.
        self.config, self.config_error = startup.serving_config()
        self.listen_addr = startup.serving_listen_addr(self.config, options["addrport"])
        startup.listen_addr_export(self.listen_addr)
        host, port = startup.bind_address(self.listen_addr)
        options["addrport"] = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        # Static files come straight from the apps' directories, without collectstatic, whatever DEBUG says.
        options["insecure_serving"] = True
        super().handle(*args, **options)

    def inner_run(self, *args, **options):
        startup.serving_prepare(
            config=self.config,
            config_error=self.config_error,
            listen_addr=self.listen_addr,
            stdout=self.stdout,
        )
        if startup.bootstrap_enabled(no_bootstrap=options["no_bootstrap"]):
            # Daphne calls ready_callable once its sockets listen, so the bootstrap never races the bind.
            self.server_cls = functools.partial(Server, ready_callable=startup.bootstrap_start)
        super().inner_run(*args, **options)
