"""agents/lifecycle/boxes.py on the fake sandbox provider: removing a box, and the logs parameter
(sandbox.md §8.5, §8.6)."""

from __future__ import annotations

import pytest

from agents.lifecycle import boxes, provisioning
from agents.models import AgentStatus
from agents.tests.factories import make_worker, reload
from core.errors import Invalid

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("agent_config")]


# --- removal and logs ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_box_remove_deletes_the_box_and_agent_directory_but_keeps_projects(csgclaw_home, fake_boxes):
    make_worker()
    provisioning.provision("u-alice")
    (csgclaw_home / "projects" / "plan.md").write_text("shared")

    boxes.agent_box_remove(agent=reload())

    assert not (csgclaw_home / "agents" / "alice").exists()
    assert (csgclaw_home / "projects" / "plan.md").read_text() == "shared"
    assert fake_boxes.record("alice") is None


@pytest.mark.django_db
def test_box_remove_without_a_box_is_fine(csgclaw_home):
    boxes.agent_box_remove(agent=make_worker(status=AgentStatus.FAILED))

    assert not (csgclaw_home / "agents" / "alice").exists()


@pytest.mark.parametrize(("raw", "lines"), [("", 20), ("1", 1), ("5000", 5000), ("007", 7)])
def test_log_lines_parse_accepts_ascii_numbers_from_1_to_5000(raw, lines):
    assert boxes.log_lines_parse(raw) == lines


@pytest.mark.parametrize("raw", ["0", "5001", "abc", "-1", "+5", "1.5", "１", "٣", "99999999999999999999"])
def test_log_lines_parse_rejects_everything_else(raw):
    with pytest.raises(Invalid, match=r"^lines must be an integer between 1 and 5000$"):
        boxes.log_lines_parse(raw)
