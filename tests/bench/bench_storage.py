"""Storage at scale (issue 13, part 4): a million runs with ~2 KB sealed outputs, read through the app
in-process (httpx ASGI client, figures, no timing asserts; the answers' correctness is asserted exactly).
On demand only: see tests/bench/README.md.

    .venv/bin/python -m pytest tests/bench/bench_storage.py -s -p no:cacheprovider

A database of its own (created, migrated with Alembic and dropped here: the test database is never touched)
on the shared PostgreSQL; the shared Redis with a private key prefix, removed at the end. It takes about
4 GB of disk while it exists (printed); BENCH_STORAGE_KEEP=1 keeps it (its name is printed) and
BENCH_STORAGE_DB=<name> reuses a kept one without seeding again (then drop it by hand).

Seed (BENCH_RUNS runs, 1,000,000): 50 workspaces created through the API (each with its data key), whose
runs follow a Zipf law (the biggest holds ~22 %, the smallest ~0.4 %); ~2,000 users and ~5,000 prompts with
1-4 versions each spread the same way, and a Zipf law again for which prompt and which user a run belongs to;
runs over the last 90 days in time order (as they arrive), 95 % succeeded, 3 % failed, 2 % cancelled. Every
run's snapshot (~1 KB) and output (~2 KB, 1.2-2.9 KB) are sealed with the real keyring, exactly as the app
seals them (AES-GCM, per-record subkey, associated data naming the row), and written with COPY. The ledger
(reserve, release, settle per run), the budget months, the fine usage rollup and the day rollups are derived
from the runs in SQL, as settlement would have written them.

1. Hot paths through the app, BENCH_CALLS (200) calls each, p50/p95/p99: the run list's first page (the
   biggest workspace; any workspace), a deep page (a cursor anywhere in the biggest workspace's 90 days),
   the list filtered by prompt, run detail (any run), by-name prompt lookup (label and latest) and the usage
   dashboard over 30 days. The SQL the app sent is captured and shown with EXPLAIN (ANALYZE, BUFFERS).
   Then table and index sizes, and their extrapolation to 90 days at 1,000,000 runs a day.
2. Partitioning, measured on the same data: a monthly-partitioned copy of the run table beside the real one
   (the hot queries on both, bare SQL), then one month of contents expired by the retention job itself
   (backend/lifecycle, batches of 500) while a reader keeps reading, against DETACH + DROP of a month's
   partition.

Knobs (environment): BENCH_RUNS (1000000), BENCH_CALLS (200), BENCH_EXPIRY_SECONDS (300), BENCH_STORAGE_KEEP,
BENCH_STORAGE_DB, BENCH_PARTITIONS (1: run part 2).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib.util
import json
import math
import os
import random
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from httpx import ASGITransport
from redis.asyncio import Redis
from sqlalchemy import event

from backend.app import create_app
from backend.core.migrate import upgrade_to_head_async
from backend.core.pagination import encode_cursor
from backend.core.settings import Settings
from backend.lifecycle.service import _EXPIRE, expire_run_contents
from backend.usage.models import LATENCY_BUCKETS_MS
from tests.conftest import ADMIN_DSN, REDIS_URL, Client, _async_url
from tests.factories import Account, create_workspace, signup

RUNS = int(os.environ.get("BENCH_RUNS", "1000000"))
CALLS = int(os.environ.get("BENCH_CALLS", "200"))
KEEP = os.environ.get("BENCH_STORAGE_KEEP") == "1"
REUSE = os.environ.get("BENCH_STORAGE_DB")
PARTITIONS = os.environ.get("BENCH_PARTITIONS", "1") == "1"

WORKSPACES = 50
USERS = 2_000
PROMPTS = 5_000
DAYS = 90
CHUNK = 20_000
TARGET_RUNS_PER_DAY = 1_000_000
# (provider, model, $ per Mtok in, out = micro-dollars per token, share of versions)
MODELS = [
    ("anthropic", "claude-sonnet-4-5", 3, 15, 40),
    ("anthropic", "claude-haiku-4-5", 1, 5, 25),
    ("openai", "gpt-5", 1.25, 10, 15),
    ("openai", "gpt-4.1-mini", 0.4, 1.6, 15),
    ("mock", "mock-1", 3, 15, 5),
]
WORDS = [
    "the",
    "a",
    "customer",
    "order",
    "refund",
    "invoice",
    "shipping",
    "delay",
    "apologise",
    "account",
    "summary",
    "policy",
    "request",
    "ticket",
    "product",
    "warranty",
    "replacement",
    "update",
    "status",
    "priority",
    "resolved",
    "escalate",
    "thanks",
    "regards",
    "team",
    "support",
    "billing",
    "cycle",
    "discount",
    "subscription",
    "renewal",
    "cancel",
    "confirm",
    "details",
    "address",
    "delivery",
    "tracking",
]


def _plain_dsn(name: str) -> str:
    return f"{ADMIN_DSN.rsplit('/', 1)[0]}/{name}"


def _master_key(name: str) -> str:
    """A throwaway key for the benchmark's own database, derived from its name so that a kept database can be
    read again (BENCH_STORAGE_DB); it protects nothing but generated text."""
    return base64.b64encode(hashlib.sha256(f"bench-storage:{name}".encode()).digest()).decode()


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(values_ms: list[float]) -> str:
    return (
        f"p50 {pct(values_ms, 50):7.2f}  p95 {pct(values_ms, 95):7.2f}  p99 {pct(values_ms, 99):7.2f}  "
        f"max {max(values_ms):7.2f} ms (n={len(values_ms)})"
    )


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def _mb(n: int) -> str:
    return f"{n / 1024**2:9.1f} MB"


def _gb(n: float) -> str:
    return f"{n / 1024**3:8.1f} GB"


# Plaintexts: a fixed pool of outputs, chosen by run id, so that any run's expected output is known.
_rng = random.Random(13)
OUTPUTS = [
    " ".join(_rng.choice(WORDS) for _ in range(_rng.randint(1200, 2900) // 7))[: _rng.randint(1200, 2900)]
    for _ in range(257)
]


def expected_output(run_id: uuid.UUID, status: str) -> str:
    text = OUTPUTS[run_id.int % len(OUTPUTS)]
    return text[: len(text) // 3] if status != "succeeded" else text


def zipf(n: int, s: float = 1.0) -> list[float]:
    return [1 / (i + 1) ** s for i in range(n)]


def cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def spread(total: int, weights: list[float], minimum: int) -> list[int]:
    scale = sum(weights)
    return [max(minimum, round(total * w / scale)) for w in weights]


@dataclass
class Version:
    id: uuid.UUID
    number: int
    provider: str
    model: str
    price_in: float
    price_out: float
    snapshot: bytes = b""


@dataclass
class PromptSeed:
    id: uuid.UUID
    name: str
    versions: list[Version]
    label: int  # the version number "production" points at


@dataclass
class WorkspaceSeed:
    id: uuid.UUID
    users: list[uuid.UUID] = field(default_factory=list)
    prompts: list[PromptSeed] = field(default_factory=list)


@dataclass
class Seeded:
    db: str
    app: Any
    client: Client
    workspaces: list[uuid.UUID]  # biggest first
    run_count: int
    seconds: dict[str, float]


# Fixtures


@pytest.fixture(scope="module")
async def bench_db() -> AsyncIterator[tuple[str, bool]]:
    """(database name, whether it still needs seeding). Created, migrated with Alembic and dropped here."""
    if REUSE:
        yield REUSE, False
        return
    name = f"pp_bench_storage_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        await upgrade_to_head_async(_async_url(ADMIN_DSN, name))
        yield name, True
    finally:
        if KEEP:
            print(f"\nkept database {name} (BENCH_STORAGE_DB={name} reuses it; DROP DATABASE it when done)")
        else:
            admin = await asyncpg.connect(ADMIN_DSN)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


@pytest.fixture(scope="module")
async def seeded(bench_db: tuple[str, bool]) -> AsyncIterator[Seeded]:
    name, fresh = bench_db
    prefix = f"pp-bench:{uuid.uuid4().hex[:12]}:"
    settings = Settings(
        database_url=_async_url(ADMIN_DSN, name), redis_url=REDIS_URL, redis_prefix=prefix, master_key=_master_key(name)
    )
    app = create_app(settings)
    client = Client(transport=ASGITransport(app=app), base_url="http://testserver/api/v1", timeout=600)
    seconds: dict[str, float] = {}
    conn = await asyncpg.connect(_plain_dsn(name))
    try:
        reader: Account = await signup(client)
        if fresh:
            await _seed(app, client, reader, conn, seconds)
        # The reader is an owner of every workspace (on reuse: a new reader each session).
        await conn.execute(
            "INSERT INTO membership (workspace_id, user_id, role) SELECT id, $1, 'owner' FROM workspace "
            "ON CONFLICT DO NOTHING",
            uuid.UUID(reader.id),
        )
        workspaces = [
            r[0]
            for r in await conn.fetch("SELECT workspace_id FROM run GROUP BY 1 ORDER BY count(*) DESC, workspace_id")
        ]
        run_count = await conn.fetchval("SELECT count(*) FROM run")
        yield Seeded(name, app, client, workspaces, run_count, seconds)
    finally:
        await conn.close()
        await client.aclose()
        if app.state.redis is not None:
            await app.state.redis.aclose()
        await app.state.engine.dispose()
        redis = Redis.from_url(REDIS_URL)
        keys = [k async for k in redis.scan_iter(match=prefix + "*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


# Seeding


async def _seed(app, client: Client, owner: Account, conn: asyncpg.Connection, seconds: dict[str, float]) -> None:
    keyring = app.state.keyring
    sessions = app.state.sessionmaker
    rng = random.Random(2026)
    started = time.perf_counter()
    ws_weights = zipf(WORKSPACES)
    workspaces = [WorkspaceSeed(uuid.UUID(await create_workspace(owner, f"bench-{i:02d}"))) for i in range(WORKSPACES)]
    # A template version made by the app itself: the seeded versions copy its model_config shape.
    template_prompt = await client.post(f"/workspaces/{workspaces[0].id}/prompts", json={"name": "template"})
    assert template_prompt.status_code == 201, template_prompt.text
    body = {
        "system": "You answer customer emails for {{company}}.",
        "messages": [{"role": "user", "content": "Reply to: {{email}}"}],
        "model_config": {"provider": "anthropic", "model": "claude-sonnet-4-5", "max_tokens": 1024},
    }
    made = await client.post(
        f"/workspaces/{workspaces[0].id}/prompts/{template_prompt.json()['id']}/versions", json=body
    )
    assert made.status_code == 201, made.text
    model_config = made.json()["model_config"]

    # Users and memberships.
    user_rows, member_rows = [], []
    for ws, n in zip(workspaces, spread(USERS, ws_weights, 3), strict=True):
        for _ in range(n):
            uid = uuid.uuid4()
            ws.users.append(uid)
            user_rows.append((uid, f"bench-{uid.hex[:16]}@example.com", "Bench User", "!"))
            member_rows.append((ws.id, uid, "editor"))
    await conn.copy_records_to_table(
        "user_account", records=user_rows, columns=["id", "email", "name", "password_hash"]
    )
    await conn.copy_records_to_table("membership", records=member_rows, columns=["workspace_id", "user_id", "role"])

    # Prompts, versions (sealed like the app seals them) and a "production" label on each.
    prompt_rows, version_rows, label_rows = [], [], []
    model_weights = cumulative([m[4] for m in MODELS])
    now = datetime.now(UTC)
    for ws, n in zip(workspaces, spread(PROMPTS, ws_weights, 5), strict=True):
        for j in range(n):
            pid = uuid.uuid4()
            name = f"team-{j % 7}/prompt-{j:04d}"
            versions = []
            parent = None
            for number in range(1, rng.randint(1, 4) + 1):
                provider, model, price_in, price_out, _ = rng.choices(MODELS, cum_weights=model_weights)[0]
                vid = uuid.uuid4()
                system = f"You answer customer emails for {{{{company}}}} (prompt {j}, v{number}). " + " ".join(
                    rng.choice(WORDS) for _ in range(40)
                )
                messages = [
                    {"role": "user", "content": "Reply to: {{email}} " + " ".join(rng.choice(WORDS) for _ in range(30))}
                ]
                messages_text = json.dumps(messages)
                config = {**model_config, "provider": provider, "model": model}
                content_hash = await keyring.content_hash(sessions, ws.id, (system + messages_text).encode())
                version_rows.append(
                    (
                        vid,
                        ws.id,
                        pid,
                        number,
                        content_hash,
                        await keyring.seal(sessions, ws.id, "prompt_version", "system", vid, system.encode()),
                        await keyring.seal(sessions, ws.id, "prompt_version", "messages", vid, messages_text.encode()),
                        json.dumps(config),
                        json.dumps(["company", "email"]),
                        parent,
                        ws.users[0],
                    )
                )
                parent = vid
                version = Version(vid, number, provider, model, price_in, price_out)
                version.snapshot = json.dumps(
                    {
                        "prompt_id": str(pid),
                        "version_id": str(vid),
                        "version": number,
                        "variables": {"company": "Acme", "email": " ".join(rng.choice(WORDS) for _ in range(25))},
                        "system": system.replace("{{company}}", "Acme"),
                        "messages": messages,
                        "model_config": config,
                        "tools": [],
                        "tool_choice": None,
                        "output_schema": None,
                        "provider": provider,
                        "model": model,
                        "price": {"input_per_mtok": str(price_in), "output_per_mtok": str(price_out)},
                    }
                ).encode()
                versions.append(version)
            label = rng.randint(1, len(versions))
            ws.prompts.append(PromptSeed(pid, name, versions, label))
            prompt_rows.append((pid, ws.id, name, len(versions), ws.users[0], ws.users[0], now, now))
            label_rows.append((uuid.uuid4(), ws.id, pid, "production", versions[label - 1].id, ws.users[0]))
    await conn.copy_records_to_table(
        "prompt",
        records=prompt_rows,
        columns=["id", "workspace_id", "name", "version_count", "created_by", "updated_by", "created_at", "updated_at"],
    )
    await conn.copy_records_to_table(
        "prompt_version",
        records=version_rows,
        columns=[
            "id",
            "workspace_id",
            "prompt_id",
            "number",
            "content_hash",
            "system",
            "messages",
            "model_config",
            "variables",
            "parent_id",
            "created_by",
        ],
    )
    await conn.copy_records_to_table(
        "prompt_label",
        records=label_rows,
        columns=["id", "workspace_id", "prompt_id", "name", "version_id", "updated_by"],
    )
    seconds["workspaces, users, prompts"] = time.perf_counter() - started

    # Runs, in the order they arrive, sealed and COPYed in chunks.
    started = time.perf_counter()
    ws_cum = cumulative(ws_weights)
    prompt_cum = {ws.id: cumulative(zipf(len(ws.prompts))) for ws in workspaces}
    user_cum = {ws.id: cumulative(zipf(len(ws.users))) for ws in workspaces}
    t0 = now - timedelta(days=DAYS)
    step = DAYS * 86400 / RUNS
    columns = [
        "id",
        "workspace_id",
        "prompt_id",
        "version_id",
        "version_number",
        "status",
        "provider",
        "model",
        "snapshot",
        "output",
        "output_chars",
        "stop_reason",
        "input_tokens",
        "output_tokens",
        "cost_micros",
        "reserved_micros",
        "budget_month",
        "ttft_ms",
        "duration_ms",
        "error",
        "created_by",
        "request_hash",
        "created_at",
        "dispatched_at",
        "started_at",
        "finished_at",
        "attempts",
        "last_seq",
    ]
    failed_error = json.dumps({"type": "provider_error", "message": "the provider answered 529 (overloaded)"})
    for first in range(0, RUNS, CHUNK):
        count = min(CHUNK, RUNS - first)
        picks = rng.choices(workspaces, cum_weights=ws_cum, k=count)
        rows = []
        for k, ws in enumerate(picks):
            i = first + k
            rid = uuid.uuid4()
            prompt = rng.choices(ws.prompts, cum_weights=prompt_cum[ws.id])[0]
            version = prompt.versions[-1] if rng.random() < 0.7 else rng.choice(prompt.versions)
            user = rng.choices(ws.users, cum_weights=user_cum[ws.id])[0]
            roll = rng.random()
            status = "succeeded" if roll < 0.95 else "failed" if roll < 0.98 else "cancelled"
            output = expected_output(rid, status)
            created = t0 + timedelta(seconds=(i + rng.random()) * step)
            ttft = rng.randint(150, 3000)
            duration = ttft + rng.randint(500, 20000)
            input_tokens = len(version.snapshot) // 4
            output_tokens = len(output) // 4
            cost = math.ceil(input_tokens * version.price_in + output_tokens * version.price_out)
            rows.append(
                (
                    rid,
                    ws.id,
                    prompt.id,
                    version.id,
                    version.number,
                    status,
                    version.provider,
                    version.model,
                    await keyring.seal(sessions, ws.id, "run", "snapshot", rid, version.snapshot),
                    await keyring.seal(sessions, ws.id, "run", "output", rid, output.encode()),
                    len(output),
                    "end_turn" if status == "succeeded" else None,
                    input_tokens,
                    output_tokens,
                    cost,
                    math.ceil(input_tokens * version.price_in + 1024 * version.price_out),
                    created.date().replace(day=1),
                    ttft,
                    duration,
                    failed_error if status == "failed" else None,
                    user,
                    hashlib.sha256(rid.bytes).digest(),
                    created,
                    created + timedelta(milliseconds=3),
                    created + timedelta(milliseconds=20),
                    created + timedelta(milliseconds=20 + duration),
                    1,
                    2 + output_tokens // 8,
                )
            )
        await conn.copy_records_to_table("run", records=rows, columns=columns)
        if (first // CHUNK) % 10 == 9:
            done = first + count
            rate = done / (time.perf_counter() - started)
            print(f"  seeded {done:,} runs ({rate:,.0f} runs/s)", flush=True)
    seconds["runs (sealed, COPY)"] = time.perf_counter() - started

    started = time.perf_counter()
    await conn.execute(
        """
        INSERT INTO usage_ledger (id, workspace_id, run_id, kind, month, micros, created_at)
        SELECT gen_random_uuid(), r.workspace_id, r.id, k.kind, r.budget_month,
               CASE k.kind WHEN 'settle' THEN r.cost_micros ELSE r.reserved_micros END,
               CASE k.kind WHEN 'reserve' THEN r.created_at ELSE r.finished_at END
        FROM run AS r CROSS JOIN (VALUES ('reserve'), ('release'), ('settle')) AS k(kind)
        """
    )
    await conn.execute(
        "INSERT INTO budget_month (workspace_id, month, reserved_micros, spent_micros) "
        "SELECT workspace_id, budget_month, 0, sum(cost_micros) FROM run GROUP BY 1, 2"
    )
    seconds["ledger and budget months"] = time.perf_counter() - started
    started = time.perf_counter()
    await conn.execute("ALTER TABLE usage_rollup DISABLE TRIGGER usage_rollup_into_days")
    await conn.execute(ROLLUP_SQL, list(LATENCY_BUCKETS_MS))
    for sql in _migration_backfill():
        await conn.execute(sql)
    await conn.execute("ALTER TABLE usage_rollup ENABLE TRIGGER usage_rollup_into_days")
    seconds["usage rollups"] = time.perf_counter() - started
    started = time.perf_counter()
    await conn.execute("VACUUM ANALYZE")
    seconds["VACUUM ANALYZE"] = time.perf_counter() - started


# The fine rollup as settlement would have written it, one run at a time (backend/usage/service.py: settle):
# the latency bucket is the smallest bound >= the value, else "inf".
ROLLUP_SQL = """
INSERT INTO usage_rollup (workspace_id, day, provider, model, user_id, prompt_id, runs, input_tokens,
                          output_tokens, cost_micros, ttft_histogram, duration_histogram)
SELECT workspace_id, day, provider, model, user_id, prompt_id, count(*), sum(input_tokens), sum(output_tokens),
       sum(cost_micros),
       (SELECT jsonb_object_agg(b, n) FROM (SELECT b, count(*) AS n FROM unnest(array_agg(tb)) AS b GROUP BY b) AS x),
       (SELECT jsonb_object_agg(b, n) FROM (SELECT b, count(*) AS n FROM unnest(array_agg(db)) AS b GROUP BY b) AS x)
FROM (
    SELECT workspace_id, (created_at AT TIME ZONE 'utc')::date AS day, provider, model,
           coalesce(created_by, '00000000-0000-0000-0000-000000000000'::uuid) AS user_id, prompt_id,
           input_tokens, output_tokens, cost_micros,
           coalesce((($1::int[])[width_bucket(ttft_ms - 1, $1::int[]) + 1])::text, 'inf') AS tb,
           coalesce((($1::int[])[width_bucket(duration_ms - 1, $1::int[]) + 1])::text, 'inf') AS db
    FROM run
) AS r
GROUP BY 1, 2, 3, 4, 5, 6
"""


def _migration_backfill() -> list[str]:
    """The day rollups derived from the fine rollup by the very SQL of their migration (as bench_dashboard)."""
    path = Path(__file__).parents[2] / "migrations" / "versions" / "2026_11_27_0500-usage-rollups.py"
    spec = importlib.util.spec_from_file_location("usage_rollups_migration", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [module.BACKFILL_MODEL_DAY, module.BACKFILL_USER_DAY, module.BACKFILL_PROMPT_DAY]


# Measuring


@contextmanager
def captured_sql(app):
    """Every statement the app sends (with its parameters) while the block runs."""
    seen: list[tuple[str, Any]] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


async def explain(conn: asyncpg.Connection, statement: str, parameters: Any) -> list[str]:
    args = list(parameters or ())
    rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement, *args)
    return [r[0] for r in rows]


class TimedGet:
    """GET through the app, timing the request alone (the benchmark's own checks of the answer come after)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.last_ms = 0.0
        self.last_cpu_ms = 0.0  # CPU of this process (app and client) during the request

    async def __call__(self, url: str, **kwargs: Any) -> Any:
        c0, t0 = time.process_time(), time.perf_counter()
        response = await self.client.get(url, **kwargs)
        self.last_ms = (time.perf_counter() - t0) * 1000
        self.last_cpu_ms = (time.process_time() - c0) * 1000
        return response


async def timed(
    get: TimedGet, calls: int, call: Callable[[int], Awaitable[None]], warmup: int = 3
) -> tuple[list[float], list[float]]:
    timings, cpu = [], []
    for i in range(-warmup, calls):
        await call(i)
        if i >= 0:
            timings.append(get.last_ms)
            cpu.append(get.last_cpu_ms)
    return timings, cpu


RELATIONS = ("run", "usage_ledger", "usage_rollup", "usage_model_day", "usage_user_day", "usage_prompt_day")


async def print_sizes(conn: asyncpg.Connection, runs: int) -> None:
    database = await conn.fetchval("SELECT pg_database_size(current_database())")
    print(f"\nsizes ({runs:,} runs; database {_gb(database).strip()} in all):")
    scale = TARGET_RUNS_PER_DAY * 90 / runs
    total_per_run = 0.0
    for table in RELATIONS:
        heap, toast, indexes, total, rows = await conn.fetchrow(
            "SELECT pg_relation_size(c.oid), coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0), "
            "pg_indexes_size(c.oid), pg_total_relation_size(c.oid), (SELECT count(*) FROM "
            f"{table}) FROM pg_class AS c WHERE c.oid = '{table}'::regclass"
        )
        per_run = total / runs
        total_per_run += per_run
        print(
            f"  {table:<17} {rows:>10,} rows  total {_mb(total)}  heap {_mb(heap)}  toast {_mb(toast)}  "
            f"indexes {_mb(indexes)}  = {per_run:7.0f} B per run  -> 90 d x 1M/day: {_gb(total * scale)}"
        )
        for index, size in await conn.fetch(
            "SELECT i.indexrelid::regclass::text, pg_relation_size(i.indexrelid) FROM pg_index AS i "
            "WHERE i.indrelid = $1::regclass ORDER BY 2 DESC",
            table,
        ):
            print(f"      {index:<44} {_mb(size)}  -> {_gb(size * scale)}")
    print(
        f"  runs + ledger + rollups: {total_per_run:,.0f} B per run; 90 days at {TARGET_RUNS_PER_DAY:,} runs a day "
        f"= {TARGET_RUNS_PER_DAY * 90:,} runs -> {_gb(total_per_run * TARGET_RUNS_PER_DAY * 90).strip()} "
        "(linear: every table and index here grows with the runs; the day rollups grow with days x keys, less)"
    )


async def test_bench_hot_paths_through_the_app(seeded: Seeded) -> None:
    app, get = seeded.app, TimedGet(seeded.client)
    conn = await asyncpg.connect(_plain_dsn(seeded.db))
    rng = random.Random(7)
    try:
        assert seeded.run_count == RUNS or REUSE, seeded.run_count
        print(f"\n{seeded.run_count:,} runs in {len(seeded.workspaces)} workspaces (database {seeded.db})")
        for step, s in seeded.seconds.items():
            print(f"  seeding: {step:<28} {s:7.1f} s")
        biggest = seeded.workspaces[0]
        per_ws = {r[0]: r[1] for r in await conn.fetch("SELECT workspace_id, count(*) FROM run GROUP BY 1")}
        print(
            f"  runs per workspace: biggest {per_ws[biggest]:,}, median "
            f"{int(statistics.median(per_ws.values())):,}, smallest {min(per_ws.values()):,}"
        )
        sample = await conn.fetch(
            "SELECT id, workspace_id, prompt_id, status FROM run TABLESAMPLE SYSTEM (1) REPEATABLE (7) LIMIT $1",
            CALLS + 10,
        )
        deep = await conn.fetch(
            "SELECT created_at, id FROM run TABLESAMPLE SYSTEM (5) REPEATABLE (9) WHERE workspace_id = $1 LIMIT $2",
            biggest,
            CALLS + 10,
        )
        deep = list(deep)
        rng.shuffle(deep)
        prompts = await conn.fetch(
            "SELECT p.workspace_id, p.name, v.number AS label_number, p.version_count FROM prompt AS p "
            "JOIN prompt_label AS l ON l.prompt_id = p.id AND l.name = 'production' "
            "JOIN prompt_version AS v ON v.id = l.version_id WHERE p.name <> 'template' ORDER BY random() LIMIT $1",
            CALLS + 10,
        )
        big_prompts = await conn.fetch(
            "SELECT prompt_id FROM run WHERE workspace_id = $1 GROUP BY 1 ORDER BY count(*) DESC LIMIT 20", biggest
        )
        newest = {
            r[0]: r[1]
            for r in await conn.fetch(
                "SELECT DISTINCT ON (workspace_id) workspace_id, id FROM run "
                "ORDER BY workspace_id, created_at DESC, id DESC"
            )
        }

        def check_run(item: dict[str, Any]) -> None:
            """Decrypted, to the very text that was sealed (or emptied by retention, on a reused database)."""
            if item["contents_expired_at"] is not None:
                assert item["output"] == "" and item["snapshot"] is None
                return
            assert item["output"] == expected_output(uuid.UUID(item["id"]), item["status"])
            assert item["snapshot"]["prompt_id"] == item["prompt_id"]

        def check_page(body: dict[str, Any], limit: int = 50) -> None:
            items = body["items"]
            assert len(items) == limit or (body["next_cursor"] is None and len(items) < limit)
            keys = [(i["created_at"], i["id"]) for i in items]
            assert keys == sorted(keys, reverse=True)
            for item in items:
                check_run(item)

        async def first_page(ws: uuid.UUID) -> None:
            response = await get(f"/workspaces/{ws}/runs")
            assert response.status_code == 200, response.text
            check_page(response.json())
            assert response.json()["items"][0]["id"] == str(newest[ws])

        async def deep_page(i: int) -> None:
            at, rid = deep[i % len(deep)]
            response = await get(f"/workspaces/{biggest}/runs", params={"cursor": encode_cursor(at, rid)})
            assert response.status_code == 200, response.text
            body = response.json()
            if len(body["items"]) == 50:
                check_page(body)
            assert all(datetime.fromisoformat(item["created_at"]) <= at for item in body["items"])

        async def by_prompt(i: int) -> None:
            pid = big_prompts[i % len(big_prompts)][0]
            response = await get(f"/workspaces/{biggest}/runs", params={"prompt_id": str(pid)})
            assert response.status_code == 200, response.text
            check_page(response.json())
            assert {item["prompt_id"] for item in response.json()["items"]} == {str(pid)}

        async def detail(i: int) -> None:
            row = sample[i % len(sample)]
            response = await get(f"/workspaces/{row['workspace_id']}/runs/{row['id']}")
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["id"] == str(row["id"])
            check_run(body)

        async def by_name(i: int, label: bool) -> None:
            row = prompts[i % len(prompts)]
            params = {"label": "production"} if label else {}
            response = await get(f"/workspaces/{row['workspace_id']}/prompts/by-name/{row['name']}", params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["number"] == (row["label_number"] if label else row["version_count"])
            assert body["system"].startswith("You answer customer emails for {{company}}")

        today: date = await conn.fetchval("SELECT (now() AT TIME ZONE 'utc')::date")
        start, end = today - timedelta(days=29), today + timedelta(days=1)
        expected_30 = await conn.fetchval(
            "SELECT count(*) FROM run WHERE workspace_id = $1 AND created_at >= $2 AND created_at < $3",
            biggest,
            datetime.combine(start, datetime.min.time(), UTC),
            datetime.combine(end, datetime.min.time(), UTC),
        )

        async def dashboard(i: int) -> None:
            group_by = ("day", "model", "user", "prompt")[i % 4]
            response = await get(
                f"/workspaces/{biggest}/usage",
                params={"from": start.isoformat(), "to": end.isoformat(), "group_by": group_by},
            )
            assert response.status_code == 200, response.text
            assert response.json()["total"]["runs"] == expected_30

        any_ws = list(seeded.workspaces)
        series: list[tuple[str, Callable[[int], Awaitable[None]], float]] = [
            ("run list, first page, biggest workspace", lambda i: first_page(biggest), 20),
            ("run list, first page, any workspace", lambda i: first_page(any_ws[i % len(any_ws)]), 20),
            ("run list, deep page (cursor anywhere in 90 days)", deep_page, 20),
            ("run list, ?prompt_id= (biggest workspace)", by_prompt, 20),
            ("run detail, any run", detail, 20),
            ("prompt by name, ?label=production", lambda i: by_name(i, True), 20),
            ("prompt by name, latest version", lambda i: by_name(i, False), 20),
            ("usage dashboard, 30 days, biggest (day/model/user/prompt)", dashboard, 100),
        ]
        print(f"\nthrough the app (in-process ASGI client), {CALLS} calls each after 3 warm-up calls; {_load()}")
        plans: dict[str, list[tuple[str, list[str]]]] = {}
        for name, call, target in series:
            with captured_sql(app) as seen:
                for i in range(4 if "dashboard" in name else 1):  # the dashboard: each of its four groupings
                    await call(i)
            plans[name] = [(s, await explain(conn, s, p)) for s, p in seen if s.lstrip().upper().startswith("SELECT")]
            timings, cpu = await timed(get, CALLS, call)
            verdict = "met" if pct(timings, 99) <= target else "NOT met"
            print(f"  {name:<58} {summary(timings)}  target p99 <= {target:.0f} ms: {verdict}")
            print(f"  {'':<58} CPU of the api + client process per call: p50 {pct(cpu, 50):6.2f} ms")
        print(f"  {_load()}")

        print("\nplans of the SQL the app sent (first call of each; EXPLAIN (ANALYZE, BUFFERS)):")
        for name, statements in plans.items():
            print(f"\n  == {name}")
            for statement, plan in statements:
                if " FROM user_account" in statement or "auth_session" in statement or "membership" in statement:
                    continue  # authentication and access checks: primary-key lookups on small tables
                print("    " + " ".join(statement.split())[:300])
                for line in plan:
                    print("      " + line)
        await print_sizes(conn, seeded.run_count)
    finally:
        await conn.close()


# Part 2: partitioning by month, measured against the real table and the real retention job.

LIST_SQL = "SELECT * FROM {t} WHERE workspace_id = $1 ORDER BY created_at DESC, id DESC LIMIT 51"
DEEP_SQL = (  # as backend/runs/repository.py writes the cursor condition
    "SELECT * FROM {t} WHERE workspace_id = $1 AND created_at <= $2 AND (created_at < $2 OR id < $3) "
    "ORDER BY created_at DESC, id DESC LIMIT 51"
)
DETAIL_SQL = "SELECT * FROM {t} WHERE workspace_id = $1 AND id = $2"
EXPIRY_SECONDS = float(os.environ.get("BENCH_EXPIRY_SECONDS", "300"))
RETENTION_DAYS = 60  # of the seeded 90 days, the oldest 30 are due: one month of runs
# The SELECT of backend/lifecycle/service.py's _EXPIRE, taken from it (so the plan shown is the job's own).
DUE_SQL = (
    _EXPIRE.text.split("WITH due AS (", 1)[1].rsplit(")\n    UPDATE run", 1)[0].replace(":batch", "500").strip()
)


async def _bare_ms(conn: asyncpg.Connection, sql: str, args: list[tuple[Any, ...]]) -> list[float]:
    statement = await conn.prepare(sql)
    timings = []
    for i in range(-3, len(args)):
        t0 = time.perf_counter()
        rows = await statement.fetch(*args[i % len(args)])
        if i >= 0:
            timings.append((time.perf_counter() - t0) * 1000)
        assert rows
    return timings


async def _partitioned_copy(conn: asyncpg.Connection) -> tuple[list[str], float]:
    """run_p: the run table's columns, partitioned by month of created_at, with the run table's list index and
    a primary key that must include the partition key."""
    await conn.execute("DROP TABLE IF EXISTS run_p")
    await conn.execute(
        "CREATE TABLE run_p (LIKE run INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (created_at)"
    )
    first, last = await conn.fetchrow(
        "SELECT date_trunc('month', min(created_at)), date_trunc('month', max(created_at)) FROM run"
    )
    names = []
    month = first
    while month <= last:
        following = (month + timedelta(days=32)).replace(day=1)
        name = f"run_p_{month:%Y_%m}"
        await conn.execute(
            f"CREATE TABLE {name} PARTITION OF run_p FOR VALUES FROM ('{month.isoformat()}') TO "
            f"('{following.isoformat()}')"
        )
        names.append(name)
        month = following
    started = time.perf_counter()
    await conn.execute("INSERT INTO run_p SELECT * FROM run")
    await conn.execute("ALTER TABLE run_p ADD PRIMARY KEY (id, created_at)")
    await conn.execute("CREATE INDEX ON run_p (workspace_id, created_at DESC, id DESC)")
    await conn.execute("CREATE INDEX ON run_p (prompt_id, created_at DESC)")
    await conn.execute("VACUUM ANALYZE run_p")
    return names, time.perf_counter() - started


async def test_bench_partitioning_and_expiry(seeded: Seeded) -> None:
    if not PARTITIONS:
        pytest.skip("BENCH_PARTITIONS=0")
    conn = await asyncpg.connect(_plain_dsn(seeded.db))
    rng = random.Random(11)
    try:
        partitions, copy_s = await _partitioned_copy(conn)
        counts = {name: await conn.fetchval(f"SELECT count(*) FROM {name}") for name in partitions}
        print(
            f"\npartitioned copy run_p ({len(partitions)} monthly partitions, "
            + ", ".join(f"{n[-7:]}: {c:,}" for n, c in counts.items())
            + f") written and indexed in {copy_s:.0f} s; {_load()}"
        )
        biggest = seeded.workspaces[0]
        sample = await conn.fetch(
            "SELECT workspace_id, id, created_at FROM run TABLESAMPLE SYSTEM (1) REPEATABLE (3) LIMIT $1", CALLS
        )
        deep = await conn.fetch(
            "SELECT workspace_id, created_at, id FROM run TABLESAMPLE SYSTEM (5) REPEATABLE (4) "
            "WHERE workspace_id = $1 LIMIT $2",
            biggest,
            CALLS,
        )
        cases = {
            "list, first page (biggest workspace)": (LIST_SQL, [(biggest,)] * CALLS),
            "list, first page (any workspace)": (LIST_SQL, [(rng.choice(seeded.workspaces),) for _ in range(CALLS)]),
            "list, deep page (biggest workspace)": (DEEP_SQL, [tuple(r) for r in deep]),
            "detail by id (no partition key)": (DETAIL_SQL, [(r["workspace_id"], r["id"]) for r in sample]),
        }
        print(f"  bare SQL (prepared, as the app sends it; rows fetched with their contents), {CALLS} calls each:")
        for name, (sql, args) in cases.items():
            plain = await _bare_ms(conn, sql.format(t="run"), args)
            parted = await _bare_ms(conn, sql.format(t="run_p"), args)
            print(f"    {name:<38} run   {summary(plain)}")
            print(f"    {'':<38} run_p {summary(parted)}")
        for name, (sql, args) in cases.items():
            if "any" in name:
                continue
            plan = await explain(conn, sql.format(t="run_p"), args[0])
            print(f"\n  plan on run_p, {name}:")
            for line in plan:
                print("    " + line)

        # The retention job, as shipped, over one month of runs.
        await conn.execute(
            "INSERT INTO retention_policy (workspace_id, runs_days) SELECT id, $1 FROM workspace "
            "ON CONFLICT (workspace_id) DO UPDATE SET runs_days = EXCLUDED.runs_days",
            RETENTION_DAYS,
        )
        due = await conn.fetchval(
            "SELECT count(*) FROM run WHERE contents_expired_at IS NULL "
            "AND created_at < now() - make_interval(days => $1)",
            RETENTION_DAYS,
        )
        sessions = seeded.app.state.sessionmaker
        before_size = await conn.fetchval("SELECT pg_total_relation_size('run')")
        await conn.execute("ANALYZE retention_policy")
        print(
            f"\nretention job (backend/lifecycle, batches of 500) over the oldest {90 - RETENTION_DAYS} days: "
            f"{due:,} runs due; {_load()}"
        )
        # The batch's SELECT as the job sends it, in a transaction rolled back: with ix_run_contents_due
        # (migration 0980), and with index scans off, which is the plan it had before (a scan of the run table).
        # Dropping and re-creating the index here would not do: an index built after HOT updates is not used
        # until every older snapshot on the server is gone, and other sessions share this PostgreSQL.
        for label, settings in (
            ("with ix_run_contents_due", []),
            ("without it (the plan before)", ["SET LOCAL enable_indexscan = off", "SET LOCAL enable_bitmapscan = off"]),
        ):
            timings, plan = [], []
            for _ in range(3):
                await conn.execute("BEGIN")
                for statement in settings:
                    await conn.execute(statement)
                t0 = time.perf_counter()
                plan = await explain(conn, DUE_SQL, ())
                timings.append((time.perf_counter() - t0) * 1000)
                await conn.execute("ROLLBACK")
            print(
                f"  the batch's SELECT ... FOR UPDATE SKIP LOCKED {label}: {', '.join(f'{t:.0f}' for t in timings)} ms"
            )
            for line in plan:
                print("    " + line)

        # Reads go on meanwhile: run detail of runs that are not due, through the app.
        get = TimedGet(seeded.client)
        keep = await conn.fetch(
            "SELECT workspace_id, id FROM run TABLESAMPLE SYSTEM (1) REPEATABLE (5) "
            "WHERE created_at > now() - make_interval(days => $1) LIMIT 100",
            RETENTION_DAYS - 1,
        )
        stop = asyncio.Event()
        reads: list[float] = []

        async def reader() -> None:
            i = 0
            while not stop.is_set():
                row = keep[i % len(keep)]
                response = await get(f"/workspaces/{row['workspace_id']}/runs/{row['id']}")
                assert response.status_code == 200, response.text
                reads.append(get.last_ms)
                i += 1
                await asyncio.sleep(0.01)

        lsn = await conn.fetchval("SELECT pg_current_wal_lsn()::text")
        batches: list[float] = []
        emptied = 0
        reading = asyncio.create_task(reader())
        started = time.perf_counter()
        while time.perf_counter() - started < EXPIRY_SECONDS:
            t0 = time.perf_counter()
            n = await expire_run_contents(sessions)
            if n == 0:
                break
            batches.append((time.perf_counter() - t0) * 1000)
            emptied += n
        elapsed = time.perf_counter() - started
        stop.set()
        await reading
        wal = int(await conn.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::text::pg_lsn)", lsn))
        finished = emptied >= due
        rate = emptied / elapsed
        print(
            f"  the job: {emptied:,} runs emptied in {elapsed:.1f} s ({len(batches)} batches"
            f"{'' if finished else ', stopped at BENCH_EXPIRY_SECONDS'}) = {rate:,.0f} runs/s; "
            f"batch {summary(batches)}"
        )
        print(f"  WAL written: {wal / 1024**2:,.0f} MB ({wal / max(1, emptied):,.0f} B per run emptied)")
        print(f"  run detail through the app meanwhile: {summary(reads)}")
        after_size = await conn.fetchval("SELECT pg_total_relation_size('run')")
        t0 = time.perf_counter()
        await conn.execute("VACUUM run")
        vacuum_s = time.perf_counter() - t0
        vacuumed_size = await conn.fetchval("SELECT pg_total_relation_size('run')")
        print(
            f"  run table: {_mb(before_size).strip()} before, {_mb(after_size).strip()} after the job, "
            f"{_mb(vacuumed_size).strip()} after VACUUM ({vacuum_s:.0f} s; the freed space is reused by new runs, "
            "not returned to the filesystem)"
        )
        per_day_share = TARGET_RUNS_PER_DAY / 86400 / rate
        print(
            f"  at {TARGET_RUNS_PER_DAY:,} runs a day the job must empty {TARGET_RUNS_PER_DAY / 86400:.1f} runs/s: "
            f"{per_day_share:.1%} of the time at the rate above; a month (30,000,000 runs) takes "
            f"{30_000_000 / rate / 3600:.1f} h of batches"
        )

        # Expiry by partition: the oldest whole month, detached (CONCURRENTLY: readers are not blocked) and dropped.
        oldest_full = partitions[1] if len(partitions) > 2 else partitions[0]
        rows, size = await conn.fetchrow(f"SELECT count(*), pg_total_relation_size('{oldest_full}') FROM {oldest_full}")
        t0 = time.perf_counter()
        await conn.execute(f"ALTER TABLE run_p DETACH PARTITION {oldest_full} CONCURRENTLY")
        detach_ms = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        await conn.execute(f"DROP TABLE {oldest_full}")
        drop_ms = (time.perf_counter() - t0) * 1000
        print(
            f"\npartition expiry: {oldest_full} ({rows:,} runs, {_mb(size).strip()}): DETACH CONCURRENTLY "
            f"{detach_ms:.0f} ms, DROP {drop_ms:.0f} ms (space returned at once; the rows go with the contents)"
        )
    finally:
        await conn.execute("DROP TABLE IF EXISTS run_p")
        await conn.close()
