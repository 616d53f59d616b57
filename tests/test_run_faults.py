"""Process-level faults of runs (invariants 4-6 of DESIGN.md) with real processes on loopback: a fresh database,
a private redis-server, one `playground api`, and per scenario its own `playground worker` processes (mostly two).

Every scenario asserts that each run the api accepted (202) reaches a terminal state, that a succeeded run's
output is exactly the mock's output for its input, and that every SSE reader got exactly the run's final output
(no character lost or repeated), however often it had to reconnect. The counts of each scenario are printed.

The worker's lease, reconciler interval, lost-dispatch threshold and grace period are shortened through
PLAYGROUND_WORKER_LEASE_SECONDS, PLAYGROUND_RECONCILE_SECONDS, PLAYGROUND_LOST_DISPATCH_SECONDS and
PLAYGROUND_WORKER_GRACE_SECONDS (30 s / 5 s / 30 s / 20 s by default: too slow for CI). Scenarios that need them
are skipped, with a reason, on a backend that lacks them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis

from tests.conftest import ADMIN_DSN, MASTER_KEY, _async_url
from tests.processes import free_port, start_redis_server, stop_process
from tests.runs_helpers import sse_events

pytestmark = pytest.mark.slow

PLAYGROUND = [sys.executable, "-m", "backend.cli"]
LEASE_S, RECONCILE_S, LOST_DISPATCH_S = 3.0, 0.5, 3.0
TERMINAL = {"succeeded", "failed", "cancelled"}
TERMINAL_EVENTS = {"run.completed", "run.failed", "run.cancelled"}
WORKER_STARTED = re.compile(r"worker (\S+) started")


def _timing_settings_exist() -> bool:
    from backend.core.settings import Settings

    wanted = {"worker_lease_seconds", "reconcile_seconds", "lost_dispatch_seconds", "worker_grace_seconds"}
    return wanted <= set(Settings.model_fields)


needs_timing = pytest.mark.skipif(
    not _timing_settings_exist(),
    reason="the worker's lease / reconcile / lost-dispatch / grace periods cannot be set from the environment "
    "(PLAYGROUND_WORKER_LEASE_SECONDS etc. missing from backend/core/settings.py); waiting the 30 s defaults "
    "would break the file's 90 s budget",
)


def expected_output(text: str) -> str:
    """The mock's answer to a final user message `text`: its words, each followed by one space."""
    return "".join(word + " " for word in text.split())


def words(tag: str, n: int) -> str:
    return " ".join(f"{tag}w{k}" for k in range(n))


# Processes


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYGROUND_")}
    env.update(extra)
    return env


@dataclass
class Worker:
    proc: subprocess.Popen
    worker_id: str
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


@dataclass
class Cluster:
    tmp: Path
    database_url: str
    redis_port: int
    prefix: str
    api_port: int = 0
    redis: subprocess.Popen | None = None
    api: subprocess.Popen | None = None
    workers: list[Worker] = field(default_factory=list)
    redis_restarted: bool = False
    # Signed in through the API, like a user: cookies + CSRF header.
    cookies: dict[str, str] = field(default_factory=dict)
    ws: str = ""
    prompt_id: str = ""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self, **extra: str) -> dict[str, str]:
        return _env(
            PLAYGROUND_DATABASE_URL=self.database_url,
            PLAYGROUND_REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            PLAYGROUND_REDIS_PREFIX=self.prefix,
            PLAYGROUND_MASTER_KEY=MASTER_KEY,
            PLAYGROUND_WORKER_METRICS_PORT="0",
            PLAYGROUND_WORKER_LEASE_SECONDS=str(LEASE_S),
            PLAYGROUND_RECONCILE_SECONDS=str(RECONCILE_S),
            PLAYGROUND_LOST_DISPATCH_SECONDS=str(LOST_DISPATCH_S),
            **extra,
        )

    def start_workers(self, n: int, *, ttft_ms: int, token_ms: int, grace_s: float = 15.0) -> list[Worker]:
        env = self.env(
            PLAYGROUND_MOCK_TTFT_MS=str(ttft_ms),
            PLAYGROUND_MOCK_TOKEN_MS=str(token_ms),
            PLAYGROUND_WORKER_GRACE_SECONDS=str(grace_s),
        )
        started = []
        for _ in range(n):
            log = self.tmp / f"worker-{uuid.uuid4().hex[:6]}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen([*PLAYGROUND, "worker"], env=env, stdout=out, stderr=subprocess.STDOUT)
            started.append((proc, log))
        workers = []
        for proc, log in started:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                found = WORKER_STARTED.search(log.read_text(errors="replace"))
                if found:
                    workers.append(Worker(proc, found.group(1), log))
                    break
                if proc.poll() is not None:
                    raise AssertionError(f"worker exited with {proc.returncode}:\n{log.read_text()}")
                time.sleep(0.05)
            else:
                raise AssertionError(f"worker did not start:\n{log.read_text()}")
        self.workers.extend(workers)
        return workers

    def stop_workers(self) -> None:
        for worker in self.workers:
            stop_process(worker.proc, timeout=30)
        self.workers.clear()

    def start_api(self) -> None:
        self.api_port = self.api_port or free_port()
        log = self.tmp / "api.log"
        with open(log, "ab") as out:
            self.api = subprocess.Popen(
                [*PLAYGROUND, "api", "--port", str(self.api_port)], env=self.env(), stdout=out, stderr=subprocess.STDOUT
            )
        _wait_healthy(self.api, self.api_port, log)

    def restart_api(self) -> None:
        assert self.api is not None
        code = stop_process(self.api, timeout=30)
        assert code == 0, f"api exited with {code}"
        self.start_api()

    def restart_redis_empty(self, down_seconds: float = 0.0) -> None:
        """kill -9 our redis-server and start a new, empty one on the same port."""
        assert self.redis is not None
        self.redis_restarted = True
        self.redis.kill()
        self.redis.wait(10)
        stop_process(self.redis)
        time.sleep(down_seconds)
        self.redis = start_redis_server(self.redis_port, self.tmp)


def _wait_healthy(proc: subprocess.Popen, port: int, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"api exited early with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise AssertionError("api did not become healthy")


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    tmp = Path(tempfile.mkdtemp(prefix="pp-faults-"))
    name = f"pp_faults_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    c = Cluster(
        tmp=tmp,
        database_url=_async_url(ADMIN_DSN, name),
        redis_port=free_port(),
        prefix=f"pp-faults:{uuid.uuid4().hex[:8]}:",
    )
    try:
        migrate = subprocess.run([*PLAYGROUND, "migrate"], env=c.env(), capture_output=True, text=True, timeout=120)
        assert migrate.returncode == 0, migrate.stderr
        c.redis = start_redis_server(c.redis_port, tmp)
        c.start_api()
        _sign_up_and_prepare(c)
        yield c
    finally:
        c.stop_workers()
        if c.api is not None:
            api_code = stop_process(c.api, timeout=30)
            print(f"\napi exited with {api_code}")
        if c.redis is not None:
            stop_process(c.redis)
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if os.environ.get("PP_KEEP_LOGS"):
            print(f"logs kept in {tmp}")
        else:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


def _sign_up_and_prepare(c: Cluster) -> None:
    """As in test_cli's curl journey: sign up (cookie + CSRF), a workspace, a prompt, a mock version."""
    with httpx.Client(base_url=f"{c.base}/api/v1", timeout=30) as client:
        signup = client.post(
            "/auth/signup", json={"email": "faults@example.com", "password": "long enough 1", "name": "F"}
        )
        assert signup.status_code == 201, signup.text
        csrf = {"X-CSRF-Token": client.cookies["csrf_token"]}
        ws = client.post("/workspaces", json={"name": "Faults"}, headers=csrf)
        assert ws.status_code == 201, ws.text
        c.ws = ws.json()["id"]
        prompt = client.post(f"/workspaces/{c.ws}/prompts", json={"name": "echo"}, headers=csrf)
        assert prompt.status_code == 201, prompt.text
        c.prompt_id = prompt.json()["id"]
        version = {
            "system": "",
            "messages": [{"role": "user", "content": "{{text}}"}],
            "model_config": {"provider": "mock", "model": "mock-1", "max_tokens": 1000},
            "message": "echo",
        }
        made = client.post(f"/workspaces/{c.ws}/prompts/{c.prompt_id}/versions", json=version, headers=csrf)
        assert made.status_code == 201, made.text
        c.cookies = dict(client.cookies)


@pytest.fixture
def workers_cleanup(cluster: Cluster) -> Iterator[None]:
    """Stops the scenario's workers afterwards. If an earlier scenario restarted Redis, it first restarts the api,
    so that this one does not trip over the api's pooled connections to the dead Redis server (a bug of its own,
    pinned by test_post_run_right_after_a_redis_restart)."""
    if cluster.redis_restarted:
        cluster.restart_api()
        cluster.redis_restarted = False
    yield
    cluster.stop_workers()


_TASKS: set[asyncio.Task] = set()


def spawn(coro) -> asyncio.Task:
    """A background task (an SSE reader) that is cancelled at the end of the test if it is still running."""
    task = asyncio.create_task(coro)
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
    return task


@pytest.fixture(autouse=True)
async def _reap_tasks() -> AsyncIterator[None]:
    yield
    leftover = list(_TASKS)
    for task in leftover:
        task.cancel()
    await asyncio.gather(*leftover, return_exceptions=True)


# HTTP


def api_client(c: Cluster) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"{c.base}/api/v1",
        cookies=c.cookies,
        headers={"X-CSRF-Token": c.cookies["csrf_token"]},
        timeout=httpx.Timeout(30, read=20),
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
    )


@dataclass
class Accepted:
    id: str
    text: str

    @property
    def expected(self) -> str:
        return expected_output(self.text)


async def post_run(client: httpx.AsyncClient, c: Cluster, text: str) -> Accepted:
    r = await client.post(f"/workspaces/{c.ws}/runs", json={"prompt_id": c.prompt_id, "variables": {"text": text}})
    assert r.status_code == 202, r.text
    return Accepted(r.json()["id"], text)


async def get_run(client: httpx.AsyncClient, c: Cluster, run_id: str) -> dict[str, Any]:
    r = await client.get(f"/workspaces/{c.ws}/runs/{run_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def wait_terminal(
    client: httpx.AsyncClient, c: Cluster, runs: list[Accepted], timeout: float
) -> dict[str, dict[str, Any]]:
    """Polls every accepted run until all are terminal; fails naming the ones that are not after `timeout`."""
    deadline = time.monotonic() + timeout
    final: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        pending = [r for r in runs if r.id not in final]
        if not pending:
            return final
        for run, body in zip(pending, await asyncio.gather(*(get_run(client, c, r.id) for r in pending)), strict=True):
            if body["status"] in TERMINAL:
                final[run.id] = body
        await asyncio.sleep(0.1)
    stuck = {r.id: (await get_run(client, c, r.id))["status"] for r in runs if r.id not in final}
    raise AssertionError(f"{len(stuck)} accepted runs not terminal after {timeout}s: {stuck}")


@dataclass
class Reading:
    """What one SSE reader of a run saw, over all its connections."""

    events: list[dict[str, Any]] = field(default_factory=list)
    connections: int = 0
    last_id: str | None = None

    @property
    def text(self) -> str:
        return "".join(e["data"]["text"] for e in self.events if e["event"] == "run.delta")

    @property
    def deltas(self) -> int:
        return sum(e["event"] == "run.delta" for e in self.events)

    @property
    def terminal(self) -> dict[str, Any] | None:
        ends = [e for e in self.events if e["event"] in TERMINAL_EVENTS]
        return ends[-1] if ends else None

    def check(self, final: dict[str, Any]) -> None:
        """Exactly the final output, one terminal event matching the final status, ids in order."""
        assert self.text == final["output"], (self.text, final["output"])
        ends = [e["event"] for e in self.events if e["event"] in TERMINAL_EVENTS]
        want = {"succeeded": "run.completed", "failed": "run.failed", "cancelled": "run.cancelled"}[final["status"]]
        assert ends == [want], ends
        assert self.events[-1]["event"] == want
        positions = [tuple(int(p) for p in e["id"].split("-")) for e in self.events]
        assert positions == sorted(positions), positions
        # The id's offset is the number of output characters the reader has after the event.
        offset = 0
        for event in self.events:
            if event["event"] == "run.delta":
                offset += len(event["data"]["text"])
            assert int(event["id"].split("-")[1]) == offset, (event, offset)


async def read_events(
    client: httpx.AsyncClient,
    c: Cluster,
    run_id: str,
    reading: Reading | None = None,
    *,
    stop_after_deltas: int | None = None,
    use_query: bool = False,
    max_connections: int = 30,
    timeout: float = 30,
) -> Reading:
    """Follows a run's events to its terminal event, reconnecting with Last-Event-ID after a drop or an early
    end (bounded). With stop_after_deltas, disconnects on purpose once that many deltas came in this call."""
    reading = reading or Reading()
    deadline = time.monotonic() + timeout
    got = 0
    while reading.connections < max_connections and time.monotonic() < deadline:
        reading.connections += 1
        url, headers, params = f"/workspaces/{c.ws}/runs/{run_id}/events", {}, {}
        if reading.last_id is not None:
            if use_query:
                params["last_event_id"] = reading.last_id
            else:
                headers["Last-Event-ID"] = reading.last_id
        try:
            # Keep-alive comments would keep a stream of a stuck run open for ever: the deadline bounds it.
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                async with client.stream("GET", url, headers=headers, params=params) as response:
                    assert response.status_code == 200, await response.aread()
                    assert response.headers["content-type"].startswith("text/event-stream")
                    async for event in sse_events(response):
                        reading.events.append(event)
                        reading.last_id = event["id"]
                        if event["event"] in TERMINAL_EVENTS:
                            return reading
                        if event["event"] == "run.delta":
                            got += 1
                            if stop_after_deltas is not None and got >= stop_after_deltas:
                                return reading
        except TimeoutError:
            break
        except (httpx.TransportError, httpx.RemoteProtocolError):
            await asyncio.sleep(0.1)
    if stop_after_deltas is None:
        raise AssertionError(
            f"reader of {run_id} saw no terminal event ({reading.connections} connections, {timeout}s)"
        )
    return reading


# The database, read directly only to see which worker holds which run (the API does not say).


async def owners(c: Cluster, run_ids: list[str]) -> dict[str, tuple[str, str | None, int]]:
    """run id -> (status, lease_owner, output_chars)."""
    conn = await asyncpg.connect(c.database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        rows = await conn.fetch(
            "SELECT id::text, status, lease_owner, output_chars FROM run WHERE id = ANY($1::uuid[])", run_ids
        )
    finally:
        await conn.close()
    return {r["id"]: (r["status"], r["lease_owner"], r["output_chars"]) for r in rows}


async def wait_streaming(c: Cluster, runs: list[Accepted], timeout: float = 15) -> dict[str, str]:
    """Waits until every run is running with at least one token saved; returns run id -> lease owner."""
    ids = [r.id for r in runs]
    deadline = time.monotonic() + timeout
    seen: dict[str, tuple[str, str | None, int]] = {}
    while time.monotonic() < deadline:
        seen = await owners(c, ids)
        if all(s == "running" and o and chars > 0 for s, o, chars in seen.values()) and len(seen) == len(ids):
            return {rid: o for rid, (_, o, _) in seen.items()}  # type: ignore[misc]
        await asyncio.sleep(0.03)
    raise AssertionError(f"runs did not all start streaming: {seen}")


def report(name: str, runs: list[Accepted], final: dict[str, dict[str, Any]], extra: str = "") -> Counter:
    counts = Counter(final[r.id]["status"] for r in runs)
    print(
        f"\n[{name}] accepted {len(runs)}: succeeded {counts['succeeded']}, failed {counts['failed']}, "
        f"cancelled {counts['cancelled']}{'; ' + extra if extra else ''}"
    )
    return counts


def assert_succeeded_exactly(run: Accepted, body: dict[str, Any]) -> None:
    assert body["status"] == "succeeded", body
    assert body["output"] == run.expected
    assert body["stop_reason"] == "end_turn"
    assert body["usage"]["output_tokens"] == len(run.text.split())
    assert body["usage"]["estimated"] is False


def assert_partial(run: Accepted, body: dict[str, Any]) -> None:
    assert body["output"], body
    assert run.expected.startswith(body["output"]), (body["output"], run.expected)
    assert body["usage"]["estimated"] is True, body["usage"]


# Scenarios


@needs_timing
async def test_kill_9_a_streaming_worker(cluster, workers_cleanup):
    """kill -9 the worker holding the most streaming runs: its runs end (worker_lost with a prefix of the output,
    or succeeded when retried before any saved token), the other worker's runs and runs queued after the kill
    finish exactly on the surviving worker."""
    c = cluster
    c.start_workers(2, ttft_ms=100, token_ms=50)
    async with api_client(c) as client:
        first = [await post_run(client, c, f"kill{i} " + words(f"k{i}", 59)) for i in range(8)]
        readers = {r.id: spawn(read_events(client, c, r.id)) for r in first}
        held = await wait_streaming(c, first)
        by_worker = Counter(held.values())
        victim = next(w for w in c.workers if w.worker_id == by_worker.most_common(1)[0][0])
        survivor = next(w for w in c.workers if w is not victim)
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        victim.proc.wait(5)
        on_victim = [r for r in first if held[r.id] == victim.worker_id]
        after = [await post_run(client, c, f"after{i} " + words(f"a{i}", 19)) for i in range(6)]
        readers.update({r.id: spawn(read_events(client, c, r.id)) for r in after})
        runs = first + after
        final = await wait_terminal(client, c, runs, timeout=LEASE_S + 15)
        ended_in = time.monotonic() - killed_at
        readings = {rid: await asyncio.wait_for(task, 20) for rid, task in readers.items()}

    assert survivor.proc.poll() is None, "the surviving worker died"
    lost = 0
    for run in runs:
        body = final[run.id]
        readings[run.id].check(body)
        if run in on_victim and body["status"] == "failed":
            lost += 1
            assert body["error"]["kind"] == "worker_lost", body["error"]
            assert_partial(run, body)
            assert len(body["output"]) < len(run.expected)
        else:
            assert_succeeded_exactly(run, body)
    assert on_victim, "the victim held no run"
    report(
        "kill -9 worker",
        runs,
        final,
        f"{len(on_victim)} on the killed worker ({lost} worker_lost), all terminal {ended_in:.1f}s after the kill",
    )


@needs_timing
async def test_kill_9_a_worker_before_its_first_tokens(cluster, workers_cleanup):
    """kill -9 a worker whose runs are claimed but have streamed nothing yet (slow first token): the reconciler
    queues them again once the lease expires, and the other worker completes them exactly (second attempt)."""
    c = cluster
    c.start_workers(2, ttft_ms=2000, token_ms=20)
    async with api_client(c) as client:
        runs = [await post_run(client, c, f"retry{i} " + words(f"r{i}", 9)) for i in range(6)]
        readers = {r.id: spawn(read_events(client, c, r.id)) for r in runs}
        deadline, held = time.monotonic() + 10, {}
        while time.monotonic() < deadline:
            seen = await owners(c, [r.id for r in runs])
            if all(status == "running" and owner for status, owner, _ in seen.values()):
                held = {rid: (owner, chars) for rid, (_, owner, chars) in seen.items()}
                break
            await asyncio.sleep(0.03)
        assert held, "the runs were not all claimed"
        victim_id = Counter(owner for owner, _ in held.values()).most_common(1)[0][0]
        victim = next(w for w in c.workers if w.worker_id == victim_id)
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        on_victim = [r for r in runs if held[r.id][0] == victim_id]
        assert all(held[r.id][1] == 0 for r in on_victim), "a token was saved before the kill: not this scenario"
        final = await wait_terminal(client, c, runs, timeout=LEASE_S + 15)
        ended_in = time.monotonic() - killed_at
        readings = {rid: await asyncio.wait_for(task, 20) for rid, task in readers.items()}
        conn = await asyncpg.connect(c.database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            attempts = dict(
                await conn.fetch("SELECT id::text, attempts FROM run WHERE id = ANY($1::uuid[])", [r.id for r in runs])
            )
        finally:
            await conn.close()
    for run in runs:
        assert_succeeded_exactly(run, final[run.id])
        readings[run.id].check(final[run.id])
        assert attempts[run.id] == (2 if run in on_victim else 1), (run.id, attempts[run.id])
    report(
        "kill -9 worker before first tokens",
        runs,
        final,
        f"{len(on_victim)} retried on the other worker, all terminal {ended_in:.1f}s after the kill",
    )


async def test_client_disconnects_and_resumes(cluster, workers_cleanup):
    """A reader drops mid-stream and resumes with Last-Event-ID (header, then ?last_event_id=): exact text. After
    the run ended, resuming from any id gives exactly the rest, from the live copy and, once it expired, from the
    database; resuming after the terminal event gives nothing."""
    c = cluster
    c.start_workers(2, ttft_ms=50, token_ms=30)
    async with api_client(c) as client:
        run = await post_run(client, c, "resume " + words("r", 39))
        reading = await read_events(client, c, run.id, stop_after_deltas=5)
        await asyncio.sleep(0.3)
        reading = await read_events(client, c, run.id, reading, stop_after_deltas=5)
        await asyncio.sleep(0.2)
        reading = await read_events(client, c, run.id, reading, use_query=True)
        final = await wait_terminal(client, c, [run], timeout=15)
        body = final[run.id]
        assert_succeeded_exactly(run, body)
        reading.check(body)
        assert reading.connections >= 3

        # After the end, from ids in the middle: live copy first, then with the live copy gone (expired).
        ids = [e["id"] for e in reading.events]
        middle = [ids[1], ids[len(ids) // 2], ids[-3]]
        for expired in (False, True):
            if expired:
                live = redis.Redis(port=c.redis_port)
                assert live.delete(f"{c.prefix}run:{run.id}:events") == 1
                live.close()
            for start in middle:
                rest = await read_events(client, c, run.id, Reading(last_id=start))
                upto = int(start.split("-")[1])
                assert body["output"][:upto] + rest.text == body["output"], (expired, start)
                assert rest.terminal is not None and rest.terminal["event"] == "run.completed"
        after_end = await read_events(
            client, c, run.id, Reading(last_id=ids[-1]), stop_after_deltas=0, max_connections=1
        )
        assert after_end.events == []
    report(
        "client disconnect + resume",
        [run],
        final,
        f"{reading.connections} connections, resumed from {len(middle)} ids after the end (live and expired)",
    )


async def test_cancel_mid_stream(cluster, workers_cleanup):
    """Cancel through the API while streaming: `cancelled` within 1 s (database clock), partial output a prefix
    of the expected output, nothing more streamed after it, usage estimated, cost > 0."""
    c = cluster
    c.start_workers(2, ttft_ms=50, token_ms=50)
    async with api_client(c) as client:
        runs = [await post_run(client, c, f"cancel{i} " + words(f"c{i}", 79)) for i in range(3)]
        readers = {r.id: spawn(read_events(client, c, r.id)) for r in runs}
        await wait_streaming(c, runs)
        await asyncio.sleep(0.5)
        walls = {}
        for r in runs:
            started = time.monotonic()
            answer = await client.post(f"/workspaces/{c.ws}/runs/{r.id}/cancel")
            assert answer.status_code == 202, answer.text
            walls[r.id] = started
        final: dict[str, dict[str, Any]] = {}
        waited: dict[str, float] = {}
        deadline = time.monotonic() + 5
        while len(final) < len(runs) and time.monotonic() < deadline:
            for r in runs:
                if r.id not in final:
                    body = await get_run(client, c, r.id)
                    if body["status"] in TERMINAL:
                        final[r.id], waited[r.id] = body, time.monotonic() - walls[r.id]
            await asyncio.sleep(0.05)
        final = await wait_terminal(client, c, runs, timeout=1)
        readings = {rid: await asyncio.wait_for(task, 10) for rid, task in readers.items()}
        await asyncio.sleep(0.5)
        again = {r.id: await get_run(client, c, r.id) for r in runs}
        conn = await asyncpg.connect(c.database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            lag = {
                row["id"]: row["lag"]
                for row in await conn.fetch(
                    "SELECT id::text, extract(epoch FROM finished_at - cancel_requested_at) AS lag FROM run "
                    "WHERE id = ANY($1::uuid[])",
                    [r.id for r in runs],
                )
            }
        finally:
            await conn.close()
    for r in runs:
        body = final[r.id]
        assert body["status"] == "cancelled", body
        assert body["stop_reason"] == "cancelled"
        assert_partial(r, body)
        assert len(body["output"]) < len(r.expected)
        assert body["usage"]["output_tokens"] >= len(body["output"].split())
        assert Decimal(body["cost_usd"]) > 0, body["cost_usd"]
        assert again[r.id]["output"] == body["output"], "tokens kept coming after the cancellation"
        readings[r.id].check(body)
        assert float(lag[r.id]) <= 1.0, f"cancelled {lag[r.id]} s after the request (database clock)"
        assert waited[r.id] <= 1.5, f"seen cancelled {waited[r.id]:.2f} s after POST /cancel (wall clock, polled)"
    report(
        "cancel mid-stream",
        runs,
        final,
        "cancel → cancelled: " + ", ".join(f"{float(lag[r.id]) * 1000:.0f} ms" for r in runs) + " (database clock)",
    )


@needs_timing
async def test_sigterm_a_streaming_worker(cluster, workers_cleanup):
    """SIGTERM the worker holding the most streaming runs: it stops claiming (runs posted afterwards go to the
    other worker), its in-flight runs finish within the grace period, and it exits 0."""
    c = cluster
    grace = 10.0
    c.start_workers(2, ttft_ms=50, token_ms=40, grace_s=grace)
    async with api_client(c) as client:
        first = [await post_run(client, c, f"term{i} " + words(f"t{i}", 49)) for i in range(6)]
        readers = {r.id: spawn(read_events(client, c, r.id)) for r in first}
        held = await wait_streaming(c, first)
        victim_id = Counter(held.values()).most_common(1)[0][0]
        victim = next(w for w in c.workers if w.worker_id == victim_id)
        on_victim = [r for r in first if held[r.id] == victim_id]
        victim.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        after = [await post_run(client, c, f"later{i} " + words(f"x{i}", 19)) for i in range(6)]
        readers.update({r.id: spawn(read_events(client, c, r.id)) for r in after})

        # Who holds each later run, sampled until all are terminal: never the stopping worker.
        holders: dict[str, set[str]] = {r.id: set() for r in after}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            seen = await owners(c, [r.id for r in after])
            for rid, (_, owner, _) in seen.items():
                if owner:
                    holders[rid].add(owner)
            if all(s in TERMINAL for s, _, _ in seen.values()):
                break
            await asyncio.sleep(0.02)
        exit_code = await asyncio.to_thread(victim.proc.wait, grace + 10)
        exited_in = time.monotonic() - signalled
        runs = first + after
        final = await wait_terminal(client, c, runs, timeout=15)
        readings = {rid: await asyncio.wait_for(task, 20) for rid, task in readers.items()}
    assert exit_code == 0, victim.log.read_text()[-3000:]
    assert exited_in <= grace + 2, f"exited {exited_in:.1f}s after SIGTERM (grace {grace}s)"
    assert on_victim
    assert all(victim_id not in held_by for held_by in holders.values()), holders
    for run in runs:
        assert_succeeded_exactly(run, final[run.id])  # 2 s runs end well within the grace period
        readings[run.id].check(final[run.id])
    report(
        "SIGTERM worker (graceful)",
        runs,
        final,
        f"{len(on_victim)} in flight on the stopping worker; exit 0 after {exited_in:.1f}s",
    )


@needs_timing
async def test_sigterm_with_a_short_grace_hands_runs_back(cluster, workers_cleanup):
    """SIGTERM a worker whose grace period is shorter than its runs: it hands its unfinished runs back before it
    exits (none left `running` under its lease), exits 0 within the grace period (plus shutdown), and every run
    reaches a terminal state that its readers saw exactly."""
    c = cluster
    grace = 0.5
    c.start_workers(1, ttft_ms=50, token_ms=50, grace_s=grace)
    async with api_client(c) as client:
        runs = [await post_run(client, c, f"short{i} " + words(f"s{i}", 79)) for i in range(4)]
        readers = {r.id: spawn(read_events(client, c, r.id, timeout=40)) for r in runs}
        await wait_streaming(c, runs)
        (victim,) = c.workers
        c.start_workers(1, ttft_ms=50, token_ms=50)  # the one that takes over
        victim.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        exit_code = await asyncio.to_thread(victim.proc.wait, 30)
        exited_in = time.monotonic() - signalled
        at_exit = await owners(c, [r.id for r in runs])
        final = await wait_terminal(client, c, runs, timeout=LEASE_S + 15)
        readings = {rid: await asyncio.wait_for(task, 20) for rid, task in readers.items()}
    assert exit_code == 0, victim.log.read_text()[-3000:]
    assert exited_in <= grace + 3, f"exited {exited_in:.1f}s after SIGTERM (grace {grace}s)"
    # Handed back before the exit: none is left `running` under the dead worker's lease for the reconciler.
    held = {rid: s for rid, (s, owner, _) in at_exit.items() if s == "running" and owner == victim.worker_id}
    assert not held, f"still running under the stopped worker's lease: {held}"
    for run in runs:
        body = final[run.id]
        readings[run.id].check(body)
        if body["status"] == "succeeded":
            assert_succeeded_exactly(run, body)
        else:
            # Handed back by the stopping worker (worker_shutdown), or failed by the reconciler (worker_lost).
            assert body["status"] == "failed", body
            assert body["error"]["kind"] in ("worker_shutdown", "worker_lost"), body["error"]
            assert_partial(run, body)
    kinds = Counter((final[r.id]["error"] or {}).get("kind") for r in runs)
    report("SIGTERM worker (grace 0.5 s)", runs, final, f"exit {exit_code} after {exited_in:.1f}s; {dict(kinds)}")


@needs_timing
async def test_redis_restarted_empty_with_runs_accepted_not_started(cluster, workers_cleanup):
    """Both workers stopped (SIGSTOP), 20 runs accepted, Redis restarted empty, workers resumed: all 20 complete
    (the reconciler re-publishes what the queue lost), and readers following them through the restart get exact
    text."""
    c = cluster
    workers = c.start_workers(2, ttft_ms=20, token_ms=5)
    for w in workers:
        os.kill(w.pid, signal.SIGSTOP)
    try:
        async with api_client(c) as client:
            runs = [await post_run(client, c, f"lost{i} " + words(f"l{i}", 11)) for i in range(20)]
            statuses = await owners(c, [r.id for r in runs])
            assert {s for s, _, _ in statuses.values()} == {"queued"}
            readers = {r.id: spawn(read_events(client, c, r.id, timeout=45)) for r in runs}
            await asyncio.sleep(0.3)  # readers attached to the live streams that are about to vanish
            c.restart_redis_empty()
            restarted = time.monotonic()
            for w in workers:
                os.kill(w.pid, signal.SIGCONT)
            final = await wait_terminal(client, c, runs, timeout=LOST_DISPATCH_S + 20)
            took = time.monotonic() - restarted
            readings = {rid: await asyncio.wait_for(task, 20) for rid, task in readers.items()}
    finally:
        for w in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(w.pid, signal.SIGCONT)
    for run in runs:
        assert_succeeded_exactly(run, final[run.id])
        readings[run.id].check(final[run.id])
    assert all(w.proc.poll() is None for w in workers)
    report("redis restarted empty, runs queued", runs, final, f"all terminal {took:.1f}s after the restart")


async def test_redis_restarted_mid_stream(cluster, workers_cleanup):
    """Redis restarted (empty) while a run streams: a reader that stays connected, one that disconnected before
    the restart and resumes while Redis is down, and one that resumes after it is back each get exactly the
    full output; the run succeeds."""
    c = cluster
    c.start_workers(2, ttft_ms=50, token_ms=50)
    async with api_client(c) as client:
        runs = [await post_run(client, c, f"mid{i} " + words(f"m{i}", 59)) for i in range(3)]
        staying = {r.id: spawn(read_events(client, c, r.id)) for r in runs}
        early = {r.id: await read_events(client, c, r.id, stop_after_deltas=8) for r in runs}
        late = {r.id: await read_events(client, c, r.id, stop_after_deltas=1) for r in runs}
        assert c.redis is not None
        c.redis.kill()
        c.redis.wait(10)
        down = [spawn(read_events(client, c, r.id, early[r.id])) for r in runs]
        await asyncio.sleep(1.0)
        c.restart_redis_empty()
        # Resumes once Redis is back; the live copy of the first events is gone for good.
        late_done = [spawn(read_events(client, c, r.id, late[r.id])) for r in runs]
        final = await wait_terminal(client, c, runs, timeout=30)
        await asyncio.wait_for(asyncio.gather(*down, *late_done), 20)
        stayed = {rid: await asyncio.wait_for(task, 20) for rid, task in staying.items()}
    for run in runs:
        assert_succeeded_exactly(run, final[run.id])
        for reading in (stayed[run.id], early[run.id], late[run.id]):
            reading.check(final[run.id])
    reconnects = sum(stayed[r.id].connections - 1 for r in runs)
    report("redis restarted mid-stream", runs, final, f"3 readers per run; connected ones reconnected {reconnects}x")


async def _count_runs(c: Cluster) -> int:
    conn = await asyncpg.connect(c.database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        return await conn.fetchval("SELECT count(*) FROM run")
    finally:
        await conn.close()


@needs_timing
async def test_post_run_right_after_a_redis_restart(cluster, workers_cleanup):
    """Redis restarted (empty) between two requests: the next POST /runs is accepted (202) and runs."""
    c = cluster
    c.start_workers(1, ttft_ms=10, token_ms=2)
    async with api_client(c) as client:
        warm = await post_run(client, c, "warm up the pool")
        await wait_terminal(client, c, [warm], timeout=10)
        before = await _count_runs(c)
        c.restart_redis_empty()
        answers, runs = [], []
        for i in range(5):
            text = f"after restart {i}"
            try:
                r = await client.post(
                    f"/workspaces/{c.ws}/runs", json={"prompt_id": c.prompt_id, "variables": {"text": text}}
                )
            except httpx.TransportError as exc:  # the api may drop the connection after an unhandled error
                answers.append(type(exc).__name__)
                continue
            answers.append(r.status_code)
            if r.status_code == 202:
                runs.append(Accepted(r.json()["id"], text))
        final = await wait_terminal(client, c, runs, timeout=LOST_DISPATCH_S + 10)
        created = await _count_runs(c) - before
    report("POST right after a Redis restart", runs, final, f"answers {answers}; runs created {created}")
    assert answers == [202] * 5, answers
    for run in runs:
        assert_succeeded_exactly(run, final[run.id])


@needs_timing
async def test_post_run_while_redis_is_down(cluster, workers_cleanup):
    """With Redis down, POST /runs either accepts the run (202, and it completes once Redis is back) or refuses it
    and leaves no run behind (invariant 10: nothing half-written by a rejected request)."""
    c = cluster
    async with api_client(c) as client:
        before = await _count_runs(c)
        assert c.redis is not None
        c.redis.kill()
        c.redis.wait(10)
        c.redis_restarted = True
        try:
            r = await client.post(
                f"/workspaces/{c.ws}/runs", json={"prompt_id": c.prompt_id, "variables": {"text": "redis is down"}}
            )
            answer: int | str = r.status_code
        except httpx.TransportError as exc:  # the api may drop the connection after an unhandled error
            answer = type(exc).__name__
        created = await _count_runs(c) - before
        c.restart_redis_empty()
        if answer == 202:
            c.start_workers(1, ttft_ms=10, token_ms=2)
            run = Accepted(r.json()["id"], "redis is down")
            final = await wait_terminal(client, c, [run], timeout=LOST_DISPATCH_S + 10)
            report("POST while Redis is down", [run], final, "answer 202")
            assert_succeeded_exactly(run, final[run.id])
        else:
            print(f"\n[POST while Redis is down] answer {answer}, runs created {created}")
            assert created == 0, f"answered {answer} but created {created} run(s), which will run and bill"
