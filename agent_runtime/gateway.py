"""The gateway process (builtin-runtime.md §1.2): start-up order, wiring of both halves, and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx

from agent_runtime import VERSION
from agent_runtime.contracts import Settings, crash_point
from agent_runtime.gapscan import GapScanner
from agent_runtime.gating import Gate
from agent_runtime.health import HealthServer
from agent_runtime.journal import Cursor, InboxJournal
from agent_runtime.outbox import HttpOutbox
from agent_runtime.rest import RestApi, make_client
from agent_runtime.status import StatusFile
from agent_runtime.stream import EventStream

log = logging.getLogger("agent_runtime.channel")

# A gap scan runs again after this long without a stream; shorter outages are covered by stream replay.
GAP_SCAN_AFTER_OUTAGE = 5.0
# Live frames wait this long at most for a running gap scan, so older messages are queued first.
GAP_SCAN_WAIT = 10.0
CURSOR_FLUSH_SECONDS = 1.0
# SIGTERM must end the process within 2 s (§1.2); each shutdown step gets a share of that.
SHUTDOWN_STEP_SECONDS = 0.5

LoopFactory = Callable[..., Any]


def agent_loop_factory(settings: Settings, **ports: Any) -> Any:
    """The agent half's `AgentLoop`, imported only when the gateway starts."""
    from agent_runtime.loop import AgentLoop

    return AgentLoop(settings, **ports)


class Gateway:
    """Owns the channel half and the agent loop for one process lifetime."""

    def __init__(
        self,
        settings: Settings,
        *,
        loop_factory: LoopFactory | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock=time.time,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self.client = make_client(settings, transport=transport)
        self.status = StatusFile(settings, clock=clock)
        self.journal = InboxJournal(settings, clock=clock)
        self.cursor = Cursor(settings, clock=clock)
        self.rest = RestApi(settings, self.client)
        self.gate = Gate(settings, seen=self.journal.seen, user=self.rest.user, clock=clock)
        self.scanner = GapScanner(settings, self.rest, self.journal, clock=clock)
        self.stream = EventStream(
            settings,
            self.client,
            self.cursor,
            on_frame=self.on_frame,
            on_connected=self.on_connected,
            on_disconnected=self.on_disconnected,
            on_failed=lambda reason: self.status.update(last_error=reason),
        )
        self.outbox = HttpOutbox(settings, self.client, mode=lambda: self.stream.mode)
        self.health = HealthServer(settings, ready=lambda: self.stream.connected)
        self.agent_loop = (loop_factory or agent_loop_factory)(
            settings,
            outbox=self.outbox,
            journal=self.journal,
            rest=self.rest,
            status=self.status,
            llm_transport=None,
        )
        self._connects = 0
        self._cursor_at_start: float | None = None
        self._disconnected_at: float | None = None
        self._scan_done = asyncio.Event()
        self._scan_done.set()
        self._tasks: set[asyncio.Task] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Start in the order of §1.2, serve until `stop` is set, then shut down."""
        settings = self.settings
        log.info(
            "starting builtin runtime %s bot=%s participant=%s base=%s model=%s workspace=%s python=%s",
            VERSION,
            settings.bot_id,
            settings.participant_id,
            settings.base_url,
            settings.model,
            settings.workspace,
            platform.python_version(),
        )
        self.status.write()
        requeue = self.journal.open()
        self.cursor.load()
        self._cursor_at_start = self.cursor.updated_at
        await self.health.start()
        loop_task = asyncio.create_task(self.agent_loop.run(), name="agent-loop")
        for entry in requeue:
            inbound = self.gate.rebuild(entry.frame, role=entry.role)
            if inbound is not None:
                log.info("inbound %s room=%s re-queued from the journal", entry.id, entry.room)
                self.agent_loop.submit(inbound)
        stream_task = asyncio.create_task(self._connect_later(), name="stream")
        flush_task = asyncio.create_task(self._flush_cursor(), name="cursor-flush")
        try:
            await stop.wait()
        finally:
            log.info("stopping")
            await self._shutdown(stream_task, flush_task, loop_task)

    async def on_connected(self, mode: str) -> None:
        self._connects += 1
        self.cursor.touch(stream=mode)
        self.status.update(stream=mode, connected=True, last_error="")
        self._spawn(self.rest.agent())
        # Warm the user list now, so the first message's sender lookup costs no request.
        self._spawn(self.rest.user(self.settings.bot_id))
        outage = None if self._disconnected_at is None else self._clock() - self._disconnected_at
        if self._connects == 1:
            self._start_scan(first_ever=not self.cursor.existed, since=self._cursor_at_start)
        elif outage is not None and outage >= GAP_SCAN_AFTER_OUTAGE:
            self._start_scan(first_ever=False, since=self._disconnected_at)

    async def on_disconnected(self, reason: str) -> None:
        self._disconnected_at = self._clock()
        self.cursor.touch(stream=self.cursor.stream)
        self.status.update(connected=False, last_error=reason)

    async def on_frame(self, payload: dict[str, Any], sse_id: str, mode: str) -> None:
        if not self._scan_done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._scan_done.wait(), GAP_SCAN_WAIT)
        try:
            await self.accept(payload, sse_id=sse_id, mode=mode)
        except Exception:
            # One bad frame or a full disk must not end the stream; the next frame may go through.
            log.exception("inbound %s not handled", payload.get("message_id", ""))

    async def accept(self, payload: dict[str, Any], *, sse_id: str = "", mode: str = "") -> bool:
        """Gate one frame; journal, advance the cursor and queue it, or record why it is ignored (§3.4)."""
        message_id = str(payload.get("message_id") or "")
        inbound, reason = await self.gate.check(payload)
        if inbound is None:
            log.info("inbound %s room=%s ignored: %s", message_id, payload.get("room_id", ""), reason)
            if message_id and reason != "duplicate":
                self.journal.ignored(message_id, reason)
            if mode:
                self.cursor.advance(message_id=message_id, sse_id=sse_id, stream=mode)
            return False
        self.journal.recv(
            message_id=inbound.message_id,
            room_id=inbound.room_id,
            thread_root_id=inbound.thread_root_id,
            frame=payload,
            role=inbound.sender_role,
        )
        crash_point(self.settings, "after_inbox")
        if mode:
            self.cursor.advance(message_id=message_id, sse_id=sse_id, stream=mode)
        log.info("inbound %s room=%s accepted from %s", message_id, inbound.room_id, inbound.sender_id)
        log.debug("inbound %s text: %s", message_id, inbound.text[:200])
        self.agent_loop.submit(inbound)
        self.status.update(last_message_id=message_id)
        return True

    def _start_scan(self, *, first_ever: bool, since: float | None) -> None:
        self._scan_done.clear()
        self._spawn(self._scan(first_ever=first_ever, since=since))

    async def _scan(self, *, first_ever: bool, since: float | None) -> None:
        try:
            for frame in await self.scanner.scan(first_ever=first_ever, since=since):
                await self.accept(frame)
        except (httpx.HTTPError, OSError) as exc:
            log.warning("gap scan failed: %s", exc)
        finally:
            self._scan_done.set()

    async def _connect_later(self) -> None:
        if self.settings.test_connect_delay:
            await asyncio.sleep(self.settings.test_connect_delay)
        await self.stream.run()

    async def _flush_cursor(self) -> None:
        while True:
            await asyncio.sleep(CURSOR_FLUSH_SECONDS)
            self.cursor.flush()

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _shutdown(
        self, stream_task: asyncio.Task, flush_task: asyncio.Task, loop_task: asyncio.Task
    ) -> None:
        for task in (stream_task, flush_task, *self._tasks):
            task.cancel()
        await _settle(stream_task, flush_task, *self._tasks)
        try:
            async with asyncio.timeout(SHUTDOWN_STEP_SECONDS):
                await self.agent_loop.close()
        except TimeoutError:
            log.warning("agent loop did not close in %s s", SHUTDOWN_STEP_SECONDS)
        loop_task.cancel()
        await _settle(loop_task)
        self.cursor.touch(stream=self.cursor.stream)
        self.cursor.flush()
        self.journal.close()
        self.status.update(connected=False, last_error="stopped")
        await _settle(asyncio.ensure_future(self.health.close()), asyncio.ensure_future(self.client.aclose()))
        log.info("stopped")


async def _settle(*tasks: asyncio.Future) -> None:
    """Wait for cancelled tasks briefly; a task that ignores cancellation must not hold up the exit."""
    if tasks:
        await asyncio.wait(tasks, timeout=SHUTDOWN_STEP_SECONDS)


def serve(settings: Settings) -> int:
    """`python -m agent_runtime gateway`: run until SIGTERM or SIGINT, then exit 0."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await Gateway(settings).run(stop)

    asyncio.run(main())
    return 0
