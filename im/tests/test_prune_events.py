"""Retention of the event log: `events_prune` and `manage.py prune_events` (events.md §5.6)."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from im import events, services
from im.identity import ADMIN_ID
from im.models import Event, EventLogState, EventRecipient
from im.realtime.eventlog import event_newest_seq, event_pruned_through
from im.tests.factories import make_room, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(30)]


@pytest.fixture(autouse=True)
def alice():
    return make_user("u-alice")


def direct_messages(count: int) -> list[Event]:
    """`message.created` events that each have a recipient row (alice, in a direct room)."""
    room = make_room(members=[ADMIN_ID, "u-alice"], is_direct=True)
    for n in range(count):
        services.message_send(room_id=room.id, sender_id=ADMIN_ID, content=f"note {n}")
    return list(Event.objects.filter(type=events.MESSAGE_CREATED, room_id=room.id).order_by("seq"))


def age(logged: list[Event], *, days: float) -> None:
    Event.objects.filter(seq__in=[event.seq for event in logged]).update(
        created_at=timezone.now() - timedelta(days=days)
    )


def prune_command(*args: str) -> str:
    out = StringIO()
    call_command("prune_events", *args, stdout=out)
    return out.getvalue()


def test_prune_deletes_older_events_with_their_recipients_and_raises_the_mark():
    old = direct_messages(3)
    recent = direct_messages(2)
    age(old, days=10)

    pruned = services.events_prune(older_than=timezone.now() - timedelta(days=7))

    assert pruned == 3
    assert list(Event.objects.values_list("seq", flat=True)) == [event.seq for event in recent]
    assert not EventRecipient.objects.filter(event_id__in=[event.seq for event in old]).exists()
    assert EventRecipient.objects.filter(event_id__in=[event.seq for event in recent]).count() == 2
    assert event_pruned_through() == old[-1].seq
    assert EventLogState.objects.count() == 1


def test_prune_with_nothing_old_changes_nothing():
    kept = direct_messages(2)

    assert services.events_prune(older_than=timezone.now() - timedelta(days=7)) == 0

    assert Event.objects.count() == len(kept)
    assert event_pruned_through() == 0
    assert not EventLogState.objects.exists()


def test_the_mark_only_rises_and_stays_one_row():
    first = direct_messages(2)
    age(first, days=10)
    services.events_prune(older_than=timezone.now() - timedelta(days=7))
    second = direct_messages(2)
    age(second, days=10)

    services.events_prune(older_than=timezone.now() - timedelta(days=7))
    services.events_prune(older_than=timezone.now() - timedelta(days=7))

    assert event_pruned_through() == second[-1].seq
    assert EventLogState.objects.count() == 1


def test_pruning_is_always_a_prefix_of_the_log():
    newer_created_first, older_created_later = direct_messages(2)
    # A clock step made the later event look older: everything up to it goes, so no seq at or below
    # the mark survives to be skipped by a stream that resumed past the mark.
    age([older_created_later], days=10)

    assert services.events_prune(older_than=timezone.now() - timedelta(days=7)) == 2

    assert event_pruned_through() == older_created_later.seq
    assert not Event.objects.filter(seq=newer_created_first.seq).exists()


def test_newest_seq_survives_pruning_everything_and_seqs_are_not_reused():
    logged = direct_messages(3)
    age(logged, days=10)
    services.events_prune(older_than=timezone.now() - timedelta(days=7))

    assert not Event.objects.exists()
    assert event_newest_seq() == logged[-1].seq
    (later,) = direct_messages(1)
    assert later.seq > logged[-1].seq


def test_command_defaults_to_the_retention_setting(settings):
    settings.CSGCLAW_EVENT_RETENTION_DAYS = 2
    three_days_old = direct_messages(2)
    one_day_old = direct_messages(1)
    age(three_days_old, days=3)
    age(one_day_old, days=1)

    output = prune_command()

    assert output == "pruned 2 events older than 2 days\n"
    assert list(Event.objects.values_list("seq", flat=True)) == [one_day_old[0].seq]
    assert event_pruned_through() == three_days_old[-1].seq


def test_command_takes_fractional_days():
    eighteen_hours_old = direct_messages(1)
    six_hours_old = direct_messages(1)
    age(eighteen_hours_old, days=0.75)
    age(six_hours_old, days=0.25)

    output = prune_command("--days", "0.5")

    assert output == "pruned 1 events older than 0.5 days\n"
    assert list(Event.objects.values_list("seq", flat=True)) == [six_hours_old[0].seq]


def test_command_with_zero_days_prunes_everything_so_far():
    direct_messages(2)

    assert prune_command("--days", "0") == "pruned 2 events older than 0 days\n"
    assert not Event.objects.exists()


def test_command_with_a_huge_retention_keeps_everything():
    logged = direct_messages(1)
    age(logged, days=10)

    assert prune_command("--days", "1e12") == "pruned 0 events older than 1e+12 days\n"
    assert Event.objects.count() == 1


@pytest.mark.parametrize("days", ["-1", "nan", "inf"])
def test_command_rejects_impossible_retentions(days):
    direct_messages(1)

    with pytest.raises(CommandError, match="--days must be a non-negative number of days"):
        prune_command("--days", days)
    assert Event.objects.count() == 1


def test_command_rejects_a_non_number():
    with pytest.raises(CommandError, match="--days"):
        prune_command("--days", "a week")
