"""Benchmark of stream fan-out through a real Daphne: delivery latency to open streams, memory per idle one.

Run with `.venv/bin/python bench/fanout.py` (or `python -m bench.fanout`). One run migrates a fresh
state directory (SQLite, the embedded default), starts Daphne on loopback and then:

1. opens `--streams` (default 200) streams, half IM streams and half bot streams of `u-manager`, and
   posts `--rounds` messages one at a time into the admin↔manager direct room; every message reaches
   every stream. Latency = frame arrival on a stream − the message's `created_at` (the target's
   figure), and − the moment the POST was sent (the write included); p50/p99 over all (stream, message)
   pairs;
2. closes them, reads the server's VmRSS (/proc/<pid>/status), opens `--idle-streams` (default 1,000)
   streams, reads VmRSS again at half and at all of them, and reports KB per idle stream, the server's
   threads and file descriptors, and the CPU the idle streams cost.

Targets are printed as PASS/MISS, never asserted (a shared, busy machine would make that flaky).

Streams are read on raw asyncio sockets rather than with an HTTP client: a thousand httpx streams would
spend a good part of this 2-core machine's CPU in the client. Each open ASGI request holds one thread in
the server (Django's ASGI handler runs every request in its own thread-sensitive context, whose executor
thread lives as long as the request), so the server's thread count grows with the streams.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx

if __package__ in (None, ""):
    # Run as a script: make the repository importable (the shared bench helpers).
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.message_send import (
    ADMIN_ID,
    LOOPBACK,
    MANAGER_ID,
    Server,
    direct_room_id,
    process_cpu_seconds,
    run_checked,
    server_environment,
    verdict,
)

ACCESS_TOKEN = "bench-fanout-token"

# The targets for this 2-core machine.
TARGET_P99_MS = 100.0
TARGET_KB_PER_IDLE_STREAM = 100.0

# Bounds that keep a run to about three minutes: a phase that reaches its limit stops and reports.
OPEN_PHASE_SECONDS = 120.0
ROUND_SECONDS = 10.0
CONNECT_SECONDS = 30.0
# Twisted listens with a backlog of 50; more simultaneous connects would only queue or be refused.
OPEN_CONCURRENCY = 40
# Time for the server to finish what opening (or closing) streams set off before memory is read.
SETTLE_SECONDS = 3.0
IDLE_CPU_SECONDS = 10.0
# Sockets and files the bench and the server need besides the streams.
SPARE_FILE_DESCRIPTORS = 512

CONNECTED = b": connected"


# --- streams on raw sockets ------------------------------------------------------------------------------


@dataclass
class Probe:
    """The message of one round: its unique content token and when its POST was sent (Unix seconds)."""

    token: bytes
    sent_at: float
    arrivals: dict[int, float] = field(default_factory=dict)
    all_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0

    def arrived(self, stream_number: int, at: float) -> None:
        if stream_number not in self.arrivals:
            self.arrivals[stream_number] = at
            if len(self.arrivals) >= self.expected:
                self.all_arrived.set()


class RawStream:
    """One SSE response read straight off its socket; it only looks for the current probe's token."""

    def __init__(self, number: int, port: int, path: str, headers: dict[str, str]) -> None:
        self.number = number
        self.port = port
        self.path = path
        self.headers = headers
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task | None = None
        self.probe: Probe | None = None
        self.ended = False

    async def open(self) -> None:
        """Connect, send the GET, and return once the server has written `: connected`."""
        reader, self.writer = await asyncio.open_connection(LOOPBACK, self.port)
        lines = [f"GET {self.path} HTTP/1.1", f"Host: {LOOPBACK}:{self.port}", "Accept: text/event-stream"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        received = b""
        while CONNECTED not in received:
            chunk = await reader.read(65536)
            if not chunk:
                raise ConnectionError(f"stream closed before `: connected`: {received[:200]!r}")
            received += chunk
        status_line = received.split(b"\r\n", 1)[0]
        if b" 200 " not in status_line:
            raise ConnectionError(f"stream answered {status_line.decode(errors='replace')}")
        self.task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        tail = b""
        while chunk := await reader.read(65536):
            probe = self.probe
            if probe is None:
                continue
            window = tail + chunk
            if probe.token in window:
                probe.arrived(self.number, time.time())
            # A token split between two reads is found in the next window.
            tail = window[-len(probe.token) :]
        self.ended = True

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()


def stream_paths(count: int) -> Iterable[tuple[str, dict[str, str]]]:
    """Half IM streams, half bot streams of the manager (every admin message in their room reaches it)."""
    bot_auth = {"Authorization": f"Bearer {ACCESS_TOKEN}"}
    for number in range(count):
        if number % 2:
            yield f"/api/bots/{MANAGER_ID}/events", bot_auth
        else:
            yield "/api/v1/im/events", {}


@dataclass
class OpenResult:
    streams: list[RawStream]
    failures: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    stopped_early: bool = False


async def open_streams(port: int, count: int, *, first_number: int = 0) -> OpenResult:
    """Open `count` streams, at most OPEN_CONCURRENCY connecting at a time, within the phase's limit."""
    result = OpenResult(streams=[])
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)
    deadline = time.monotonic() + OPEN_PHASE_SECONDS
    started = time.perf_counter()

    async def open_one(number: int, path: str, headers: dict[str, str]) -> None:
        async with gate:
            if time.monotonic() >= deadline:
                result.stopped_early = True
                return
            stream = RawStream(number, port, path, headers)
            try:
                await asyncio.wait_for(stream.open(), CONNECT_SECONDS)
            except (OSError, ConnectionError, TimeoutError) as exc:
                result.failures[f"{type(exc).__name__}: {exc}"[:160]] += 1
                await stream.close()
                return
            result.streams.append(stream)

    await asyncio.gather(
        *(
            open_one(first_number + index, path, headers)
            for index, (path, headers) in enumerate(stream_paths(count))
        )
    )
    result.seconds = time.perf_counter() - started
    return result


async def close_streams(streams: list[RawStream]) -> None:
    await asyncio.gather(*(stream.close() for stream in streams))


# --- measurements ------------------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, str]:
    """/proc/<pid>/status as a dict (Linux); empty where there is no /proc."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def rss_kb(pid: int) -> int | None:
    value = proc_status(pid).get("VmRSS", "").strip()
    return int(value.split()[0]) if value else None


def thread_count(pid: int) -> int | None:
    value = proc_status(pid).get("Threads", "").strip()
    return int(value) if value else None


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def fd_limit(pid: int) -> str:
    try:
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return f"{soft} (hard {hard})"
    except OSError:
        return "n/a"
    return "n/a"


def percentile_ms(samples: list[float], percent: float) -> float:
    """Nearest-rank percentile of seconds, in milliseconds."""
    if not samples:
        return math.inf
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(percent / 100 * len(ordered))) - 1] * 1000


def raise_fd_limit(needed: int) -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to `needed` (up to the hard limit); the server inherits it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# --- phases -----------------------------------------------------------------------------------------------


@dataclass
class LatencyResult:
    streams: int
    rounds: int = 0
    # Seconds from the message's server-side `created_at` (inside the write transaction, just before
    # commit) to a stream's read: the fan-out itself.
    latencies: list[float] = field(default_factory=list)
    # Seconds from sending the POST: the fan-out plus the write request.
    end_to_end: list[float] = field(default_factory=list)
    missing: int = 0
    post_seconds: list[float] = field(default_factory=list)
    failures: Counter = field(default_factory=Counter)


async def latency_phase(server: Server, room_id: str, *, streams: int, rounds: int) -> LatencyResult:
    opened = await open_streams(server.port, streams)
    result = LatencyResult(streams=len(opened.streams), failures=opened.failures)
    try:
        async with httpx.AsyncClient(
            base_url=server.base_url, trust_env=False, timeout=ROUND_SECONDS
        ) as client:
            # One unmeasured round: first requests pay for lazy imports and connection set-up.
            for number in range(-1, rounds):
                probe = Probe(token=f"fanout-probe-{number}-{os.urandom(4).hex()}".encode(), sent_at=0.0)
                probe.expected = len(opened.streams)
                for stream in opened.streams:
                    stream.probe = probe
                probe.sent_at = time.time()
                response = await client.post(
                    "/api/v1/messages",
                    json={"room_id": room_id, "sender_id": ADMIN_ID, "content": probe.token.decode()},
                )
                posted_at = time.time()
                if response.status_code != 201:
                    raise SystemExit(
                        f"POST /api/v1/messages answered {response.status_code}: {response.text}"
                    )
                # Server and bench share this machine's clock.
                created_at = datetime.fromisoformat(response.json()["created_at"]).timestamp()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(probe.all_arrived.wait(), ROUND_SECONDS)
                if number < 0:
                    continue
                result.rounds += 1
                result.post_seconds.append(posted_at - probe.sent_at)
                result.latencies.extend(at - created_at for at in probe.arrivals.values())
                result.end_to_end.extend(at - probe.sent_at for at in probe.arrivals.values())
                result.missing += probe.expected - len(probe.arrivals)
                # Let the streams go idle again, as between real messages.
                await asyncio.sleep(0.2)
    finally:
        await close_streams(opened.streams)
    return result


@dataclass
class MemoryResult:
    target: int
    opened: int = 0
    half: int = 0
    failures: Counter = field(default_factory=Counter)
    open_seconds: float = 0.0
    stopped_early: bool = False
    rss_before: int | None = None
    rss_half: int | None = None
    rss_after: int | None = None
    threads_before: int | None = None
    threads_after: int | None = None
    fds_before: int | None = None
    fds_after: int | None = None
    idle_cpu_percent: float | None = None
    ended_streams: int = 0

    def kb_per_stream(self) -> float | None:
        if self.rss_before is None or self.rss_after is None or not self.opened:
            return None
        return (self.rss_after - self.rss_before) / self.opened

    def marginal_kb_per_stream(self) -> float | None:
        """The slope over the second half only: free of one-time costs the first streams pay."""
        second_half = self.opened - self.half
        if self.rss_half is None or self.rss_after is None or second_half <= 0:
            return None
        return (self.rss_after - self.rss_half) / second_half


async def memory_phase(server: Server, *, idle_streams: int) -> MemoryResult:
    pid = server.process.pid
    result = MemoryResult(target=idle_streams)
    await asyncio.sleep(SETTLE_SECONDS)
    result.rss_before, result.threads_before, result.fds_before = (
        rss_kb(pid),
        thread_count(pid),
        open_fds(pid),
    )
    first = await open_streams(server.port, idle_streams // 2)
    await asyncio.sleep(SETTLE_SECONDS)
    result.half, result.rss_half = len(first.streams), rss_kb(pid)
    second = await open_streams(server.port, idle_streams - idle_streams // 2, first_number=idle_streams)
    streams = first.streams + second.streams
    try:
        await asyncio.sleep(SETTLE_SECONDS)
        result.opened = len(streams)
        result.failures = first.failures + second.failures
        result.open_seconds = first.seconds + second.seconds
        result.stopped_early = first.stopped_early or second.stopped_early
        result.rss_after, result.threads_after, result.fds_after = (
            rss_kb(pid),
            thread_count(pid),
            open_fds(pid),
        )
        cpu_before = process_cpu_seconds(pid)
        await asyncio.sleep(IDLE_CPU_SECONDS)
        cpu_after = process_cpu_seconds(pid)
        if cpu_before is not None and cpu_after is not None:
            result.idle_cpu_percent = (cpu_after - cpu_before) / IDLE_CPU_SECONDS * 100
        result.ended_streams = sum(stream.ended for stream in streams)
    finally:
        await close_streams(streams)
    return result


# --- report -----------------------------------------------------------------------------------------------


def format_optional(value: float | int | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def print_failures(failures: Counter, indent: str = "  ") -> None:
    for reason, count in failures.most_common(5):
        print(f"{indent}{count} x {reason}")


def print_latency(result: LatencyResult) -> None:
    print(
        f"fan-out: {result.rounds} messages to {result.streams} open streams "
        f"({result.streams - result.streams // 2} IM + {result.streams // 2} bot), "
        f"{len(result.latencies)} deliveries, {result.missing} missing"
    )
    for label, samples in (
        ("from created_at", result.latencies),
        ("from sending the POST", result.end_to_end),
    ):
        print(
            f"  delivery latency {label}: p50 {percentile_ms(samples, 50):.1f} ms, "
            f"p99 {percentile_ms(samples, 99):.1f} ms, max {percentile_ms(samples, 100):.1f} ms"
        )
    print(f"  the POST itself took p50 {percentile_ms(result.post_seconds, 50):.1f} ms")
    if result.failures:
        print("  streams that could not be opened:")
        print_failures(result.failures, "    ")


def print_memory(result: MemoryResult, pid: int) -> None:
    print(f"idle streams: {result.opened} of {result.target} opened in {result.open_seconds:.1f} s")
    if result.stopped_early:
        print(f"  (stopped at the {OPEN_PHASE_SECONDS:.0f} s limit)")
    if result.failures:
        print("  streams that could not be opened:")
        print_failures(result.failures, "    ")
    print(
        f"  server VmRSS {format_optional(result.rss_before, ',')} KB before, "
        f"{format_optional(result.rss_half, ',')} KB at {result.half}, "
        f"{format_optional(result.rss_after, ',')} KB at {result.opened}"
    )
    print(
        f"  per idle stream {format_optional(result.kb_per_stream(), '.1f')} KB overall, "
        f"{format_optional(result.marginal_kb_per_stream(), '.1f')} KB over the second half"
    )
    print(
        f"  server threads {format_optional(result.threads_before, 'd')} -> "
        f"{format_optional(result.threads_after, 'd')}, "
        f"open fds {format_optional(result.fds_before, 'd')} -> "
        f"{format_optional(result.fds_after, 'd')} (fd limit {fd_limit(pid)})"
    )
    print(
        f"  server CPU with {result.opened} idle streams: "
        f"{format_optional(result.idle_cpu_percent, '.1f')} % "
        f"of one core over {IDLE_CPU_SECONDS:.0f} s (heartbeats; one shared log read per poll interval)"
    )
    if result.ended_streams:
        print(f"  {result.ended_streams} streams were ended by the server while idle")


def print_targets(latency: LatencyResult, memory: MemoryResult) -> None:
    p99 = percentile_ms(latency.latencies, 99)
    per_stream = memory.kb_per_stream()
    rows = [
        (
            f"p99 delivery, {latency.streams} streams",
            f"{p99:.1f} ms",
            f"<= {TARGET_P99_MS:.0f}",
            p99 <= TARGET_P99_MS and not latency.missing and latency.streams > 0,
        ),
        (
            f"RSS per idle stream, {memory.opened}",
            f"{format_optional(per_stream, '.1f')} KB",
            f"<= {TARGET_KB_PER_IDLE_STREAM:.0f}",
            per_stream is not None
            and per_stream <= TARGET_KB_PER_IDLE_STREAM
            and memory.opened == memory.target,
        ),
    ]
    print(f"{'target':<34}{'measured':>16}{'target':>10}  result")
    for name, measured, target, passed in rows:
        print(f"{name:<34}{measured:>16}{target:>10}  {verdict(passed)}")
    if latency.missing:
        print(
            f"  ({latency.missing} deliveries did not arrive within {ROUND_SECONDS:.0f} s: latency is a MISS)"
        )
    if memory.opened != memory.target:
        print("  (not every idle stream could be opened: memory is a MISS)")


# --- main -------------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200, help="streams in the latency phase (default 200)")
    parser.add_argument("--rounds", type=int, default=20, help="measured messages (default 20)")
    parser.add_argument(
        "--idle-streams", type=int, default=1000, help="streams in the memory phase (default 1000)"
    )
    return parser.parse_args(argv)


async def run(server: Server, args: argparse.Namespace) -> None:
    room_id = direct_room_id(server.base_url)
    pid = server.process.pid
    latency = await latency_phase(server, room_id, streams=args.streams, rounds=args.rounds)
    print_latency(latency)
    print()
    memory = await memory_phase(server, idle_streams=args.idle_streams)
    print_memory(memory, pid)
    print()
    print_targets(latency, memory)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    run_started = time.monotonic()
    # Each stream is a socket here and in the server (which inherits this limit), plus the server's
    # database files and the bench's own connections.
    soft, hard = raise_fd_limit(max(args.streams, args.idle_streams) + SPARE_FILE_DESCRIPTORS)
    home = Path(tempfile.mkdtemp(prefix="csgclaw-bench-fanout-"))
    env = server_environment(home)
    (home / "config.toml").write_text(f'[server]\naccess_token = "{ACCESS_TOKEN}"\n')
    server: Server | None = None
    try:
        run_checked([sys.executable, "manage.py", "migrate", "--no-input"], env, "manage.py migrate")
        server = Server(app="csgclaw_site.asgi:application", env=env, log_path=home / "daphne.log")
        server.wait_healthy()
        print(
            f"csgclaw fan-out benchmark: {os.cpu_count()} CPUs, load average at start "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, fd limit {soft} (hard {hard})"
        )
        print(f"server: daphne {server.base_url} (pid {server.process.pid}), SQLite WAL in {home}")
        print(
            f"messages: {ADMIN_ID} into the seeded admin & manager direct room; bot streams of {MANAGER_ID}"
        )
        print()
        asyncio.run(run(server, args))
        print()
        print(
            f"run took {time.monotonic() - run_started:.0f} s; load average at end "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        return 0
    finally:
        if server is not None:
            server.stop()
            log = server.log_path.read_text(errors="replace").splitlines()
            failures = [line for line in log if "Error" in line]
            if failures:
                print("server errors (last lines of its log):")
                print("\n".join(failures[-5:]))
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
