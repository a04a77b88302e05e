"""The in-process doorbell (im/realtime/broker.py): who is woken, and at what cost to the ringing thread."""

from __future__ import annotations

import asyncio
import threading

import pytest

from im.realtime import broker as broker_module
from im.realtime.broker import Broker

pytestmark = pytest.mark.timeout(20)


async def ring_from_another_thread(broker: Broker) -> None:
    # Rings come from committing request threads, never from the loop itself.
    await asyncio.to_thread(broker.ring_local)


async def test_a_ring_wakes_every_stream_of_a_loop_with_one_call_into_it(monkeypatch):
    broker = Broker()
    doorbells = [broker.subscribe() for _ in range(50)]
    loop = asyncio.get_running_loop()
    rings_into_loop = 0
    call_soon_threadsafe = loop.call_soon_threadsafe

    def counted(callback, *args):
        nonlocal rings_into_loop
        # asyncio.to_thread hands its result back this way too: count only the broker's calls.
        rings_into_loop += callback is broker_module._ring_on_loop
        return call_soon_threadsafe(callback, *args)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counted)

    await ring_from_another_thread(broker)

    assert all(await asyncio.gather(*(doorbell.wait(5) for doorbell in doorbells)))
    assert rings_into_loop == 1
    assert broker.rings == 1


async def test_streams_on_other_loops_are_woken_too():
    broker = Broker()
    here = broker.subscribe()
    subscribed = threading.Event()
    woken: list[bool] = []

    async def elsewhere() -> None:
        doorbell = broker.subscribe()
        subscribed.set()
        woken.append(await doorbell.wait(5))

    thread = threading.Thread(target=asyncio.run, args=(elsewhere(),))
    thread.start()
    assert await asyncio.to_thread(subscribed.wait, 5)

    await ring_from_another_thread(broker)

    assert await here.wait(5)
    await asyncio.to_thread(thread.join, 5)
    assert woken == [True]


async def test_a_closed_loop_does_not_keep_the_others_from_being_woken():
    broker = Broker()

    async def abandon() -> None:
        broker.subscribe()

    # The stream's loop ended without unsubscribing, as a crashed worker's would.
    await asyncio.to_thread(asyncio.run, abandon())
    doorbell = broker.subscribe()

    await ring_from_another_thread(broker)

    assert await doorbell.wait(5)


async def test_unsubscribed_doorbells_are_forgotten_and_not_rung():
    broker = Broker()
    kept, dropped = broker.subscribe(), broker.subscribe()
    assert broker.subscriber_count == 2

    broker.unsubscribe(dropped)
    broker.unsubscribe(dropped)
    await ring_from_another_thread(broker)

    assert broker.subscriber_count == 1
    assert await kept.wait(5)
    assert not await dropped.wait(0.1)
    broker.unsubscribe(kept)
    assert broker.subscriber_count == 0
