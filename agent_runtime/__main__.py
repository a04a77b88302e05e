"""Command line of the built-in runtime (builtin-runtime.md §1.2): `gateway [-d]` and `version`."""

from __future__ import annotations

import argparse
import logging
import sys

from agent_runtime import VERSION

EXIT_CONFIG = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agent_runtime", description="CSGClaw built-in agent runtime"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    gateway = commands.add_parser("gateway", help="connect to the server and answer messages until SIGTERM")
    gateway.add_argument("-d", "--debug", action="store_true", help="log at DEBUG level")
    commands.add_parser("version", help="print the version")
    args = parser.parse_args(argv)
    if args.command == "version":
        print(VERSION)
        return 0

    # Imported here so `version` stays instant.
    from agent_runtime.config import ConfigError, load_settings
    from agent_runtime.logs import setup_logging

    try:
        settings = load_settings(debug=args.debug)
    except ConfigError as exc:
        setup_logging(debug=args.debug)
        logging.getLogger("agent_runtime.channel").error("%s", exc)
        return EXIT_CONFIG
    setup_logging(debug=args.debug, secrets=(settings.token, settings.llm_api_key))
    from agent_runtime.gateway import serve

    return serve(settings)


if __name__ == "__main__":
    sys.exit(main())
