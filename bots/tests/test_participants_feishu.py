"""The Feishu participant stream (participants.md §2.8): the relay stream under its participant-era name."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from bots.bridge.cursors import StreamCursorKind
from bots.participants.feishu import feishu_table_id
from bots.tests.test_feishu import (  # noqa: F401 - fixtures
    AUTH,
    CONNECTED,
    asend,
    clock,
    configured,
    fake_feishu,
    write_config,
)
from im.models import StreamCursor
from im.realtime.eventlog import event_newest_seq

pytestmark = pytest.mark.timeout(30)


def path(participant_id: str) -> str:
    return f"/api/v1/channels/feishu/participants/{participant_id}/events"


@pytest.mark.parametrize(
    ("tables", "path_id", "table"),
    [
        ({"pt-dev": ("a", "s"), "u-dev": ("b", "s"), "dev": ("c", "s")}, "pt-dev", "pt-dev"),
        ({"u-dev": ("b", "s"), "dev": ("c", "s")}, "pt-dev", "u-dev"),
        ({"dev": ("c", "s")}, "pt-dev", "dev"),
        ({}, "pt-dev", "pt-dev"),
    ],
)
def test_table_lookup_order(request, tables, path_id: str, table: str) -> None:
    request.getfixturevalue("write_config")(tables)
    assert feishu_table_id(path_id) == table


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fake_feishu")
async def test_the_participant_name_relays_the_mentions_of_the_resolved_open_id(asgi_stream, async_client):
    newest = await sync_to_async(event_newest_seq)()
    stream = await asgi_stream(path("pt-dev"), headers={**AUTH, "Last-Event-ID": str(newest)})
    assert stream.status == 200
    assert await stream.chunk() == CONNECTED

    await asend(async_client, room_id="oc_alpha", sender_id="u-manager", content="for qa", mention_id="u-qa")
    sent = await asend(
        async_client, room_id="oc_alpha", sender_id="u-manager", content="hi", mention_id="u-dev"
    )

    frame = await stream.frame()
    assert frame.data["message"]["id"] == sent["id"]
    assert frame.data["message"]["mentions"] == ["ou_dev"]
    await stream.disconnect()
    remembered = await sync_to_async(StreamCursor.objects.get)(kind=StreamCursorKind.FEISHU, key="pt-dev")
    assert remembered.seq == frame.id


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fake_feishu")
async def test_checks_404_405_401(async_client) -> None:
    assert (await async_client.get(path("pt-dev") + "/", headers=AUTH)).status_code == 404
    assert (await async_client.post(path("pt-dev"))).status_code == 405
    assert (await async_client.get(path("pt-dev"))).status_code == 401
