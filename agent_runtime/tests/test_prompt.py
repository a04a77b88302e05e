"""The system prompt: workspace files, skills, memory, team text, cache invalidation, dynamic part (§4.2)."""

from __future__ import annotations

import os
from datetime import datetime

from agent_runtime import prompt
from agent_runtime.prompt import PromptBuilder
from agent_runtime.tests.agent_fakes import FakeRest, make_settings

SEEDED_AGENTS_MD = "# Manager\n\nYou coordinate the team.\n- Keep answers short."


def build(settings, plain_chat=False):
    return PromptBuilder(settings).static(name="manager", plain_chat=plain_chat)


def test_identity_and_team(tmp_path):
    settings = make_settings(tmp_path)
    text = build(settings)
    w = settings.workspace
    assert text.startswith("# picoclaw \U0001f99e (builtin ")
    assert f"## Workspace\nYour workspace is at: {w}\n- Memory: {w}/memory/MEMORY.md\n" in text
    assert (
        "\n\n2. **Be helpful and accurate** - When using tools, briefly explain what you're doing.\n\n3."
        in text
    )
    assert (
        "## CSGClaw\nYou are manager (id: u-manager, participant: pt-manager, role: manager) in CSGClaw"
        in text
    )
    assert "Call list_agents first" in text
    worker = build(make_settings(tmp_path, bot_id="u-alice", participant_id="pt-alice"))
    assert "your final answer is delivered to the manager." in worker and "list_agents first" not in worker


def test_agent_md_and_soul_win_over_agents_md_and_identity(tmp_path):
    settings = make_settings(tmp_path)
    w = settings.workspace
    (w / "AGENTS.md").write_text(SEEDED_AGENTS_MD + "\n")
    (w / "SOUL.md").write_text("soul")
    (w / "USER.md").write_text("user")
    (w / "IDENTITY.md").write_text("identity")
    text = build(settings)
    assert (
        f"## AGENTS.md\n\n{SEEDED_AGENTS_MD}\n\n## SOUL.md\n\nsoul\n\n"
        "## USER.md\n\nuser\n\n## IDENTITY.md\n\nidentity" in text
    )
    (w / "AGENT.md").write_text("---\nname: x\n---\nagent body")
    text = build(settings)
    assert "## AGENT.md\n\nagent body\n\n## SOUL.md\n\nsoul\n\n## USER.md\n\nuser" in text
    assert "AGENTS.md" not in text and "IDENTITY.md" not in text and "name: x" not in text


def test_skills_valid_ones_only_and_first_name_wins(tmp_path):
    settings = make_settings(tmp_path)
    for root, name, description in (
        (settings.workspace / "skills", "basics", "Team basics & rules"),
        (settings.workspace / "skills", "bad_name", "skipped"),
        (settings.workspace / "skills", "empty", ""),
        (settings.picoclaw_dir / "skills", "basics", "global copy"),
        (settings.picoclaw_dir / "skills", "dispatch", "Dispatch work"),
    ):
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "SKILL.md").write_text(f"---\nname: {name}\ndescription: {description}\n---\nbody")
    text = build(settings)
    assert "# Skills\n\nThe following skills extend your capabilities." in text
    assert "<name>basics</name>\n    <description>Team basics &amp; rules</description>" in text
    assert "<source>workspace</source>" in text and "<name>dispatch</name>" in text
    assert "global copy" not in text and "bad_name" not in text and "<name>empty</name>" not in text


def test_memory_and_daily_notes_and_edits_change_the_next_prompt(tmp_path):
    settings = make_settings(tmp_path)
    builder = PromptBuilder(settings)
    memory = settings.workspace / "memory"
    memory.mkdir()
    (memory / "MEMORY.md").write_text("likes tea")
    today = datetime.now()
    note = memory / today.strftime("%Y%m") / (today.strftime("%Y%m%d") + ".md")
    note.parent.mkdir()
    note.write_text("met alice")
    text = builder.static(name="manager", plain_chat=False)
    assert "# Memory\n\n## Long-term Memory\n\nlikes tea\n\n---\n\n## Recent Daily Notes\n\nmet alice" in text
    assert builder.static(name="manager", plain_chat=False) is text
    (memory / "MEMORY.md").write_text("likes coffee")
    stat = (memory / "MEMORY.md").stat()
    os.utime(memory / "MEMORY.md", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert "likes coffee" in builder.static(name="manager", plain_chat=False)


def test_plain_chat_keeps_two_rules(tmp_path):
    text = build(make_settings(tmp_path), plain_chat=True)
    assert (
        "## Important Rules\n\n1. **Be helpful and accurate** - Briefly explain what you're doing."
        "\n\n2. **Context" in text
    )
    assert "ALWAYS use tools" not in text and "3. " not in text.split("## Important Rules")[1].split("---")[0]


async def test_dynamic_part(tmp_path):
    rest = FakeRest(users={"u-alice": {"id": "u-alice", "name": "alice"}})
    rest.rooms["room-g"] = {
        "id": "room-g",
        "title": "Build",
        "is_direct": False,
        "members": ["u-admin", "u-alice"],
    }
    rest.rooms["room-d"] = {"id": "room-d", "title": "manager", "is_direct": True}
    text = await prompt.dynamic(
        rest,
        room_id="room-g",
        thread_root_id="msg-root",
        chat_type="group",
        sender_id="u-alice",
        sender_name="alice",
        origins=[{"room_id": "room-d", "excerpt": "write hello"}],
        hidden=4,
    )
    assert "## Current Time\n" in text and "## Runtime\n" in text and "Python" in text
    assert (
        "## Current Session\nChannel: csgclaw\nChat ID: room-g/msg-root\nChat type: group\nRoom: Build\n"
        "Members: u-admin (u-admin), alice (u-alice)"
    ) in text
    assert "## Current Sender\nCurrent sender: alice (ID: u-alice)" in text
    assert 'This room was opened from room-d (direct with admin) to handle: "write hello".' in text
    assert text.endswith("4 earlier messages of this conversation are not shown.")
