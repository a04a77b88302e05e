"""Normalisation and gating of stream frames (builtin-runtime.md §3.4)."""

from __future__ import annotations

import pytest

from agent_runtime.gating import Gate, has_at_mention, normalize_at_mentions, thread_context_text
from agent_runtime.tests.channel_fakes import frame, make_settings

USERS = {
    "u-admin": {"id": "u-admin", "name": "admin", "role": "admin"},
    "u-manager": {"id": "u-manager", "name": "manager", "role": "manager"},
    "u-alice": {"id": "u-alice", "name": "alice", "role": "worker"},
}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _gate(tmp_path, seen=frozenset(), clock=None, **overrides):
    async def user(user_id):
        return USERS.get(user_id)

    return Gate(
        make_settings(tmp_path, **overrides), seen=lambda i: i in seen, user=user, clock=clock or Clock()
    )


def _group(message_id, text="hi", **fields):
    return frame(message_id, chat_type="group", text=text, **fields)


@pytest.mark.parametrize(
    ("content", "ids", "ok"),
    [
        ('<at user_id="u-manager">manager</at> hello', {"u-manager"}, True),
        ('<at user_id="alice">alice</at> hello', {"u-manager"}, False),
        ('<at user_id="alice">alice</at> <at user_id="u-manager">manager</at> hello', {"u-manager"}, True),
        ("@manager hello", {"u-manager"}, False),
        ('<at user_id="u-manager>manager</at>', {"u-manager"}, False),
        ("", {"u-manager"}, False),
    ],
)
def test_picoclaw_has_inbound_bot_at_mention_table(content, ids, ok):
    assert has_at_mention(content, ids) is ok


@pytest.mark.parametrize(
    ("content", "want"),
    [
        ('<at user_id="u-manager">manager</at> hi', "@manager hi"),
        ('<at user_id="alice">alice</at> hi <at user_id="u-manager">manager</at>', "@alice hi @manager"),
        ('<at user_id="u-manager"></at> hi', '<at user_id="u-manager"></at> hi'),
        ('<at user_id="u-manager">manager hi', '<at user_id="u-manager">manager hi'),
    ],
)
def test_picoclaw_normalize_inbound_at_mentions_table(content, want):
    assert normalize_at_mentions(content) == want


async def test_direct_message_is_delivered_with_its_fields(tmp_path):
    inbound, reason = await _gate(tmp_path).check(frame("msg-1", text='<at user_id="pt-dev">dev</at> hi'))
    assert reason == ""
    assert (inbound.message_id, inbound.room_id, inbound.chat_type) == ("msg-1", "room-1", "direct")
    assert (inbound.sender_id, inbound.sender_name, inbound.sender_role) == ("u-admin", "admin", "admin")
    assert inbound.text == "@dev hi"
    assert inbound.created_at == 1786000000.123
    assert inbound.conversation_key == "csgclaw:room-1"


@pytest.mark.parametrize(
    "fields",
    [
        {"text": '<at user_id="pt-dev">dev</at> go'},
        {"text": '<at user_id="u-dev">dev</at> go'},
        {"mentioned": True},
        {"mentions": ["pt-dev"]},
        {"mentions": ["u-dev"]},
    ],
)
async def test_group_message_addressed_to_me_is_delivered(tmp_path, fields):
    inbound, _ = await _gate(tmp_path).check(_group("msg-1", **fields))
    assert inbound is not None
    assert inbound.text.startswith("admin (u-admin): ")


async def test_group_message_tagging_only_others_is_ignored(tmp_path):
    inbound, reason = await _gate(tmp_path).check(_group("msg-1", text='<at user_id="u-alice">alice</at> go'))
    assert (inbound, reason) == (None, "not mentioned")
    inbound, _ = await _gate(tmp_path, mention_only=False).check(_group("msg-2"))
    assert inbound is not None


@pytest.mark.parametrize("sender", ["u-dev", "pt-dev", "agent-dev", "user-dev"])
async def test_own_messages_are_ignored(tmp_path, sender):
    assert await _gate(tmp_path).check(frame("msg-1", sender_id=sender)) == (None, "own message")


async def test_blank_room_or_sender_is_ignored(tmp_path):
    payload = frame("msg-1", room_id="")
    del payload["chat_id"]
    assert (await _gate(tmp_path).check(payload))[1] == "no room or sender"
    payload = frame("msg-1", sender_id="")
    assert (await _gate(tmp_path).check(payload))[1] == "no room or sender"


async def test_room_sender_and_thread_fallbacks(tmp_path):
    payload = {
        "message_id": "msg-1",
        "sender_id": "u-admin",
        "context": {"chat_id": "room-9", "topic_id": "msg-root"},
        "text": "x",
        "chat_type": "direct",
    }
    inbound, _ = await _gate(tmp_path).check(payload)
    assert (inbound.room_id, inbound.thread_root_id) == ("room-9", "msg-root")
    assert inbound.conversation_key == "csgclaw:room-9/msg-root"


@pytest.mark.parametrize(
    ("allow_from", "delivered"),
    [(("u-admin",), True), (("csgclaw:u-admin",), True), (("*",), True), (("u-bob",), False), ((), True)],
)
async def test_allow_from(tmp_path, allow_from, delivered):
    inbound, reason = await _gate(tmp_path, allow_from=allow_from).check(frame("msg-1"))
    assert (inbound is not None) is delivered
    assert reason == ("" if delivered else "not allowed")


async def test_duplicates_are_ignored(tmp_path):
    assert await _gate(tmp_path, seen={"msg-1"}).check(frame("msg-1")) == (None, "duplicate")


async def test_loop_guard_stops_the_eleventh_agent_message_until_a_human_speaks(tmp_path):
    clock = Clock()
    gate = _gate(tmp_path, clock=clock)
    for i in range(10):
        clock.now += 1
        inbound, _ = await gate.check(_group(f"msg-{i}", sender_id="u-alice", mentioned=True))
        assert inbound is not None
    assert await gate.check(_group("msg-10", sender_id="u-alice", mentioned=True)) == (None, "loop guard")
    inbound, _ = await gate.check(_group("msg-h", sender_id="u-admin", mentioned=True))
    assert inbound is not None
    inbound, _ = await gate.check(_group("msg-11", sender_id="u-alice", mentioned=True))
    assert inbound is not None


async def test_loop_guard_forgets_after_ten_minutes_and_spares_direct_rooms(tmp_path):
    clock = Clock()
    gate = _gate(tmp_path, clock=clock)
    for i in range(10):
        assert (await gate.check(_group(f"msg-{i}", sender_id="u-alice", mentioned=True)))[0] is not None
    assert (await gate.check(frame("msg-d", sender_id="u-alice")))[0] is not None
    clock.now += 601
    assert (await gate.check(_group("msg-late", sender_id="u-alice", mentioned=True)))[0] is not None


async def test_model_text_has_attachments_and_keeps_empty_name_tags(tmp_path):
    payload = frame(
        "msg-1",
        text='<at user_id="u-x"></at> see file',
        attachments=[
            {
                "name": "a.png",
                "media_type": "image/png",
                "size_bytes": 12,
                "workspace_path": "/w/attachments/a.png",
            }
        ],
    )
    inbound, _ = await _gate(tmp_path).check(payload)
    attachment = "[attachment: a.png (image/png, 12 bytes) at /w/attachments/a.png]"
    assert inbound.text == '<at user_id="u-x"></at> see file\n' + attachment


async def test_an_attachment_without_a_workspace_copy_says_so(tmp_path):
    attachment = {"id": "att-1", "name": "big.pdf", "media_type": "application/pdf", "size_bytes": 9}
    inbound, _ = await _gate(tmp_path).check(frame("msg-1", text="see", attachments=[attachment]))
    assert (
        inbound.text == "see\n[attachment: big.pdf (application/pdf, 9 bytes), not copied to the workspace]"
    )


SELF_IDS = frozenset({"u-dev", "pt-dev"})


def test_thread_context_text_summary_only():
    payload = {"thread_context": {"summary": {"root_excerpt": "plan", "message_count": 3}}}
    assert thread_context_text(payload, SELF_IDS) == '[thread context] root: "plan", 3 messages'
    assert thread_context_text({}, SELF_IDS) == ""
    assert thread_context_text({"thread_context": {"root_message_id": "m", "summary": {}}}, SELF_IDS) == ""


def test_thread_context_text_lists_the_messages_around_the_root():
    attachment = {
        "name": "plan.md",
        "media_type": "text/markdown",
        "size_bytes": 5,
        "workspace_path": ".csgclaw/attachments/room-1/msg-0/att-1-plan.md",
    }
    context = [
        {
            "id": "msg-0",
            "sender_id": "u-admin",
            "kind": "message",
            "content": "Friday",
            "attachments": [attachment],
        },
        {"id": "msg-e", "sender_id": "u-admin", "kind": "event", "content": "alice joined"},
        {
            "id": "msg-r",
            "sender_id": "u-dev",
            "kind": "message",
            "content": '<at user_id="u-bob">bob</at> plan it',
        },
        {"id": "msg-2", "sender_id": "u-bob", "kind": "message", "content": "x" * 2500},
    ]
    payload = {
        "thread_root_id": "msg-r",
        "thread_context": {
            "root_message_id": "msg-r",
            "context": context,
            "summary": {"root_excerpt": "plan it", "message_count": 4, "before_count": 2, "after_count": 1},
        },
    }
    lines = thread_context_text(payload, SELF_IDS).split("\n")
    assert lines == [
        '[thread context] root: "plan it", 4 messages',
        "Earlier room messages around the thread's root, as reference only; this thread's conversation starts"
        " after them:",
        "- u-admin: Friday",
        "  [attachment: plan.md (text/markdown, 5 bytes) at .csgclaw/attachments/room-1/msg-0/att-1-plan.md]",
        "- u-admin: [event] alice joined",
        "- u-dev (you) [thread root]: @bob plan it",
        "- u-bob: " + "x" * 2000 + " … (cut)",
    ]


async def test_only_thread_messages_carry_the_thread_context(tmp_path):
    thread_context = {"root_message_id": "msg-r", "summary": {"root_excerpt": "plan", "message_count": 1}}
    gate = _gate(tmp_path)
    reply, _ = await gate.check(frame("msg-1", thread_root_id="msg-r", thread_context=thread_context))
    assert reply.thread_context == '[thread context] root: "plan", 1 messages'
    top, _ = await gate.check(frame("msg-2", thread_context=thread_context))
    assert top.thread_context == ""


def test_rebuild_needs_no_server(tmp_path):
    inbound = _gate(tmp_path).rebuild(frame("msg-1", sender_id="u-manager"), role="manager")
    assert (inbound.sender_role, inbound.sender_name, inbound.text) == ("manager", "manager", "hello")
