"""Benchmarks of the money domain through the app in-process (httpx ASGI client, figures, no timing asserts;
the figures' correctness is asserted exactly). On demand only: see tests/bench/README.md.

    .venv/bin/python -m pytest tests/bench/bench_dashboard.py -s -p no:cacheprovider

A database of its own (created, migrated and dropped here: the test database is never touched) on the shared
PostgreSQL; the shared Redis with a private key prefix, removed at the end.

1. Dashboards (DESIGN.md target: usage over 30 days for a workspace with 1,000,000 runs in <= 100 ms).
   The fine rollup aggregates runs per workspace x day x model x user x prompt, so a workspace with 1,000,000
   runs has at most one row per key that saw a run; the day rollups (per model, per user, per prompt) hold a
   few rows per day and key, and each grouping reads the narrowest one. Two workspaces of exactly 1,000,000
   runs, seeded into the fine rollup:
   - spread: 30 days x 5 models x 50 users x 100 prompts = 750,000 keys, every one used (pessimistic: every
     user runs every prompt on every model every day), 1 run per key and 2 on a third of them;
   - concentrated: 30 days x 5 models x 20 users x 20 prompts = 60,000 keys, about 17 runs per key (closer to
     real teams, whose runs concentrate on few prompts and people).
   Plus BENCH_OTHER_WORKSPACES (3) other workspaces of 99,000 fine rows each in the same tables. The bulk
   seed bypasses the trigger that keeps the day rollups; they are then derived from the fine rollup by the
   migration's own backfill SQL, and every day rollup's totals are asserted equal to the fine rollup's.
   GET /workspaces/{ws}/usage?group_by=day|model|user|prompt over those 30 days: median, p95 and max of
   BENCH_USAGE_CALLS (20) calls through the app; the bare SQL on the day rollup the app reads beside the same
   query on the fine rollup it replaced; GET .../usage/latency by model and by prompt.
2. What the day rollups cost at settlement: the fine rollup's upsert and commit with the trigger that keeps
   the day rollups, and with it disabled, BENCH_SETTLEMENTS (1000) transactions one after another.
3. POST /workspaces/{ws}/runs throughput, 100 concurrent requests per round (no worker), budget null vs a
   large budget vs the same load spread over 10 workspaces, with the lock waits PostgreSQL saw meanwhile
   (sampled from pg_stat_activity): is the budget row lock the bottleneck?

Knobs (environment): BENCH_USAGE_CALLS (20), BENCH_OTHER_WORKSPACES (3), BENCH_SETTLEMENTS (1000),
BENCH_POST_CONCURRENCY (100), BENCH_POST_ROUNDS (5).
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import os
import statistics
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from httpx import ASGITransport
from redis.asyncio import Redis

from backend.app import create_app
from backend.core.migrate import upgrade_to_head_async
from backend.core.settings import Settings
from tests.conftest import ADMIN_DSN, MASTER_KEY, REDIS_URL, Client, _async_url
from tests.factories import Account, create_workspace, signup

USAGE_CALLS = int(os.environ.get("BENCH_USAGE_CALLS", "20"))
OTHER_WORKSPACES = int(os.environ.get("BENCH_OTHER_WORKSPACES", "3"))
POST_CONCURRENCY = int(os.environ.get("BENCH_POST_CONCURRENCY", "100"))
POST_ROUNDS = int(os.environ.get("BENCH_POST_ROUNDS", "5"))
SETTLEMENTS = int(os.environ.get("BENCH_SETTLEMENTS", "1000"))

DAYS = 30
OTHER_ROWS = 99_000
# (provider, model, input $/Mtok, output $/Mtok): $X per million tokens is X micro-dollars per token.
SEED_MODELS = [
    ("mock", "mock-1", "3", "15"),
    ("anthropic", "claude-sonnet-4-5", "3", "15"),
    ("anthropic", "claude-haiku-4-5", "1", "5"),
    ("openai", "gpt-5", "1.25", "10"),
    ("openai", "gpt-4.1-mini", "0.40", "1.60"),
]
BUCKETS = ["100", "200", "300", "500", "750"]


def _plain_dsn(name: str) -> str:
    return f"{ADMIN_DSN.rsplit('/', 1)[0]}/{name}"


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(values_ms: list[float]) -> str:
    return (
        f"median {statistics.median(values_ms):8.2f} ms  p95 {pct(values_ms, 95):8.2f} ms  "
        f"min {min(values_ms):8.2f}  max {max(values_ms):8.2f}  (n={len(values_ms)})"
    )


@pytest.fixture(scope="module")
async def bench_db() -> AsyncIterator[str]:
    """A database of the benchmark's own, dropped at the end (the pattern of conftest's database_url)."""
    name = f"pp_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        await upgrade_to_head_async(_async_url(ADMIN_DSN, name))
        yield name
    finally:
        admin = await asyncpg.connect(ADMIN_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="module")
async def bench_app(bench_db: str) -> AsyncIterator[Any]:
    prefix = f"pp-bench:{uuid.uuid4().hex[:12]}:"
    settings = Settings(
        database_url=_async_url(ADMIN_DSN, bench_db), redis_url=REDIS_URL, redis_prefix=prefix, master_key=MASTER_KEY
    )
    app = create_app(settings)
    try:
        yield app
    finally:
        if app.state.redis is not None:
            await app.state.redis.aclose()
        await app.state.engine.dispose()
        redis = Redis.from_url(REDIS_URL)
        keys = [k async for k in redis.scan_iter(match=prefix + "*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


def new_client(app) -> Client:
    return Client(transport=ASGITransport(app=app), base_url="http://testserver/api/v1", timeout=120)


async def new_prompt(client, ws: str) -> str:
    response = await client.post(f"/workspaces/{ws}/prompts", json={"name": f"bench-{uuid.uuid4().hex[:8]}"})
    assert response.status_code == 201, response.text
    pid = response.json()["id"]
    body = {
        "system": "",
        "messages": [{"role": "user", "content": "Say {{words}}"}],
        "model_config": {"provider": "mock", "model": "mock-1", "max_tokens": 256},
    }
    version = await client.post(f"/workspaces/{ws}/prompts/{pid}/versions", json=body)
    assert version.status_code == 201, version.text
    return pid


SEED_SQL = """
WITH models(idx, provider, model, in_price, out_price) AS (
    SELECT * FROM unnest($3::int[], $4::text[], $5::text[], $6::numeric[], $7::numeric[])
),
keys AS (
    SELECT i,
           i % $8 AS d,
           (i / $8) % $9 AS m,
           (i / ($8 * $9)) % $10 AS u,
           (i / ($8 * $9 * $10)) % $11 AS p,
           $13::int + (i < $14)::int AS runs
    FROM generate_series(0, $2 - 1) AS i
)
INSERT INTO usage_rollup (workspace_id, day, provider, model, user_id, prompt_id, runs, input_tokens,
                          output_tokens, cost_micros, ttft_histogram, duration_histogram)
SELECT $1::uuid,
       (now() AT TIME ZONE 'utc')::date - k.d::int,
       models.provider,
       models.model,
       md5('user-' || k.u)::uuid,
       md5('prompt-' || k.p)::uuid,
       k.runs,
       k.runs * (100 + k.i % 400),
       k.runs * (50 + k.i % 200),
       ceil(k.runs * (100 + k.i % 400) * models.in_price + k.runs * (50 + k.i % 200) * models.out_price)::bigint,
       jsonb_build_object(($12::text[])[1 + k.i % 5], k.runs),
       jsonb_build_object(($12::text[])[1 + (k.i / 7) % 5], k.runs)
FROM keys AS k JOIN models ON models.idx = k.m
"""


@dataclass(frozen=True)
class Shape:
    """How one workspace's runs spread over rollup keys: days x models x users x prompts, every key used."""

    name: str
    days: int
    models: int
    users: int
    prompts: int
    runs: int = 1_000_000

    @property
    def keys(self) -> int:
        return self.days * self.models * self.users * self.prompts


SHAPES = [
    # Pessimistic: every user touches every prompt with every model every day.
    Shape("spread: 30 d x 5 models x 50 users x 100 prompts", 30, 5, 50, 100),
    # Concentrated, closer to real teams: fewer (user, prompt) pairs carry the runs.
    Shape("concentrated: 30 d x 5 models x 20 users x 20 prompts", 30, 5, 20, 20),
]


async def seed(conn: asyncpg.Connection, workspace_id: str, shape: Shape) -> None:
    """Exactly shape.runs runs over shape.keys rollup rows (the first runs % keys rows get one more)."""
    base, extra = divmod(shape.runs, shape.keys)
    await conn.execute(
        SEED_SQL,
        workspace_id,
        shape.keys,
        list(range(len(SEED_MODELS))),
        [m[0] for m in SEED_MODELS],
        [m[1] for m in SEED_MODELS],
        [Decimal(m[2]) for m in SEED_MODELS],
        [Decimal(m[3]) for m in SEED_MODELS],
        shape.days,
        shape.models,
        shape.users,
        shape.prompts,
        BUCKETS,
        base,
        extra,
    )


# The rollup each grouping reads (backend/usage/repository.py) and the fine rollup it replaces, per grouping.
USAGE_SQL = {
    "day": ("usage_model_day", "day"),
    "model": ("usage_model_day", "concat(provider, '/', model)"),
    "user": ("usage_user_day", "user_id"),
    "prompt": ("usage_prompt_day", "prompt_id"),
}
DAY_TABLES = ("usage_model_day", "usage_user_day", "usage_prompt_day")


def _migration_backfill() -> list[str]:
    """The day rollups filled from the fine rollup by the very SQL of their migration, so the seeded tables
    agree exactly as settlement keeps them (asserted per grouping below)."""
    path = Path(__file__).parents[2] / "migrations" / "versions" / "2026_11_27_0500-usage-rollups.py"
    spec = importlib.util.spec_from_file_location("usage_rollups_migration", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [module.BACKFILL_MODEL_DAY, module.BACKFILL_USER_DAY, module.BACKFILL_PROMPT_DAY]


async def _bare_sql_ms(conn: asyncpg.Connection, table: str, key: str, args: tuple[Any, ...]) -> float:
    """Median of 7 executions of a usage query as a prepared statement under a custom plan (as the app runs it)."""
    sql = (
        f"SELECT {key} AS key, sum(runs), sum(input_tokens), sum(output_tokens), sum(cost_micros) "
        f"FROM {table} WHERE workspace_id = $1 AND day >= $2 AND day < $3 GROUP BY {key} ORDER BY {key}"
    )
    await conn.execute("SET plan_cache_mode = force_custom_plan")
    statement = await conn.prepare(sql)
    timings = []
    for _ in range(7):
        t0 = time.perf_counter()
        await statement.fetch(*args)
        timings.append((time.perf_counter() - t0) * 1000)
    await conn.execute("RESET plan_cache_mode")
    return statistics.median(timings)


async def _time_get(client, url: str, params: dict[str, str], check) -> list[float]:
    timings = []
    for call in range(USAGE_CALLS + 2):
        t0 = time.perf_counter()
        response = await client.get(url, params=params)
        elapsed = (time.perf_counter() - t0) * 1000
        assert response.status_code == 200, response.text
        check(response.json())
        if call >= 2:  # two warm-up calls
            timings.append(elapsed)
    return timings


def _usage_check(group_by: str, shape: Shape, cost: int):
    expected_rows = {"day": shape.days, "model": shape.models, "user": shape.users, "prompt": shape.prompts}

    def check(body: dict[str, Any]) -> None:
        assert body["total"]["runs"] == shape.runs
        assert body["total"]["cost_usd"] == f"{Decimal(cost) / 1_000_000:.6f}"
        assert len(body["rows"]) == expected_rows[group_by]
        assert sum(r["runs"] for r in body["rows"]) == shape.runs
        assert sum(Decimal(r["cost_usd"]) for r in body["rows"]) * 1_000_000 == cost

    return check


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


async def test_bench_usage_dashboard_over_a_million_runs(bench_app, bench_db) -> None:
    client = new_client(bench_app)
    owner: Account = await signup(client)
    workspaces = [await create_workspace(owner, f"bench-{i}") for i in range(len(SHAPES))]

    conn = await asyncpg.connect(_plain_dsn(bench_db))
    try:
        # Bulk seeding bypasses the trigger that keeps the day rollups (one call per fine row); they are derived
        # afterwards by the migration's backfill, and the totals compared below.
        await conn.execute("ALTER TABLE usage_rollup DISABLE TRIGGER usage_rollup_into_days")
        started = time.perf_counter()
        for ws, shape in zip(workspaces, SHAPES, strict=True):
            await seed(conn, ws, shape)
        for _ in range(OTHER_WORKSPACES):
            await seed(conn, str(uuid.uuid4()), Shape("other", 30, 5, 20, 33, runs=OTHER_ROWS * 2))
        seeded = time.perf_counter() - started
        started = time.perf_counter()
        for sql in _migration_backfill():
            await conn.execute(sql)
        derived = time.perf_counter() - started
        await conn.execute("ALTER TABLE usage_rollup ENABLE TRIGGER usage_rollup_into_days")
        for table in ("usage_rollup", *DAY_TABLES):
            await conn.execute(f"VACUUM ANALYZE {table}")
        sizes = {
            table: (
                await conn.fetchval(f"SELECT count(*) FROM {table}"),
                await conn.fetchval(f"SELECT pg_size_pretty(pg_total_relation_size('{table}'))"),
            )
            for table in ("usage_rollup", *DAY_TABLES)
        }
        today: date = await conn.fetchval("SELECT (now() AT TIME ZONE 'utc')::date")
        start, end = today - timedelta(days=DAYS - 1), today + timedelta(days=1)
        params = {"from": start.isoformat(), "to": end.isoformat()}
        print(
            f"\nseeded with INSERT ... SELECT generate_series in {seeded:.1f} s: the shapes below + {OTHER_WORKSPACES} "
            f"other workspaces of {OTHER_ROWS:,} rows (trigger off); day rollups derived by the migration's "
            f"backfill in {derived:.1f} s (+ VACUUM ANALYZE)"
        )
        for table, (count, size) in sizes.items():
            print(f"  {table:<17} {count:>9,} rows  {size}")
        print(f"GET /workspaces/{{ws}}/usage over 30 days ({start} .. {end} exclusive), target <= 100 ms; {_load()}")
        slowest: dict[str, float] = {}
        for ws, shape in zip(workspaces, SHAPES, strict=True):
            ws_id = uuid.UUID(ws)
            runs, cost = await conn.fetchrow(
                "SELECT sum(runs), sum(cost_micros) FROM usage_rollup WHERE workspace_id = $1", ws_id
            )
            runs, cost = int(runs), int(cost)
            assert runs == shape.runs == 1_000_000
            # Every day rollup holds exactly the fine rollup's totals for this workspace.
            for table in DAY_TABLES:
                got = await conn.fetchrow(
                    f"SELECT sum(runs), sum(cost_micros), count(*) FROM {table} WHERE workspace_id = $1", ws_id
                )
                assert (int(got[0]), int(got[1])) == (runs, cost), table
            print(f"\n  {shape.name}: {shape.keys:,} fine rollup rows, {runs:,} runs")
            args = (ws_id, start, end)
            for group_by in ("day", "model", "user", "prompt"):
                app_ms = await _time_get(
                    client,
                    f"/workspaces/{ws}/usage",
                    {**params, "group_by": group_by},
                    _usage_check(group_by, shape, cost),
                )
                table, key = USAGE_SQL[group_by]
                fine_key = {"day": "day", "model": "concat(provider, '/', model)"}.get(group_by, key)
                day_sql = await _bare_sql_ms(conn, table, key, args)
                fine_sql = await _bare_sql_ms(conn, "usage_rollup", fine_key, args)
                slowest[shape.name] = max(slowest.get(shape.name, 0), pct(app_ms, 95))
                print(f"    group_by={group_by:<6} GET /usage:  {summary(app_ms)}")
                print(
                    f"    {'':15} bare SQL median: {table} {day_sql:7.2f} ms; "
                    f"the fine usage_rollup it replaces {fine_sql:7.2f} ms"
                )
            for group_by in ("model", "prompt"):
                expected = shape.models if group_by == "model" else shape.prompts

                def latency_check(body: list[dict[str, Any]], expected: int = expected) -> None:
                    assert len(body) == expected
                    assert all(r["ttft_ms"]["p50"] is not None for r in body)

                latency_ms = await _time_get(
                    client, f"/workspaces/{ws}/usage/latency", {**params, "group_by": group_by}, latency_check
                )
                print(f"    GET .../usage/latency?group_by={group_by:<6} {summary(latency_ms)}")

        plan = await conn.fetch(
            "EXPLAIN (ANALYZE, BUFFERS) SELECT user_id, sum(runs), sum(input_tokens), sum(output_tokens), "
            "sum(cost_micros) FROM usage_user_day WHERE workspace_id = $1 AND day >= $2 AND day < $3 GROUP BY 1",
            uuid.UUID(workspaces[0]), start, end,
        )
        print(f"\n  plan, group_by=user, {SHAPES[0].name}:")
        for line in plan:
            print("    " + line[0])
        print(f"\n  slowest p95 per shape over every grouping (target 100 ms); {_load()}:")
        for name, value in slowest.items():
            print(f"    {name:<60} {value:8.1f} ms  {'met' if value <= 100 else 'NOT met'}")
    finally:
        await conn.close()
        await client.aclose()


async def test_bench_settlement_rollup_statement(bench_app, bench_db) -> None:
    """What the day rollups add to settlement: the fine rollup's upsert with the trigger that keeps them, and
    with it disabled (the statement as it was before), each in its own transaction as at the end of a run."""
    from backend.usage import repository as repo

    sessionmaker = bench_app.state.sessionmaker
    users = [uuid.uuid4() for _ in range(20)]
    prompts = [uuid.uuid4() for _ in range(20)]
    values = {"input_tokens": 10, "output_tokens": 20, "cost_micros": 330}
    conn = await asyncpg.connect(_plain_dsn(bench_db))

    async def settle(workspace_id: uuid.UUID, i: int, statements: list[float]) -> float:
        key = {
            "workspace_id": workspace_id,
            "day": date.today(),
            "provider": "mock",
            "model": "mock-1",
            "user_id": users[i % 20],
            "prompt_id": prompts[(i // 20) % 20],
        }
        t0 = time.perf_counter()
        async with sessionmaker() as session, session.begin():
            t1 = time.perf_counter()
            await repo.add_rollup(session, key, values, BUCKETS[i % 5], BUCKETS[(i // 5) % 5])
            statements.append((time.perf_counter() - t1) * 1000)
        return (time.perf_counter() - t0) * 1000

    print(
        f"\nsettling into the rollups, {SETTLEMENTS} transactions per variant (upsert + commit), the variants "
        f"alternating in blocks of 100 so that both see the same machine load; {_load()}"
    )
    variants = {"DISABLE": "fine rollup, trigger disabled (before)", "ENABLE": "fine rollup + trigger (as shipped)"}
    timings: dict[str, list[float]] = {trigger: [] for trigger in variants}
    statement_timings: dict[str, list[float]] = {trigger: [] for trigger in variants}
    workspaces = {trigger: uuid.uuid4() for trigger in variants}
    try:
        for block in range(-1, SETTLEMENTS // 100):  # block -1 warms up both (prepared statements, pool)
            for trigger in variants:
                await conn.execute(f"ALTER TABLE usage_rollup {trigger} TRIGGER usage_rollup_into_days")
                for i in range(100):
                    statements: list[float] = []
                    elapsed = await settle(workspaces[trigger], (block + 1) * 100 + i, statements)
                    if block >= 0:
                        timings[trigger].append(elapsed)
                        statement_timings[trigger] += statements
        for trigger, name in variants.items():
            values_ms, statement_ms = timings[trigger], statement_timings[trigger]
            print(
                f"  {name:<40} transaction p50 {pct(values_ms, 50):6.2f} ms  p95 {pct(values_ms, 95):6.2f} ms  "
                f"max {max(values_ms):6.2f} ms;  the upsert alone p50 {pct(statement_ms, 50):5.2f} ms  "
                f"p95 {pct(statement_ms, 95):5.2f} ms"
            )
        runs = await conn.fetchval(
            "SELECT sum(runs) FROM usage_user_day WHERE workspace_id = $1", workspaces["ENABLE"]
        )
        assert runs == len(timings["ENABLE"]) + 100
        print(f"  {_load()}")
    finally:
        await conn.execute("ALTER TABLE usage_rollup ENABLE TRIGGER usage_rollup_into_days")
        await conn.close()


async def _lock_sampler(dsn: str, stop: asyncio.Event, seen: Counter) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        while not stop.is_set():
            for row in await conn.fetch(
                "SELECT wait_event_type, wait_event, count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active' GROUP BY 1, 2"
            ):
                seen[f"{row[0] or 'cpu'}:{row[1] or '-'}"] += row[2]
            seen["samples"] += 1
            await asyncio.sleep(0.002)
    finally:
        await conn.close()


async def test_bench_post_runs_throughput_and_the_budget_lock(bench_app, bench_db) -> None:
    client = new_client(bench_app)
    owner: Account = await signup(client)
    no_limits = {"runs_per_minute": 1_000_000, "member_runs_per_minute": 1_000_000, "max_queued_runs": 1_000_000}
    worst = 3 * 3 + 256 * 15  # "Say a b" at max_tokens 256

    async def workspace(budget: str | None) -> tuple[str, str]:
        ws = await create_workspace(owner, f"bench-{uuid.uuid4().hex[:6]}")
        response = await client.put(f"/workspaces/{ws}/limits", json={**no_limits, "monthly_budget_usd": budget})
        assert response.status_code == 200, response.text
        return ws, await new_prompt(client, ws)

    async def post(ws: str, pid: str) -> float:
        t0 = time.perf_counter()
        response = await client.post(f"/workspaces/{ws}/runs", json={"prompt_id": pid, "variables": {"words": "a b"}})
        assert response.status_code == 202, response.text
        return (time.perf_counter() - t0) * 1000

    conn = await asyncpg.connect(_plain_dsn(bench_db))
    configs = {
        "budget null, 1 workspace": [await workspace(None)],
        "budget $1,000,000, 1 workspace": [await workspace("1000000")],
        "budget $1,000,000, 10 workspaces": [await workspace("1000000") for _ in range(10)],
    }
    print(
        f"\nPOST /workspaces/{{ws}}/runs, {POST_CONCURRENCY} concurrent per round, {POST_ROUNDS} rounds, no worker "
        f"(in-process ASGI client: client and api share one event loop; app pool 10 + 20 overflow connections)"
    )
    try:
        for name, targets in configs.items():
            for ws, pid in targets:  # warm-up
                await asyncio.gather(*(post(ws, pid) for _ in range(5)))
            rates, latencies = [], []
            waits: Counter = Counter()
            for _ in range(POST_ROUNDS):
                stop = asyncio.Event()
                sampler = asyncio.create_task(_lock_sampler(_plain_dsn(bench_db), stop, waits))
                await asyncio.sleep(0.05)
                t0 = time.perf_counter()
                latencies += await asyncio.gather(
                    *(post(*targets[i % len(targets)]) for i in range(POST_CONCURRENCY))
                )
                rates.append(POST_CONCURRENCY / (time.perf_counter() - t0))
                stop.set()
                await sampler
            accepted = 0
            for ws, _ in targets:
                runs = await conn.fetchval("SELECT count(*) FROM run WHERE workspace_id = $1", uuid.UUID(ws))
                reserved = await conn.fetchval(
                    "SELECT reserved_micros FROM budget_month WHERE workspace_id = $1", uuid.UUID(ws)
                )
                assert reserved == runs * worst
                accepted += runs
            assert accepted == len(targets) * 5 + POST_ROUNDS * POST_CONCURRENCY
            samples = waits.pop("samples", 1)
            lock_waits = {k: v / samples for k, v in waits.items() if k.startswith("Lock:")}
            other = {k: v / samples for k, v in waits.most_common(6) if not k.startswith("Lock:")}
            print(
                f"  {name:<34} {statistics.median(rates):7.1f} runs/s (median of {POST_ROUNDS} rounds; "
                f"min {min(rates):.1f} max {max(rates):.1f});  latency p50 {pct(latencies, 50):.1f} ms "
                f"p95 {pct(latencies, 95):.1f} ms"
            )
            print(
                "      backends waiting per sample: "
                + (", ".join(f"{k} {v:.2f}" for k, v in sorted(lock_waits.items())) or "no lock waits")
                + " | other active: "
                + ", ".join(f"{k} {v:.2f}" for k, v in other.items())
            )
        print(
            "  Lock:advisory = the per-workspace dispatch lock (repo.lock_dispatch, held"
            " to commit); Lock:transactionid/tuple = waits on the budget_month row."
        )
    finally:
        await conn.close()
        await client.aclose()
