"""A stand-in for the `boxlite` and `docker` CLIs: records its arguments and answers from a scenario file.

Installed by the `fake_cli` fixture as an executable named `boxlite` or `docker`. Each call appends its
arguments (without the program name) as one JSON line to $FAKE_CLI_LOG, and the variables its `-e KEY`
options take from its own environment (as docker and boxlite do) as one JSON object to $FAKE_CLI_LOG.env;
then it answers from the JSON object
in $FAKE_CLI_SCENARIO: subcommand → {"stdout": …, "stderr": …, "exit": …}. Unlisted subcommands succeed
silently. The subcommand is the first argument after the global options that take a value.
"""

import itertools
import json
import os
import sys

GLOBAL_OPTIONS_WITH_VALUE = {"--home", "--registry"}


def subcommand(arguments: list[str]) -> str:
    index = 0
    while index < len(arguments) and arguments[index] in GLOBAL_OPTIONS_WITH_VALUE:
        index += 2
    return arguments[index] if index < len(arguments) else ""


def inherited_variables(arguments: list[str]) -> dict[str, str | None]:
    """`-e KEY` (no `=`) → the value of KEY in this process's environment, None when it has none."""
    names = [value for flag, value in itertools.pairwise(arguments) if flag in ("-e", "--env")]
    return {name: os.environ.get(name) for name in names if "=" not in name}


def main() -> int:
    arguments = sys.argv[1:]
    with open(os.environ["FAKE_CLI_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps(arguments) + "\n")
    with open(os.environ["FAKE_CLI_LOG"] + ".env", "a", encoding="utf-8") as log:
        log.write(json.dumps(inherited_variables(arguments)) + "\n")
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
