"""Benchmark of the IM message-send path through a real Daphne: throughput, latency and history independence.

Run with `make bench` or `.venv/bin/python bench/message_send.py`; bench/README.md explains the output.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"

# The seeded users of every fresh database (http-api.md §9.1); their direct room is the one we load.
ADMIN_ID = "u-admin"
MANAGER_ID = "u-manager"

# The targets for this 2-core machine. They are printed as PASS/MISS, never asserted: a benchmark
# that fails the build on a busy shared machine would teach people to ignore it.
TARGET_MESSAGES_PER_SECOND = 800.0
TARGET_P99_MS = 50.0
TARGET_HISTORY_RATIO = 1.1

# Time limits that keep the whole run under about three minutes even when the server is slow: a phase
# that hits its limit stops early and reports what it measured.
SERVER_START_SECONDS = 30.0
WARMUP_SECONDS = 20.0
REQUEST_TIMEOUT_SECONDS = 30.0
SUBPROCESS_SECONDS = 120.0
STOP_SECONDS = 10.0

# The control room of the interleaved history check: a second direct room of the admin, with a peer that
# no real deployment has, so it has the same shape (two members, one bot recipient) and no history.
CONTROL_PEER_ID = "u-bench-peer"
# Interleaved rounds run in the order control, history, history, control (twice): a load change on the
# machine during the check then weighs on both rooms alike instead of on whichever ran later.
INTERLEAVED_ORDER = ("control", "history", "history", "control") * 2

# Rows per executemany batch and per transaction while filling the history: large enough to be fast,
# small enough that one batch of Python objects stays a few megabytes.
FILL_BATCH = 5000


# --- load generation -----------------------------------------------------------------------------------


class Tickets:
    """A thread-safe countdown that numbers the requests of a phase (the number makes each message unique)."""

    def __init__(self, total: int) -> None:
        self._next = 0
        self._total = total
        self._lock = threading.Lock()

    def take(self) -> int | None:
        with self._lock:
            if self._next >= self._total:
                return None
            self._next += 1
            return self._next


@dataclass
class PhaseResult:
    label: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    elapsed: float = 0.0
    server_cpu: float | None = None
    stopped_early: bool = False

    @property
    def completed(self) -> int:
        return len(self.latencies)

    @property
    def requests_per_second(self) -> float:
        return self.completed / self.elapsed if self.elapsed else 0.0

    @property
    def cost_ms(self) -> float:
        """Wall time per successful request with all clients busy: the inverse of throughput."""
        return self.elapsed / self.completed * 1000 if self.completed else math.inf

    def percentile_ms(self, percent: float) -> float:
        """Nearest-rank percentile, so p99 of 4,000 samples is the 3,960th fastest."""
        if not self.latencies:
            return math.inf
        ordered = sorted(self.latencies)
        rank = max(1, math.ceil(percent / 100 * len(ordered)))
        return ordered[rank - 1] * 1000

    @property
    def server_cpu_ms(self) -> float | None:
        if self.server_cpu is None or not self.completed:
            return None
        return self.server_cpu / self.completed * 1000


RequestFn = Callable[[httpx.Client, int], httpx.Response]


def run_phase(
    label: str,
    *,
    base_url: str,
    request: RequestFn,
    expected_status: int,
    total: int,
    warmup: int,
    clients: int,
    time_limit: float,
    server_pid: int,
) -> PhaseResult:
    """Closed loop: `clients` threads, each with one keep-alive connection and one request in flight.

    Threads with their own httpx.Client rather than an AsyncClient: measured on this machine against a
    trivial ASGI app under Daphne, one AsyncClient with a 16-connection pool spends ~2.2 ms of client CPU
    per request (its pool bookkeeping is shared by every connection) and tops out near 200 req/s, and 16
    separate AsyncClients still cost ~1.3 ms (~340 req/s); a private sync Client per thread costs ~0.75 ms
    and drives the same server at 450-850 req/s. The async client would measure itself, not the server.
    The GIL hand-offs between client threads add a little to the measured latencies, never to the
    server's work. Client and server share the two cores, so the client's CPU is printed too.
    """
    result = PhaseResult(label)
    warm_tickets, tickets = Tickets(warmup), Tickets(total)
    barrier = threading.Barrier(clients + 1)
    lock = threading.Lock()

    def failure(client: httpx.Client, number: int) -> str:
        """Send one request; the reason it failed, or "" on the expected status."""
        try:
            response = request(client, number)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if response.status_code != expected_status:
            return f"HTTP {response.status_code}: {response.text[:200]}"
        return ""

    def worker() -> None:
        latencies: list[float] = []
        with httpx.Client(base_url=base_url, trust_env=False, timeout=REQUEST_TIMEOUT_SECONDS) as client:
            warm_until = time.monotonic() + WARMUP_SECONDS
            # Warm-up results are not the measurement: a failing server fails the measured requests too.
            while time.monotonic() < warm_until and (number := warm_tickets.take()) is not None:
                failure(client, -number)
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                return
            stop_at = time.monotonic() + time_limit
            while (number := tickets.take()) is not None:
                if time.monotonic() >= stop_at:
                    result.stopped_early = True
                    break
                started = time.perf_counter()
                reason = failure(client, number)
                if not reason:
                    latencies.append(time.perf_counter() - started)
                    continue
                with lock:
                    result.errors += 1
                    result.first_error = result.first_error or reason
        with lock:
            result.latencies.extend(latencies)

    threads = [threading.Thread(target=worker, name=f"bench-client-{i}") for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=WARMUP_SECONDS + REQUEST_TIMEOUT_SECONDS)
    cpu_before = process_cpu_seconds(server_pid)
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    result.elapsed = time.perf_counter() - started
    cpu_after = process_cpu_seconds(server_pid)
    if cpu_before is not None and cpu_after is not None:
        result.server_cpu = cpu_after - cpu_before
    return result


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process and all its threads (Linux /proc); None where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command name: field 14 (utime) and 15 (stime) of proc(5) are at offsets 11 and 12.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the server under test -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def server_environment(home: Path) -> dict[str, str]:
    """The embedded default (file SQLite in WAL under CSGCLAW_HOME), whatever the caller's shell exports."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "REDIS_URL", "CSGCLAW_CONFIG", "DJANGO_DEBUG", "CSGCLAW_LISTEN_ADDR"}
    }
    env.update(
        CSGCLAW_HOME=str(home),
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_SETTINGS_MODULE="csgclaw_site.settings",
        CSGCLAW_BOOTSTRAP_ON_START="false",
        # Per-request log lines would be part of what we measure; warnings still reach the log file.
        DJANGO_LOG_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])),
    )
    return env


def run_checked(command: list[str], env: dict[str, str], what: str) -> str:
    completed = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=SUBPROCESS_SECONDS, check=False
    )
    if completed.returncode != 0:
        raise SystemExit(f"{what} failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
    return completed.stdout


class Server:
    """A Daphne subprocess on a free loopback port, its output in `log_path`; `stop()` ends it."""

    def __init__(self, *, app: str, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://{LOOPBACK}:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        # Daphne's access log stays on (as in production) and goes to the log file: with and without it
        # a no-op ASGI app cost the same 0.55 ms of server CPU per request here.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", LOOPBACK, "-p", str(self.port), app],
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Its own session, so a Ctrl-C in the terminal reaches only us and we stop it in order.
            start_new_session=True,
        )

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + SERVER_START_SECONDS
        with httpx.Client(base_url=self.base_url, trust_env=False, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                # Refused or reset until Daphne listens: keep asking.
                with contextlib.suppress(httpx.HTTPError):
                    if client.get("/healthz").status_code == 200:
                        return
                time.sleep(0.1)
        raise SystemExit(f"daphne did not become healthy on {self.base_url}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def direct_room_id(base_url: str) -> str:
    with httpx.Client(base_url=base_url, trust_env=False, timeout=REQUEST_TIMEOUT_SECONDS) as client:
        response = client.get("/api/v1/im/bootstrap")
        response.raise_for_status()
    for room in response.json()["rooms"]:
        if room["is_direct"] and set(room["members"]) == {ADMIN_ID, MANAGER_ID}:
            return room["id"]
    raise SystemExit("the seeded admin & manager direct room is missing from /api/v1/im/bootstrap")


# --- history fill (runs in a subprocess with the server's settings) -------------------------------------


def fill_history(room_id: str, count: int) -> dict[str, float | int]:
    """Insert `count` messages with their message.created events and recipients, as message_send writes.

    Rows are built by the project's own payload builders and written with executemany in batches (the
    ORM's bulk_create takes about 55 s for 100,000 messages on this machine). Then one direct
    message_send call has its queries counted, and the control room of the interleaved check is created.
    """
    import django

    django.setup()
    from datetime import timedelta

    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from im import events, selectors, services
    from im.identity import new_message_id
    from im.models import ChatUser, Event, EventRecipient, EventStream, Message, MessageKind, UserRole

    room = selectors.room_get(room_id)
    sender = ChatUser.objects.get(pk=ADMIN_ID)
    recipients = events.message_recipients(
        member_ids=selectors.room_member_ids(room), sender_id=sender.id, mentions=[], is_direct=room.is_direct
    )
    insert_message = insert_statement(
        connection, Message, ["message_id", "room", "sender", "kind", "content", "mentions", "created_at"]
    )
    insert_event = insert_statement(
        connection,
        Event,
        ["seq", "stream", "type", "room_id", "message_id", "payload", "bot_payload", "created_at"],
    )
    insert_recipient = insert_statement(connection, EventRecipient, ["event", "recipient_id", "mentioned"])
    event_table = connection.ops.quote_name(Event._meta.db_table)
    as_db_time = connection.ops.adapt_datetimefield_value
    # Spread over the last `count` milliseconds, older than anything the server writes next.
    first_at = timezone.now() - timedelta(milliseconds=count)
    started = time.perf_counter()
    for batch_start in range(0, count, FILL_BATCH):
        message_rows, event_rows, recipient_rows = [], [], []
        # The write lock is held from BEGIN IMMEDIATE, so the event seqs we number here stay free.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SELECT COALESCE(MAX(seq), 0) FROM {event_table}")
            last_seq = cursor.fetchone()[0]
            for index in range(batch_start, min(batch_start + FILL_BATCH, count)):
                message = Message(
                    message_id=new_message_id(),
                    room_id=room.id,
                    sender_id=sender.id,
                    kind=MessageKind.MESSAGE,
                    content=f"history message {index}",
                    mentions=[],
                    created_at=first_at + timedelta(milliseconds=index),
                )
                created_at = as_db_time(message.created_at)
                last_seq += 1
                payload = {"type": events.MESSAGE_CREATED, **events.message_created_payload(message, sender)}
                bot_payload = events.bot_message_payload(message, sender, is_direct=room.is_direct)
                message_rows.append(
                    (message.message_id, room.id, sender.id, message.kind, message.content, "[]", created_at)
                )
                event_rows.append(
                    (
                        last_seq,
                        EventStream.IM,
                        events.MESSAGE_CREATED,
                        room.id,
                        message.message_id,
                        json.dumps(payload),
                        json.dumps(bot_payload),
                        created_at,
                    )
                )
                recipient_rows.extend((last_seq, user_id, mentioned) for user_id, mentioned in recipients)
            cursor.executemany(insert_message, message_rows)
            cursor.executemany(insert_event, event_rows)
            cursor.executemany(insert_recipient, recipient_rows)
    fill_seconds = time.perf_counter() - started
    with CaptureQueriesContext(connection) as captured:
        services.message_send(room_id=room.id, sender_id=sender.id, content="query count probe")
    peer = services.user_ensure(
        user_id=CONTROL_PEER_ID, name="bench peer", handle="bench-peer", role=UserRole.WORKER
    )
    control_room, _created = services.direct_room_ensure(
        user=peer.user, title="bench peer", first_sender_id=CONTROL_PEER_ID
    )
    return {
        "inserted": count,
        "seconds": fill_seconds,
        "queries_per_send": len(captured.captured_queries),
        "room_messages": Message.objects.filter(room=room).count(),
        "control_room_id": control_room.id,
    }


def insert_statement(connection, model, field_names: list[str]) -> str:
    """An INSERT for the given model fields, with column and table names taken from the model."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(model._meta.get_field(name).column) for name in field_names)
    placeholders = ", ".join(["%s"] * len(field_names))
    return f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders})"


# --- report ------------------------------------------------------------------------------------------


def short_count(count: int) -> str:
    return f"{count // 1000}k" if count >= 1000 else str(count)


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def format_optional(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def print_phase_table(phases: list[PhaseResult]) -> None:
    header = (
        f"{'phase':<40}{'done':>7}{'errors':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'ms/req':>9}{'srv CPU ms/req':>16}"
    )
    print(header)
    print("-" * len(header))
    for phase in phases:
        flag = " (time limit)" if phase.stopped_early else ""
        print(
            f"{phase.label:<40}{phase.completed:>7}{phase.errors:>8}{phase.requests_per_second:>9.1f}"
            f"{phase.percentile_ms(50):>9.1f}{phase.percentile_ms(99):>9.1f}{phase.percentile_ms(100):>9.1f}"
            f"{phase.cost_ms:>9.2f}{format_optional(phase.server_cpu_ms, '.2f'):>16}{flag}"
        )
    for phase in phases:
        if phase.errors:
            print(f"  first error in {phase.label!r}: {phase.first_error}")


def combined(label: str, phases: list[PhaseResult]) -> PhaseResult:
    """Several phases as one: their requests, errors, wall time and server CPU added up."""
    cpu = [phase.server_cpu for phase in phases]
    return PhaseResult(
        label,
        latencies=[latency for phase in phases for latency in phase.latencies],
        errors=sum(phase.errors for phase in phases),
        first_error=next((phase.first_error for phase in phases if phase.first_error), ""),
        elapsed=sum(phase.elapsed for phase in phases),
        server_cpu=None if None in cpu else sum(cpu),
        stopped_early=any(phase.stopped_early for phase in phases),
    )


def print_ratio(title: str, base: PhaseResult, base_name: str, loaded: PhaseResult, loaded_name: str) -> None:
    print(f"  {title}:")
    print(
        f"    wall:       {base.cost_ms:.2f} ms ({base_name}) vs {loaded.cost_ms:.2f} ms ({loaded_name}), "
        f"ratio {loaded.cost_ms / base.cost_ms:.3f}"
    )
    if base.server_cpu_ms and loaded.server_cpu_ms:
        print(
            f"    server CPU: {base.server_cpu_ms:.2f} ms vs {loaded.server_cpu_ms:.2f} ms, "
            f"ratio {loaded.server_cpu_ms / base.server_cpu_ms:.3f}"
        )


def print_history_comparison(
    send_0: PhaseResult, send_full: PhaseResult, control: PhaseResult, loaded: PhaseResult, history: int
) -> None:
    print("per-message cost (ms per message with all clients busy):")
    full_name = f"history {history:,}"
    print_ratio("before/after the fill, same room", send_0, "history 0", send_full, full_name)
    order = " ".join(kind[0].upper() for kind in INTERLEAVED_ORDER)
    print_ratio(
        f"interleaved after the fill ({order})", control, "control room, no history", loaded, full_name
    )
    print(
        "  The before/after ratio also carries any change in the machine's load between its two phases;\n"
        "  the interleaved one does not, so the target is judged on it (on server CPU, see history_ratio)."
    )


def history_ratio(control: PhaseResult, loaded: PhaseResult) -> tuple[float, str]:
    """The ratio the target is judged on, and what it is a ratio of.

    Server CPU per message where /proc has it: this server has multi-second stragglers under 16 writers
    (SQLite's busy handler sleeps up to 100 ms per retry), so a phase's wall time is partly set by its
    slowest request, and identical runs gave wall ratios from 0.7 to 1.6. The CPU is the work the server
    did per message, which is what a growing history would increase.
    """
    if control.server_cpu_ms and loaded.server_cpu_ms:
        return loaded.server_cpu_ms / control.server_cpu_ms, "server CPU"
    return loaded.cost_ms / control.cost_ms, "wall"


def print_targets(send_0: PhaseResult, control: PhaseResult, loaded: PhaseResult, history: int) -> None:
    ratio, basis = history_ratio(control, loaded)
    rows = [
        (
            "throughput, history 0",
            f"{send_0.requests_per_second:.1f} msg/s",
            f">= {TARGET_MESSAGES_PER_SECOND:.0f}",
            send_0.requests_per_second >= TARGET_MESSAGES_PER_SECOND,
        ),
        (
            "p99 latency, history 0",
            f"{send_0.percentile_ms(99):.1f} ms",
            f"<= {TARGET_P99_MS:.0f}",
            send_0.percentile_ms(99) <= TARGET_P99_MS,
        ),
        (
            f"cost ratio {short_count(history)} / 0 ({basis})",
            f"{ratio:.3f}",
            f"<= {TARGET_HISTORY_RATIO}",
            ratio <= TARGET_HISTORY_RATIO,
        ),
    ]
    errors = send_0.errors + control.errors + loaded.errors
    print(f"{'target':<34}{'measured':>16}{'target':>10}  result")
    for name, measured, target, passed in rows:
        print(f"{name:<34}{measured:>16}{target:>10}  {verdict(passed and not errors)}")
    if errors:
        print(f"  ({errors} failed sends: every target counts as MISS)")


# --- main --------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=4000, help="measured sends per phase (default 4000)")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests per phase (default 200)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument(
        "--history", type=int, default=100_000, help="messages of history to insert (default 100000)"
    )
    parser.add_argument(
        "--interleaved-messages",
        type=int,
        default=120,
        help=f"sends per round of the interleaved check ({len(INTERLEAVED_ORDER)} rounds; default 120)",
    )
    parser.add_argument(
        "--phase-seconds", type=float, default=30.0, help="time limit of each measured phase (default 30)"
    )
    parser.add_argument(
        "--app",
        default="csgclaw_site.asgi:application",
        help="ASGI application for daphne, to compare a candidate optimisation against the default",
    )
    # Internal: the history fill, run in a subprocess that has the server's environment.
    parser.add_argument("--fill-history", nargs=2, metavar=("ROOM_ID", "COUNT"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.fill_history:
        room_id, count = args.fill_history
        print(json.dumps(fill_history(room_id, int(count))))
        return 0

    run_started = time.monotonic()
    load_at_start = os.getloadavg()
    home = Path(tempfile.mkdtemp(prefix="csgclaw-bench-"))
    env = server_environment(home)
    server: Server | None = None
    try:
        run_checked([sys.executable, "manage.py", "migrate", "--no-input"], env, "manage.py migrate")
        server = Server(app=args.app, env=env, log_path=home / "daphne.log")
        server.wait_healthy()
        room_id = direct_room_id(server.base_url)
        print(
            f"csgclaw message-send benchmark: {args.clients} clients, {os.cpu_count()} CPUs, "
            f"load average at start {' '.join(f'{x:.2f}' for x in load_at_start)}"
        )
        print(f"server: daphne {server.base_url} {args.app} (pid {server.process.pid}), SQLite WAL in {home}")
        print(f"room: {room_id} (the seeded admin & manager direct room), sender {ADMIN_ID}")
        print()

        common = {
            "base_url": server.base_url,
            "total": args.messages,
            "warmup": args.warmup,
            "clients": args.clients,
            "time_limit": args.phase_seconds,
            "server_pid": server.process.pid,
        }

        def sender_to(target_room_id: str) -> RequestFn:
            def send(client: httpx.Client, number: int) -> httpx.Response:
                body = {
                    "room_id": target_room_id,
                    "sender_id": ADMIN_ID,
                    "content": f"benchmark message {number}",
                }
                return client.post("/api/v1/messages", json=body)

            return send

        client_cpu = time.process_time()
        floor = run_phase(
            "GET /healthz (server floor)",
            request=lambda client, _number: client.get("/healthz"),
            expected_status=200,
            **common,
        )
        floor_client_cpu = time.process_time() - client_cpu
        send_0 = run_phase(
            "POST /api/v1/messages, history 0", request=sender_to(room_id), expected_status=201, **common
        )

        fill_started = time.perf_counter()
        fill_output = run_checked(
            [sys.executable, str(Path(__file__).resolve()), "--fill-history", room_id, str(args.history)],
            env,
            "history fill",
        )
        fill = json.loads(fill_output.strip().splitlines()[-1])
        fill_wall = time.perf_counter() - fill_started

        send_full = run_phase(
            f"POST /api/v1/messages, history {short_count(args.history)}",
            request=sender_to(room_id),
            expected_status=201,
            **common,
        )
        rounds: dict[str, list[PhaseResult]] = {"control": [], "history": []}
        for kind in INTERLEAVED_ORDER:
            target_room_id = fill["control_room_id"] if kind == "control" else room_id
            rounds[kind].append(
                run_phase(
                    kind,
                    request=sender_to(target_room_id),
                    expected_status=201,
                    **{
                        **common,
                        "total": args.interleaved_messages,
                        # One request per connection opens it; the server is warm already.
                        "warmup": args.clients,
                        "time_limit": args.phase_seconds / 4,
                    },
                )
            )
        control = combined("  interleaved: control room (history 0)", rounds["control"])
        loaded = combined(f"  interleaved: history {short_count(args.history)}", rounds["history"])

        print_phase_table([floor, send_0, send_full, control, loaded])
        print(
            f"(ms/req = wall time per request with all {args.clients} clients busy; client CPU on the "
            f"floor phase: {floor_client_cpu / max(floor.completed, 1) * 1000:.2f} ms/req, same machine)"
        )
        print()
        print(
            f"history fill: {fill['inserted']:,} messages + message.created events + recipients via "
            f"executemany in {fill['seconds']:.1f} s ({fill_wall:.1f} s with Django start-up); "
            f"the room held {fill['room_messages']:,} messages after it"
        )
        print(
            "queries per message_send (direct service call, CaptureQueriesContext): "
            f"{fill['queries_per_send']}"
        )
        print()
        print_history_comparison(send_0, send_full, control, loaded, args.history)
        print()
        print_targets(send_0, control, loaded, args.history)
        print()
        print(
            f"send vs floor: a send costs {send_0.cost_ms / floor.cost_ms:.1f}x a /healthz round trip "
            f"({send_0.cost_ms:.2f} vs {floor.cost_ms:.2f} ms per request)"
        )
        print(
            f"run took {time.monotonic() - run_started:.0f} s; load average at end "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} (other processes on this machine skew wall "
            "times)"
        )
        return 0
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
