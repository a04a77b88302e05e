"""A stand-in for the `boxlite` and `docker` CLIs: records its arguments and answers from a scenario file.

Installed by the `fake_cli` fixture as an executable named `boxlite` or `docker`. Each call appends its
arguments (without the program name) as one JSON line to $FAKE_CLI_LOG, then answers from the JSON object
in $FAKE_CLI_SCENARIO: subcommand → {"stdout": …, "stderr": …, "exit": …}. Unlisted subcommands succeed
silently. The subcommand is the first argument after the global options that take a value.
"""

import json
import os
import sys

GLOBAL_OPTIONS_WITH_VALUE = {"--home", "--registry"}


def subcommand(arguments: list[str]) -> str:
    index = 0
    while index < len(arguments) and arguments[index] in GLOBAL_OPTIONS_WITH_VALUE:
        index += 2
    return arguments[index] if index < len(arguments) else ""


def main() -> int:
    arguments = sys.argv[1:]
    with open(os.environ["FAKE_CLI_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps(arguments) + "\n")
    scenario_path = os.environ.get("FAKE_CLI_SCENARIO", "")
    scenario = {}
    if scenario_path and os.path.exists(scenario_path):
        with open(scenario_path, encoding="utf-8") as handle:
            scenario = json.load(handle)
    answer = scenario.get(subcommand(arguments), {})
    sys.stdout.write(answer.get("stdout", ""))
    sys.stderr.write(answer.get("stderr", ""))
    return int(answer.get("exit", 0))


if __name__ == "__main__":
    sys.exit(main())
