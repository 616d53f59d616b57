"""Integration tests of money and limits against real PostgreSQL and Redis: workspace limits (defaults,
subsets, roles, validation, audit), the estimate, exact costs and the ledger, budgets under concurrency
(zero overshoot), reservation release on cancel and failure, 422 before 402, rate limits and the queue
bound (429 with Retry-After), the per-workspace concurrency cap and fair dispatch, price overrides, the model
lists, usage rollups and latency."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time
import uuid
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.factories import Account, add_member, create_workspace, signup
from tests.runs_helpers import RunningWorker

PROBLEM = "application/problem+json"
TERMINAL = ("succeeded", "failed", "cancelled")
MOCK = {"provider": "mock", "model": "mock-1", "max_tokens": 256}
MOCK_PRICE = (3, 15)  # micro-dollars per token = dollars per million tokens
DEFAULT_LIMITS = {
    "monthly_budget_usd": "50",
    "max_concurrent_runs": 10,
    "max_queued_runs": 1000,
    "runs_per_minute": 600,
    "member_runs_per_minute": 300,
}
CATALOGUE = json.loads((Path(__file__).parents[1] / "backend" / "catalogue" / "models.json").read_text())


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"mock_ttft_ms": 5, "mock_token_ms": 2})


@pytest.fixture
async def owner(client) -> Account:
    return await signup(client)


@pytest.fixture
async def ws(owner) -> str:
    return await create_workspace(owner)


# --- helpers ------------------------------------------------------------------------------------------


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers["content-type"]
    problem = response.json()
    assert problem["status"] == status
    for name in ("type", "title", "detail"):
        assert isinstance(problem[name], str) and problem[name], problem
    return problem


def usd(micros: int) -> str:
    """Micro-dollars as the API's decimal string (six places)."""
    return str((Decimal(micros) / Decimal(1_000_000)).quantize(Decimal("0.000001")))


def mock_micros(input_tokens: int, output_tokens: int) -> int:
    return input_tokens * MOCK_PRICE[0] + output_tokens * MOCK_PRICE[1]


async def member(make_client, owner: Account, ws: str, role: str) -> Account:
    account = await signup(make_client())
    await add_member(owner, ws, account, role)
    return account


async def new_prompt(
    client, ws: str, user: str = "Say {{words}}", *, system: str = "", config: dict[str, Any] | None = None
) -> str:
    response = await client.post(f"/workspaces/{ws}/prompts", json={"name": f"prompt-{uuid.uuid4().hex[:10]}"})
    assert response.status_code == 201, response.text
    pid = response.json()["id"]
    body = {"system": system, "messages": [{"role": "user", "content": user}], "model_config": config or MOCK}
    version = await client.post(f"/workspaces/{ws}/prompts/{pid}/versions", json=body)
    assert version.status_code in (200, 201), version.text
    return pid


def run_body(pid: str, words: str | None = "a b", **extra: Any) -> dict[str, Any]:
    return {"prompt_id": pid, "variables": {} if words is None else {"words": words}, **extra}


async def post_run(client, ws: str, pid: str, words: str | None = "a b", **extra: Any) -> httpx.Response:
    return await client.post(f"/workspaces/{ws}/runs", json=run_body(pid, words, **extra))


async def start(client, ws: str, pid: str, words: str | None = "a b", **extra: Any) -> str:
    response = await post_run(client, ws, pid, words, **extra)
    assert response.status_code == 202, response.text
    return response.json()["id"]


async def put_limits(client, ws: str, **changes: Any) -> dict[str, Any]:
    response = await client.put(f"/workspaces/{ws}/limits", json=changes)
    assert response.status_code == 200, response.text
    return response.json()


async def get_run(client, ws: str, run_id: str) -> dict[str, Any]:
    response = await client.get(f"/workspaces/{ws}/runs/{run_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def wait_for(client, ws: str, run_id: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = await get_run(client, ws, run_id)
        if run["status"] in TERMINAL:
            return run
        assert time.monotonic() < deadline, f"run still {run['status']} after {timeout}s"
        await asyncio.sleep(0.02)


async def scalar(db_engine, sql: str, **params: Any) -> Any:
    async with db_engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar_one()


async def rows(db_engine, sql: str, **params: Any) -> list[Any]:
    async with db_engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def run_count(db_engine, ws: str) -> int:
    return await scalar(db_engine, "SELECT count(*) FROM run WHERE workspace_id = :ws", ws=ws)


async def budget_row(db_engine, ws: str) -> tuple[int, int]:
    """(spent, reserved) of the workspace's current month; (0, 0) when no row exists yet."""
    found = await rows(
        db_engine,
        "SELECT spent_micros, reserved_micros FROM budget_month WHERE workspace_id = :ws "
        "AND month = date_trunc('month', now() AT TIME ZONE 'utc')::date",
        ws=ws,
    )
    return (found[0][0], found[0][1]) if found else (0, 0)


async def wait_all_terminal(db_engine, ws: str, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        done = await scalar(
            db_engine,
            "SELECT count(*) FROM run WHERE workspace_id = :ws AND status IN ('succeeded', 'failed', 'cancelled')",
            ws=ws,
        )
        if done >= count:
            return
        assert time.monotonic() < deadline, f"only {done} of {count} runs finished after {timeout}s"
        await asyncio.sleep(0.05)


async def ledger_of(db_engine, run_id: str) -> dict[str, list[int]]:
    entries: dict[str, list[int]] = {}
    for kind, micros in await rows(
        db_engine, "SELECT kind, micros FROM usage_ledger WHERE run_id = :id ORDER BY created_at", id=run_id
    ):
        entries.setdefault(kind, []).append(micros)
    return entries


def use_mock_timing(app, *, ttft_ms: int, token_ms: int) -> None:
    """Slower mock tokens for this test (a worker reads the app's settings when it is built)."""
    app.state.settings = app.state.settings.model_copy(update={"mock_ttft_ms": ttft_ms, "mock_token_ms": token_ms})


def iso(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() is not None, value
    return parsed


async def audit(client, ws: str, action: str) -> list[dict[str, Any]]:
    response = await client.get(f"/workspaces/{ws}/audit-log", params={"limit": 200})
    assert response.status_code == 200, response.text
    return [e for e in response.json()["items"] if e["action"] == action]


# --- limits --------------------------------------------------------------------------------------------


async def test_limits_default_to_exactly_the_documented_values(client, make_client, owner, ws):
    response = await client.get(f"/workspaces/{ws}/limits")
    assert response.status_code == 200, response.text
    assert response.json() == DEFAULT_LIMITS
    viewer = await member(make_client, owner, ws, "viewer")
    response = await viewer.client.get(f"/workspaces/{ws}/limits")
    assert response.status_code == 200 and response.json() == DEFAULT_LIMITS
    stranger = await signup(make_client())
    assert_problem(await stranger.client.get(f"/workspaces/{ws}/limits"), 404)
    assert_problem(await make_client().get(f"/workspaces/{ws}/limits"), 401)


async def test_put_limits_takes_any_subset_and_keeps_the_rest(client, ws):
    after = await put_limits(client, ws, max_concurrent_runs=3)
    assert after == {**DEFAULT_LIMITS, "max_concurrent_runs": 3}
    after = await put_limits(client, ws, monthly_budget_usd="12.5", runs_per_minute=42)
    expected = {**DEFAULT_LIMITS, "max_concurrent_runs": 3, "monthly_budget_usd": "12.5", "runs_per_minute": 42}
    assert after == expected
    after = await put_limits(client, ws, max_queued_runs=7, member_runs_per_minute=9)
    expected = {**expected, "max_queued_runs": 7, "member_runs_per_minute": 9}
    assert after == expected
    assert (await client.get(f"/workspaces/{ws}/limits")).json() == expected
    # An empty subset changes nothing.
    assert await put_limits(client, ws) == expected
    # Micro-dollar precision is accepted and read back exactly.
    assert (await put_limits(client, ws, monthly_budget_usd="0.000001"))["monthly_budget_usd"] == "0.000001"
    assert (await put_limits(client, ws, monthly_budget_usd="0"))["monthly_budget_usd"] == "0"


async def test_put_limits_needs_an_admin(client, make_client, owner, ws):
    editor = await member(make_client, owner, ws, "editor")
    assert_problem(await editor.client.put(f"/workspaces/{ws}/limits", json={"max_concurrent_runs": 1}), 403)
    viewer = await member(make_client, owner, ws, "viewer")
    assert_problem(await viewer.client.put(f"/workspaces/{ws}/limits", json={"runs_per_minute": 1}), 403)
    assert (await client.get(f"/workspaces/{ws}/limits")).json() == DEFAULT_LIMITS
    admin = await member(make_client, owner, ws, "admin")
    response = await admin.client.put(f"/workspaces/{ws}/limits", json={"max_concurrent_runs": 1})
    assert response.status_code == 200 and response.json()["max_concurrent_runs"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"monthly_budget_usd": "-1"}, "monthly_budget_usd"),
        ({"monthly_budget_usd": "abc"}, "monthly_budget_usd"),
        ({"monthly_budget_usd": "1.0000001"}, "monthly_budget_usd"),
        ({"monthly_budget_usd": "NaN"}, "monthly_budget_usd"),
        ({"monthly_budget_usd": True}, "monthly_budget_usd"),
        ({"max_concurrent_runs": 0}, "max_concurrent_runs"),
        ({"max_concurrent_runs": -2}, "max_concurrent_runs"),
        ({"max_concurrent_runs": "lots"}, "max_concurrent_runs"),
        ({"max_concurrent_runs": None}, "max_concurrent_runs"),
        ({"max_queued_runs": -1}, "max_queued_runs"),
        ({"runs_per_minute": 0}, "runs_per_minute"),
        ({"member_runs_per_minute": 0}, "member_runs_per_minute"),
        ({"max_concurrent_runs": 2, "monthly_budget_usd": "-5"}, "monthly_budget_usd"),
        ({"budget": "10"}, "budget"),
    ],
    ids=[
        "negative-budget",
        "abc-budget",
        "seven-decimals",
        "nan-budget",
        "bool-budget",
        "zero-concurrency",
        "negative-concurrency",
        "text-concurrency",
        "null-concurrency",
        "negative-queue",
        "zero-rpm",
        "zero-member-rpm",
        "one-bad-field-of-two",
        "unknown-field",
    ],
)
async def test_invalid_limits_are_422_naming_the_field_and_change_nothing(client, ws, body, field):
    problem = assert_problem(await client.put(f"/workspaces/{ws}/limits", json=body), 422)
    assert any(field in [str(p) for p in e["loc"]] for e in problem["errors"]), problem
    assert (await client.get(f"/workspaces/{ws}/limits")).json() == DEFAULT_LIMITS


async def test_limits_updates_are_audited(client, make_client, owner, ws):
    await put_limits(client, ws, max_concurrent_runs=4)
    await put_limits(client, ws, monthly_budget_usd=None)
    entries = await audit(client, ws, "limits.updated")
    assert len(entries) == 2, entries
    newest, oldest = entries
    assert oldest["actor"]["user_id"] == owner.id
    assert oldest["before"] == DEFAULT_LIMITS
    assert oldest["after"] == {**DEFAULT_LIMITS, "max_concurrent_runs": 4}
    assert newest["before"] == {**DEFAULT_LIMITS, "max_concurrent_runs": 4}
    assert newest["after"] == {**DEFAULT_LIMITS, "max_concurrent_runs": 4, "monthly_budget_usd": None}
    # A refused change writes no entry.
    editor = await member(make_client, owner, ws, "editor")
    await editor.client.put(f"/workspaces/{ws}/limits", json={"max_concurrent_runs": 1})
    await client.put(f"/workspaces/{ws}/limits", json={"max_concurrent_runs": 0})
    assert len(await audit(client, ws, "limits.updated")) == 2


# --- estimate, exact cost, ledger --------------------------------------------------------------------------


async def test_estimate_is_exact_for_the_mock_and_matches_the_reservation(client, ws, db_engine):
    pid = await new_prompt(client, ws, "Say {{words}}", system="Be brief")
    body = run_body(pid, "a b c", overrides={"max_tokens": 1000})
    response = await client.post(f"/workspaces/{ws}/runs/estimate", json=body)
    assert response.status_code == 200, response.text
    worst = mock_micros(2 + 4, 1000)  # "Be brief" + "Say a b c"
    assert response.json() == {"input_tokens": 6, "max_output_tokens": 1000, "max_cost_usd": usd(worst)}
    assert response.json()["max_cost_usd"] == "0.015018"
    # An estimate reserves and writes nothing.
    assert await run_count(db_engine, ws) == 0
    assert await budget_row(db_engine, ws) == (0, 0)
    assert await scalar(db_engine, "SELECT count(*) FROM usage_ledger") == 0
    # Without overrides: the version's max_tokens.
    response = await client.post(f"/workspaces/{ws}/runs/estimate", json=run_body(pid, "x"))
    assert response.json() == {"input_tokens": 4, "max_output_tokens": 256, "max_cost_usd": usd(mock_micros(4, 256))}
    # Accepting the same request reserves exactly that worst case.
    run_id = await start(client, ws, pid, "a b c", overrides={"max_tokens": 1000})
    assert await budget_row(db_engine, ws) == (0, worst)
    assert await ledger_of(db_engine, run_id) == {"reserve": [worst]}
    # Invalid input is a 422 for the estimate too.
    assert_problem(await client.post(f"/workspaces/{ws}/runs/estimate", json=run_body(pid, None)), 422)


async def test_a_runs_cost_is_exact_and_equals_its_ledger_settle_entry(client, app, ws, db_engine):
    pid = await new_prompt(client, ws)
    async with RunningWorker(app):
        run_id = await start(client, ws, pid, "one two three")
        run = await wait_for(client, ws, run_id)
    assert run["status"] == "succeeded", run
    assert run["usage"] == {"input_tokens": 4, "output_tokens": 4, "estimated": False}
    actual = mock_micros(4, 4)
    assert run["cost_usd"] == usd(actual) == "0.000072"
    assert run["snapshot"]["price"]["effective"] == "2026-01-01"
    stored = await rows(db_engine, "SELECT cost_micros, reserved_micros FROM run WHERE id = :id", id=run_id)
    worst = mock_micros(4, 256)
    assert stored == [(actual, worst)]
    assert await ledger_of(db_engine, run_id) == {"reserve": [worst], "release": [worst], "settle": [actual]}
    assert await budget_row(db_engine, ws) == (actual, 0)


# --- budgets -----------------------------------------------------------------------------------------------


async def test_concurrent_posts_never_overshoot_the_budget(client, app, ws, db_engine):
    pid = await new_prompt(client, ws)
    worst = mock_micros(3, 256)  # "Say a b" with max_tokens 256
    fits = 7
    budget = fits * worst
    limits = await put_limits(client, ws, monthly_budget_usd=usd(budget))
    assert Decimal(limits["monthly_budget_usd"]) * 1_000_000 == budget

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
        refused = [r for r in responses if r.status_code != 202]
        assert len(accepted) == fits, [r.status_code for r in responses]
        assert len(refused) == 40 - fits
        for response in refused:
            problem = assert_problem(response, 402)
            assert problem["remaining_usd"] == usd(0), problem
        assert await budget_row(db_engine, ws) == (0, budget)
        assert await run_count(db_engine, ws) == fits
        assert await scalar(db_engine, "SELECT count(*) FROM usage_ledger WHERE kind = 'reserve'") == fits

        async with RunningWorker(app):
            await wait_all_terminal(db_engine, ws, fits)
    finally:
        stop.set()
        await sampler
    assert peak <= budget, f"spent + reserved reached {peak} > budget {budget}"
    costs = [c for (c,) in await rows(db_engine, "SELECT cost_micros FROM run WHERE workspace_id = :ws", ws=ws)]
    assert len(costs) == fits and all(c == mock_micros(3, 3) for c in costs)
    assert await budget_row(db_engine, ws) == (sum(costs), 0)
    # The money the runs did not use is available again.
    assert (await post_run(client, ws, pid, "a b")).status_code == 202


async def test_refusal_names_what_is_left_and_leaves_nothing_behind(client, ws, db_engine):
    pid = await new_prompt(client, ws)
    worst = mock_micros(3, 256)
    await put_limits(client, ws, monthly_budget_usd=usd(worst + worst // 2))
    await start(client, ws, pid, "a b")
    response = await post_run(client, ws, pid, "a b")
    problem = assert_problem(response, 402)
    assert problem["remaining_usd"] == usd(worst // 2)
    assert await run_count(db_engine, ws) == 1
    assert await budget_row(db_engine, ws) == (0, worst)
    # A smaller worst case still fits in what is left.
    small = await post_run(client, ws, pid, "a b", overrides={"max_tokens": 10})
    assert small.status_code == 202, small.text
    assert await budget_row(db_engine, ws) == (0, worst + mock_micros(3, 10))


async def test_the_default_budget_applies_and_null_means_no_budget(client, ws, db_engine):
    # A price override makes one run's worst case $60, more than the default $50.
    response = await client.put(
        f"/workspaces/{ws}/price-overrides/mock/mock-1", json={"input_per_mtok": "3", "output_per_mtok": "1000"}
    )
    assert response.status_code == 200, response.text
    pid = await new_prompt(client, ws)
    problem = assert_problem(await post_run(client, ws, pid, "a b", overrides={"max_tokens": 60_000}), 402)
    assert problem["remaining_usd"] == "50.000000"
    assert await run_count(db_engine, ws) == 0
    await put_limits(client, ws, monthly_budget_usd=None)
    assert (await client.get(f"/workspaces/{ws}/limits")).json()["monthly_budget_usd"] is None
    for _ in range(2):  # $120 reserved in all, no budget to stop it
        assert (await post_run(client, ws, pid, "a b", overrides={"max_tokens": 60_000})).status_code == 202
    assert await budget_row(db_engine, ws) == (0, 2 * (3 * 3 + 60_000 * 1000))


async def test_a_validation_error_comes_before_an_exhausted_budget(client, ws, db_engine):
    pid = await new_prompt(client, ws)
    await put_limits(client, ws, monthly_budget_usd="0")
    assert_problem(await post_run(client, ws, pid, "a b"), 402)
    for body in (
        run_body(pid, None),  # missing variable
        run_body(pid, "a b", overrides={"max_tokens": 100_001}),
        run_body(pid, "a b", overrides={"model": "mock-unknown"}),
        {"prompt_id": "not-a-uuid", "variables": {}},
        {"variables": {"words": "x"}},
    ):
        assert_problem(await client.post(f"/workspaces/{ws}/runs", json=body), 422)
    assert await run_count(db_engine, ws) == 0


async def test_cancelling_a_queued_run_releases_its_whole_reservation(client, ws, db_engine):
    pid = await new_prompt(client, ws)
    run_id = await start(client, ws, pid, "a b c d")
    worst = mock_micros(5, 256)
    assert await budget_row(db_engine, ws) == (0, worst)
    assert (await client.post(f"/workspaces/{ws}/runs/{run_id}/cancel")).status_code == 202
    run = await get_run(client, ws, run_id)
    assert run["status"] == "cancelled" and run["cost_usd"] == "0.000000"
    assert await budget_row(db_engine, ws) == (0, 0)
    assert await ledger_of(db_engine, run_id) == {"reserve": [worst], "release": [worst], "settle": [0]}


async def test_a_failed_run_settles_to_its_real_cost(client, app, ws, db_engine):
    pid = await new_prompt(client, ws, "{{words}}")
    async with RunningWorker(app):
        run_id = await start(client, ws, pid, "MOCK_FAIL_EARLY now")
        run = await wait_for(client, ws, run_id, timeout=30)
    assert run["status"] == "failed" and run["output"] == ""
    real = mock_micros(run["usage"]["input_tokens"], run["usage"]["output_tokens"])
    assert run["usage"]["output_tokens"] == 0 and real <= mock_micros(2, 0)
    assert run["cost_usd"] == usd(real)
    worst = mock_micros(2, 256)
    assert await ledger_of(db_engine, run_id) == {"reserve": [worst], "release": [worst], "settle": [real]}
    assert await budget_row(db_engine, ws) == (real, 0)


async def test_a_mid_stream_failure_bills_what_streamed_and_releases_the_rest(client, app, ws, db_engine):
    pid = await new_prompt(client, ws, "{{words}}")
    async with RunningWorker(app):
        run_id = await start(client, ws, pid, "alpha beta gamma MOCK_FAIL_MID epsilon zeta")
        run = await wait_for(client, ws, run_id)
    assert run["status"] == "failed" and run["output"] == "alpha beta gamma "
    real = mock_micros(run["usage"]["input_tokens"], run["usage"]["output_tokens"])
    assert run["usage"]["output_tokens"] >= 3 and real > 0
    assert run["cost_usd"] == usd(real)
    worst = mock_micros(6, 256)
    assert await ledger_of(db_engine, run_id) == {"reserve": [worst], "release": [worst], "settle": [real]}
    assert await budget_row(db_engine, ws) == (real, 0)


async def test_a_queued_run_is_cancelled_before_it_is_deleted_and_gives_its_reservation_back(client, ws, db_engine):
    pid = await new_prompt(client, ws)
    worst = mock_micros(3, 256)
    await put_limits(client, ws, monthly_budget_usd=usd(worst))
    run_id = await start(client, ws, pid, "a b")
    # Deleting an unfinished run would lose its reservation with its row: refused until it has ended.
    assert_problem(await client.delete(f"/workspaces/{ws}/runs/{run_id}"), 409)
    assert (await client.post(f"/workspaces/{ws}/runs/{run_id}/cancel")).status_code == 202
    assert (await client.delete(f"/workspaces/{ws}/runs/{run_id}")).status_code == 204
    assert await budget_row(db_engine, ws) == (0, 0)
    assert (await post_run(client, ws, pid, "a b")).status_code == 202


async def test_a_prompt_with_unfinished_runs_is_not_deleted_until_they_end(client, ws, db_engine):
    pid = await new_prompt(client, ws)
    run_id = await start(client, ws, pid, "a b")
    assert await budget_row(db_engine, ws) == (0, mock_micros(3, 256))
    assert_problem(await client.delete(f"/workspaces/{ws}/prompts/{pid}"), 409)
    assert await run_count(db_engine, ws) == 1
    assert (await client.post(f"/workspaces/{ws}/runs/{run_id}/cancel")).status_code == 202
    assert (await client.delete(f"/workspaces/{ws}/prompts/{pid}")).status_code == 204
    assert await run_count(db_engine, ws) == 0
    assert await budget_row(db_engine, ws) == (0, 0)


async def test_a_running_run_is_settled_before_it_can_be_deleted(client, app, ws, db_engine):
    use_mock_timing(app, ttft_ms=5, token_ms=40)
    pid = await new_prompt(client, ws, "{{words}}")
    words = " ".join(f"w{i}" for i in range(200))  # 8 s of tokens: the cancel lands long before the end
    async with RunningWorker(app):
        run_id = await start(client, ws, pid, words)
        deadline = time.monotonic() + 5
        while not (await get_run(client, ws, run_id))["output"]:
            assert time.monotonic() < deadline, "no token streamed"
            await asyncio.sleep(0.02)
        assert_problem(await client.delete(f"/workspaces/{ws}/runs/{run_id}"), 409)
        assert (await client.post(f"/workspaces/{ws}/runs/{run_id}/cancel")).status_code == 202
        deadline = time.monotonic() + 10
        while (await get_run(client, ws, run_id))["status"] != "cancelled":
            assert time.monotonic() < deadline, "the cancel did not land"
            await asyncio.sleep(0.02)
    assert (await client.delete(f"/workspaces/{ws}/runs/{run_id}")).status_code == 204
    # Whatever the deleted run used is spent, and nothing stays reserved for it.
    spent, reserved = await budget_row(db_engine, ws)
    assert reserved == 0, f"{reserved} micro-dollars stay reserved for a deleted run"
    assert spent >= mock_micros(1, 1), "the tokens the deleted run used were never billed"
    assert spent == sum((await ledger_of(db_engine, run_id)).get("settle", []))


# --- rate limits and the queue bound ------------------------------------------------------------------------


async def test_runs_per_minute_answers_429_with_retry_after_and_creates_nothing(client, ws, db_engine):
    pid = await new_prompt(client, ws)
    await put_limits(client, ws, runs_per_minute=3)
    for _ in range(3):
        await start(client, ws, pid)
    response = await post_run(client, ws, pid)
    assert_problem(response, 429)
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit() and 0 < int(retry_after) <= 60, retry_after
    assert await run_count(db_engine, ws) == 3
    assert await budget_row(db_engine, ws) == (0, 3 * mock_micros(3, 256))


async def test_requests_refused_for_money_do_not_use_up_the_rate_limit(client, ws, db_engine):
    pid = await new_prompt(client, ws)
    await put_limits(client, ws, runs_per_minute=3, monthly_budget_usd="0")
    for _ in range(3):
        assert_problem(await post_run(client, ws, pid), 402)
    await put_limits(client, ws, monthly_budget_usd="1")
    # No run was started this minute, so three may start now.
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
    # Another member still has their own allowance.
    await start(client, ws, pid)
    await start(client, ws, pid)
    assert_problem(await post_run(client, ws, pid), 429)
    assert await run_count(db_engine, ws) == 4


async def test_max_queued_runs_answers_429_beyond_it(client, ws, db_engine):
    pid = await new_prompt(client, ws)
    await put_limits(client, ws, max_queued_runs=2)
    await start(client, ws, pid)
    await start(client, ws, pid)
    response = await post_run(client, ws, pid)
    assert_problem(response, 429)
    assert int(response.headers["Retry-After"]) > 0
    assert await run_count(db_engine, ws) == 2
    assert await budget_row(db_engine, ws) == (0, 2 * mock_micros(3, 256))


async def test_concurrent_posts_never_overshoot_max_queued_runs(client, ws, db_engine):
    pid = await new_prompt(client, ws)
    await put_limits(client, ws, max_queued_runs=5)
    responses = await asyncio.gather(*(post_run(client, ws, pid) for _ in range(30)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [202] * 5 + [429] * 25, f"{codes.count(202)} accepted with max_queued_runs=5"
    for response in responses:
        if response.status_code == 429:
            assert_problem(response, 429)
            assert int(response.headers["Retry-After"]) > 0
    assert await run_count(db_engine, ws) == 5


# --- concurrency cap and fair dispatch ----------------------------------------------------------------------


async def test_never_more_than_max_concurrent_runs_run_at_once(client, app, ws, db_engine):
    use_mock_timing(app, ttft_ms=5, token_ms=30)
    await put_limits(client, ws, max_concurrent_runs=2)
    pid = await new_prompt(client, ws, "{{words}}")
    words = " ".join(f"w{i}" for i in range(20))
    ids = [await start(client, ws, pid, words) for _ in range(8)]
    # Only the runs the workspace has room for were handed to the queue; the rest wait in PostgreSQL.
    dispatched = await scalar(
        db_engine, "SELECT count(*) FROM run WHERE workspace_id = :ws AND dispatched_at IS NOT NULL", ws=ws
    )
    assert dispatched == 2
    peak, samples = 0, 0
    async with RunningWorker(app):
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
            peak, samples = max(peak, running), samples + 1
            assert running <= 2, f"{running} runs running at once with max_concurrent_runs=2"
            if done == 8:
                break
            assert time.monotonic() < deadline, f"only {done} of 8 finished"
            await asyncio.sleep(0.02)
    assert peak == 2, f"the cap was never used (peak {peak} over {samples} samples)"
    for run_id in ids:
        assert (await get_run(client, ws, run_id))["status"] == "succeeded"


async def test_concurrent_posts_hand_only_the_cap_to_the_queue(client, ws, db_engine):
    pid = await new_prompt(client, ws)
    await put_limits(client, ws, max_concurrent_runs=3)
    responses = await asyncio.gather(*(post_run(client, ws, pid) for _ in range(20)))
    assert [r.status_code for r in responses] == [202] * 20
    dispatched = await scalar(
        db_engine, "SELECT count(*) FROM run WHERE workspace_id = :ws AND dispatched_at IS NOT NULL", ws=ws
    )
    assert dispatched == 3


async def test_a_flood_from_one_workspace_does_not_delay_another(client, app, owner, ws, db_engine):
    use_mock_timing(app, ttft_ms=5, token_ms=30)
    flood_ws, other_ws = ws, await create_workspace(owner, "Other")
    await put_limits(client, flood_ws, max_concurrent_runs=4, monthly_budget_usd=None)
    flood_pid = await new_prompt(client, flood_ws, "{{words}}")
    other_pid = await new_prompt(client, other_ws, "{{words}}")
    words = " ".join(f"w{i}" for i in range(10))
    peak = 0
    # The flood is all accepted first (its cap lets 4 into the queue, 36 wait), then the workers start on it.
    for _ in range(40):
        await start(client, flood_ws, flood_pid, words)
    async with RunningWorker(app, concurrency=6):
        deadline = time.monotonic() + 10
        while (
            await scalar(
                db_engine, "SELECT count(*) FROM run WHERE workspace_id = :ws AND status = 'running'", ws=flood_ws
            )
            < 4
        ):
            assert time.monotonic() < deadline, "the flood never reached its cap"
            await asyncio.sleep(0.01)
        other = await start(client, other_ws, other_pid, "just one")
        deadline = time.monotonic() + 60
        while True:
            running, done = (
                await rows(
                    db_engine,
                    "SELECT count(*) FILTER (WHERE status = 'running'), "
                    "count(*) FILTER (WHERE status IN ('succeeded', 'failed', 'cancelled')) "
                    "FROM run WHERE workspace_id = :ws",
                    ws=flood_ws,
                )
            )[0]
            peak = max(peak, running)
            assert running <= 4
            if done == 40:
                break
            assert time.monotonic() < deadline, f"only {done} of 40 flood runs finished"
            await asyncio.sleep(0.02)
        other_run = await wait_for(client, other_ws, other)
    assert other_run["status"] == "succeeded"
    flood_runs = await rows(
        db_engine, "SELECT started_at, duration_ms, status FROM run WHERE workspace_id = :ws", ws=flood_ws
    )
    assert len(flood_runs) == 40 and all(status == "succeeded" for *_, status in flood_runs)
    started = iso(other_run["started_at"])
    waited = started - iso(other_run["created_at"])
    run_length = timedelta(milliseconds=max(d for _, d, _ in flood_runs))
    assert waited <= run_length + timedelta(seconds=1), (waited, run_length)
    later = sum(1 for s, _, _ in flood_runs if s > started)
    assert later >= 30, f"the other workspace's run started after {40 - later} of the flood's 40"
    assert peak <= 4


# --- prices, overrides and the model lists ------------------------------------------------------------------


async def test_a_model_without_a_price_is_refused_until_an_admin_sets_one(client, make_client, owner, ws, db_engine):
    config = {"provider": "openai", "model": "my-local-llama", "max_tokens": 100}
    pid = await new_prompt(client, ws, config=config)
    for path in ("runs", "runs/estimate"):
        problem = assert_problem(await client.post(f"/workspaces/{ws}/{path}", json=run_body(pid, "hi")), 422)
        assert "price" in problem["detail"], problem
        assert any("price" in e["msg"] for e in problem["errors"]), problem
    assert await run_count(db_engine, ws) == 0

    price = {"input_per_mtok": "0.5", "output_per_mtok": "1.5"}
    url = f"/workspaces/{ws}/price-overrides/openai/my-local-llama"
    editor = await member(make_client, owner, ws, "editor")
    assert_problem(await editor.client.put(url, json=price), 403)
    for bad in (
        {"input_per_mtok": "-1", "output_per_mtok": "1"},
        {"input_per_mtok": "1"},
        {"input_per_mtok": "0.0000001", "output_per_mtok": "1"},
    ):
        assert_problem(await client.put(url, json=bad), 422)
    response = await client.put(url, json=price)
    assert response.status_code == 200, response.text
    entry = response.json()
    assert entry["provider"] == "openai" and entry["model"] == "my-local-llama"
    assert entry["price"] == price and entry["price_overridden"] is True

    # Priced now; a run still needs the workspace's openai key.
    problem = assert_problem(await post_run(client, ws, pid, "hi"), 422)
    assert "price" not in problem["detail"]
    response = await client.put(f"/workspaces/{ws}/providers/openai", json={"api_key": "sk-test-0123456789abcdef"})
    assert response.status_code == 200, response.text
    estimate = await client.post(f"/workspaces/{ws}/runs/estimate", json=run_body(pid, "hi"))
    assert estimate.status_code == 200, estimate.text
    run_id = await start(client, ws, pid, "hi")
    run = await get_run(client, ws, run_id)
    assert run["status"] == "queued"
    assert run["snapshot"]["price"] == price
    assert run["snapshot"]["provider"] == "openai" and run["snapshot"]["model"] == "my-local-llama"
    # What acceptance reserved is what the estimate said: the worst case at the override's prices.
    reserved = (await budget_row(db_engine, ws))[1]
    assert usd(reserved) == estimate.json()["max_cost_usd"]
    input_tokens = estimate.json()["input_tokens"]
    expected = (Decimal(input_tokens) * Decimal("0.5") + Decimal(100) * Decimal("1.5")).to_integral_value(
        rounding=ROUND_CEILING
    )
    assert reserved == int(expected)

    models = (await client.get(f"/workspaces/{ws}/models")).json()
    llama = [m for m in models if (m["provider"], m["model"]) == ("openai", "my-local-llama")]
    assert len(llama) == 1 and llama[0]["price"] == price
    assert llama[0]["price_overridden"] is True and llama[0]["available"] is True
    entries = [e for e in await audit(client, ws, "limits.updated") if e["target"]["type"] == "price_override"]
    assert len(entries) == 1 and entries[0]["after"] == price and entries[0]["before"] is None


async def test_a_price_override_is_pinned_and_later_changes_do_not_touch_the_run(client, app, ws):
    url = f"/workspaces/{ws}/price-overrides/mock/mock-1"
    assert (await client.put(url, json={"input_per_mtok": "10", "output_per_mtok": "20"})).status_code == 200
    pid = await new_prompt(client, ws)
    run_id = await start(client, ws, pid, "one two")
    assert (await client.put(url, json={"input_per_mtok": "1", "output_per_mtok": "1"})).status_code == 200
    async with RunningWorker(app):
        run = await wait_for(client, ws, run_id)
    assert run["snapshot"]["price"] == {"input_per_mtok": "10", "output_per_mtok": "20"}
    assert run["usage"]["input_tokens"] == 3 and run["usage"]["output_tokens"] == 3
    assert run["cost_usd"] == usd(3 * 10 + 3 * 20)


async def test_the_model_list_is_the_catalogue_with_dated_prices(client, make_client):
    assert_problem(await make_client().get("/models"), 401)
    await signup(client)
    response = await client.get("/models")
    assert response.status_code == 200, response.text
    listed = {(m["provider"], m["model"]): m for m in response.json()}
    expected = {
        (provider, model): info
        for provider, entry in CATALOGUE["providers"].items()
        for model, info in entry["models"].items()
    }
    assert set(listed) == set(expected)
    for key, item in listed.items():
        price = item["price"]
        assert price == expected[key]["price"], key
        assert date.fromisoformat(price["effective"]) <= date.today()
        for field in ("input_per_mtok", "output_per_mtok"):
            assert isinstance(price[field], str) and Decimal(price[field]) >= 0
        assert item["max_output_tokens"] == expected[key]["max_output_tokens"]
    assert listed[("mock", "mock-1")]["price"]["input_per_mtok"] == "3"
    assert listed[("mock", "mock-1")]["price"]["output_per_mtok"] == "15"


async def test_workspace_models_show_availability_and_overrides(client, make_client, owner, ws):
    def by_key(items):
        return {(m["provider"], m["model"]): m for m in items}

    viewer = await member(make_client, owner, ws, "viewer")
    response = await viewer.client.get(f"/workspaces/{ws}/models")
    assert response.status_code == 200, response.text
    models = by_key(response.json())
    catalogue = {(p, m) for p, e in CATALOGUE["providers"].items() for m in e["models"]}
    assert set(models) == catalogue
    for (provider, _), item in models.items():
        assert item["available"] is (provider == "mock"), item
        assert item["price_overridden"] is False

    assert (
        await client.put(f"/workspaces/{ws}/providers/anthropic", json={"api_key": "sk-ant-test-0123456789"})
    ).status_code == 200
    haiku = {"input_per_mtok": "0.9", "output_per_mtok": "4.5"}
    assert (
        await client.put(f"/workspaces/{ws}/price-overrides/anthropic/claude-haiku-4-5", json=haiku)
    ).status_code == 200
    models = by_key((await viewer.client.get(f"/workspaces/{ws}/models")).json())
    for (provider, model), item in models.items():
        assert item["available"] is (provider in ("mock", "anthropic")), item
        overridden = (provider, model) == ("anthropic", "claude-haiku-4-5")
        assert item["price_overridden"] is overridden
        catalogue_price = CATALOGUE["providers"][provider]["models"][model]["price"]
        assert item["price"] == (haiku if overridden else catalogue_price)
    # Another workspace sees none of it.
    other = by_key((await client.get(f"/workspaces/{await create_workspace(owner, 'Other')}/models")).json())
    assert other[("anthropic", "claude-haiku-4-5")]["price_overridden"] is False
    assert other[("anthropic", "claude-haiku-4-5")]["available"] is False


# --- usage -------------------------------------------------------------------------------------------------


async def _usage(client, ws: str, group_by: str, **params: Any) -> dict[str, Any]:
    response = await client.get(f"/workspaces/{ws}/usage", params={"group_by": group_by, **params})
    assert response.status_code == 200, response.text
    return response.json()


def _assert_rows_sum_to_total(body: dict[str, Any]) -> None:
    total = body["total"]
    assert set(total) >= {"runs", "input_tokens", "output_tokens", "cost_usd"}
    for field in ("runs", "input_tokens", "output_tokens"):
        assert sum(r[field] for r in body["rows"]) == total[field], field
    assert sum(Decimal(r["cost_usd"]) for r in body["rows"]) == Decimal(total["cost_usd"])
    for row in body["rows"]:
        assert set(row) == {"key", "runs", "input_tokens", "output_tokens", "cost_usd"}
        assert isinstance(row["cost_usd"], str)


async def _db_sums(db_engine, ws: str, column: str) -> dict[str, tuple[int, int, int, int]]:
    found = await rows(
        db_engine,
        f"SELECT {column}::text, count(*), sum(input_tokens), sum(output_tokens), sum(cost_micros) "
        f"FROM run WHERE workspace_id = :ws GROUP BY 1",
        ws=ws,
    )
    return {key: (int(n), int(i), int(o), int(c)) for key, n, i, o, c in found}


async def test_usage_rollups_equal_the_runs_and_survive_deletions(client, app, make_client, owner, ws, db_engine):
    editor = await member(make_client, owner, ws, "editor")
    p1 = await new_prompt(client, ws, "Say {{words}}")
    p2 = await new_prompt(client, ws, "Repeat {{words}} twice", system="Be exact")
    other_ws = await create_workspace(owner, "Other")
    other_pid = await new_prompt(client, other_ws)
    plan = [
        (client, p1, "one"),
        (client, p1, "one two"),
        (client, p1, "one two three"),
        (client, p2, "alpha"),
        (client, p2, "alpha beta gamma delta"),
        (editor.client, p1, "x y"),
        (editor.client, p1, "x y z w v"),
        (editor.client, p2, "solo"),
    ]
    async with RunningWorker(app):
        ids = [await start(c, ws, pid, words) for c, pid, words in plan]
        await start(client, other_ws, other_pid, "not counted here")
        await wait_all_terminal(db_engine, ws, len(plan))
        await wait_all_terminal(db_engine, other_ws, 1)

    by_run = await _db_sums(db_engine, ws, "id")
    total_micros = sum(c for _, _, _, c in by_run.values())
    assert total_micros > 0 and len(set(c for *_, c in by_run.values())) > 3
    expected_total = {
        "runs": len(plan),
        "input_tokens": sum(i for _, i, _, _ in by_run.values()),
        "output_tokens": sum(o for _, _, o, _ in by_run.values()),
        "cost_usd": usd(total_micros),
    }
    today = (await scalar(db_engine, "SELECT (now() AT TIME ZONE 'utc')::date")).isoformat()
    expected_keys = {
        "day": {today: (len(plan),)},
        "model": {"mock/mock-1": (len(plan),)},
        "user": await _db_sums(db_engine, ws, "created_by"),
        "prompt": await _db_sums(db_engine, ws, "prompt_id"),
    }
    assert set(expected_keys["user"]) == {owner.id, editor.id}
    assert set(expected_keys["prompt"]) == {p1, p2}

    async def check() -> None:
        for group_by, keys in expected_keys.items():
            body = await _usage(client, ws, group_by)
            assert body["group_by"] == group_by
            assert body["total"] == expected_total, (group_by, body["total"])
            _assert_rows_sum_to_total(body)
            got = {r["key"]: r for r in body["rows"]}
            assert set(got) == set(keys), (group_by, got)
            for key, sums in keys.items():
                assert got[key]["runs"] == sums[0]
                if len(sums) == 4:
                    assert (got[key]["input_tokens"], got[key]["output_tokens"]) == sums[1:3]
                    assert got[key]["cost_usd"] == usd(sums[3])
            budget = body["budget"]
            assert budget["monthly_budget_usd"] == "50"
            assert budget["spent_usd"] == usd(total_micros) and budget["reserved_usd"] == usd(0)

    await check()
    ledger_before = await scalar(db_engine, "SELECT count(*) FROM usage_ledger WHERE workspace_id = :ws", ws=ws)
    assert ledger_before == 3 * len(plan)
    for run_id in ids:
        assert {k: len(v) for k, v in (await ledger_of(db_engine, run_id)).items()} == {
            "reserve": 1,
            "release": 1,
            "settle": 1,
        }

    # Deleting a run, then a whole prompt with its runs, leaves the usage and the ledger as they were.
    assert (await client.delete(f"/workspaces/{ws}/runs/{ids[0]}")).status_code == 204
    await check()
    assert (await client.delete(f"/workspaces/{ws}/prompts/{p2}")).status_code == 204
    assert await scalar(db_engine, "SELECT count(*) FROM run WHERE prompt_id = :p", p=p2) == 0
    await check()
    assert await scalar(db_engine, "SELECT count(*) FROM usage_ledger WHERE workspace_id = :ws", ws=ws) == ledger_before


async def test_usage_date_range(client, app, make_client, ws, db_engine):
    pid = await new_prompt(client, ws)
    async with RunningWorker(app):
        await wait_for(client, ws, await start(client, ws, pid, "a b"))
    today = await scalar(db_engine, "SELECT (now() AT TIME ZONE 'utc')::date")
    body = await _usage(client, ws, "day", **{"from": today.isoformat(), "to": (today + timedelta(days=1)).isoformat()})
    assert [r["key"] for r in body["rows"]] == [today.isoformat()] and body["total"]["runs"] == 1
    assert body["from"] == today.isoformat()
    # `to` is exclusive.
    month_ago = (today - timedelta(days=30)).isoformat()
    body = await _usage(client, ws, "day", **{"from": month_ago, "to": today.isoformat()})
    assert body["rows"] == [] and body["total"] == {
        "runs": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": "0.000000",
    }
    bad = await client.get(f"/workspaces/{ws}/usage", params={"from": today.isoformat(), "to": today.isoformat()})
    assert_problem(bad, 422)
    assert_problem(await client.get(f"/workspaces/{ws}/usage", params={"group_by": "colour"}), 422)
    assert_problem(await client.get(f"/workspaces/{ws}/usage", params={"from": "yesterday"}), 422)
    stranger = await signup(make_client())
    assert_problem(await stranger.client.get(f"/workspaces/{ws}/usage"), 404)
    assert_problem(await stranger.client.get(f"/workspaces/{ws}/usage/latency"), 404)


async def test_usage_latency_gives_p50_and_p95_per_model(client, app, ws, db_engine):
    p1 = await new_prompt(client, ws)
    p2 = await new_prompt(client, ws)
    async with RunningWorker(app):
        for pid, words in ((p1, "a"), (p1, "a b c"), (p2, "d e")):
            await start(client, ws, pid, words)
        await wait_all_terminal(db_engine, ws, 3)
    response = await client.get(f"/workspaces/{ws}/usage/latency")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["key"] for r in body] == ["mock/mock-1"]
    for metric in ("ttft_ms", "duration_ms"):
        p50, p95 = body[0][metric]["p50"], body[0][metric]["p95"]
        assert isinstance(p50, int) and isinstance(p95, int) and 0 < p50 <= p95, body
    by_prompt = (await client.get(f"/workspaces/{ws}/usage/latency", params={"group_by": "prompt"})).json()
    assert sorted(r["key"] for r in by_prompt) == sorted([p1, p2])


# --- day rollups: every grouping reads its own rollup, and all of them agree --------------------------------

# The day rollups and their key columns; the latency histograms live in the model and prompt ones.
DAY_ROLLUPS = {
    "usage_model_day": ("provider", "model"),
    "usage_user_day": ("user_id",),
    "usage_prompt_day": ("prompt_id",),
}
MIGRATION = Path(__file__).parents[1] / "migrations" / "versions" / "2026_11_27_0500-usage-rollups.py"


def _merged(histograms: list[dict[str, int]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for histogram in histograms:
        for bucket, count in histogram.items():
            merged[bucket] = merged.get(bucket, 0) + count
    return merged


async def day_rollups(db_engine) -> dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]:
    """Each day rollup as {(workspace, day, *key): (runs, input, output, cost[, ttft, duration])}."""
    found = {}
    for table, key in DAY_ROLLUPS.items():
        histograms = ", ttft_histogram, duration_histogram" if table != "usage_user_day" else ""
        columns = ", ".join(key)
        found[table] = {
            tuple(r[: 2 + len(key)]): tuple(r[2 + len(key) :])
            for r in await rows(
                db_engine,
                f"SELECT workspace_id, day, {columns}, runs, input_tokens, output_tokens, cost_micros{histograms} "
                f"FROM {table}",
            )
        }
    return found


async def assert_day_rollups_match_the_fine_rollup(db_engine) -> int:
    """The three day rollups hold exactly the fine rollup summed over the columns they leave out (histograms
    merged bucket by bucket), computed here in Python; returns the runs counted."""
    fine = await rows(
        db_engine,
        "SELECT workspace_id, day, provider, model, user_id, prompt_id, runs, input_tokens, output_tokens, "
        "cost_micros, ttft_histogram, duration_histogram FROM usage_rollup",
    )
    columns = ("workspace_id", "day", "provider", "model", "user_id", "prompt_id")
    expected: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]] = {}
    for table, key in DAY_ROLLUPS.items():
        groups: dict[tuple[Any, ...], list[Any]] = {}
        for row in fine:
            group = (row[0], row[1], *(row[columns.index(c)] for c in key))
            groups.setdefault(group, []).append(row)
        expected[table] = {}
        for group, members in groups.items():
            totals = tuple(sum(m[i] for m in members) for i in (6, 7, 8, 9))
            if table != "usage_user_day":
                totals += (_merged([m[10] for m in members]), _merged([m[11] for m in members]))
            expected[table][group] = totals
    assert await day_rollups(db_engine) == expected
    return sum(r[6] for r in fine)


async def test_day_rollups_agree_with_the_fine_rollup_and_with_the_runs(
    client, app, make_client, owner, ws, db_engine
):
    editor = await member(make_client, owner, ws, "editor")
    p1 = await new_prompt(client, ws, "Say {{words}}")
    p2 = await new_prompt(client, ws, "Repeat {{words}}", system="Be exact")
    other_ws = await create_workspace(owner, "Other")
    other_pid = await new_prompt(client, other_ws)
    cancelled = await start(client, ws, p1, "never runs")  # settles at once: cost 0, no latency measured
    assert (await client.post(f"/workspaces/{ws}/runs/{cancelled}/cancel")).status_code == 202
    plan = [(client, p1, "one"), (client, p2, "a b c"), (editor.client, p1, "x y"), (editor.client, p2, "z")]
    async with RunningWorker(app):
        for c, pid, words in plan:
            await start(c, ws, pid, words)
        await start(client, other_ws, other_pid, "elsewhere")
        await wait_all_terminal(db_engine, ws, len(plan) + 1)
        await wait_all_terminal(db_engine, other_ws, 1)

    assert await assert_day_rollups_match_the_fine_rollup(db_engine) == len(plan) + 2
    # Every grouping of the API adds up to the same totals, which are the sums over the runs.
    sums = await rows(
        db_engine,
        "SELECT count(*), sum(input_tokens), sum(output_tokens), sum(cost_micros) FROM run WHERE workspace_id = :ws",
        ws=ws,
    )
    runs, input_tokens, output_tokens, cost = (int(v) for v in sums[0])
    expected = {"runs": runs, "input_tokens": input_tokens, "output_tokens": output_tokens, "cost_usd": usd(cost)}
    assert runs == len(plan) + 1 and cost > 0
    for group_by in ("day", "model", "user", "prompt"):
        body = await _usage(client, ws, group_by)
        assert body["total"] == expected, group_by
        _assert_rows_sum_to_total(body)
    by_user = {r["key"]: r["runs"] for r in (await _usage(client, ws, "user"))["rows"]}
    assert by_user == {owner.id: 3, editor.id: 2}
    by_prompt = {r["key"]: r["runs"] for r in (await _usage(client, ws, "prompt"))["rows"]}
    assert by_prompt == {p1: 3, p2: 2}
    # The latency histograms count every run that measured a latency, by model and by prompt alike.
    ttft = await rows(
        db_engine,
        "SELECT 'model', sum(b.value::int) FROM usage_model_day, jsonb_each_text(ttft_histogram) b "
        "WHERE workspace_id = :ws UNION ALL "
        "SELECT 'prompt', sum(b.value::int) FROM usage_prompt_day, jsonb_each_text(ttft_histogram) b "
        "WHERE workspace_id = :ws",
        ws=ws,
    )
    assert dict(ttft) == {"model": len(plan), "prompt": len(plan)}


async def test_the_migration_backfill_rebuilds_the_day_rollups_exactly(client, app, ws, db_engine):
    """Runs settled before the day rollups existed are copied into them by the migration: the same rows as
    settlement writes."""
    p1 = await new_prompt(client, ws)
    p2 = await new_prompt(client, ws, "{{words}} again")
    async with RunningWorker(app):
        for pid, words in ((p1, "a"), (p1, "a b"), (p2, "c d e"), (p2, "MOCK_FAIL_MID f g")):
            await start(client, ws, pid, words)
        await wait_all_terminal(db_engine, ws, 4)
    settled = await day_rollups(db_engine)
    assert all(settled.values()), settled

    spec = importlib.util.spec_from_file_location("usage_rollups_migration", MIGRATION)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    async with db_engine.begin() as conn:
        for table in DAY_ROLLUPS:
            await conn.execute(text(f"DELETE FROM {table}"))
        for sql in (migration.BACKFILL_MODEL_DAY, migration.BACKFILL_USER_DAY, migration.BACKFILL_PROMPT_DAY):
            await conn.execute(text(sql))
    assert await day_rollups(db_engine) == settled
    await assert_day_rollups_match_the_fine_rollup(db_engine)


async def test_latency_percentiles_are_documented_as_bucket_upper_bounds(client):
    schema = (await client.get("/openapi.json")).json()
    percentiles = schema["components"]["schemas"]["Percentiles"]
    for field in ("p50", "p95"):
        assert "upper bound" in percentiles["properties"][field]["description"]
    assert "bucket upper bounds" in schema["paths"]["/api/v1/workspaces/{ws}/usage/latency"]["get"]["description"]


async def test_the_day_rollups_follow_any_write_to_the_fine_rollup(db_engine):
    """The trigger keeps the day rollups whoever writes the fine rollup (a worker of an older version during a
    rolling deploy, an operator's correction): inserts, updates and deletes alike; a key never changes."""
    ws, other = uuid.uuid4(), uuid.uuid4()
    users = [uuid.uuid4() for _ in range(3)]
    prompts = [uuid.uuid4() for _ in range(2)]
    day = date(2026, 11, 2)
    insert = text(
        "INSERT INTO usage_rollup (workspace_id, day, provider, model, user_id, prompt_id, runs, input_tokens, "
        "output_tokens, cost_micros, ttft_histogram, duration_histogram) VALUES (:ws, :day, 'mock', :model, :user, "
        ":prompt, CAST(:runs AS bigint), :runs * 7, :runs * 11, :runs * 201, CAST(:ttft AS jsonb), "
        "CAST(:duration AS jsonb))"
    )
    async with db_engine.begin() as conn:
        for i in range(12):
            await conn.execute(
                insert,
                {
                    "ws": ws if i % 4 else other,
                    "day": day + timedelta(days=i // 6),  # (i // 6, i % 3, i % 2) tells every i apart
                    "model": f"mock-{i % 3}",
                    "user": users[(i // 2) % 3],
                    "prompt": prompts[i % 2],
                    "runs": 1 + i % 3,
                    "ttft": json.dumps({"100": 1 + i % 3}),
                    "duration": json.dumps({"500": 1, "750": i % 3} if i % 3 else {"500": 1}),
                },
            )
    assert await assert_day_rollups_match_the_fine_rollup(db_engine) == sum(1 + i % 3 for i in range(12))
    async with db_engine.begin() as conn:
        # One more run into existing rows, as settlement does; then corrections that take runs away.
        await conn.execute(
            text(
                "UPDATE usage_rollup SET runs = runs + 1, cost_micros = cost_micros + 5, "
                "ttft_histogram = ttft_histogram || jsonb_build_object('200', 1) WHERE workspace_id = :ws"
            ),
            {"ws": ws},
        )
        await conn.execute(
            text(
                "UPDATE usage_rollup SET runs = runs - 1, duration_histogram = '{\"500\": 1}' "
                "WHERE workspace_id = :ws AND runs > 2"
            ),
            {"ws": ws},
        )
    await assert_day_rollups_match_the_fine_rollup(db_engine)
    async with db_engine.begin() as conn:
        await conn.execute(text("DELETE FROM usage_rollup WHERE workspace_id = :ws AND model = 'mock-1'"), {"ws": ws})
        await conn.execute(text("DELETE FROM usage_rollup WHERE workspace_id = :ws"), {"ws": other})
    await assert_day_rollups_match_the_fine_rollup(db_engine)
    # Nothing is left of the deleted workspace's rows, not even empty day rows.
    for table in DAY_ROLLUPS:
        assert await scalar(db_engine, f"SELECT count(*) FROM {table} WHERE workspace_id = :ws", ws=other) == 0
    with pytest.raises(Exception, match="never changes"):
        async with db_engine.begin() as conn:
            rename = text("UPDATE usage_rollup SET model = model || '-renamed' WHERE workspace_id = :ws")
            await conn.execute(rename, {"ws": ws})
    await assert_day_rollups_match_the_fine_rollup(db_engine)


async def test_concurrent_writes_to_the_fine_rollup_keep_the_day_rollups_exact(db_engine, app):
    """Settlements racing on the same day rows (same workspace, day and model; some on the same fine row),
    even without the dispatch lock that normally queues them: every one is counted once."""
    from backend.usage import repository as usage_repo

    ws, day = uuid.uuid4(), date(2026, 11, 3)
    users, prompts = [uuid.uuid4() for _ in range(3)], [uuid.uuid4() for _ in range(2)]

    async def settle(i: int) -> None:
        async with app.state.sessionmaker() as session, session.begin():
            key = {
                "workspace_id": ws,
                "day": day,
                "provider": "mock",
                "model": "mock-1",
                "user_id": users[i % 3],
                "prompt_id": prompts[i % 2],
            }
            values = {"input_tokens": i, "output_tokens": 2 * i, "cost_micros": 3 * i + 1}
            await usage_repo.add_rollup(session, key, values, str(100 * (1 + i % 4)), "500" if i % 5 else None)

    await asyncio.gather(*(settle(i) for i in range(24)))
    assert await assert_day_rollups_match_the_fine_rollup(db_engine) == 24
    model_day = await rows(
        db_engine, "SELECT runs, cost_micros, ttft_histogram, duration_histogram FROM usage_model_day"
    )
    assert model_day == [(24, sum(3 * i + 1 for i in range(24)), {"100": 6, "200": 6, "300": 6, "400": 6}, {"500": 19})]
