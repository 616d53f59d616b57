"""Soak: N minutes of bounded mixed load on loopback against real `playground api` and `playground worker`
processes, sampling memory, file descriptors, database and Redis connections, asyncio tasks and latencies,
then asserting that they stayed flat. On demand only (`make soak`), never part of `make test`.

    .venv/bin/python -m tests.soak.soak            # 30 minutes
    SOAK_MINUTES=10 SOAK_OUT=/tmp/soak .venv/bin/python -m tests.soak.soak

Knobs (environment): SOAK_MINUTES (30), SOAK_RUNS_PER_SECOND (2), SOAK_SAMPLE_SECONDS (15), SOAK_WARMUP_MINUTES
(a fifth of the run, at least 2), SOAK_APIS (2), SOAK_WORKERS (2), SOAK_OUT (where samples.csv, latency.csv
and report.md go; default a new directory under /tmp). Exit status 0 when every check held, 1 otherwise.
See tests/soak/README.md and docs/decisions/fault-injection-and-soak.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis

from tests.conftest import ADMIN_DSN, MASTER_KEY
from tests.processes import PlaygroundCluster, open_fds, rss_kib
from tests.soak.client import TERMINAL, Reading, User

MINUTES = float(os.environ.get("SOAK_MINUTES", "30"))
RATE = float(os.environ.get("SOAK_RUNS_PER_SECOND", "2"))
SAMPLE_S = float(os.environ.get("SOAK_SAMPLE_SECONDS", "15"))
WARMUP_MIN = float(os.environ.get("SOAK_WARMUP_MINUTES", str(max(3.0, MINUTES / 5))))
APIS = int(os.environ.get("SOAK_APIS", "2"))
WORKERS = int(os.environ.get("SOAK_WORKERS", "2"))
POOL, OVERFLOW = 4, 4  # per process: the shared PostgreSQL (max_connections 100) serves other suites too
LISTENERS = 1  # each process also holds one connection of its own: LISTEN for key invalidations
WORDS = 40
MAX_IN_FLIGHT = 60  # runs being read at once: the load is bounded whatever the machine's speed

# Flatness bounds (after warm-up). RSS: growth from the first post-warm-up samples to the last ones.
RSS_GROWTH_MIB, RSS_GROWTH_FRACTION = 24.0, 0.15
FD_SLACK, TASK_SLACK, PG_SLACK = 8, 10, 2


def expected_output(text: str) -> str:
    return "".join(word + " " for word in text.split())


class Load:
    def __init__(self, user: User, ws: str, prompt_id: str) -> None:
        self.user, self.ws, self.prompt_id = user, ws, prompt_id
        self.latency: dict[str, list[tuple[float, float]]] = defaultdict(list)  # op -> (monotonic, seconds)
        self.counts: dict[str, int] = defaultdict(int)
        self.problems: list[str] = []
        self.in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        self.tasks: set[asyncio.Task] = set()
        self.version_count = 1

    async def timed(self, op: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        started = time.monotonic()
        response = await self.user.call(method, path, **kwargs)
        self.latency[op].append((started, time.monotonic() - started))
        self.counts[f"{op} {response.status_code}"] += 1
        return response

    def spawn(self, coro) -> None:
        task = asyncio.create_task(self._guarded(coro))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _guarded(self, coro) -> None:
        try:
            await coro
        except Exception as exc:  # a failed check or a request with no answer: counted, the load goes on
            self.problems.append(f"{type(exc).__name__}: {str(exc)[:300]}")

    async def one_run(self, index: int, cancel: bool) -> None:
        async with self.in_flight:
            text = " ".join(f"s{index}w{k}" for k in range(WORDS))
            started = time.monotonic()
            response = await self.user.post_run(self.ws, {"prompt_id": self.prompt_id, "variables": {"text": text}})
            self.latency["POST /runs"].append((started, time.monotonic() - started))
            self.counts[f"POST /runs {response.status_code}"] += 1
            if response.status_code != 202:
                self.problems.append(f"POST /runs answered {response.status_code}: {response.text[:200]}")
                return
            run_id = response.json()["id"]
            reading = Reading()
            first_seen: list[float] = []

            async def read() -> Reading:
                result = await self.user.read_run(
                    self.ws, run_id, timeout=120, reading=reading, start_api=index + 1, stop_after_deltas=None
                )
                return result

            reader = asyncio.create_task(read())
            if cancel:
                await asyncio.sleep(random.uniform(0.2, 0.8))
                await self.timed(
                    "POST cancel", "POST", f"/workspaces/{self.ws}/runs/{run_id}/cancel", expect={202, 409}
                )
            await reader
            if reading.events:
                deltas = [e for e in reading.events if e["event"] == "run.delta"]
                if deltas:
                    first_seen.append(time.monotonic())
            final = (await self.timed("GET run", "GET", f"/workspaces/{self.ws}/runs/{run_id}", expect={200})).json()
            self.latency["run end to end"].append((started, time.monotonic() - started))
            if final["status"] not in TERMINAL:
                self.problems.append(f"run {run_id} still {final['status']} after its reader gave up")
                return
            kind = (final.get("error") or {}).get("kind")
            self.counts[f"run {final['status']}" + (f" ({kind})" if kind else "")] += 1
            self.problems += [f"run {run_id}: {p}" for p in reading.problems(final)]
            if final["status"] == "succeeded" and final["output"] != expected_output(text):
                self.problems.append(f"run {run_id} succeeded with another output")
            if final["ttft_ms"] is not None:
                self.latency["ttft (database)"].append((started, final["ttft_ms"] / 1000))

    async def save_prompt(self) -> None:
        self.version_count += 1
        body = {
            "system": f"Soak version {self.version_count}.",
            "messages": [{"role": "user", "content": "{{text}}"}],
            "model_config": {"provider": "mock", "model": "mock-1", "max_tokens": 200},
            "message": f"soak {self.version_count}",
        }
        await self.timed(
            "POST version",
            "POST",
            f"/workspaces/{self.ws}/prompts/{self.prompt_id}/versions",
            json=body,
            expect={201},
            retry=False,
        )

    async def reads(self) -> None:
        runs = await self.timed("GET runs", "GET", f"/workspaces/{self.ws}/runs", expect={200})
        items = runs.json()["items"]
        if items:
            await self.timed("GET run", "GET", f"/workspaces/{self.ws}/runs/{random.choice(items)['id']}", expect={200})
        await self.timed("GET prompts", "GET", f"/workspaces/{self.ws}/prompts", expect={200})
        await self.timed(
            "GET versions", "GET", f"/workspaces/{self.ws}/prompts/{self.prompt_id}/versions", expect={200}
        )
        await self.timed("GET usage", "GET", f"/workspaces/{self.ws}/usage", params={"group_by": "model"}, expect={200})

    async def comparison(self, index: int) -> None:
        rows = [{"text": f"c{index} row{r} " + " ".join(f"w{k}" for k in range(10))} for r in range(3)]
        body = {"prompt_id": self.prompt_id, "versions": [1, 2], "rows": rows}
        made = await self.timed(
            "POST comparison", "POST", f"/workspaces/{self.ws}/comparisons", json=body, expect={202}, retry=False
        )
        comparison_id = made.json()["id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            got = await self.timed(
                "GET comparison", "GET", f"/workspaces/{self.ws}/comparisons/{comparison_id}", expect={200}
            )
            progress = got.json()["progress"]
            if progress["done"] == progress["total"]:
                self.counts["comparison done"] += 1
                return
            await asyncio.sleep(1)
        self.problems.append(f"comparison {comparison_id} not done after 120 s")

    async def drive(self, until: float) -> None:
        index = 0
        next_at = time.monotonic()
        while time.monotonic() < until:
            index += 1
            self.spawn(self.one_run(index, cancel=index % 25 == 0))
            if index % 10 == 0:
                self.spawn(self.reads())
            if index % 40 == 0:
                self.spawn(self.save_prompt())
            if index % 120 == 0:
                self.spawn(self.comparison(index))
            next_at += 1 / RATE
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)


async def prepare(user: User) -> tuple[str, str]:
    ws = (await user.call("POST", "/workspaces", json={"name": "Soak"}, expect={201}, retry=False)).json()["id"]
    limits = {
        "max_concurrent_runs": 200,
        "runs_per_minute": 100_000,
        "member_runs_per_minute": 100_000,
        "monthly_budget_usd": "100000",
    }
    await user.call("PUT", f"/workspaces/{ws}/limits", json=limits, expect={200})
    prompt = await user.call("POST", f"/workspaces/{ws}/prompts", json={"name": "soak"}, expect={201}, retry=False)
    prompt_id = prompt.json()["id"]
    for system in ("", "Version two."):
        body = {
            "system": system,
            "messages": [{"role": "user", "content": "{{text}}"}],
            "model_config": {"provider": "mock", "model": "mock-1", "max_tokens": 200},
            "message": "v",
        }
        await user.call("POST", f"/workspaces/{ws}/prompts/{prompt_id}/versions", json=body, expect={201}, retry=False)
    return ws, prompt_id


def parse_metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


async def sample(cluster: PlaygroundCluster, load: Load | None, phase: str, t0: float) -> dict[str, Any]:
    row: dict[str, Any] = {
        "t_s": round(time.monotonic() - t0, 1),
        "phase": phase,
        "load1": round(os.getloadavg()[0], 2),
    }
    for name, pid in cluster.pids().items():
        rss = rss_kib(pid)
        row[f"{name}_rss_mib"] = round(rss / 1024, 1) if rss is not None else None
        row[f"{name}_fds"] = open_fds(pid)
    async with httpx.AsyncClient(timeout=10) as web:
        for index, base in enumerate(cluster.bases):
            try:
                text = (await web.get(f"{base}/metrics")).text
                row[f"api{index}_tasks"] = parse_metric(text, "playground_asyncio_tasks")
                row[f"api{index}_sse"] = parse_metric(text, "playground_sse_streams")
            except httpx.HTTPError:
                row[f"api{index}_tasks"] = None
        for index, port in enumerate(cluster.worker_metrics_ports):
            try:
                text = (await web.get(f"http://127.0.0.1:{port}/metrics")).text
                row[f"worker{index}_tasks"] = parse_metric(text, "playground_asyncio_tasks")
                row[f"worker{index}_in_flight"] = parse_metric(text, "playground_worker_runs_in_flight")
            except httpx.HTTPError:
                row[f"worker{index}_tasks"] = None
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        row["pg_connections"] = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", cluster.db_name
        )
        row["pg_active"] = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND state = 'active'", cluster.db_name
        )
    finally:
        await conn.close()
    client = aioredis.Redis(host="127.0.0.1", port=cluster.redis_port)
    try:
        row["redis_clients"] = (await client.info("clients"))["connected_clients"]
        row["redis_used_mib"] = round((await client.info("memory"))["used_memory"] / 2**20, 2)
        row["redis_keys"] = await client.dbsize()
    finally:
        await client.aclose()
    if load is not None:
        row["runs_reading"] = MAX_IN_FLIGHT - load.in_flight._value
    return row


async def sampler(
    cluster: PlaygroundCluster,
    load: Load,
    rows: list[dict[str, Any]],
    t0: float,
    warm_until: float,
    stop: asyncio.Event,
) -> None:
    while not stop.is_set():
        phase = "warmup" if time.monotonic() < warm_until else "load"
        try:
            rows.append(await sample(cluster, load, phase, t0))
        except Exception as exc:  # one missed sample is no reason to stop the soak
            print(f"sample failed: {exc!r}", flush=True)
            await asyncio.sleep(1)
            continue
        print(
            " ".join(
                f"{k}={v}"
                for k, v in rows[-1].items()
                if "rss" in k or k in ("t_s", "pg_connections", "redis_clients", "load1")
            ),
            flush=True,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_S)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    if len(points) < 3:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return statistics.linear_regression(xs, ys).slope * 3600


def analyse(
    rows: list[dict[str, Any]], idle: dict[str, Any], load: Load, t0: float, warm_s: float, names: list[str], out: Path
) -> tuple[list[str], list[str]]:
    """The checks (failures) and the report's lines."""
    failures: list[str] = []
    lines: list[str] = []
    steady = [r for r in rows if r["phase"] == "load"]
    if len(steady) < 6:
        return [f"only {len(steady)} samples after warm-up: run longer"], lines
    head, tail = steady[:3], steady[-3:]
    lines.append(
        "| process | RSS after warm-up (MiB) | RSS at end (MiB) | growth | trend (MiB/h) | max | "
        "fds after warm-up → end → idle | asyncio tasks after warm-up → idle |"
    )
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in names:
        rss = [(r["t_s"], r[f"{name}_rss_mib"]) for r in steady if r.get(f"{name}_rss_mib") is not None]
        if not rss:
            continue
        first = statistics.median(r[f"{name}_rss_mib"] for r in head)
        last = statistics.median(r[f"{name}_rss_mib"] for r in tail)
        growth = last - first
        bound = max(RSS_GROWTH_MIB, RSS_GROWTH_FRACTION * first)
        if growth > bound:
            failures.append(
                f"{name}: RSS grew {growth:.1f} MiB after warm-up ({first:.1f} → {last:.1f}; bound {bound:.1f})"
            )
        fd_first = min(r[f"{name}_fds"] for r in head)
        fd_last = tail[-1][f"{name}_fds"]
        fd_idle = idle.get(f"{name}_fds")
        if fd_idle is not None and fd_idle > fd_first + FD_SLACK:
            failures.append(f"{name}: {fd_idle} fds when idle, {fd_first} after warm-up")
        tasks = ""
        if f"{name}_tasks" in idle:
            task_first = min((r.get(f"{name}_tasks") or 0) for r in head)
            task_idle = idle.get(f"{name}_tasks")
            tasks = f"{task_first:.0f} → {task_idle:.0f}" if task_idle is not None else f"{task_first:.0f} → ?"
            if task_idle is not None and task_idle > task_first + TASK_SLACK:
                failures.append(
                    f"{name}: {task_idle:.0f} asyncio tasks when idle, {task_first:.0f} under load after warm-up"
                )
        lines.append(
            f"| {name} | {first:.1f} | {last:.1f} | {growth:+.1f} | {slope_per_hour(rss):+.1f} | "
            f"{max(v for _, v in rss):.1f} | {fd_first} → {fd_last} → {fd_idle} | {tasks} |"
        )
    pg_max = max(r["pg_connections"] for r in rows)
    pg_bound = (APIS + WORKERS) * (POOL + OVERFLOW + LISTENERS)
    if pg_max > pg_bound:
        failures.append(f"{pg_max} database connections at once; the pools allow {pg_bound}")
    pg_head = max(r["pg_connections"] for r in head)
    if idle["pg_connections"] > pg_head + PG_SLACK:
        failures.append(f"{idle['pg_connections']} database connections when idle, at most {pg_head} after warm-up")
    redis_head = max(r["redis_clients"] for r in head)
    if idle["redis_clients"] > redis_head + FD_SLACK:
        failures.append(f"{idle['redis_clients']} Redis clients when idle, at most {redis_head} after warm-up")
    lines.append("")
    lines.append(
        f"PostgreSQL connections to the soak database: max {pg_max} (pools allow {pg_bound}), "
        f"{min(r['pg_connections'] for r in steady)}-{max(r['pg_connections'] for r in steady)} after "
        f"warm-up, {idle['pg_connections']} when idle at the end. Redis clients: "
        f"{min(r['redis_clients'] for r in steady)}-{max(r['redis_clients'] for r in steady)} after warm-up, "
        f"{idle['redis_clients']} idle; Redis memory {steady[0]['redis_used_mib']} → "
        f"{steady[-1]['redis_used_mib']} MiB ({idle['redis_keys']} keys when idle). Load average "
        f"{min(r['load1'] for r in rows)}-{max(r['load1'] for r in rows)}."
    )
    lines.append("")

    # Latencies per window (a tenth of the run each), ms.
    end = max((t for series in load.latency.values() for t, _ in series), default=t0) + 1e-6
    windows = 10
    width = (end - t0) / windows
    ops = [
        "POST /runs",
        "ttft (database)",
        "run end to end",
        "GET run",
        "GET runs",
        "GET usage",
        "POST version",
        "POST cancel",
    ]
    lines.append("| operation | n | " + " | ".join(f"w{i + 1} p50/p99" for i in range(windows)) + " |")
    lines.append("| --- | --- |" + " --- |" * windows)
    with open(out / "latency.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["operation", "window", "from_s", "n", "p50_ms", "p99_ms"])
        for op in ops:
            series = load.latency.get(op, [])
            cells = []
            p99s = []
            for w in range(windows):
                lo, hi = t0 + w * width, t0 + (w + 1) * width
                values = [v * 1000 for t, v in series if lo <= t < hi]
                p50, p99 = pct(values, 0.5), pct(values, 0.99)
                writer.writerow([op, w + 1, round(lo - t0), len(values), round(p50, 1), round(p99, 1)])
                cells.append(f"{p50:.0f}/{p99:.0f}" if values else "-")
                if values and lo - t0 >= warm_s:
                    p99s.append(p99)
            lines.append(f"| {op} | {len(series)} | " + " | ".join(cells) + " |")
            # Stable p99: no post-warm-up window more than 3x (+250 ms) the median window's p99.
            if op in ("POST /runs", "GET run", "GET runs") and len(p99s) >= 3:
                typical = statistics.median(p99s)
                worst = max(p99s)
                if worst > 3 * typical + 250:
                    failures.append(f"{op}: a window's p99 {worst:.0f} ms vs {typical:.0f} ms typically")
    lines.append("")
    lines.append("Requests: " + ", ".join(f"{k}: {v}" for k, v in sorted(load.counts.items())))
    if load.problems:
        failures.append(f"{len(load.problems)} correctness problems, first: {load.problems[:5]}")
    return failures, lines


async def main() -> int:
    out = Path(os.environ.get("SOAK_OUT") or tempfile.mkdtemp(prefix="pp-soak-report-"))
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="pp-soak-"))
    env = {
        "PLAYGROUND_MOCK_TTFT_MS": "100",
        "PLAYGROUND_MOCK_TOKEN_MS": "20",
        "PLAYGROUND_DB_POOL_SIZE": str(POOL),
        "PLAYGROUND_DB_MAX_OVERFLOW": str(OVERFLOW),
    }
    cluster = PlaygroundCluster(
        tmp, ADMIN_DSN, MASTER_KEY, apis=APIS, workers=WORKERS, env=env, name_prefix="pp_soak", worker_metrics=True
    )
    print(f"soak: {MINUTES} min at {RATE} runs/s, {APIS} apis + {WORKERS} workers; report in {out}", flush=True)
    await asyncio.to_thread(cluster.start)
    failures: list[str] = []
    try:
        user = User(cluster.bases, read_timeout=60)
        await user.sign_up(f"soak-{uuid.uuid4().hex[:8]}@example.com")
        ws, prompt_id = await prepare(user)
        load = Load(user, ws, prompt_id)
        t0 = time.monotonic()
        warm_until = t0 + WARMUP_MIN * 60
        rows: list[dict[str, Any]] = []
        stop = asyncio.Event()
        sampling = asyncio.create_task(sampler(cluster, load, rows, t0, warm_until, stop))
        await load.drive(t0 + MINUTES * 60)
        stop.set()
        await sampling
        await asyncio.sleep(max(5.0, SAMPLE_S))  # idle: what is still held once the load is gone
        idle = await sample(cluster, None, "idle", t0)
        rows.append(idle)
        await user.aclose()
        names = list(cluster.pids())
        with open(out / "samples.csv", "w", newline="") as handle:
            fields = list(dict.fromkeys(k for r in rows for k in r))
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        failures, lines = analyse(rows, idle, load, t0, WARMUP_MIN * 60, names, out)
        header = [
            f"# Soak report ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
            "",
            f"{MINUTES} min at {RATE} runs/s ({APIS} apis, {WORKERS} workers, mock 100 ms TTFT + 20 ms/token, "
            f"{WORDS} words a run), warm-up {WARMUP_MIN:.1f} min, a sample every {SAMPLE_S:.0f} s "
            f"({len(rows)} samples in samples.csv).",
            "",
        ]
        verdict = ["", "## Checks", ""] + ([f"- FAILED: {f}" for f in failures] or ["- all held"])
        (out / "report.md").write_text("\n".join(header + lines + verdict) + "\n")
        print("\n".join(header + lines + verdict), flush=True)
    finally:
        codes = await asyncio.to_thread(cluster.close, keep_logs=bool(os.environ.get("PP_KEEP_LOGS")))
        print(f"exit codes: {codes}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
