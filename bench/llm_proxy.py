"""Benchmark of the LLM bridge: latency it adds over calling the provider directly, plain and streamed.

Run with `.venv/bin/python bench/llm_proxy.py` (or `python -m bench.llm_proxy`). One run starts a fake
OpenAI provider on loopback and a Daphne subprocess whose config.toml points at it, then sends the same
requests alternately straight to the provider and through `/api/bots/<id>/llm/chat/completions`:

* plain calls: full response time; added = bridge − direct (median and p99);
* streams: time to the first body byte; added TTFB = bridge − direct.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

if __package__ in (None, ""):
    # Run as a script: make the repository importable (bench helpers, the fake provider).
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.message_send import REPO, Server, run_checked, server_environment, verdict
from bots.tests.fake_openai import FakeOpenAI

ACCESS_TOKEN = "bench-access-token"
PROVIDER_KEY = "sk-bench-provider"
MODEL = "bench-model"
AGENT_ID = "u-bench"
OVERHEAD_HEADER = "X-CSGClaw-Overhead-Ms"

# The targets: what the bridge may add to a call on this machine.
TARGET_ADDED_MEDIAN_MS = 2.0
TARGET_ADDED_TTFB_MS = 3.0

# Bounds that keep a run to about a minute even on a slow machine: a phase that reaches its time limit
# stops early and reports what it measured.
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
class Comparison:
    name: str
    direct: Samples
    bridge: Samples
    overhead_header_ms: list[int] = field(default_factory=list)
    stopped_early: bool = False

    @property
    def added_median_ms(self) -> float:
        return self.bridge.median_ms - self.direct.median_ms

    @property
    def added_p99_ms(self) -> float:
        return self.bridge.percentile_ms(99) - self.direct.percentile_ms(99)


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
        # The rest is read so that the keep-alive connection can serve the next request.
        for _ in chunks:
            pass
    return elapsed, response.headers


def compare(
    name: str,
    measure: Measure,
    body: dict | None,
    *,
    direct_url: str,
    bridge_url: str,
    requests: int,
    warmup: int,
) -> Comparison:
    """Alternate direct and bridged requests, so drift in machine load hits both sides alike."""
    comparison = Comparison(name, Samples("direct"), Samples("bridge"))
    headers = {"Authorization": f"Bearer {ACCESS_TOKEN}"}
    with (
        httpx.Client(trust_env=False, timeout=REQUEST_TIMEOUT_SECONDS) as direct_client,
        httpx.Client(trust_env=False, timeout=REQUEST_TIMEOUT_SECONDS, headers=headers) as bridge_client,
    ):
        for _ in range(warmup):
            measure(direct_client, direct_url, body)
            measure(bridge_client, bridge_url, body)
        stop_at = time.monotonic() + PHASE_SECONDS
        for _ in range(requests):
            if time.monotonic() >= stop_at:
                comparison.stopped_early = True
                break
            direct_seconds, _ = measure(direct_client, direct_url, body)
            bridge_seconds, bridge_headers = measure(bridge_client, bridge_url, body)
            comparison.direct.seconds.append(direct_seconds)
            comparison.bridge.seconds.append(bridge_seconds)
            if OVERHEAD_HEADER in bridge_headers:
                comparison.overhead_header_ms.append(int(bridge_headers[OVERHEAD_HEADER]))
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
        f"{'measurement':<30}{'n':>6}{'direct p50':>12}{'bridge p50':>12}{'added p50':>11}"
        f"{'direct p99':>12}{'bridge p99':>12}{'added p99':>11}{'hdr p50':>9}"
    )
    print(header)
    print("-" * len(header))
    for item in comparisons:
        flag = " (time limit)" if item.stopped_early else ""
        header_median = statistics.median(item.overhead_header_ms) if item.overhead_header_ms else math.nan
        print(
            f"{item.name:<30}{len(item.bridge.seconds):>6}{item.direct.median_ms:>12.2f}"
            f"{item.bridge.median_ms:>12.2f}{item.added_median_ms:>11.2f}{item.direct.percentile_ms(99):>12.2f}"
            f"{item.bridge.percentile_ms(99):>12.2f}{item.added_p99_ms:>11.2f}{header_median:>9.0f}{flag}"
        )
    print("(milliseconds; hdr = the bridge's own X-CSGClaw-Overhead-Ms account of its work; the floor row")
    print(" is Daphne + Django + middleware for a trivial view, part of every bridged call's added time)")


def print_targets(floor: Comparison, plain: Comparison, stream: Comparison) -> None:
    rows = [
        ("added latency, plain, median", plain.added_median_ms, TARGET_ADDED_MEDIAN_MS),
        ("added TTFB, stream, median", stream.added_median_ms, TARGET_ADDED_TTFB_MS),
    ]
    print(f"{'target':<34}{'measured':>12}{'target':>10}  result")
    for name, measured, target in rows:
        print(
            f"{name:<34}{measured:>9.2f} ms{'<= ' + format(target, 'g'):>10}  {verdict(measured <= target)}"
        )
    print(
        f"beyond the floor the bridge adds {plain.added_median_ms - floor.added_median_ms:.2f} ms (plain), "
        f"{stream.added_median_ms - floor.added_median_ms:.2f} ms (first byte) at the median"
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="measured pairs per phase (default 400)")
    parser.add_argument("--warmup", type=int, default=40, help="unmeasured pairs per phase (default 40)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    run_started = time.monotonic()
    home = Path(tempfile.mkdtemp(prefix="csgclaw-bench-llm-"))
    env = server_environment(home)
    server: Server | None = None
    with FakeOpenAI(models=[MODEL]) as provider:
        try:
            (home / "config.toml").write_text(config_toml(provider.base_url))
            run_checked([sys.executable, "manage.py", "migrate", "--no-input"], env, "manage.py migrate")
            run_checked([sys.executable, "manage.py", "shell", "-c", CREATE_AGENT], env, "agent creation")
            server = Server(app="csgclaw_site.asgi:application", env=env, log_path=home / "daphne.log")
            server.wait_healthy()
            print(
                f"csgclaw LLM bridge benchmark: {os.cpu_count()} CPUs, load average at start "
                f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
            )
            print(f"provider: fake OpenAI at {provider.base_url} (in this process, stdlib http.server)")
            print(
                f"bridge: daphne {server.base_url} (pid {server.process.pid}), agent {AGENT_ID}, repo {REPO}"
            )
            print()
            rounds = {"requests": args.requests, "warmup": args.warmup}
            # What any request through Daphne and Django costs, bridge or not: a GET of /healthz against
            # a GET of the provider's /models.
            floor = compare(
                "floor: GET /healthz",
                get_response_time,
                None,
                direct_url=f"{provider.base_url}/models",
                bridge_url=f"{server.base_url}/healthz",
                **rounds,
            )
            common = {
                "direct_url": f"{provider.base_url}/chat/completions",
                "bridge_url": f"{server.base_url}/api/bots/{AGENT_ID}/llm/chat/completions",
                **rounds,
            }
            plain = compare("plain call, full response", full_response_time, BODY, **common)
            # Drop what the fake provider recorded; it is only needed by the tests.
            provider.reset()
            stream = compare("stream, first byte", time_to_first_byte, STREAM_BODY, **common)
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
            if server is not None:
                server.stop()
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
