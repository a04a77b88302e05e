"""Fixtures shared by the tests of im's services and of its event log."""

from __future__ import annotations

import pytest

from im.identity import ADMIN_ID
from im.realtime.broker import broker
from im.tests.factories import make_room, make_user


@pytest.fixture
def rings(monkeypatch) -> list[int]:
    """Every doorbell ring, by seq."""
    rung: list[int] = []
    monkeypatch.setattr(broker, "ring", lambda seq=0: rung.append(seq))
    return rung


@pytest.fixture
def team():
    """dev and ops; a direct room admin↔dev and a group room of admin, dev and ops."""
    make_user("u-dev")
    make_user("u-ops")
    make_user("u-zed")
    direct = make_room(room_id="room-direct", members=[ADMIN_ID, "u-dev"], is_direct=True)
    group = make_room(room_id="room-group", members=[ADMIN_ID, "u-dev", "u-ops"])
    return direct, group
