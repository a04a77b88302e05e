"""Derived identity values (http-api.md §1.5, §2.6): initials, accent colours, slugs and wire ids."""

from __future__ import annotations

import re
import time
from types import SimpleNamespace

import pytest

from im import identity
from im.identity import accent_color, agent_slug, avatar_initials, new_message_id, new_room_id

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("name", "initials"),
    [
        ("alice", "A"),
        ("alice smith", "AS"),
        ("code-reviewer", "C"),
        ("_x y", "XY"),
        ("__", "WK"),
        ("", "WK"),
        ("   ", "WK"),
        ("a b c", "AB"),
        ("张三", "张"),
        ("张 三", "张"),
        ("é b", "É"),
        ("-- b c", "BC"),
        ("a\tb", "AB"),
        ("1st 2nd", "12"),
    ],
)
def test_avatar_initials(name, initials):
    assert avatar_initials(name) == initials


@pytest.mark.parametrize(
    ("user_id", "accent"),
    [
        ("u-alice", "#2563eb"),
        ("u-bob", "#7c3aed"),
        ("u-zed", "#db2777"),
        ("", "#2563eb"),
        ("u-Alice", "#ea580c"),
    ],
)
def test_accent_color_is_the_palette_entry_of_the_code_point_sum(user_id, accent):
    assert accent_color(user_id) == accent


@pytest.mark.parametrize(
    ("name", "agent_id", "role", "slug"),
    [
        ("Alice Smith", "u-x", "worker", "alice-smith"),
        ("  Bob  ", "u-x", "worker", "bob"),
        ("!!!", "u-worker_01", "worker", "worker_01"),
        ("!!!", "u-!!!", "worker", "worker"),
        ("...", "u-...", "manager", "manager"),
        ("dev.ops_1", "u-x", "worker", "dev.ops_1"),
        ("Zoë Li", "u-x", "worker", "zo-li"),
        ("张三", "u-Zhang San", "worker", "zhang-san"),
        ("---", "u-x", "worker", "x"),
    ],
)
def test_agent_slug(name, agent_id, role, slug):
    assert agent_slug(name=name, agent_id=agent_id, role=role) == slug


def test_room_and_message_ids_are_nanosecond_stamps():
    before = time.time_ns()

    room_id, message_id = new_room_id(), new_message_id()

    assert re.fullmatch(r"room-\d{19}", room_id)
    assert re.fullmatch(r"msg-\d{19}", message_id)
    assert before <= int(room_id.removeprefix("room-")) < int(message_id.removeprefix("msg-"))


def test_ids_stay_strictly_increasing_when_the_clock_stands_still_or_goes_back(monkeypatch):
    frozen = time.time_ns() + 10**12  # ahead of every id issued so far
    clock = iter([frozen, frozen, frozen - 5, frozen + 10])
    monkeypatch.setattr(identity, "time", SimpleNamespace(time_ns=lambda: next(clock)))

    issued = [new_room_id(), new_message_id(), new_room_id(), new_message_id()]

    assert issued == [f"room-{frozen}", f"msg-{frozen + 1}", f"room-{frozen + 2}", f"msg-{frozen + 10}"]
