"""Benchmark of the LLM bridge: latency it adds over calling the provider directly, plain and streamed.

Run with `.venv/bin/python bench/llm_proxy.py` (or `python -m bench.llm_proxy`). One run starts a fake
OpenAI provider on loopback and a Daphne subprocess whose config.toml points at it, then sends the same
requests in turn straight to the provider and through `/api/bots/<id>/llm/chat/completions`:

* plain calls: full response time; added = bridge − direct (median and p99);
* streams: time to the first body byte; added TTFB = bridge − direct;
* the floor: `GET /healthz` against the provider's `GET /models`, what any request through Daphne and
  Django costs.

A second Daphne serves bench/bare_asgi.py (no Django: a fixed answer, or a bare httpx relay) and gets the
same requests in the same rounds: the lower bound of what Daphne and an httpx relay add on this machine,
whatever the bridge does. `srv CPU` is each server process's CPU per request (all threads, from /proc),
much steadier than wall time when other processes share the machine.

Targets are printed as PASS/MISS, never asserted (a shared, busy machine would make that flaky).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

if __package__ in (None, ""):
    # Run as a script: make the repository importable (bench helpers, the fake provider).
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.message_send import REPO, Server, process_cpu_seconds, run_checked, server_environment, verdict
from bots.tests.fake_openai import FakeOpenAI

ACCESS_TOKEN = "bench-access-token"
PROVIDER_KEY = "sk-bench-provider"
MODEL = "bench-model"
AGENT_ID = "u-bench"
OVERHEAD_HEADER = "X-CSGClaw-Overhead-Ms"
BARE_APP = "bench.bare_asgi:application"

# The targets: what the bridge may add to a call on this machine.
TARGET_ADDED_MEDIAN_MS = 2.0
TARGET_ADDED_TTFB_MS = 3.0

# Bounds that keep a run to about a minute and a half even on a slow machine: a phase that reaches its
# time limit stops early and reports what it measured.
PHASE_SECONDS = 25.0
REQUEST_TIMEOUT_SECONDS = 30.0

BODY = {
    "model": "client-model",
    "messages": [
        {"role": "system", "content": "You are a helpful agent."},
        {"role": "user", "content": "Summarise the last three messages of the room in one sentence."},
    ],
    "max_tokens": 256,
    "temperature": 0.2,
}
STREAM_BODY = {**BODY, "stream": True}


@dataclass
class Samples:
    """Seconds per request for one path; nearest-rank percentiles in milliseconds."""

    label: str
    seconds: list[float] = field(default_factory=list)

    def percentile_ms(self, percent: float) -> float:
        if not self.seconds:
            return math.inf
        ordered = sorted(self.seconds)
        rank = max(1, math.ceil(percent / 100 * len(ordered)))
        return ordered[rank - 1] * 1000

    @property
    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1000 if self.seconds else math.inf


@dataclass
class Target:
    """A server path measured against the provider: the bridge, or a lower bound without Django.

    Each target has its own direct samples, taken right before each of its requests: whatever a server
    still does after answering (closing, accounting) then overlaps the next direct call, the same way for
    every target."""

    label: str
    url: str
    server: Server
    direct: Samples = field(init=False)
    samples: Samples = field(init=False)
    overhead_header_ms: list[int] = field(default_factory=list)
    server_cpu_ms: float | None = None

    def __post_init__(self) -> None:
        self.direct = Samples("direct")
        self.samples = Samples(self.label)

    @property
    def added_median_ms(self) -> float:
        return self.samples.median_ms - self.direct.median_ms

    @property
    def added_p99_ms(self) -> float:
        return self.samples.percentile_ms(99) - self.direct.percentile_ms(99)


@dataclass
class Comparison:
    name: str
    targets: list[Target]
    stopped_early: bool = False


Measure = Callable[[httpx.Client, str, dict | None], tuple[float, httpx.Headers]]


def get_response_time(client: httpx.Client, url: str, body: dict | None) -> tuple[float, httpx.Headers]:
    started = time.perf_counter()
    response = client.get(url)
    response.read()
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, response.headers


def full_response_time(client: httpx.Client, url: str, body: dict | None) -> tuple[float, httpx.Headers]:
    started = time.perf_counter()
    response = client.post(url, json=body)
    response.read()
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, response.headers


def time_to_first_byte(client: httpx.Client, url: str, body: dict | None) -> tuple[float, httpx.Headers]:
    started = time.perf_counter()
    with client.stream("POST", url, json=body) as response:
        chunks = response.iter_raw()
        next(chunks)
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        # The rest is read (and dropped) so that the keep-alive connection can serve the next request.
        deque(chunks, maxlen=0)
    return elapsed, response.headers


def compare(
    name: str,
    measure: Measure,
    body: dict | None,
    *,
    direct_url: str,
    targets: list[Target],
    requests: int,
    warmup: int,
) -> Comparison:
    """Rounds of (direct, target) pairs over all targets, so that drift in the machine's load hits every
    path alike. Every path has its own keep-alive client (one connection each)."""
    comparison = Comparison(name, targets)
    headers = {"Authorization": f"Bearer {ACCESS_TOKEN}"}
    clients = [
        httpx.Client(trust_env=False, timeout=REQUEST_TIMEOUT_SECONDS, headers=headers) for _ in targets
    ]
    with httpx.Client(trust_env=False, timeout=REQUEST_TIMEOUT_SECONDS) as direct_client:
        try:
            for _ in range(warmup):
                for target, client in zip(targets, clients, strict=True):
                    measure(direct_client, direct_url, body)
                    measure(client, target.url, body)
            cpu_before = [process_cpu_seconds(target.server.process.pid) for target in targets]
            stop_at = time.monotonic() + PHASE_SECONDS
            for _ in range(requests):
                if time.monotonic() >= stop_at:
                    comparison.stopped_early = True
                    break
                for target, client in zip(targets, clients, strict=True):
                    direct_seconds, _ = measure(direct_client, direct_url, body)
                    seconds, response_headers = measure(client, target.url, body)
                    target.direct.seconds.append(direct_seconds)
                    target.samples.seconds.append(seconds)
                    if OVERHEAD_HEADER in response_headers:
                        target.overhead_header_ms.append(int(response_headers[OVERHEAD_HEADER]))
            for target, before in zip(targets, cpu_before, strict=True):
                after = process_cpu_seconds(target.server.process.pid)
                if before is not None and after is not None and target.samples.seconds:
                    target.server_cpu_ms = (after - before) * 1000 / len(target.samples.seconds)
        finally:
            for client in clients:
                client.close()
    return comparison


def config_toml(provider_base_url: str) -> str:
    return (
        f'[server]\naccess_token = "{ACCESS_TOKEN}"\n\n'
        f'[models]\ndefault = "fake.{MODEL}"\n\n'
        f"[models.providers.fake]\n"
        f'base_url = "{provider_base_url}"\n'
        f'api_key = "{PROVIDER_KEY}"\n'
        f'models = ["{MODEL}"]\n'
    )


CREATE_AGENT = (
    "from agents.models import Agent; "
    f"Agent.objects.create(id='{AGENT_ID}', name='bench', slug='bench', role='worker', "
    f"profile='fake.{MODEL}', provider='llm-api', model_id='{MODEL}')"
)


def print_report(comparisons: list[Comparison]) -> None:
    header = (
        f"{'measurement':<30}{'server':<12}{'n':>6}{'direct p50':>12}{'server p50':>12}{'added p50':>11}"
        f"{'added p99':>11}{'hdr p50':>9}{'srv CPU':>9}"
    )
    print(header)
    print("-" * len(header))
    for item in comparisons:
        flag = " (time limit)" if item.stopped_early else ""
        for index, target in enumerate(item.targets):
            name = item.name if index == 0 else ""
            header_median = (
                statistics.median(target.overhead_header_ms) if target.overhead_header_ms else math.nan
            )
            cpu = "n/a" if target.server_cpu_ms is None else f"{target.server_cpu_ms:.2f}"
            print(
                f"{name:<30}{target.label:<12}{len(target.samples.seconds):>6}{target.direct.median_ms:>12.2f}"
                f"{target.samples.median_ms:>12.2f}{target.added_median_ms:>11.2f}"
                f"{target.added_p99_ms:>11.2f}{header_median:>9.0f}{cpu:>9}{flag}"
            )
    print("(milliseconds; csgclaw = the bridge, bare = bench/bare_asgi.py under Daphne without Django;")
    print(" hdr = the bridge's own X-CSGClaw-Overhead-Ms account of its work; srv CPU = the server")
    print(" process's CPU per request, all threads; the floor rows are GET /healthz, part of every call)")


def print_targets(floor: Comparison, plain: Comparison, stream: Comparison) -> None:
    """The targets, judged on the bridge; the bare relay shows how much of them Daphne and httpx use up."""
    rows = [
        ("added latency, plain, median", plain, TARGET_ADDED_MEDIAN_MS),
        ("added TTFB, stream, median", stream, TARGET_ADDED_TTFB_MS),
    ]
    print(f"{'target':<34}{'measured':>12}{'target':>10}  result{'bare relay (lower bound)':>30}")
    for name, comparison, target in rows:
        bridge, bare = comparison.targets
        print(
            f"{name:<34}{bridge.added_median_ms:>9.2f} ms{'<= ' + format(target, 'g'):>10}  "
            f"{verdict(bridge.added_median_ms <= target)}{bare.added_median_ms:>27.2f} ms"
        )
    floor_added = floor.targets[0].added_median_ms
    (plain_bridge, plain_bare), (stream_bridge, stream_bare) = plain.targets, stream.targets
    print(
        f"at the median the bridge adds {plain_bridge.added_median_ms - floor_added:.2f} ms (plain) and "
        f"{stream_bridge.added_median_ms - floor_added:.2f} ms (first byte) beyond its floor, and "
        f"{plain_bridge.added_median_ms - plain_bare.added_median_ms:.2f} ms and "
        f"{stream_bridge.added_median_ms - stream_bare.added_median_ms:.2f} ms beyond the bare relay"
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="measured rounds per phase (default 400)")
    parser.add_argument("--warmup", type=int, default=40, help="unmeasured rounds per phase (default 40)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    run_started = time.monotonic()
    home = Path(tempfile.mkdtemp(prefix="csgclaw-bench-llm-"))
    env = server_environment(home)
    servers: list[Server] = []
    with FakeOpenAI(models=[MODEL]) as provider:
        try:
            (home / "config.toml").write_text(config_toml(provider.base_url))
            run_checked([sys.executable, "manage.py", "migrate", "--no-input"], env, "manage.py migrate")
            run_checked([sys.executable, "manage.py", "shell", "-c", CREATE_AGENT], env, "agent creation")
            bridge = Server(app="csgclaw_site.asgi:application", env=env, log_path=home / "daphne.log")
            servers.append(bridge)
            bare_env = {**env, "BENCH_UPSTREAM_BASE_URL": provider.base_url}
            bare = Server(app=BARE_APP, env=bare_env, log_path=home / "daphne-bare.log")
            servers.append(bare)
            for server in servers:
                server.wait_healthy()
            print(
                f"csgclaw LLM bridge benchmark: {os.cpu_count()} CPUs, load average at start "
                f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
            )
            print(f"provider: fake OpenAI at {provider.base_url} (in this process, stdlib http.server)")
            print(
                f"bridge: daphne {bridge.base_url} (pid {bridge.process.pid}), agent {AGENT_ID}, repo {REPO}"
            )
            print(f"bare: daphne {bare.base_url} (pid {bare.process.pid}), {BARE_APP}")
            print()
            rounds = {"requests": args.requests, "warmup": args.warmup}
            # What any request through Daphne (and Django) costs, bridge or not: a GET of /healthz against
            # a GET of the provider's /models.
            floor = compare(
                "floor: GET /healthz",
                get_response_time,
                None,
                direct_url=f"{provider.base_url}/models",
                targets=[
                    Target("csgclaw", f"{bridge.base_url}/healthz", bridge),
                    Target("bare", f"{bare.base_url}/healthz", bare),
                ],
                **rounds,
            )

            def chat_targets() -> list[Target]:
                return [
                    Target("csgclaw", f"{bridge.base_url}/api/bots/{AGENT_ID}/llm/chat/completions", bridge),
                    Target("bare", f"{bare.base_url}/chat/completions", bare),
                ]

            direct_url = f"{provider.base_url}/chat/completions"
            plain = compare(
                "plain call, full response",
                full_response_time,
                BODY,
                direct_url=direct_url,
                targets=chat_targets(),
                **rounds,
            )
            # Drop what the fake provider recorded; it is only needed by the tests.
            provider.reset()
            stream = compare(
                "stream, first byte",
                time_to_first_byte,
                STREAM_BODY,
                direct_url=direct_url,
                targets=chat_targets(),
                **rounds,
            )
            print_report([floor, plain, stream])
            print()
            print_targets(floor, plain, stream)
            print()
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            print(
                f"run took {time.monotonic() - run_started:.0f} s; load average at end {load} "
                "(other processes on this machine skew wall times)"
            )
            return 0
        finally:
            for server in servers:
                server.stop()
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
