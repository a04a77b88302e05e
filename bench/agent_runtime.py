"""Benchmark of the built-in agent runtime (builtin-runtime.md §9): memory, start-up and turn latency.

Run with `.venv/bin/python bench/agent_runtime.py` (or `python -m bench.agent_runtime`). Each isolation
mode (`none`, then `bwrap` when bubblewrap works here) gets its own `manage.py runserver` on a temporary
home with the real `local` provider and `[sandbox] runtime = "builtin"`; the model is a `ScriptedOpenAI`
on loopback that answers at once and records when each request arrived.

Figures, each printed with its target as PASS/MISS (never asserted: a shared machine would make it flaky):
- idle RSS per runtime: manager + 4 workers connected, 5 s idle, VmRSS of each runtime process;
- start → connected: `POST /start` → `connected: true` in the status file, over `--restarts` restarts;
- message → first LLM call: `--messages` admin messages one at a time; the model's arrival time − the
  message's `created_at` (same clock);
- full turn, no tool: reply `created_at` − message `created_at` − the model's own handling time;
- full turn, 2 tools: `exec("true")`, `write_file`, final answer, with tool feedback on;
- 5 rooms at once: one mention of the manager in each of 5 group rooms at the same moment.

Baseline, measured in the same run: how long the server takes to put the same message on a bot stream
held by this process (`message → stream frame`). The runtime reads the same stream, so that is the floor
under "message → first LLM call".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent_runtime.tests.live_team import ACCESS_TOKEN, ADMIN_ID, MANAGER_ID, LiveTeam, start_team
from bench.message_send import verdict
from bots.tests.scripted_openai import (
    ScriptedOpenAI,
    agent,
    last_tool_contains,
    last_user_contains,
    text,
    tool_call,
)

WORKERS = 4
IDLE_SECONDS = 5.0
TURN_SECONDS = 20.0
TARGET_IDLE_MIB = 40.0
TARGET_CONNECT_P50 = 0.8
TARGET_FIRST_CALL_P50_MS = 50.0
TARGET_FIRST_CALL_P95_MS = 100.0
TARGET_TURN_P50_MS = 80.0
TARGET_TOOLS_TURN_P50_MS = 250.0
TARGET_ROOMS_P50_MS = 100.0


def parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def percentile(values: list[float], percent: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))]


def vm_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bwrap_works() -> bool:
    bwrap = shutil.which("bwrap")
    return bool(bwrap) and subprocess.run([bwrap, "--ro-bind", "/", "/", "true"], check=False).returncode == 0


@dataclass
class Row:
    figure: str
    value: str
    target: str
    passed: bool | None


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def add(self, figure: str, value: str, target: str = "", passed: bool | None = None) -> None:
        self.rows.append(Row(figure, value, target, passed))
        print(
            f"  {figure:<44} {value:<34} {target:<18} {'' if passed is None else verdict(passed)}", flush=True
        )


def script(provider: ScriptedOpenAI) -> None:
    provider.rule(last_user_contains("use two tools"), answer=tool_call("exec", command="true"), repeat=True)
    provider.rule(
        last_tool_contains("(no output)"),
        answer=tool_call("write_file", path="bench.txt", content="x", overwrite=True),
        repeat=True,
    )
    provider.rule(last_tool_contains("File written"), answer=text("tools done"), repeat=True)
    provider.rule(agent(MANAGER_ID), answer=text("ok"), repeat=True)
    provider.rule(answer=text("Noted."), repeat=True)


class StreamClock:
    """A bot stream of the manager held by the bench: when each message id's frame arrived."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.arrivals: dict[str, float] = {}
        self.ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._read(),), daemon=True
        )

    def start(self) -> StreamClock:
        self._thread.start()
        self.ready.wait(10)
        return self

    async def _read(self) -> None:
        headers = {"Authorization": f"Bearer {ACCESS_TOKEN}"}
        url = f"{self.base_url}/api/bots/{MANAGER_ID}/events"
        # Ends quietly when the server goes away at the end of its mode.
        with contextlib.suppress(httpx.HTTPError):
            async with (
                httpx.AsyncClient(timeout=None, trust_env=False) as client,
                client.stream("GET", url, headers=headers) as response,
            ):
                self.ready.set()
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        data = json.loads(line[5:])
                        self.arrivals.setdefault(data.get("message_id", ""), time.time())


def wait_until(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


@dataclass
class Turn:
    first_call_ms: float
    turn_ms: float
    floor_ms: float | None


def one_turn(team: LiveTeam, room: str, content: str, final: str, clock: StreamClock | None) -> Turn | None:
    """Send one admin message and time the turn it starts; None when no reply came in time."""
    provider = team.provider
    before = len(provider.calls)
    sent = team.say(room, content)
    created = parse_time(sent["created_at"])

    def replied() -> dict | None:
        for message in reversed(team.messages(room)):
            # Tool feedback comes from the manager too: the turn ends with its final answer.
            if message["sender_id"] == MANAGER_ID and message["content"] == final:
                return message if parse_time(message["created_at"]) > created else None
        return None

    if not wait_until(lambda: len(provider.calls) > before, TURN_SECONDS):
        return None
    reply = team.wait_for(replied, "the reply", timeout=TURN_SECONDS)
    calls = provider.calls[before:]
    handling = sum(call.answered_at - call.arrived_at for call in calls)
    floor = None
    if clock is not None and wait_until(lambda: sent["id"] in clock.arrivals, 2):
        floor = (clock.arrivals[sent["id"]] - created) * 1000
    return Turn(
        first_call_ms=(calls[0].arrived_at - created) * 1000,
        turn_ms=(parse_time(reply["created_at"]) - created - handling) * 1000,
        floor_ms=floor,
    )


def measure_turns(
    team: LiveTeam, room: str, count: int, prompt: str, final: str, clock: StreamClock | None
) -> list[Turn]:
    turns = []
    for number in range(count):
        turn = one_turn(team, room, f"{prompt} #{number}", final, clock)
        if turn is not None:
            turns.append(turn)
        # The next message must not land while this turn still posts its last words.
        time.sleep(0.05)
    return turns


def restart_seconds(team: LiveTeam) -> float | None:
    """Stop and start the manager: seconds from the start request to `connected: true` of the new run."""
    team.post(f"/api/v1/agents/{MANAGER_ID}/stop", {})
    started = time.time()
    team.post(f"/api/v1/agents/{MANAGER_ID}/start", {})

    def connected() -> bool:
        status = team.runtime_status("manager")
        # The new run's own start time: under bwrap its pid is one of its own namespace.
        return bool(status and status.get("connected") and parse_time(status["started_at"]) >= started - 0.01)

    return time.time() - started if wait_until(connected, 10) else None


def run_mode(isolation: str, args: argparse.Namespace, report: Report) -> None:
    print(f"\n== isolation: {isolation}", flush=True)
    home = Path(tempfile.mkdtemp(prefix="csgclaw-bench-runtime-"))
    with ScriptedOpenAI(models=["scripted-model"]) as provider:
        script(provider)
        team = start_team(home, provider, isolation=isolation)
        try:
            team.wait_running(MANAGER_ID, timeout=60)
            team.wait_connected("manager")
            for number in range(WORKERS):
                created = team.post("/api/v1/agents", {"name": f"bench{number}"})
                assert created.status_code in (200, 201), created.text
            for number in range(WORKERS):
                team.wait_running(f"u-bench{number}", timeout=60)
                team.wait_connected(f"bench{number}")
            time.sleep(IDLE_SECONDS)
            rss = [
                vm_rss_mib(team.runtime_pid(slug) or 0)
                for slug in ["manager"] + [f"bench{n}" for n in range(WORKERS)]
            ]
            report.add(
                f"idle RSS per runtime [{isolation}]",
                f"max {max(rss):.1f} MiB, mean {statistics.mean(rss):.1f}",
                f"≤ {TARGET_IDLE_MIB:.0f} MiB",
                max(rss) <= TARGET_IDLE_MIB,
            )

            connects = [
                seconds for _ in range(args.restarts) if (seconds := restart_seconds(team)) is not None
            ]
            report.add(
                f"start → connected [{isolation}]",
                f"p50 {percentile(connects, 50):.2f} s (n={len(connects)})",
                f"p50 ≤ {TARGET_CONNECT_P50} s",
                percentile(connects, 50) <= TARGET_CONNECT_P50,
            )

            room = team.direct_room(MANAGER_ID)
            clock = StreamClock(team.base_url).start()
            plain = measure_turns(team, room, args.messages, "hello", "ok", clock)
            floors = [turn.floor_ms for turn in plain if turn.floor_ms is not None]
            first_calls = [turn.first_call_ms for turn in plain]
            turns = [turn.turn_ms for turn in plain]
            report.add(
                f"baseline: message → stream frame [{isolation}]",
                f"p50 {percentile(floors, 50):.1f} ms, p95 {percentile(floors, 95):.1f}",
            )
            report.add(
                f"message → first LLM call [{isolation}]",
                f"p50 {percentile(first_calls, 50):.1f} ms, p95 {percentile(first_calls, 95):.1f}"
                f" (n={len(first_calls)})",
                f"p50 ≤ {TARGET_FIRST_CALL_P50_MS:.0f}, p95 ≤ {TARGET_FIRST_CALL_P95_MS:.0f}",
                percentile(first_calls, 50) <= TARGET_FIRST_CALL_P50_MS
                and percentile(first_calls, 95) <= TARGET_FIRST_CALL_P95_MS,
            )
            report.add(
                f"full turn, no tool [{isolation}]",
                f"p50 {percentile(turns, 50):.1f} ms",
                f"p50 ≤ {TARGET_TURN_P50_MS:.0f} ms",
                percentile(turns, 50) <= TARGET_TURN_P50_MS,
            )

            tools = [
                turn.turn_ms
                for turn in measure_turns(team, room, args.tool_turns, "use two tools", "tools done", None)
            ]
            report.add(
                f"full turn, 2 tools [{isolation}]",
                f"p50 {percentile(tools, 50):.1f} ms (n={len(tools)})",
                f"p50 ≤ {TARGET_TOOLS_TURN_P50_MS:.0f} ms",
                percentile(tools, 50) <= TARGET_TOOLS_TURN_P50_MS,
            )

            report_rooms(team, isolation, report)
        finally:
            team.stop()
            shutil.rmtree(home, ignore_errors=True)


def report_rooms(team: LiveTeam, isolation: str, report: Report) -> None:
    rooms = [
        team.post(
            "/api/v1/im/rooms", {"title": f"room {n}", "creator_id": ADMIN_ID, "member_ids": [MANAGER_ID]}
        ).json()["id"]
        for n in range(5)
    ]
    before = len(team.provider.calls)
    barrier = threading.Barrier(len(rooms))
    created: list[float] = []

    def post(room: str) -> None:
        barrier.wait()
        sent = team.say(room, '<at user_id="u-manager">manager</at> all at once')
        created.append(parse_time(sent["created_at"]))

    threads = [threading.Thread(target=post, args=(room,)) for room in rooms]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_until(lambda: len(team.provider.calls) >= before + len(rooms), TURN_SECONDS)
    arrivals = sorted(call.arrived_at for call in team.provider.calls[before:])
    latencies = [(arrival - sent) * 1000 for arrival, sent in zip(arrivals, sorted(created), strict=False)]
    report.add(
        f"5 rooms at once, first call [{isolation}]",
        f"p50 {percentile(latencies, 50):.1f} ms (n={len(latencies)})",
        f"p50 ≤ {TARGET_ROOMS_P50_MS:.0f} ms",
        percentile(latencies, 50) <= TARGET_ROOMS_P50_MS,
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=200, help="admin messages, one at a time")
    parser.add_argument("--tool-turns", type=int, default=30, help="turns with two tool calls")
    parser.add_argument("--restarts", type=int, default=10, help="stop/start cycles of the manager")
    parser.add_argument("--no-bwrap", action="store_true", help="skip the bubblewrap rows")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    report = Report()
    print(f"{'figure':<46} {'value':<34} {'target':<18} verdict")
    run_mode("none", args, report)
    if not args.no_bwrap:
        if bwrap_works():
            run_mode("bwrap", args, report)
        else:
            print("\n(bubblewrap is not installed or cannot run here: no bwrap rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
