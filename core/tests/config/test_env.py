"""Tests for core.config.env: environment expansion of string values (config-and-commands.md §4)."""

from __future__ import annotations

import pytest

from core import config as cfgmod


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        ("${NAME}", {"NAME": "value"}, "value"),
        ("${A}B}", {"A": "1"}, "1B}"),
        ("$NAME", {"NAME": "value"}, "value"),
        ("$PORTx", {"PORT": "1", "PORTx": "2"}, "2"),
        ("$PORT/x", {"PORT": "1"}, "1/x"),
        ("a${MISSING}b", {}, "ab"),
        ("a${EMPTY}b$EMPTY", {"EMPTY": ""}, "ab"),
        ("${NAME:-fallback}", {}, "fallback"),
        ("${NAME:-fallback}", {"NAME": ""}, "fallback"),
        ("${NAME:-fallback}", {"NAME": "set"}, "set"),
        ("${NAME:-$HOME}", {"HOME": "/h"}, "$HOME"),
        ("$$", {}, "$"),
        ("price $$5 $${X}", {"X": "1"}, "price $5 ${X}"),
        ("a${}b", {}, "ab"),
        ("a${NAME", {"NAME": "x"}, "aNAME"),
        ("cost$", {}, "cost$"),
        ("a $ b $/c $.", {}, "a $ b $/c $."),
        ("$*", {"*": "star"}, "star"),
        ("$#$@$!$?$-", {}, ""),
        ("$0", {"0": "zero"}, "zero"),
        ("$12", {"1": "one"}, "one2"),
        ("$9x", {}, "x"),
    ],
)
def test_expand_env_rows(text, environ, expected):
    assert cfgmod.expand_env(text, environ) == expected


def test_expand_env_reads_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("CSGCLAW_TEST_TOKEN", "from-env")
    assert cfgmod.expand_env("t=${CSGCLAW_TEST_TOKEN}") == "t=from-env"
