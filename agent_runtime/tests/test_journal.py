"""The inbox journal and the stream cursor (builtin-runtime.md §3.3, §3.5)."""

from __future__ import annotations

import json

from agent_runtime.journal import Cursor, InboxJournal
from agent_runtime.tests.channel_fakes import frame, make_settings


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _recv(journal, message_id, room="room-1"):
    journal.recv(
        message_id=message_id, room_id=room, thread_root_id="", frame=frame(message_id, room_id=room)
    )


def _lines(journal):
    return [json.loads(line) for line in journal.path.read_text().splitlines()]


def test_lines_are_written_before_anything_else_happens(tmp_path):
    journal = InboxJournal(make_settings(tmp_path))
    journal.open()
    _recv(journal, "msg-1")
    journal.started("msg-1", turn_id="msg-1")
    journal.done("msg-1")
    journal.ignored("msg-2", "own message")
    ops = [(line["op"], line["id"]) for line in _lines(journal)]
    assert ops == [("recv", "msg-1"), ("start", "msg-1"), ("done", "msg-1"), ("ignored", "msg-2")]
    assert _lines(journal)[0]["frame"]["message_id"] == "msg-1"
    assert journal.seen("msg-1") and journal.seen("msg-2") and not journal.seen("msg-3")


def test_restart_requeues_unfinished_in_journal_order_and_drops_a_torn_line(tmp_path):
    settings = make_settings(tmp_path)
    journal = InboxJournal(settings)
    journal.open()
    for message_id in ("msg-1", "msg-2", "msg-3"):
        _recv(journal, message_id)
    journal.started("msg-2", turn_id="msg-2")
    journal.done("msg-1")
    journal.close()
    with journal.path.open("a") as handle:
        handle.write('{"op":"done","id":"msg-3"')
    again = InboxJournal(settings)
    requeued = again.open()
    assert [entry.id for entry in requeued] == ["msg-2", "msg-3"]
    assert requeued[0].turn == "msg-2"
    assert again.seen("msg-1") and again.seen("msg-3")
    assert again.pending_rooms() == {"room-1"}


def test_entries_older_than_the_window_expire_with_a_warning(tmp_path, caplog):
    settings = make_settings(tmp_path, catchup_window=60)
    clock = Clock()
    journal = InboxJournal(settings, clock=clock)
    journal.open()
    _recv(journal, "msg-old")
    clock.now += 30
    _recv(journal, "msg-new")
    journal.close()
    clock.now += 45
    again = InboxJournal(settings, clock=clock)
    assert [entry.id for entry in again.open()] == ["msg-new"]
    assert "msg-old" in caplog.text and "expired" in caplog.text
    assert again.seen("msg-old")
    assert {"op": "expired", "id": "msg-old"}.items() <= _lines(again)[0].items()


def test_compaction_keeps_a_day_of_finished_ids_and_the_unfinished_entries(tmp_path):
    settings = make_settings(tmp_path)
    clock = Clock()
    journal = InboxJournal(settings, clock=clock)
    journal.open()
    _recv(journal, "msg-old")
    journal.done("msg-old")
    clock.now += 25 * 3600
    _recv(journal, "msg-a")
    journal.done("msg-a")
    _recv(journal, "msg-b")
    journal.close()
    again = InboxJournal(settings, clock=clock)
    assert [entry.id for entry in again.open()] == ["msg-b"]
    assert [(line["op"], line["id"]) for line in _lines(again)] == [("done", "msg-a"), ("recv", "msg-b")]
    assert not again.seen("msg-old")
    _recv(again, "msg-c")
    assert _lines(again)[-1]["id"] == "msg-c"


def test_recorded_role_survives_a_restart(tmp_path):
    settings = make_settings(tmp_path)
    journal = InboxJournal(settings)
    journal.open()
    journal.recv(message_id="msg-1", room_id="room-1", thread_root_id="t", frame={}, role="manager")
    journal.close()
    (entry,) = InboxJournal(settings).open()
    assert (entry.role, entry.thread) == ("manager", "t")


def test_cursor_is_written_at_most_once_per_second_and_on_flush(tmp_path):
    settings = make_settings(tmp_path)
    clock = Clock()
    cursor = Cursor(settings, clock=clock)
    cursor.load()
    assert not cursor.existed
    cursor.advance(message_id="msg-1", sse_id="5", stream="bot")
    assert json.loads(cursor.path.read_text())["last_seq"] == "5"
    clock.now += 0.5
    cursor.advance(message_id="msg-2", sse_id="6", stream="bot")
    assert json.loads(cursor.path.read_text())["last_message_id"] == "msg-1"
    cursor.flush()
    data = json.loads(cursor.path.read_text())
    assert data == {
        "stream": "bot",
        "last_message_id": "msg-2",
        "last_seq": "6",
        "updated_at": "2027-01-15T08:00:00.500Z",
    }
    loaded = Cursor(settings)
    loaded.load()
    assert loaded.existed and loaded.last_seq == "6" and loaded.updated_at == clock.now


def test_last_event_id_per_mode(tmp_path):
    cursor = Cursor(make_settings(tmp_path))
    assert cursor.last_event_id("participant") == cursor.last_event_id("bot") == ""
    cursor.advance(message_id="msg-7", sse_id="msg-7", stream="participant")
    assert cursor.last_event_id("participant") == "msg-7"
    assert cursor.last_event_id("bot") == "msg-7"
    cursor.advance(message_id="msg-8", sse_id="42", stream="bot")
    assert cursor.last_event_id("bot") == "42"
    other = Cursor(make_settings(tmp_path))
    other.last_message_id = "room-odd"
    assert other.last_event_id("bot") == ""
