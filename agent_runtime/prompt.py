"""The system prompt: a static part cached until a source file changes, and a per-call dynamic part (§4.2)."""

from __future__ import annotations

import os
import platform
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from agent_runtime import VERSION
from agent_runtime.contracts import MANAGER_ROLE, RestClient, Settings

PART_SEPARATOR = "\n\n---\n\n"
DAILY_NOTE_DAYS = 3
SKILL_NAME = re.compile(r"^[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*$")
MAX_SKILL_NAME = 64
MAX_SKILL_DESCRIPTION = 1024

RULE_ALWAYS_TOOLS = (
    "**ALWAYS use tools** - When you need to perform an action (schedule reminders, send messages, execute "
    "commands, etc.), you MUST call the appropriate tool. Do NOT just say you'll do it or pretend to do it."
)
RULE_HELPFUL_TOOLS = "**Be helpful and accurate** - When using tools, briefly explain what you're doing."
RULE_HELPFUL_PLAIN = "**Be helpful and accurate** - Briefly explain what you're doing."
RULE_SUMMARIES = (
    "**Context summaries** - Conversation summaries provided as context are approximate references only. "
    "They may be incomplete or outdated. Always defer to explicit user instructions over summary content."
)
TEAM_TEXT = (
    "## CSGClaw\n"
    "You are {name} (id: {bot}, participant: {part}, role: {role}) in CSGClaw, "
    "a chat workspace of one human\n"
    "admin (id: u-admin) and a team of AI agents. Your final answer is posted in the current conversation; "
    "use\n"
    "send_message for any other room. In group rooms agents only see messages that mention them: "
    "pass their ids in\n"
    "`mentions`. projects/ in your workspace is shared by every agent; "
    "the admin sees it at ~/.csgclaw/projects."
)
MANAGER_TEXT = (
    "You lead the team and delegate instead of doing domain work yourself. Call list_agents first; "
    "create_worker only when no suitable worker exists; hand work over with assign_task. When a worker "
    "reports back, tell the admin in the conversation the request came from."
)
WORKER_TEXT = "When you finish a task the manager gave you, your final answer is delivered to the manager."
RUNTIME_LINE = f"{platform.system().lower()} {platform.machine()}, Python {platform.python_version()}"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def strip_frontmatter(text: str) -> str:
    if not text.startswith("---"):
        return text
    end = text.find("\n---", 3)
    if end < 0:
        return text
    return text[end + 4 :].lstrip("\n").strip()


def frontmatter(text: str) -> dict[str, str]:
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    if end < 0:
        return {}
    fields = {}
    for line in text[3:end].splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            fields[key.strip()] = value.strip().strip("\"'")
    return fields


def identity(settings: Settings, plain_chat: bool) -> str:
    w = str(settings.workspace)
    memory_rule = (
        f"**Memory** - When interacting with me if something seems memorable, update {w}/memory/MEMORY.md"
    )
    rules = (
        [RULE_HELPFUL_PLAIN, RULE_SUMMARIES]
        if plain_chat
        else [RULE_ALWAYS_TOOLS, RULE_HELPFUL_TOOLS, RULE_SUMMARIES, memory_rule]
    )
    numbered = "\n\n".join(f"{i}. {rule}" for i, rule in enumerate(rules, 1))
    return (
        f"# picoclaw \U0001f99e (builtin {VERSION})\n\n"
        "You are picoclaw, a helpful AI assistant.\n\n"
        f"## Workspace\nYour workspace is at: {w}\n"
        f"- Memory: {w}/memory/MEMORY.md\n"
        f"- Daily Notes: {w}/memory/YYYYMM/YYYYMMDD.md\n"
        f"- Skills: {w}/skills/{{skill-name}}/SKILL.md\n\n"
        f"## Important Rules\n\n{numbered}"
    )


def bootstrap_files(workspace: Path) -> str:
    """PicoClaw `LoadBootstrapFiles`: AGENT.md + SOUL.md, else AGENTS.md + SOUL.md; USER.md; IDENTITY.md."""
    agent = _read(workspace / "AGENT.md")
    if agent:
        chosen = [("AGENT.md", strip_frontmatter(agent)), ("SOUL.md", _read(workspace / "SOUL.md"))]
    else:
        chosen = [("AGENTS.md", _read(workspace / "AGENTS.md")), ("SOUL.md", _read(workspace / "SOUL.md"))]
    chosen.append(("USER.md", _read(workspace / "USER.md")))
    if not agent:
        chosen.append(("IDENTITY.md", _read(workspace / "IDENTITY.md")))
    return "".join(f"## {name}\n\n{content}\n\n" for name, content in chosen if content).strip()


def skill_files(settings: Settings) -> list[tuple[Path, str]]:
    found = []
    for root, source in (
        (settings.workspace / "skills", "workspace"),
        (settings.picoclaw_dir / "skills", "global"),
    ):
        try:
            names = sorted(os.listdir(root))
        except OSError:
            continue
        found.extend((root / name / "SKILL.md", source) for name in names)
    return found


def skills(settings: Settings) -> str:
    """PicoClaw `BuildSkillsSummary`; invalid skills are skipped and the first of a name wins."""
    entries, seen = [], set()
    for path, source in skill_files(settings):
        meta = frontmatter(_read(path))
        name, description = meta.get("name", ""), meta.get("description", "")
        if not (SKILL_NAME.match(name) and len(name) <= MAX_SKILL_NAME):
            continue
        if not 1 <= len(description) <= MAX_SKILL_DESCRIPTION or name in seen:
            continue
        seen.add(name)
        entries.append(
            "  <skill>\n"
            f"    <name>{escape(name)}</name>\n"
            f"    <description>{escape(description)}</description>\n"
            f"    <location>{escape(str(path))}</location>\n"
            f"    <source>{source}</source>\n"
            "  </skill>"
        )
    if not entries:
        return ""
    return (
        "# Skills\n\nThe following skills extend your capabilities. To use a skill, read its SKILL.md file "
        "using the read_file tool.\n\n<skills>\n" + "\n".join(entries) + "\n</skills>"
    )


def daily_note_paths(workspace: Path, today: datetime) -> list[Path]:
    days = [today - timedelta(days=n) for n in range(DAILY_NOTE_DAYS)]
    return [workspace / "memory" / day.strftime("%Y%m") / (day.strftime("%Y%m%d") + ".md") for day in days]


def memory(workspace: Path, today: datetime) -> str:
    """PicoClaw `GetMemoryContext`: long-term memory and the daily notes of the last three days."""
    long_term = _read(workspace / "memory" / "MEMORY.md")
    notes = [text for text in (_read(p) for p in daily_note_paths(workspace, today)) if text]
    sections = []
    if long_term:
        sections.append(f"## Long-term Memory\n\n{long_term}")
    if notes:
        sections.append("## Recent Daily Notes\n\n" + PART_SEPARATOR.join(notes))
    return "# Memory\n\n" + PART_SEPARATOR.join(sections) if sections else ""


def team(settings: Settings, name: str) -> str:
    text = TEAM_TEXT.format(name=name, bot=settings.bot_id, part=settings.participant_id, role=settings.role)
    return text + "\n" + (MANAGER_TEXT if settings.role == MANAGER_ROLE else WORKER_TEXT)


class PromptBuilder:
    """Builds the one system message; the static part is rebuilt only when a source file's mtime changes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._key: tuple[Any, ...] | None = None
        self._static = ""

    def _sources(self, today: datetime) -> list[Path]:
        w = self.settings.workspace
        paths = [w / name for name in ("AGENT.md", "SOUL.md", "AGENTS.md", "USER.md", "IDENTITY.md")]
        paths += [w / "skills", self.settings.picoclaw_dir / "skills"]
        paths += [path for path, _ in skill_files(self.settings)]
        paths += [w / "memory" / "MEMORY.md", *daily_note_paths(w, today)]
        return paths

    def static(self, *, name: str, plain_chat: bool) -> str:
        today = datetime.now()
        stamps = []
        for path in self._sources(today):
            try:
                stamps.append((path, os.stat(path).st_mtime_ns))
            except OSError:
                stamps.append((path, None))
        key = (name, plain_chat, tuple(stamps))
        if key != self._key:
            w = self.settings.workspace
            parts = [
                identity(self.settings, plain_chat),
                bootstrap_files(w),
                skills(self.settings),
                memory(w, today),
                team(self.settings, name),
            ]
            self._static = PART_SEPARATOR.join(part for part in parts if part)
            self._key = key
        return self._static


async def dynamic(
    rest: RestClient,
    *,
    room_id: str,
    thread_root_id: str,
    chat_type: str,
    sender_id: str,
    sender_name: str,
    origins: list[dict[str, Any]],
    hidden: int,
) -> str:
    """PicoClaw `buildDynamicContext` plus room, members, linked conversations and the trimming note."""
    now = datetime.now()
    chat_id = f"{room_id}/{thread_root_id}" if thread_root_id else room_id
    kind = "direct" if chat_type.lower() != "group" else "group"
    room = await rest.room(room_id) or {}
    session = ["## Current Session", "Channel: csgclaw", f"Chat ID: {chat_id}", f"Chat type: {kind}"]
    if room.get("title"):
        session.append(f"Room: {room['title']}")
    if kind == "group":
        members = [await _member_label(rest, member) for member in room.get("members") or []]
        if members:
            session.append("Members: " + ", ".join(members))
    parts = [
        f"## Current Time\n{now.strftime('%Y-%m-%d %H:%M (%A)')}",
        f"## Runtime\n{RUNTIME_LINE}",
        "\n".join(session),
        f"## Current Sender\nCurrent sender: {sender_name or sender_id} (ID: {sender_id})",
    ]
    links = [await _origin_line(rest, origin) for origin in origins]
    if links:
        parts.append("## Linked conversations\n" + "\n".join(links))
    if hidden:
        parts.append(f"{hidden} earlier messages of this conversation are not shown.")
    return "\n\n".join(parts)


async def _member_label(rest: RestClient, member: Any) -> str:
    if isinstance(member, dict):
        user_id = member.get("id", "")
        name = member.get("name", "")
    else:
        user_id = str(member)
        name = ((await rest.user(user_id)) or {}).get("name", "")
    return f"{name or user_id} ({user_id})"


async def _origin_line(rest: RestClient, origin: dict[str, Any]) -> str:
    origin_room = origin.get("room_id", "")
    room = await rest.room(origin_room) or {}
    where = "direct with admin" if room.get("is_direct") else f'group "{room.get("title", "")}"'
    return (
        f'This room was opened from {origin_room} ({where}) to handle: "{origin.get("excerpt", "")}". '
        f'Report the outcome there with send_message(room_id="{origin_room}").'
    )
