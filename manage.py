#!/usr/bin/env python
"""Django's command-line utility, with a global --config PATH option for every command."""

import os
import sys


def pop_config_option(argv: list[str]) -> list[str]:
    """Remove `--config PATH` / `--config=PATH` from argv and export it as CSGCLAW_CONFIG.

    Exported through the environment so runserver's autoreload child sees it too.
    """
    remaining = [argv[0]]
    args = iter(argv[1:])
    for arg in args:
        if arg == "--config":
            value = next(args, None)
            if value is None:
                sys.exit("error: --config requires a path")
            os.environ["CSGCLAW_CONFIG"] = value
        elif arg.startswith("--config="):
            os.environ["CSGCLAW_CONFIG"] = arg.removeprefix("--config=")
        else:
            remaining.append(arg)
    return remaining


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csgclaw_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(pop_config_option(sys.argv))


if __name__ == "__main__":
    main()
