"""The doorbell: wakes every open stream after an event commit, in this process and (with Redis) in others.

Subscriptions hold no payloads, only a flag, so nothing can overflow or be dropped; a woken stream reads
the committed rows itself. A lost ring costs latency only, because streams also poll the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
import uuid

from django.conf import settings

logger = logging.getLogger("csgclaw.broker")

REDIS_CHANNEL = "csgclaw:events"
# Backoff after a Redis failure: short enough to recover quickly, long enough not to spin.
REDIS_RETRY_SECONDS = 1.0


class Subscription:
    """One stream's doorbell, bound to the event loop the stream runs on."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.flag = asyncio.Event()

    def clear(self) -> None:
        self.flag.clear()

    async def wait(self, timeout: float) -> bool:
        """True when rung within `timeout` seconds."""
        if timeout <= 0:
            return self.flag.is_set()
        try:
            async with asyncio.timeout(timeout):
                await self.flag.wait()
        except TimeoutError:
            return False
        return True


def _ring_on_loop(subscriptions: list[Subscription]) -> None:
    for subscription in subscriptions:
        subscription.flag.set()


class Broker:
    def __init__(self, redis_url: str = "") -> None:
        # Grouped by event loop: a ring wakes each loop once, whatever the number of its streams.
        self._subscriptions: dict[asyncio.AbstractEventLoop, set[Subscription]] = {}
        self._lock = threading.Lock()
        self._redis_url = redis_url
        self._origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._publisher = None
        self._listener: threading.Thread | None = None
        # How often local subscriptions were rung. Counted before they are woken, so a read that starts
        # once a woken stream's count is reached sees the commit behind its ring (im/realtime/tail.py).
        self.rings = 0

    def subscribe(self) -> Subscription:
        """Register a doorbell for the calling event loop (call before the stream's first read)."""
        subscription = Subscription(asyncio.get_running_loop())
        with self._lock:
            self._subscriptions.setdefault(subscription.loop, set()).add(subscription)
        if self._redis_url:
            self._ensure_listener()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            on_loop = self._subscriptions.get(subscription.loop)
            if on_loop is None:
                return
            on_loop.discard(subscription)
            if not on_loop:
                del self._subscriptions[subscription.loop]

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return sum(len(on_loop) for on_loop in self._subscriptions.values())

    def ring(self, seq: int = 0) -> None:
        """Wake every local subscription and, with Redis, every other process. Thread-safe."""
        self.ring_local()
        if self._redis_url:
            self._publish(seq)

    def ring_local(self) -> None:
        with self._lock:
            self.rings += 1
            by_loop = [(loop, list(on_loop)) for loop, on_loop in self._subscriptions.items()]
        for loop, subscriptions in by_loop:
            # A closed loop means abandoned subscriptions: nothing is left to wake.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_ring_on_loop, subscriptions)

    def _publish(self, seq: int) -> None:
        try:
            if self._publisher is None:
                import redis

                self._publisher = redis.Redis.from_url(self._redis_url, socket_timeout=2)
            self._publisher.publish(REDIS_CHANNEL, json.dumps({"origin": self._origin, "seq": seq}))
        except Exception as exc:
            # Streams still poll the log, so a Redis outage delays delivery instead of losing it.
            logger.warning("redis publish failed: %s", exc)
            self._publisher = None

    def _ensure_listener(self) -> None:
        with self._lock:
            if self._listener is not None and self._listener.is_alive():
                return
            self._listener = threading.Thread(target=self._listen, name="csgclaw-redis-doorbell", daemon=True)
            self._listener.start()

    def _listen(self) -> None:
        import redis

        while True:
            try:
                client = redis.Redis.from_url(self._redis_url)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(REDIS_CHANNEL)
                for message in pubsub.listen():
                    if self._is_foreign(message.get("data")):
                        self.ring_local()
            except Exception as exc:
                logger.warning("redis doorbell listener: %s; retrying", exc)
                time.sleep(REDIS_RETRY_SECONDS)

    def _is_foreign(self, data: object) -> bool:
        try:
            return json.loads(data).get("origin") != self._origin
        except (TypeError, ValueError, AttributeError):
            return True


broker = Broker(redis_url=settings.REDIS_URL)
