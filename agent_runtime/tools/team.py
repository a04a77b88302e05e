"""Team tools: agents, rooms and messages through the server's REST API, and `send_message` (§5.2, §5.3)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from agent_runtime.tools.base import ToolContext

# create_worker polls while the box is provisioning (upstream's dispatch script waits the same way).
POLL_SECONDS = 0.5
CREATE_WAIT_SECONDS = 30.0
MAX_ROOMS = 50
EXCERPT_CHARS = 120
CONTENT_CHARS = 500
TITLE_CHARS = 40
COMPACT_AGENT_KEYS = ("id", "name", "role", "description", "status", "status_detail")
ADMIN_ID = "u-admin"


class RestError(Exception):
    """A non-2xx answer of the server, worded `Error: <status> <body>`."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = _body_text(body)
        super().__init__(f"Error: {status} {self.body}")


def _body_text(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", "")).strip()
    if isinstance(body, str):
        return body.strip()
    return json.dumps(body, ensure_ascii=False)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


async def _call(ctx: ToolContext, method: str, path: str, **kwargs: Any) -> Any:
    status, body = await ctx.rest.request(method, path, **kwargs)
    if not 200 <= status < 300:
        raise RestError(status, body)
    return body


def compact_agent(agent: dict[str, Any]) -> dict[str, Any]:
    return {key: agent[key] for key in COMPACT_AGENT_KEYS if agent.get(key)}


def compact_room(room: dict[str, Any]) -> dict[str, Any]:
    return {"id": room.get("id", ""), "title": room.get("title", ""), "members": room.get("members", [])}


async def list_agents(ctx: ToolContext, args: dict[str, Any]) -> str:
    agents = await _call(ctx, "GET", "/api/v1/agents")
    return dumps([compact_agent(agent) for agent in agents or []])


async def create_worker(ctx: ToolContext, args: dict[str, Any]) -> str:
    body = {key: args[key] for key in ("name", "description", "profile") if args.get(key)}
    agent = await _call(ctx, "POST", "/api/v1/agents", json=body)
    deadline = time.monotonic() + CREATE_WAIT_SECONDS
    while agent.get("status") == "creating" and time.monotonic() < deadline:
        await asyncio.sleep(POLL_SECONDS * ctx.settings.backoff_scale)
        agent = await _call(ctx, "GET", f"/api/v1/agents/{agent['id']}")
    if agent.get("status") == "failed":
        return f"Error: worker {agent.get('id')} failed to start: {agent.get('status_detail', '')}"
    return dumps(compact_agent(agent))


def _default_title(task: str) -> str:
    first = task.strip().splitlines()[0] if task.strip() else "task"
    return first[:TITLE_CHARS]


async def _invite_worker(ctx: ToolContext, room_id: str, worker_id: str) -> str:
    """Adds the worker to `room_id` and returns the room's title."""
    body = {"room_id": room_id, "inviter_id": ctx.settings.bot_id, "user_ids": [worker_id]}
    status, answer = await ctx.rest.request("POST", "/api/v1/rooms/invite", json=body)
    if 200 <= status < 300 and isinstance(answer, dict):
        return str(answer.get("title", ""))
    text = _body_text(answer)
    if "cannot add members to direct room" in text:
        raise RestError(status, text) from None
    if "no new users to invite" not in text:
        raise RestError(status, answer)
    room = await ctx.rest.room(room_id)
    return str((room or {}).get("title", ""))


async def assign_task(ctx: ToolContext, args: dict[str, Any]) -> str:
    worker_id, task = args["worker_id"].strip(), args["task"]
    status, agent = await ctx.rest.request("GET", f"/api/v1/agents/{worker_id}")
    if status == 404:
        return f'Error: agent "{worker_id}" not found'
    if not 200 <= status < 300:
        raise RestError(status, agent)
    name = agent.get("name") or worker_id
    room_id = (args.get("room_id") or "").strip()
    if room_id:
        try:
            title = await _invite_worker(ctx, room_id, worker_id)
        except RestError as exc:
            if "cannot add members to direct room" in exc.body:
                return f"Error: {room_id} is a direct room; call assign_task without room_id"
            raise
    else:
        body = {
            "title": (args.get("title") or "").strip() or _default_title(task),
            "creator_id": ctx.settings.bot_id,
            "member_ids": [ADMIN_ID, worker_id],
        }
        room = await _call(ctx, "POST", "/api/v1/im/rooms", json=body)
        room_id, title = room["id"], room.get("title", body["title"])
    sent = await ctx.send(room_id, "", f'<at user_id="{worker_id}">{name}</at> {task}')
    if not sent.ok:
        return f"Error: send failed: {sent.error}"
    return (
        f'Task assigned to {name} ({worker_id}) in room {room_id} "{title}" (message {sent.message_id}). '
        "Their report will arrive in that room."
    )


async def create_room(ctx: ToolContext, args: dict[str, Any]) -> str:
    body = {"title": args["title"], "creator_id": ctx.settings.bot_id, "member_ids": args["member_ids"]}
    if args.get("description"):
        body["description"] = args["description"]
    return dumps(compact_room(await _call(ctx, "POST", "/api/v1/im/rooms", json=body)))


async def invite(ctx: ToolContext, args: dict[str, Any]) -> str:
    body = {"room_id": args["room_id"], "inviter_id": ctx.settings.bot_id, "user_ids": args["user_ids"]}
    return dumps(compact_room(await _call(ctx, "POST", "/api/v1/rooms/invite", json=body)))


def _last(room: dict[str, Any]) -> dict[str, Any] | None:
    messages = room.get("messages") or []
    if not messages:
        return None
    last = messages[-1]
    return {
        "sender_id": last.get("sender_id", ""),
        "excerpt": str(last.get("content", ""))[:EXCERPT_CHARS],
        "created_at": last.get("created_at", ""),
    }


async def list_rooms(ctx: ToolContext, args: dict[str, Any]) -> str:
    rooms = await _call(ctx, "GET", "/api/v1/rooms") or []
    if not args.get("all", False):
        rooms = [room for room in rooms if ctx.settings.bot_id in (room.get("members") or [])]
    listed = []
    for room in rooms[-MAX_ROOMS:]:
        entry = {
            "id": room.get("id", ""),
            "title": room.get("title", ""),
            "is_direct": bool(room.get("is_direct")),
            "members": room.get("members", []),
        }
        last = _last(room)
        if last:
            entry["last"] = last
        listed.append(entry)
    return dumps(listed)


async def list_messages(ctx: ToolContext, args: dict[str, Any]) -> str:
    limit = args.get("limit", 20)
    messages = await _call(ctx, "GET", "/api/v1/messages", params={"room_id": args["room_id"]}) or []
    listed = []
    for message in messages[-limit:]:
        content = str(message.get("content", ""))[:CONTENT_CHARS]
        if message.get("kind") == "event":
            content = "[event] " + content
        listed.append(
            {
                "id": message.get("id", ""),
                "sender_id": message.get("sender_id", ""),
                "created_at": message.get("created_at", ""),
                "content": content,
            }
        )
    return dumps(listed)


async def send_message(ctx: ToolContext, args: dict[str, Any]) -> str:
    room_id = (args.get("room_id") or "").strip() or ctx.room_id
    thread = args.get("thread_root_id")
    if thread is None:
        thread = ctx.thread_root_id if room_id == ctx.room_id else ""
    text = args["text"]
    tags = []
    for user_id in args.get("mentions", []):
        user_id = user_id.strip()
        if not user_id or f'<at user_id="{user_id}"' in text:
            continue
        user = await ctx.rest.user(user_id)
        if user is None:
            return f'Error: unknown user "{user_id}"'
        tags.append(f'<at user_id="{user_id}">{user.get("name") or user_id}</at> ')
    sent = await ctx.send(room_id, thread.strip(), "".join(tags) + text)
    if not sent.ok:
        return f"Error: send failed: {sent.error}"
    return f"Message sent to {room_id} (message {sent.message_id})"
