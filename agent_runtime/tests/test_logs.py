"""The gateway log line format (builtin-runtime.md §7.1)."""

from __future__ import annotations

import io
import logging
import re

from agent_runtime.logs import setup_logging


def test_line_format_component_and_masked_secrets():
    out = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        setup_logging(debug=False, secrets=("s3cret",), stream=out)
        logging.getLogger("agent_runtime.channel").info(
            "stream connected mode=%s url=%s", "participant", "http://x"
        )
        logging.getLogger("agent_runtime.llm").warning("sent Bearer s3cret")
        logging.getLogger("agent_runtime.agent").debug("hidden at INFO")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("agent_runtime.tools").exception("tool failed")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    lines = out.getvalue().splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert re.fullmatch(
        stamp + r" INFO  \[channel\] stream connected mode=participant url=http://x", lines[0]
    )
    assert re.fullmatch(stamp + r" WARN  \[llm\] sent Bearer \*\*\*", lines[1])
    assert re.fullmatch(stamp + r" ERROR \[tools\] tool failed", lines[2])
    assert lines[-1] == "ValueError: boom"
    assert "hidden" not in out.getvalue()
