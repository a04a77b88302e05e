"""The tools an agent gets by role, and the one place a tool call is checked, run and made text (§5)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from agent_runtime.contracts import MANAGER_ROLE, Settings
from agent_runtime.tools import attachments, files, shell, team, web
from agent_runtime.tools.base import (
    InvalidArguments,
    Tool,
    ToolContext,
    boolean,
    checked_arguments,
    integer,
    string,
    strings,
)

log = logging.getLogger("agent_runtime.tools")


def _settings_tool(function: Any) -> Any:
    async def run(ctx: ToolContext, args: dict[str, Any]) -> str:
        return await function(ctx.settings, args)

    return run


async def _web_fetch(ctx: ToolContext, args: dict[str, Any]) -> str:
    return await web.web_fetch(args)


COMMON_TOOLS = (
    Tool(
        "exec",
        "Execute a shell command and return its output. Use with caution.",
        _settings_tool(shell.exec_command),
        {
            "command": string("The shell command to execute."),
            "cwd": string("Optional working directory for the command (default: the workspace)."),
            "timeout": integer("Seconds before the command is stopped.", 1, 600),
        },
        ("command",),
    ),
    Tool(
        "read_file",
        "Read the contents of a file, optionally a byte range of it.",
        _settings_tool(files.read_file),
        {
            "path": string("Path to the file to read."),
            "offset": integer("Byte offset to start reading from.", 0),
            "length": integer("Maximum number of bytes to read.", 1),
        },
        ("path",),
    ),
    Tool(
        "write_file",
        "Write content to a file. If the file already exists, overwrite must be true.",
        _settings_tool(files.write_file),
        {
            "path": string("Path to the file to write."),
            "content": string("Content to write to the file."),
            "overwrite": boolean("Set to true to overwrite an existing file."),
        },
        ("path", "content"),
    ),
    Tool(
        "edit_file",
        "Edit a file by replacing old_text with new_text. The old_text must exist exactly once in the file.",
        _settings_tool(files.edit_file),
        {
            "path": string("The file path to edit."),
            "old_text": string("The exact text to find and replace."),
            "new_text": string("The text to replace with."),
        },
        ("path", "old_text", "new_text"),
    ),
    Tool(
        "append_file",
        "Append content to the end of a file, creating it when missing.",
        _settings_tool(files.append_file),
        {"path": string("The file path to append to."), "content": string("The content to append.")},
        ("path", "content"),
    ),
    Tool(
        "list_dir",
        "List files and directories in a path.",
        _settings_tool(files.list_dir),
        {"path": string("Path to list (default: the workspace).")},
    ),
    Tool(
        "send_message",
        "Send a message to a room; the current conversation unless room_id is given.",
        team.send_message,
        {
            "text": string("The message text."),
            "room_id": string("Room to send to (default: the current room)."),
            "thread_root_id": string("Thread to reply in (default: the current thread in the current room)."),
            "mentions": strings("User ids to mention; group rooms only wake the agents mentioned."),
        },
        ("text",),
    ),
    Tool(
        "send_file",
        "Send a file of your workspace to the current conversation as an attachment (at most 25 MiB).",
        attachments.send_file,
        {
            "path": string("Path to the file to send."),
            "caption": string("Optional text to send with the file."),
        },
        ("path",),
    ),
    Tool(
        "web_fetch",
        "Fetch a URL and extract readable content (HTML to text).",
        _web_fetch,
        {
            "url": string("URL to fetch (http or https)."),
            "maxChars": integer("Maximum characters to return.", 100),
        },
        ("url",),
    ),
    Tool("list_agents", "List the agents of this CSGClaw team with their status.", team.list_agents),
    Tool(
        "list_rooms",
        "List chat rooms with their members and last message.",
        team.list_rooms,
        {"all": boolean("List every room, not only the rooms you are a member of.")},
    ),
    Tool(
        "list_messages",
        "List the latest messages of a room.",
        team.list_messages,
        {"room_id": string("The room to read."), "limit": integer("How many messages (1-100).", 1, 100)},
        ("room_id",),
    ),
)

MANAGER_TOOLS = (
    Tool(
        "create_worker",
        "Create a worker agent and wait until its box is running.",
        team.create_worker,
        {
            "name": string("The worker's name."),
            "description": string("What the worker is for."),
            "profile": string("Model selector provider.model (default: the server's default model)."),
        },
        ("name",),
    ),
    Tool(
        "assign_task",
        "Hand a task to a worker in a room (a new one unless room_id is given); the report arrives there.",
        team.assign_task,
        {
            "worker_id": string("The worker's agent id, e.g. u-alice."),
            "task": string("The task, written for the worker."),
            "room_id": string("An existing group room to use instead of a new room."),
            "title": string("Title of the new task room."),
        },
        ("worker_id", "task"),
    ),
    Tool(
        "create_room",
        "Create a group room.",
        team.create_room,
        {
            "title": string("The room title."),
            "member_ids": strings("User ids of the members besides you."),
            "description": string("What the room is for."),
        },
        ("title", "member_ids"),
    ),
    Tool(
        "invite",
        "Invite users into a group room.",
        team.invite,
        {"room_id": string("The room."), "user_ids": strings("User ids to add.")},
        ("room_id", "user_ids"),
    ),
)


class ToolBox:
    """One agent's tools (§5.4), their cached schemas, and `call`, which never raises a tool's failure."""

    def __init__(self, settings: Settings) -> None:
        chosen = COMMON_TOOLS + (MANAGER_TOOLS if settings.role == MANAGER_ROLE else ())
        self.tools = {tool.name: tool for tool in chosen}
        self.schemas = [tool.schema() for tool in chosen]

    async def call(self, ctx: ToolContext, name: str, raw_arguments: str) -> str:
        started = time.monotonic()
        result = await self._call(ctx, name, raw_arguments)
        outcome = "error" if result.startswith("Error") else "ok"
        elapsed = (time.monotonic() - started) * 1000
        log.info("tool %s ms=%d outcome=%s size=%d", name, elapsed, outcome, len(result))
        return result

    async def _call(self, ctx: ToolContext, name: str, raw_arguments: str) -> str:
        tool = self.tools.get(name)
        if tool is None:
            return f'Error: unknown tool "{name}"'
        try:
            args = parse_arguments(raw_arguments)
            args = checked_arguments(tool, args)
        except InvalidArguments as exc:
            return f"Error: invalid arguments: {exc}"
        try:
            return await tool.run(ctx, args)
        except (files.AccessDenied, team.RestError) as exc:
            return str(exc) if str(exc).startswith("Error") else f"Error: {exc}"
        except Exception as exc:
            log.warning("tool %s failed: %s: %s", name, type(exc).__name__, exc)
            return f"Error: {type(exc).__name__}: {exc}"


def parse_arguments(raw: str) -> dict[str, Any]:
    """The JSON object of a tool call's `arguments`; blank means no arguments."""
    if not raw or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidArguments(str(exc)) from None
    if not isinstance(value, dict):
        raise InvalidArguments("arguments must be a JSON object")
    return value
