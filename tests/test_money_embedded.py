"""The money scenarios again in embedded mode, the `playground up` configuration: no Redis, so the app runs
the in-process queue, event stream, cancel signals and limiter, and its own worker and housekeeping inside
its lifespan (create_app(..., background_jobs=True, workers=N)). PostgreSQL is the real one, as everywhere.

Budgets under concurrent POSTs (zero overshoot, also while the in-process worker settles runs), settlement
to the ledger and every rollup, rate limits (429 with Retry-After) from the in-memory limiter, the queue
bound, the concurrency cap and fair dispatch with the in-process queue, cancellation through in-process
signals, and a restart (what the in-memory queue held, and runs whose worker died, still settle)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from httpx import ASGITransport
from redis.asyncio import Redis
from sqlalchemy import text

from backend.app import create_app
from backend.ratelimit import limiter as limiter_module
from backend.ratelimit.limiter import MemoryLimiter, RedisLimiter
from backend.runs.backends.memory import MemoryCancelSignals, MemoryEventStream, MemoryRunQueue
from tests.conftest import REDIS_URL, Client
from tests.factories import Account, create_workspace, signup
from tests.test_money import (
    _assert_rows_sum_to_total,
    _usage,
    assert_day_rollups_match_the_fine_rollup,
    assert_problem,
    budget_row,
    get_run,
    iso,
    ledger_of,
    member,
    mock_micros,
    new_prompt,
    post_run,
    put_limits,
    rows,
    run_count,
    scalar,
    start,
    usd,
    wait_all_terminal,
    wait_for,
)

UP_WORKERS = 8  # the in-process worker's concurrency (`up` uses 100; a few are plenty here)


@pytest.fixture
def up_settings() -> dict[str, Any]:
    """Per-test settings of the embedded app (parametrize `up_settings` to change them): its worker is built
    from them when its lifespan starts."""
    return {}


@pytest.fixture
def settings(settings, up_settings):
    """`playground up` without PLAYGROUND_REDIS_URL: every transport and the limiter live in the process."""
    return settings.model_copy(update={"redis_url": None, "mock_ttft_ms": 5, "mock_token_ms": 2, **up_settings})


SLOW_MOCK = {"mock_ttft_ms": 5, "mock_token_ms": 40}  # 200 words take 8 s


@pytest.fixture
async def app(settings, db_engine):
    application = create_app(settings, background_jobs=True, workers=UP_WORKERS)
    yield application
    # Apps whose lifespan never ran (the worker was not needed) still hold an engine.
    await application.state.engine.dispose()


@contextlib.asynccontextmanager
async def up(app) -> AsyncIterator[None]:
    """The app's lifespan as `up` runs it: the in-process worker and housekeeping start, and stop at the end
    (the worker finishes what it holds). Requests made before it are accepted and wait in the memory queue,
    as they would while the worker is busy."""
    async with app.router.lifespan_context(app):
        yield


@contextlib.asynccontextmanager
async def another_process(settings, client, **changes: Any) -> AsyncIterator[tuple[Any, Client]]:
    """A second embedded process on the same database (its own in-process backends; start it with `up`), and
    a client of it signed in as `client` is."""
    workers = changes.pop("workers", 2)
    app = create_app(settings.model_copy(update=changes), background_jobs=True, workers=workers)
    other = Client(transport=ASGITransport(app=app), base_url="http://testserver/api/v1", cookies=client.cookies)
    try:
        yield app, other
    finally:
        await other.aclose()
        await app.state.engine.dispose()


@pytest.fixture
async def owner(client) -> Account:
    return await signup(client)


@pytest.fixture
async def ws(owner) -> str:
    return await create_workspace(owner)


async def settled_costs(db_engine, ws: str) -> list[int]:
    return [c for (c,) in await rows(db_engine, "SELECT cost_micros FROM run WHERE workspace_id = :ws", ws=ws)]


async def assert_settled_exactly(db_engine, ws: str, runs: int) -> int:
    """Every run of the workspace ended and settled: spent is the sum of their costs, nothing stays reserved,
    each run has one reserve, release and settle entry that agree with it, and the rollups add up."""
    costs = await settled_costs(db_engine, ws)
    assert len(costs) == runs and all(c is not None for c in costs)
    assert await budget_row(db_engine, ws) == (sum(costs), 0)
    for run_id, reserved, cost in await rows(
        db_engine, "SELECT id, reserved_micros, cost_micros FROM run WHERE workspace_id = :ws", ws=ws
    ):
        assert await ledger_of(db_engine, run_id) == {"reserve": [reserved], "release": [reserved], "settle": [cost]}
    rolled = await rows(
        db_engine, "SELECT sum(runs), sum(cost_micros) FROM usage_rollup WHERE workspace_id = :ws", ws=ws
    )
    assert (int(rolled[0][0]), int(rolled[0][1])) == (runs, sum(costs))
    await assert_day_rollups_match_the_fine_rollup(db_engine)
    return sum(costs)


async def test_the_embedded_app_runs_on_the_in_process_backends(app):
    assert app.state.redis is None
    assert isinstance(app.state.limiter, MemoryLimiter)
    backends = app.state.run_backends
    assert isinstance(backends.queue, MemoryRunQueue)
    assert isinstance(backends.events, MemoryEventStream)
    assert isinstance(backends.cancels, MemoryCancelSignals)


# --- budgets ---------------------------------------------------------------------------------------------


async def test_concurrent_posts_never_overshoot_the_budget(client, app, ws, db_engine):
    pid = await new_prompt(client, ws)
    worst = mock_micros(3, 256)  # "Say a b" with max_tokens 256
    fits = 7
    budget = fits * worst
    await put_limits(client, ws, monthly_budget_usd=usd(budget))
    peak = 0
    stop = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            spent, reserved = await budget_row(db_engine, ws)
            peak = max(peak, spent + reserved)
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    try:
        responses = await asyncio.gather(*(post_run(client, ws, pid, "a b") for _ in range(40)))
        accepted = [r for r in responses if r.status_code == 202]
        assert len(accepted) == fits, [r.status_code for r in responses]
        for response in responses:
            if response.status_code != 202:
                assert assert_problem(response, 402)["remaining_usd"] == usd(0)
        assert await budget_row(db_engine, ws) == (0, budget)
        assert await run_count(db_engine, ws) == fits
        async with up(app):
            await wait_all_terminal(db_engine, ws, fits)
    finally:
        stop.set()
        await sampler
    assert peak <= budget, f"spent + reserved reached {peak} > budget {budget}"
    for response in accepted:
        run = await get_run(client, ws, response.json()["id"])
        assert run["status"] == "succeeded" and run["cost_usd"] == usd(mock_micros(3, 3)), run
    assert await assert_settled_exactly(db_engine, ws, fits) == fits * mock_micros(3, 3)
    # What the runs did not use is available again.
    assert (await post_run(client, ws, pid, "a b")).status_code == 202


async def test_concurrent_posts_while_the_in_process_worker_settles_never_overshoot(client, app, ws, db_engine):
    """Reservations race settlements: runs end and hand money back while other requests reserve."""
    pid = await new_prompt(client, ws)
    worst = mock_micros(3, 256)
    fits = 5
    budget = fits * worst
    await put_limits(client, ws, monthly_budget_usd=usd(budget))
    peak = 0
    stop = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            spent, reserved = await budget_row(db_engine, ws)
            peak = max(peak, spent + reserved)
            await asyncio.sleep(0.003)

    async with up(app):
        sampler = asyncio.create_task(sample())
        try:
            responses = []
            for _ in range(3):  # waves, so that runs of one wave settle while the next one reserves
                responses += await asyncio.gather(*(post_run(client, ws, pid, "a b") for _ in range(20)))
            accepted = [r for r in responses if r.status_code == 202]
            for response in responses:
                if response.status_code != 202:
                    assert_problem(response, 402)
            # Whatever interleaving happened, the first `fits` reservations always fit: each refusal saw the
            # budget full.
            assert len(accepted) >= fits, [r.status_code for r in responses]
            await wait_all_terminal(db_engine, ws, len(accepted))
        finally:
            stop.set()
            await sampler
    assert peak <= budget, f"spent + reserved reached {peak} > budget {budget}"
    spent = await assert_settled_exactly(db_engine, ws, len(accepted))
    assert spent == len(accepted) * mock_micros(3, 3) <= budget


async def test_a_queued_run_cancelled_in_process_releases_its_reservation(client, ws, db_engine):
    pid = await new_prompt(client, ws)
    worst = mock_micros(5, 256)
    run_id = await start(client, ws, pid, "a b c d")
    assert await budget_row(db_engine, ws) == (0, worst)
    assert (await client.post(f"/workspaces/{ws}/runs/{run_id}/cancel")).status_code == 202
    run = await get_run(client, ws, run_id)
    assert run["status"] == "cancelled" and run["cost_usd"] == "0.000000"
    assert await ledger_of(db_engine, run_id) == {"reserve": [worst], "release": [worst], "settle": [0]}
    await assert_settled_exactly(db_engine, ws, 1)


@pytest.mark.parametrize("up_settings", [SLOW_MOCK], ids=["slow-mock"])
async def test_a_running_run_cancelled_by_in_process_signal_bills_what_streamed(client, app, ws, db_engine):
    pid = await new_prompt(client, ws, "{{words}}")
    words = " ".join(f"w{i}" for i in range(200))  # 8 s of tokens: the cancel lands long before the end
    async with up(app):
        run_id = await start(client, ws, pid, words)
        deadline = time.monotonic() + 10
        while not (await get_run(client, ws, run_id))["output"]:
            assert time.monotonic() < deadline, "no token streamed"
            await asyncio.sleep(0.02)
        assert (await client.post(f"/workspaces/{ws}/runs/{run_id}/cancel")).status_code == 202
        run = await wait_for(client, ws, run_id, timeout=10)
    assert run["status"] == "cancelled", run
    streamed = run["usage"]["output_tokens"]
    assert 1 <= streamed < 200
    assert run["cost_usd"] == usd(mock_micros(run["usage"]["input_tokens"], streamed))
    await assert_settled_exactly(db_engine, ws, 1)


# --- rate limits and the queue bound (in-memory limiter) -------------------------------------------------


async def test_runs_per_minute_answers_429_with_retry_after_and_creates_nothing(client, ws, db_engine):
    pid = await new_prompt(client, ws)
    await put_limits(client, ws, runs_per_minute=3)
    for _ in range(3):
        await start(client, ws, pid)
    response = await post_run(client, ws, pid)
    assert_problem(response, 429)
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit() and 0 < int(retry_after) <= 60, retry_after
    assert int(assert_problem(response, 429)["retry_after"]) == int(retry_after)
    assert await run_count(db_engine, ws) == 3
    assert await budget_row(db_engine, ws) == (0, 3 * mock_micros(3, 256))


async def test_concurrent_posts_never_overshoot_runs_per_minute(client, ws, db_engine):
    pid = await new_prompt(client, ws)
    await put_limits(client, ws, runs_per_minute=6)
    responses = await asyncio.gather(*(post_run(client, ws, pid) for _ in range(30)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [202] * 6 + [429] * 24, codes
    for response in responses:
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) > 0
    assert await run_count(db_engine, ws) == 6


async def test_requests_refused_for_money_do_not_use_up_the_rate_limit(client, ws, db_engine):
    pid = await new_prompt(client, ws)
    await put_limits(client, ws, runs_per_minute=3, monthly_budget_usd="0")
    for _ in range(3):
        assert_problem(await post_run(client, ws, pid), 402)
    await put_limits(client, ws, monthly_budget_usd="1")
    for _ in range(3):
        await start(client, ws, pid)
    assert_problem(await post_run(client, ws, pid), 429)
    assert await run_count(db_engine, ws) == 3


async def test_member_runs_per_minute_limits_one_member_not_the_others(client, make_client, owner, ws, db_engine):
    pid = await new_prompt(client, ws)
    await put_limits(client, ws, member_runs_per_minute=2)
    editor = await member(make_client, owner, ws, "editor")
    await start(editor.client, ws, pid)
    await start(editor.client, ws, pid)
    response = await post_run(editor.client, ws, pid)
    assert_problem(response, 429)
    assert int(response.headers["Retry-After"]) > 0
    await start(client, ws, pid)
    await start(client, ws, pid)
    assert_problem(await post_run(client, ws, pid), 429)
    assert await run_count(db_engine, ws) == 4


async def test_concurrent_posts_never_overshoot_max_queued_runs(client, ws, db_engine):
    pid = await new_prompt(client, ws)
    await put_limits(client, ws, max_queued_runs=5)
    responses = await asyncio.gather(*(post_run(client, ws, pid) for _ in range(30)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [202] * 5 + [429] * 25, f"{codes.count(202)} accepted with max_queued_runs=5"
    for response in responses:
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) > 0
    assert await run_count(db_engine, ws) == 5
    assert await budget_row(db_engine, ws) == (0, 5 * mock_micros(3, 256))


# --- the concurrency cap with the in-process queue ----------------------------------------------------------


@pytest.mark.parametrize("up_settings", [{"mock_ttft_ms": 5, "mock_token_ms": 20}], ids=["slower-mock"])
async def test_never_more_than_max_concurrent_runs_run_at_once(client, app, ws, db_engine):
    await put_limits(client, ws, max_concurrent_runs=2)
    pid = await new_prompt(client, ws, "{{words}}")
    words = " ".join(f"w{i}" for i in range(15))
    ids = list(await asyncio.gather(*(start(client, ws, pid, words) for _ in range(8))))
    dispatched = await scalar(
        db_engine, "SELECT count(*) FROM run WHERE workspace_id = :ws AND dispatched_at IS NOT NULL", ws=ws
    )
    assert dispatched == 2  # only what the cap allows went to the in-process queue
    assert await app.state.run_backends.queue.depth() == 2
    peak = 0
    async with up(app):
        deadline = time.monotonic() + 30
        while True:
            running, done = (
                await rows(
                    db_engine,
                    "SELECT count(*) FILTER (WHERE status = 'running'), "
                    "count(*) FILTER (WHERE status IN ('succeeded', 'failed', 'cancelled')) "
                    "FROM run WHERE workspace_id = :ws",
                    ws=ws,
                )
            )[0]
            peak = max(peak, running)
            assert running <= 2, f"{running} runs running at once with max_concurrent_runs=2"
            if done == 8:
                break
            assert time.monotonic() < deadline, f"only {done} of 8 finished"
            await asyncio.sleep(0.02)
    assert peak == 2, f"the cap was never used (peak {peak})"
    for run_id in ids:
        assert (await get_run(client, ws, run_id))["status"] == "succeeded"
    await assert_settled_exactly(db_engine, ws, 8)


# --- usage ---------------------------------------------------------------------------------------------------


async def test_usage_from_every_grouping_equals_the_runs(client, app, make_client, owner, ws, db_engine):
    editor = await member(make_client, owner, ws, "editor")
    p1 = await new_prompt(client, ws)
    p2 = await new_prompt(client, ws, "Repeat {{words}}", system="Be exact")
    plan = [(client, p1, "one"), (client, p2, "two words"), (editor.client, p1, "x y z"), (editor.client, p2, "q")]
    async with up(app):
        for c, pid, words in plan:
            await start(c, ws, pid, words)
        await wait_all_terminal(db_engine, ws, len(plan))
    cost = await assert_settled_exactly(db_engine, ws, len(plan))
    totals: list[dict[str, Any]] = []
    for group_by in ("day", "model", "user", "prompt"):
        body = await _usage(client, ws, group_by)
        _assert_rows_sum_to_total(body)
        totals.append(body["total"])
        assert body["budget"]["spent_usd"] == usd(cost) and body["budget"]["reserved_usd"] == usd(0)
    assert all(t == totals[0] for t in totals), totals
    assert totals[0]["runs"] == len(plan) and totals[0]["cost_usd"] == usd(cost)
    latency = (await client.get(f"/workspaces/{ws}/usage/latency", params={"group_by": "prompt"})).json()
    assert sorted(r["key"] for r in latency) == sorted([p1, p2])


# --- restarts and fairness -----------------------------------------------------------------------------------


async def test_runs_accepted_before_a_restart_still_run_and_settle(client, settings, ws, db_engine):
    """The in-process queue dies with the process: runs it held are found by the next `up`'s reconciler and
    published again, and their reservations settle exactly."""
    pid = await new_prompt(client, ws)
    ids = [await start(client, ws, pid, words) for words in ("a", "a b", "a b c")]
    assert await budget_row(db_engine, ws) == (0, sum(mock_micros(n + 1, 256) for n in (1, 2, 3)))
    # The process that accepted them is gone (its memory queue with it); a new one starts.
    restart = another_process(settings, client, lost_dispatch_seconds=0.5, reconcile_seconds=0.2)
    async with restart as (restarted_app, restarted), up(restarted_app):
        await wait_all_terminal(db_engine, ws, 3, timeout=20)
        for run_id in ids:
            assert (await get_run(restarted, ws, run_id))["status"] == "succeeded"
    await assert_settled_exactly(db_engine, ws, 3)


async def test_runs_whose_process_died_mid_run_are_settled_by_the_next_one(client, settings, ws, db_engine):
    """A run held by a worker that died with its process: the next `up`'s reconciler retries it (no token
    out yet) or fails it as worker_lost (tokens out); either way its reservation settles exactly."""
    pid = await new_prompt(client, ws)
    retried, lost = await start(client, ws, pid, "a b"), await start(client, ws, pid, "c d e")
    async with db_engine.begin() as conn:  # what a worker leaves behind when its process is killed
        await conn.execute(
            text(
                "UPDATE run SET status = 'running', lease_owner = 'gone:1', attempts = 1, started_at = now(), "
                "lease_expires_at = now() - interval '1 second', input_tokens = 4, "
                "output_chars = CASE WHEN id = :lost THEN 6 ELSE 0 END WHERE workspace_id = :ws"
            ),
            {"lost": lost, "ws": ws},
        )
    restart = another_process(settings, client, reconcile_seconds=0.2)
    async with restart as (restarted_app, restarted), up(restarted_app):
        await wait_all_terminal(db_engine, ws, 2, timeout=20)
        first, second = await get_run(restarted, ws, retried), await get_run(restarted, ws, lost)
    assert first["status"] == "succeeded" and first["cost_usd"] == usd(mock_micros(3, 3)), first
    assert second["status"] == "failed" and second["error"]["kind"] == "worker_lost", second
    assert second["usage"]["estimated"] is True
    assert await assert_settled_exactly(db_engine, ws, 2) == mock_micros(3, 3) + int(
        Decimal(second["cost_usd"]) * 1_000_000
    )


@pytest.mark.parametrize("up_settings", [{**SLOW_MOCK, "worker_grace_seconds": 0.3}], ids=["short-grace"])
async def test_stopping_up_mid_run_settles_what_streamed_and_keeps_the_waiting_reserved(client, app, ws, db_engine):
    """`up` stopping (Ctrl-C, SIGTERM) with runs in flight: after the grace period a run that streamed ends
    failed with what it streamed billed; a run waiting behind the cap stays queued with its reservation, for
    the next process."""
    await put_limits(client, ws, max_concurrent_runs=1)
    pid = await new_prompt(client, ws, "{{words}}")
    words = " ".join(f"w{i}" for i in range(200))  # 8 s of tokens: far longer than the grace period
    streaming = await start(client, ws, pid, words)
    waiting = await start(client, ws, pid, "never started")  # behind the cap of 1
    async with up(app):
        deadline = time.monotonic() + 10
        while not (await get_run(client, ws, streaming))["output"]:
            assert time.monotonic() < deadline, "no token streamed"
            await asyncio.sleep(0.02)
    stopped = await get_run(client, ws, streaming)
    assert stopped["status"] == "failed" and stopped["error"]["kind"] == "worker_shutdown", stopped
    streamed = stopped["usage"]["output_tokens"]
    assert 1 <= streamed < 200 and stopped["output"].count(" ") == streamed
    assert stopped["cost_usd"] == usd(mock_micros(stopped["usage"]["input_tokens"], streamed))
    assert (await get_run(client, ws, waiting))["status"] == "queued"
    spent, reserved = await budget_row(db_engine, ws)
    assert spent == int(Decimal(stopped["cost_usd"]) * 1_000_000)
    assert reserved == mock_micros(2, 256)  # the waiting run's, kept for when it runs
    assert await ledger_of(db_engine, streaming) == {
        "reserve": [mock_micros(200, 256)],
        "release": [mock_micros(200, 256)],
        "settle": [spent],
    }


async def test_a_flood_from_one_workspace_does_not_delay_another(client, settings, owner, ws, db_engine):
    """Two in-process worker slots, both taken by a capped flood: another workspace's run enters the memory
    queue right behind the flood's dispatched runs, not behind its waiting ones (an app of its own, for its
    worker's two slots)."""
    flood_ws, other_ws = ws, await create_workspace(owner, "Other")
    await put_limits(client, flood_ws, max_concurrent_runs=2, monthly_budget_usd=None)
    flood_pid = await new_prompt(client, flood_ws, "{{words}}")
    other_pid = await new_prompt(client, other_ws, "{{words}}")
    words = " ".join(f"w{i}" for i in range(20))  # 0.5 s a run: 4 s for the flood two at a time
    async with another_process(settings, client, workers=2, mock_ttft_ms=5, mock_token_ms=25) as (app, embedded):
        # The flood is all accepted first (2 enter the memory queue, 14 wait in PostgreSQL), then `up` starts.
        for _ in range(16):
            await start(embedded, flood_ws, flood_pid, words)
        assert await app.state.run_backends.queue.depth() == 2
        async with up(app):
            deadline = time.monotonic() + 10
            while await scalar(
                db_engine, "SELECT count(*) FROM run WHERE workspace_id = :ws AND status = 'running'", ws=flood_ws
            ) < 2:
                assert time.monotonic() < deadline, "the flood never reached its cap"
                await asyncio.sleep(0.01)
            other = await start(embedded, other_ws, other_pid, "just one")
            await wait_all_terminal(db_engine, flood_ws, 16, timeout=60)
            other_run = await wait_for(embedded, other_ws, other)
    assert other_run["status"] == "succeeded"
    flood = await rows(db_engine, "SELECT started_at, duration_ms FROM run WHERE workspace_id = :ws", ws=flood_ws)
    started = iso(other_run["started_at"])
    run_length = max(d for _, d in flood)
    waited_ms = (started - iso(other_run["created_at"])).total_seconds() * 1000
    assert waited_ms <= run_length + 1000, (waited_ms, run_length)
    later = sum(1 for s, _ in flood if s > started)
    assert later >= 12, f"the other workspace's run started after {16 - later} of the flood's 16"
    await assert_settled_exactly(db_engine, other_ws, 1)


# --- Retry-After tells the truth, also after a limit is lowered ----------------------------------------------


@pytest.fixture(params=["memory", "redis"])
async def limiter(request, redis_prefix):
    if request.param == "memory":
        yield MemoryLimiter()
        return
    client = Redis.from_url(REDIS_URL)
    yield RedisLimiter(client, redis_prefix)
    await client.aclose()


async def test_a_retry_after_the_answered_wait_is_accepted_even_after_the_limit_was_lowered(limiter):
    """An admin lowers runs_per_minute while the window holds more runs than the new limit: the wait answered
    (Retry-After) must last until enough of them have left the window, not just the oldest."""
    key = f"runs:ws:{uuid.uuid4()}"
    window = 1.2
    assert await limiter.hit(key, 5, window) is None
    await asyncio.sleep(0.5)
    assert await limiter.hit(key, 5, window) is None
    wait = await limiter.hit(key, 1, window)  # two in the window, the limit is now one
    assert wait is not None
    await asyncio.sleep(wait + 0.05)
    assert await limiter.hit(key, 1, window) is None, f"still refused after the {wait:.3f} s it answered"


async def test_the_in_memory_limiter_forgets_keys_idle_for_longer_than_any_window(monkeypatch):
    """A long-running `up` sees a key per workspace, member and failing client address: the ones idle longer
    than every window are dropped, the live ones (and their counts) stay."""
    clock = [1000.0]
    # The limiter's own clock only (the event loop's must not jump).
    monkeypatch.setattr(limiter_module, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    limiter = MemoryLimiter()
    for i in range(MemoryLimiter.SWEEP_EVERY - 2):
        assert await limiter.hit(f"login:address:{i}", 10, 900) is None
    clock[0] += 901  # every one of those is now older than the longest window (900 s)
    for _ in range(2):
        assert await limiter.hit("runs:ws:live", 2, 60) is None  # the second of these checks sweeps
    assert set(limiter._events) == {"runs:ws:live"}
    assert await limiter.hit("runs:ws:live", 2, 60) is not None  # the live key kept its two events
