"""Benchmark of the LLM bridge's two per-call statements: hand-built SQL against the ORM, in ms per call.

Run with `.venv/bin/python bench/sql_vs_orm.py` (or `python -m bench.sql_vs_orm`). Issue 12 keeps a
statement in hand-built SQL only if the ORM costs more than 0.3 ms per call on top of it. Every LLM call
runs both statements: the read of the agent's model choice before the call (bots/selectors.py) and the
insert of its usage row after it (bots/llm/usage.py). For each database (file SQLite in WAL under a
temporary CSGCLAW_HOME, the embedded default; PostgreSQL on 127.0.0.1:5432 when it lets us in), a child
process with the server's settings times the two forms in alternating rounds on one thread with a kept
connection, as the bridge's database threads run them, and prints the median wall and CPU time per call.
The verdict is judged on CPU time: it is what a statement holds the GIL for while the event loop waits,
and it stays steady when other processes load the machine, which makes wall times swing several-fold.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: make the repository importable (bench helpers).
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.message_send import REPO, run_checked, server_environment

# Above this, the ORM's extra cost per call is worth a hand-built statement (issue 12, item 6).
THRESHOLD_MS = 0.3
AGENT_ID = "u-bench"
PG_HOST, PG_PORT = "127.0.0.1", 5432
# The users that trust authentication on a developer's PostgreSQL usually lets in.
PG_USERS = ("postgres", "root")
# The 4 stored fields an agent's model is picked by (bots.selectors.AgentModelChoice).
MODEL_CHOICE_FIELDS = ("profile", "provider", "model_id", "reasoning_effort")


def measure(rounds: int, calls: int) -> None:
    """In the child: time both forms of each statement and print one line per statement and form."""
    import django

    django.setup()
    from django.db import connection

    from agents.models import Agent
    from bots.models import LlmOutcome, LlmUsage

    Agent.objects.create(id=AGENT_ID, name="bench", slug="bench", role="worker", profile="fake.bench-model")
    quote = connection.ops.quote_name
    select_sql = (
        f"SELECT {', '.join(quote(Agent._meta.get_field(name).column) for name in MODEL_CHOICE_FIELDS)} "
        f"FROM {quote(Agent._meta.db_table)} WHERE {quote(Agent._meta.pk.column)} = %s"
    )
    insert_fields = [field for field in LlmUsage._meta.concrete_fields if not field.primary_key]
    insert_sql = (
        f"INSERT INTO {quote(LlmUsage._meta.db_table)} ({', '.join(quote(f.column) for f in insert_fields)}) "
        f"VALUES ({', '.join(['%s'] * len(insert_fields))})"
    )

    def read_sql() -> object:
        with connection.cursor() as cursor:
            cursor.execute(select_sql, [AGENT_ID])
            return cursor.fetchone()

    def read_orm() -> object:
        # get(), not first(): a primary-key lookup needs no ORDER BY, and first() costs more here.
        return Agent.objects.values_list(*MODEL_CHOICE_FIELDS).get(pk=AGENT_ID)

    def usage_row() -> LlmUsage:
        return LlmUsage(
            agent_id=AGENT_ID,
            model="bench-model",
            provider="fake",
            upstream_url="http://127.0.0.1:9/v1/chat/completions",
            stream=False,
            status_code=200,
            outcome=LlmOutcome.OK,
            prompt_tokens=31,
            completion_tokens=12,
            total_tokens=43,
            ttfb_ms=1.234,
            latency_ms=2.345,
            overhead_ms=1,
        )

    def insert_sql_call() -> object:
        row = usage_row()
        values = [field.get_db_prep_save(getattr(row, field.attname), connection) for field in insert_fields]
        with connection.cursor() as cursor:
            cursor.execute(insert_sql, values)
        return row

    def insert_orm() -> object:
        row = usage_row()
        row.save(force_insert=True)
        return row

    statements = {
        "read agent model choice": (read_sql, read_orm),
        "insert llm usage row": (insert_sql_call, insert_orm),
    }
    for name, (sql_form, orm_form) in statements.items():
        assert sql_form() is not None and orm_form() is not None, name
        figures = {"sql": ([], []), "orm": ([], [])}
        for _ in range(rounds):
            # Alternating rounds: drift in the machine's load weighs on both forms alike.
            for form, fn in (("sql", sql_form), ("orm", orm_form)):
                wall, cpu = _timed(fn, calls)
                figures[form][0].append(wall)
                figures[form][1].append(cpu)
        medians = {form: (statistics.median(w), statistics.median(c)) for form, (w, c) in figures.items()}
        print("\t".join([name, *(f"{value:.4f}" for form in ("sql", "orm") for value in medians[form])]))


def _timed(fn: Callable[[], object], calls: int) -> tuple[float, float]:
    """Milliseconds per call of `calls` calls: wall time and this thread's CPU time."""
    wall_started, cpu_started = time.perf_counter(), time.thread_time()
    for _ in range(calls):
        fn()
    wall, cpu = time.perf_counter() - wall_started, time.thread_time() - cpu_started
    return wall * 1000 / calls, cpu * 1000 / calls


@contextlib.contextmanager
def postgres_database() -> Iterator[str | None]:
    """A new, uniquely named PostgreSQL database, dropped afterwards; None when none can be had."""
    try:
        import psycopg
    except ImportError:
        yield None
        return
    for user in PG_USERS:
        try:
            admin = psycopg.connect(
                host=PG_HOST, port=PG_PORT, user=user, dbname="postgres", autocommit=True, connect_timeout=3
            )
        except psycopg.Error:
            continue
        name = f"csgclaw_bench_{uuid.uuid4().hex[:12]}"
        try:
            admin.execute(f'CREATE DATABASE "{name}"')
            yield f"postgres://{user}@{PG_HOST}:{PG_PORT}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()
        return
    yield None


def run_backend(label: str, database_url: str | None, args: argparse.Namespace) -> list[list[str]]:
    home = Path(tempfile.mkdtemp(prefix="csgclaw-bench-sql-"))
    try:
        env = server_environment(home)
        if database_url:
            env["DATABASE_URL"] = database_url
        migrate = [sys.executable, "manage.py", "migrate", "--no-input"]
        run_checked(migrate, env, f"{label}: manage.py migrate")
        command = [sys.executable, str(Path(__file__).resolve()), "--child"]
        command += ["--rounds", str(args.rounds), "--calls", str(args.calls)]
        completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise SystemExit(f"{label}: measuring failed:\n{completed.stderr[-3000:]}")
        return [[label, *line.split("\t")] for line in completed.stdout.splitlines() if "\t" in line]
    finally:
        shutil.rmtree(home, ignore_errors=True)


def print_report(rows: list[list[str]]) -> None:
    header = (
        f"{'database':<12}{'statement':<26}{'SQL wall':>10}{'ORM wall':>10}{'ORM +':>9}"
        f"{'SQL CPU':>10}{'ORM CPU':>10}{'ORM +':>9}  verdict"
    )
    print(header)
    print("-" * len(header))
    for label, statement, sql_wall, sql_cpu, orm_wall, orm_cpu in rows:
        extra_wall = float(orm_wall) - float(sql_wall)
        extra_cpu = float(orm_cpu) - float(sql_cpu)
        verdict = "ORM" if extra_cpu <= THRESHOLD_MS else "keep SQL"
        print(
            f"{label:<12}{statement:<26}{float(sql_wall):>10.3f}{float(orm_wall):>10.3f}{extra_wall:>+9.3f}"
            f"{float(sql_cpu):>10.3f}{float(orm_cpu):>10.3f}{extra_cpu:>+9.3f}  {verdict}"
        )
    print(f"(ms per call, medians over rounds; the ORM stays unless it adds more than {THRESHOLD_MS} ms CPU)")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="alternating rounds per form (default 15)")
    parser.add_argument("--calls", type=int, default=200, help="calls per round (default 200)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.child:
        measure(args.rounds, args.calls)
        return 0
    rows = run_backend("sqlite", None, args)
    with postgres_database() as database_url:
        if database_url is None:
            print(f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT}: measured SQLite only")
        else:
            rows += run_backend("postgresql", database_url, args)
    print_report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
