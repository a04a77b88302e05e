"""The worker intro's wording (http-api.md §9.3): the name line, then the job as a label."""

from __future__ import annotations

import pytest

from agents.services import intro_text

NAME_LINE = "@Alice Write this down in your memory: your name is Alice."


@pytest.mark.timeout(5)
@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("", NAME_LINE),
        ("   ", NAME_LINE),
        ("writes release notes", f"{NAME_LINE} Your job: writes release notes."),
        ("  test lead  ", f"{NAME_LINE} Your job: test lead."),
        ("Reviews pull requests.", f"{NAME_LINE} Your job: Reviews pull requests."),
        ("what ships?", f"{NAME_LINE} Your job: what ships?"),
    ],
)
def test_intro_reads_as_a_sentence_whatever_the_description(description, expected):
    assert intro_text(name="Alice", description=description) == expected
