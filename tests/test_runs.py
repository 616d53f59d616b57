"""Integration tests of the runs domain against real PostgreSQL and Redis: creation and pinning, the mock
model's contract, validation, drafts, idempotency, listing, events and resumption (buffered and over a real
uvicorn server), cancellation, reruns, deletion, Anthropic through a loopback fake, the reconciler and
encryption at rest and in Redis."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import text

from backend.catalogue.service import price_for
from backend.runs import repository as repo
from backend.runs.providers.mock import MockProvider
from backend.runs.worker import InFlight, Worker
from tests.factories import Account, add_member, assert_problem, create_api_key, create_workspace, signup
from tests.fakes.anthropic_server import AnthropicScript, FakeAnthropic, run_fake
from tests.runs_helpers import RunningWorker, parse_sse, sse_events

PROBLEM = "application/problem+json"
TERMINAL_STATUSES = {"succeeded", "failed", "cancelled"}
TERMINAL_EVENTS = {"run.completed", "run.failed", "run.cancelled"}
MOCK = {"provider": "mock", "model": "mock-1", "max_tokens": 256}
RUN_FIELDS = {
    "id",
    "status",
    "prompt_id",
    "version_id",
    "version",
    "snapshot",
    "output",
    "stop_reason",
    "usage",
    "cost_usd",
    "ttft_ms",
    "duration_ms",
    "error",
    "flags",
    "created_by",
    "created_at",
    "started_at",
    "finished_at",
}


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


def error_locs(response: httpx.Response) -> list[list[Any]]:
    problem = assert_problem(response, 422)
    return [e["loc"] for e in problem["errors"]]


async def member(make_client, owner: Account, ws: str, role: str) -> Account:
    account = await signup(make_client())
    await add_member(owner, ws, account, role)
    return account


async def new_prompt(
    client: httpx.AsyncClient,
    ws: str,
    user: str | None = "Say {{words}}",
    *,
    system: str = "",
    messages: list[dict[str, str]] | None = None,
    config: dict[str, Any] | None = None,
) -> str:
    """A prompt with one version (or none when user is None); returns the prompt id."""
    response = await client.post(f"/workspaces/{ws}/prompts", json={"name": f"prompt-{uuid.uuid4().hex[:10]}"})
    assert response.status_code == 201, response.text
    pid = response.json()["id"]
    if user is not None or messages is not None:
        await new_version(client, ws, pid, user, system=system, messages=messages, config=config)
    return pid


async def new_version(
    client,
    ws: str,
    pid: str,
    user: str | None = "Say {{words}}",
    *,
    system: str = "",
    messages: list[dict[str, str]] | None = None,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body = {
        "system": system,
        "messages": messages or [{"role": "user", "content": user}],
        "model_config": config or MOCK,
    }
    response = await client.post(f"/workspaces/{ws}/prompts/{pid}/versions", json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def start(client, ws: str, pid: str, variables: dict[str, str] | None = None, **extra: Any) -> str:
    headers = extra.pop("headers", None)
    body = {"prompt_id": pid, "variables": {} if variables is None else variables, **extra}
    response = await client.post(f"/workspaces/{ws}/runs", json=body, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()["id"]


async def get_run(client, ws: str, run_id: str) -> dict[str, Any]:
    response = await client.get(f"/workspaces/{ws}/runs/{run_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def wait_for(client, ws: str, run_id: str, statuses=TERMINAL_STATUSES, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = await get_run(client, ws, run_id)
        if run["status"] in statuses:
            return run
        assert time.monotonic() < deadline, f"run still {run['status']} after {timeout}s"
        await asyncio.sleep(0.02)


async def events_of(client, ws: str, run_id: str, last_id: str | None = None, *, query: bool = False) -> list:
    """The whole (buffered) event stream of a run, from the start or resumed after last_id."""
    headers, params = {}, {}
    if last_id is not None:
        if query:
            params["last_event_id"] = last_id
        else:
            headers["Last-Event-ID"] = last_id
    response = await client.get(f"/workspaces/{ws}/runs/{run_id}/events", headers=headers, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse_sse(response.text)


def delta_text(events: list[dict[str, Any]]) -> str:
    return "".join(e["data"]["text"] for e in events if e["event"] == "run.delta")


def seq_of(event: dict[str, Any]) -> int:
    return int(event["id"].split("-")[0])


def offset_of(event: dict[str, Any]) -> int:
    return int(event["id"].split("-")[1])


def mock_output(user_text: str, limit: int | None = None) -> str:
    words = user_text.split()[:limit]
    return "".join(w + " " for w in words)


def usd(input_tokens: int, output_tokens: int, price: tuple[int, int] = (3, 15)) -> str:
    micros = input_tokens * price[0] + output_tokens * price[1]
    return str((Decimal(micros) / Decimal(1_000_000)).quantize(Decimal("0.000001")))


async def count_rows(db_engine, table: str = "run") -> int:
    async with db_engine.connect() as conn:
        return (await conn.execute(text(f'SELECT count(*) FROM "{table}"'))).scalar_one()


def use_mock_timing(app, *, ttft_ms: int, token_ms: int) -> None:
    """Slower mock tokens for this test (a worker reads the app's settings when it is built)."""
    app.state.settings = app.state.settings.model_copy(update={"mock_ttft_ms": ttft_ms, "mock_token_ms": token_ms})


def reconciler(app, **options: Any) -> Worker:
    """A worker that is never started: only its reconcile_once (and helpers) are called."""
    return Worker(
        sessionmaker=app.state.sessionmaker,
        keyring=app.state.keyring,
        backends=app.state.run_backends,
        settings=app.state.settings,
        **options,
    )


def iso_with_offset(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() is not None, value
    return parsed


# --- create, detail and the mock model ---------------------------------------------------------------


async def test_create_answers_202_and_the_detail_pins_everything(client, app, owner, ws):
    system = "You are {{persona}}."
    messages = [
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": "Ahoy, what now?"},
        {"role": "user", "content": "Summarize: {{text}}"},
    ]
    config = {**MOCK, "temperature": 0.7, "top_p": None, "stop_sequences": []}
    pid = await new_prompt(client, ws, system=system, messages=messages, config=config)
    variables = {"persona": "a pirate", "text": "the quick brown fox jumps"}
    async with RunningWorker(app):
        response = await client.post(
            f"/workspaces/{ws}/runs",
            json={
                "prompt_id": pid,
                "version": 1,
                "variables": variables,
                "overrides": {"temperature": 0, "max_tokens": 500},
            },
        )
        assert response.status_code == 202, response.text
        accepted = response.json()
        assert set(accepted) >= {"id", "status", "events_url"}
        assert accepted["status"] == "queued"
        assert accepted["events_url"] == f"/api/v1/workspaces/{ws}/runs/{accepted['id']}/events"
        run = await wait_for(client, ws, accepted["id"])

    assert set(run) >= RUN_FIELDS, RUN_FIELDS - set(run)
    version = (await client.get(f"/workspaces/{ws}/prompts/{pid}/versions/1")).json()
    assert run["id"] == accepted["id"]
    assert run["status"] == "succeeded"
    assert run["prompt_id"] == pid and run["version_id"] == version["id"] and run["version"] == 1
    assert run["created_by"] == owner.id
    assert run["error"] is None and run["flags"] == []

    rendered = [
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": "Ahoy, what now?"},
        {"role": "user", "content": "Summarize: the quick brown fox jumps"},
    ]
    snapshot = run["snapshot"]
    assert snapshot["system"] == "You are a pirate."
    assert snapshot["messages"] == rendered
    assert snapshot["variables"] == variables
    assert snapshot["model_config"]["temperature"] == 0 and snapshot["model_config"]["max_tokens"] == 500
    assert snapshot["model_config"]["provider"] == "mock" and snapshot["model_config"]["model"] == "mock-1"
    assert snapshot["provider"] == "mock" and snapshot["model"] == "mock-1"
    assert snapshot["price"] == price_for("mock", "mock-1")
    assert snapshot["price"]["input_per_mtok"] == "3" and snapshot["price"]["output_per_mtok"] == "15"

    # The mock echoes the final user message word by word; input = words of the system and all messages.
    assert run["output"] == "Summarize: the quick brown fox jumps "
    assert run["stop_reason"] == "end_turn"
    input_tokens = 4 + 2 + 3 + 6  # "You are a pirate." + three messages
    assert run["usage"] == {"input_tokens": input_tokens, "output_tokens": 6, "estimated": False}
    assert isinstance(run["cost_usd"], str)
    assert run["cost_usd"] == usd(input_tokens, 6) == "0.000135"

    assert isinstance(run["ttft_ms"], int) and run["ttft_ms"] >= 0
    assert isinstance(run["duration_ms"], int) and run["duration_ms"] >= run["ttft_ms"]
    created = iso_with_offset(run["created_at"])
    started = iso_with_offset(run["started_at"])
    finished = iso_with_offset(run["finished_at"])
    assert created <= started <= finished


async def test_max_tokens_stops_the_mock_with_truncated_output(client, app, ws):
    pid = await new_prompt(client, ws)
    async with RunningWorker(app):
        run_id = await start(client, ws, pid, {"words": "one two three four five"}, overrides={"max_tokens": 3})
        run = await wait_for(client, ws, run_id)
    assert run["status"] == "succeeded"
    assert run["stop_reason"] == "max_tokens"
    assert run["output"] == "Say one two "
    assert run["usage"] == {"input_tokens": 6, "output_tokens": 3, "estimated": False}
    assert run["cost_usd"] == usd(6, 3)


async def test_mock_refusal_succeeds_with_no_output(client, app, ws):
    pid = await new_prompt(client, ws, system="Be nice")
    async with RunningWorker(app):
        run_id = await start(client, ws, pid, {"words": "MOCK_REFUSE please"})
        run = await wait_for(client, ws, run_id)
        events = await events_of(client, ws, run_id)
    assert run["status"] == "succeeded"
    assert run["stop_reason"] == "refusal"
    assert run["output"] == ""
    assert run["usage"]["input_tokens"] == 5 and run["usage"]["output_tokens"] == 0
    assert run["cost_usd"] == usd(5, 0)
    assert delta_text(events) == "" and events[-1]["event"] == "run.completed"


async def test_mock_early_failure_is_retried_then_fails_as_overloaded(client, app, ws, monkeypatch):
    attempts: list[str] = []
    original = MockProvider.stream

    def counting(self, request):
        attempts.append(request.messages[-1]["content"])
        return original(self, request)

    monkeypatch.setattr(MockProvider, "stream", counting)
    pid = await new_prompt(client, ws)
    async with RunningWorker(app):
        run_id = await start(client, ws, pid, {"words": "MOCK_FAIL_EARLY now"})
        run = await wait_for(client, ws, run_id, timeout=20)
        events = await events_of(client, ws, run_id)
    assert len(attempts) >= 2, "an overloaded error before the first token must be retried"
    assert run["status"] == "failed"
    assert run["error"]["kind"] == "overloaded"
    assert isinstance(run["error"]["message"], str)
    assert run["output"] == ""
    assert events[-1]["event"] == "run.failed" and events[-1]["data"]["error"]["kind"] == "overloaded"


async def test_mock_mid_stream_failure_keeps_half_the_words(client, app, ws):
    pid = await new_prompt(client, ws, "{{words}}")
    async with RunningWorker(app):
        run_id = await start(client, ws, pid, {"words": "alpha beta gamma MOCK_FAIL_MID epsilon zeta"})
        run = await wait_for(client, ws, run_id)
        events = await events_of(client, ws, run_id)
    assert run["status"] == "failed"
    assert run["error"] is not None and run["error"]["kind"]
    assert run["output"] == "alpha beta gamma "
    assert delta_text(events) == run["output"]
    assert [e["event"] for e in events].count("run.failed") == 1 and events[-1]["event"] == "run.failed"


# --- validation --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "overrides", "loc"),
    [
        ({}, {}, ["body", "variables", "words"]),
        ({"words": "hi", "extra": "x"}, {}, ["body", "variables", "extra"]),
        ({"words": "hi"}, {"model": "mock-unknown"}, ["body", "overrides", "model"]),
        ({"words": "hi"}, {"max_tokens": 100_001}, ["body", "overrides", "max_tokens"]),
        ({"words": "hi"}, {"colour": "blue"}, ["body", "overrides", "colour"]),
    ],
    ids=["missing-variable", "extra-variable", "unknown-model", "max-tokens-too-high", "unknown-override"],
)
async def test_invalid_run_is_a_422_naming_the_field_and_writes_nothing(
    client, app, ws, db_engine, variables, overrides, loc
):
    pid = await new_prompt(client, ws)
    response = await client.post(
        f"/workspaces/{ws}/runs", json={"prompt_id": pid, "variables": variables, "overrides": overrides}
    )
    assert loc in error_locs(response)
    assert await count_rows(db_engine) == 0


async def test_unknown_prompt_is_404_and_version_with_draft_is_422(client, ws, db_engine):
    response = await client.post(f"/workspaces/{ws}/runs", json={"prompt_id": str(uuid.uuid4()), "variables": {}})
    assert_problem(response, 404)
    pid = await new_prompt(client, ws)
    draft = {"system": "", "messages": [{"role": "user", "content": "hi"}], "model_config": MOCK}
    response = await client.post(
        f"/workspaces/{ws}/runs", json={"prompt_id": pid, "version": 1, "draft": draft, "variables": {}}
    )
    assert_problem(response, 422)
    response = await client.post(
        f"/workspaces/{ws}/runs", json={"prompt_id": pid, "version": 7, "variables": {"words": "x"}}
    )
    assert_problem(response, 404)
    assert await count_rows(db_engine) == 0


async def test_prompt_without_versions_is_422(client, ws, db_engine):
    pid = await new_prompt(client, ws, None)
    response = await client.post(f"/workspaces/{ws}/runs", json={"prompt_id": pid, "variables": {}})
    assert ["body", "version"] in error_locs(response)
    assert await count_rows(db_engine) == 0


async def test_anthropic_without_a_workspace_key_is_422_naming_the_provider(client, ws, db_engine):
    config = {"provider": "anthropic", "model": "claude-haiku-4-5", "max_tokens": 256}
    pid = await new_prompt(client, ws, config=config)
    response = await client.post(f"/workspaces/{ws}/runs", json={"prompt_id": pid, "variables": {"words": "x"}})
    locs = error_locs(response)
    assert any("provider" in loc for loc in locs), locs
    # The same through an override of a mock version.
    mock_pid = await new_prompt(client, ws)
    response = await client.post(
        f"/workspaces/{ws}/runs",
        json={
            "prompt_id": mock_pid,
            "variables": {"words": "x"},
            "overrides": {"provider": "anthropic", "model": "claude-haiku-4-5"},
        },
    )
    locs = error_locs(response)
    assert any("provider" in loc for loc in locs), locs
    assert await count_rows(db_engine) == 0


async def test_a_rejected_draft_run_leaves_no_version_and_no_run(client, ws, db_engine):
    pid = await new_prompt(client, ws, None)
    draft = {"system": "", "messages": [{"role": "user", "content": "Tell {{who}}"}], "model_config": MOCK}
    response = await client.post(
        f"/workspaces/{ws}/runs",
        json={"prompt_id": pid, "draft": draft, "variables": {}},
        headers={"Idempotency-Key": "draft-key"},
    )
    assert ["body", "variables", "who"] in error_locs(response)
    assert await count_rows(db_engine) == 0
    assert await count_rows(db_engine, "prompt_version") == 0
    assert (await client.get(f"/workspaces/{ws}/prompts/{pid}/versions")).json() == []
    # The key was not consumed by the rejected request: a valid body with it is accepted.
    response = await client.post(
        f"/workspaces/{ws}/runs",
        json={"prompt_id": pid, "draft": draft, "variables": {"who": "me"}},
        headers={"Idempotency-Key": "draft-key"},
    )
    assert response.status_code == 202, response.text
    assert await count_rows(db_engine) == 1


# --- drafts --------------------------------------------------------------------------------------------


async def test_a_draft_is_saved_as_a_version_pinned_and_reused(client, app, ws, db_engine):
    pid = await new_prompt(client, ws)  # version 1
    draft = {"system": "Be brief", "messages": [{"role": "user", "content": "Echo {{words}}"}], "model_config": MOCK}
    async with RunningWorker(app):
        first = await start(client, ws, pid, {"words": "red green"}, draft=draft)
        second = await start(client, ws, pid, {"words": "blue"}, draft=draft)
        one, two = await wait_for(client, ws, first), await wait_for(client, ws, second)
    items = (await client.get(f"/workspaces/{ws}/prompts/{pid}/versions")).json()
    assert sorted(v["number"] for v in items) == [1, 2]
    saved = next(v for v in items if v["number"] == 2)
    assert one["version"] == two["version"] == 2
    assert one["version_id"] == two["version_id"] == saved["id"]
    assert await count_rows(db_engine, "prompt_version") == 2
    assert one["output"] == "Echo red green " and two["output"] == "Echo blue "
    assert one["snapshot"]["system"] == "Be brief" and one["snapshot"]["version"] == 2


# --- Idempotency-Key --------------------------------------------------------------------------------


async def test_idempotency_key_same_body_same_run_other_body_409(client, make_client, owner, ws, db_engine):
    pid = await new_prompt(client, ws)
    body = {"prompt_id": pid, "variables": {"words": "once"}}
    first = await client.post(f"/workspaces/{ws}/runs", json=body, headers={"Idempotency-Key": "k-1"})
    again = await client.post(f"/workspaces/{ws}/runs", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 202, again.text
    assert first.json()["id"] == again.json()["id"]
    assert await count_rows(db_engine) == 1

    other = await client.post(
        f"/workspaces/{ws}/runs", json={**body, "variables": {"words": "twice"}}, headers={"Idempotency-Key": "k-1"}
    )
    assert_problem(other, 409)
    assert await count_rows(db_engine) == 1

    editor = await member(make_client, owner, ws, "editor")
    theirs = await editor.client.post(f"/workspaces/{ws}/runs", json=body, headers={"Idempotency-Key": "k-1"})
    assert theirs.status_code == 202, theirs.text
    assert theirs.json()["id"] != first.json()["id"]
    assert await count_rows(db_engine) == 2


async def test_concurrent_requests_with_one_idempotency_key_make_one_run(client, ws, db_engine):
    pid = await new_prompt(client, ws)
    body = {"prompt_id": pid, "variables": {"words": "race"}}
    responses = await asyncio.gather(
        *[client.post(f"/workspaces/{ws}/runs", json=body, headers={"Idempotency-Key": "same-key"}) for _ in range(10)]
    )
    assert [r.status_code for r in responses] == [202] * 10, [r.text for r in responses if r.status_code != 202]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await count_rows(db_engine) == 1


# --- list ----------------------------------------------------------------------------------------------


async def test_list_is_newest_first_filters_and_paginates(client, make_client, owner, ws):
    editor = await member(make_client, owner, ws, "editor")
    a = await new_prompt(client, ws)
    await new_version(client, ws, a, "Now {{words}}")
    b = await new_prompt(client, ws)
    plan = [
        (owner, a, 1),
        (owner, a, 2),
        (editor, a, 1),
        (owner, b, 1),
        (owner, b, 1),
        (editor, b, 1),
        (owner, a, 2),
    ]
    ids = []
    for account, pid, version in plan:
        ids.append(await start(account.client, ws, pid, {"words": "x"}, version=version))
    cancelled = {ids[1], ids[4]}
    for run_id in cancelled:
        assert (await client.post(f"/workspaces/{ws}/runs/{run_id}/cancel")).status_code == 202

    async def listed(**params: Any) -> list[str]:
        response = await client.get(f"/workspaces/{ws}/runs", params=params)
        assert response.status_code == 200, response.text
        assert response.json()["next_cursor"] is None
        return [item["id"] for item in response.json()["items"]]

    newest_first = list(reversed(ids))
    assert await listed() == newest_first
    detail = {run_id: await get_run(client, ws, run_id) for run_id in ids}
    listed_items = (await client.get(f"/workspaces/{ws}/runs")).json()["items"]
    assert all(set(item) >= RUN_FIELDS for item in listed_items)
    created = [iso_with_offset(detail[i]["created_at"]) for i in ids]
    assert created == sorted(created)

    assert await listed(prompt_id=a) == [i for i in newest_first if ids.index(i) in (0, 1, 2, 6)]
    assert await listed(prompt_id=b) == [i for i in newest_first if ids.index(i) in (3, 4, 5)]
    assert await listed(prompt_id=a, version=2) == [ids[6], ids[1]]
    assert await listed(status="cancelled") == [ids[4], ids[1]]
    assert await listed(status="queued") == [i for i in newest_first if i not in cancelled]
    assert await listed(status="succeeded") == []
    assert await listed(created_by=editor.id) == [ids[5], ids[2]]
    assert await listed(created_by=owner.id, prompt_id=b) == [ids[4], ids[3]]
    start_at = created[1] + (created[2] - created[1]) / 2
    end_at = created[4] + (created[5] - created[4]) / 2
    assert await listed(**{"from": start_at.isoformat(), "to": end_at.isoformat()}) == [ids[4], ids[3], ids[2]]
    assert await listed(**{"from": start_at.isoformat()}) == newest_first[:5]
    assert await listed(to=end_at.isoformat()) == newest_first[2:]

    for limit, filters in ((2, {}), (1, {}), (3, {}), (1, {"prompt_id": a})):
        seen: list[str] = []
        cursor = None
        for _ in range(20):
            params = {"limit": limit, **filters, **({"cursor": cursor} if cursor else {})}
            page = (await client.get(f"/workspaces/{ws}/runs", params=params)).json()
            assert len(page["items"]) <= limit
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        expected = await listed(**filters)
        assert seen == expected, (limit, filters)
        assert len(set(seen)) == len(seen)


# --- events (buffered: finished runs) --------------------------------------------------------------

LONG_WORDS = " ".join(f"w{i}" for i in range(40))


async def _finished_run(client, app, ws: str, token_ms: int = 4) -> tuple[str, dict[str, Any], list[dict]]:
    use_mock_timing(app, ttft_ms=5, token_ms=token_ms)
    pid = await new_prompt(client, ws, "{{words}}")
    async with RunningWorker(app):
        run_id = await start(client, ws, pid, {"words": LONG_WORDS})
        run = await wait_for(client, ws, run_id)
        events = await events_of(client, ws, run_id)
    return run_id, run, events


def assert_well_formed(
    events: list[dict[str, Any]],
    run: dict[str, Any],
    *,
    first: str | None = "run.queued",
    prior: str = "",
    usage: bool = True,
) -> None:
    """Ordered ids, exactly one terminal event (last, carrying the final run), usage before it, and the
    deltas completing `prior` (what the reader already had) to exactly the final output."""
    names = [e["event"] for e in events]
    if first is not None:
        assert names[0] == first, names
    seqs = [seq_of(e) for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"ids must strictly increase in seq: {seqs}"
    assert sum(name in TERMINAL_EVENTS for name in names) == 1, names
    assert names[-1] in TERMINAL_EVENTS
    if usage:
        assert names.count("run.usage") == 1 and names.index("run.usage") < len(names) - 1, names
    else:
        assert "run.usage" not in names, names
    assert events[-1]["data"] == run
    assert prior + delta_text(events) == run["output"]


async def test_event_stream_is_complete_ordered_and_ends_with_the_final_run(client, app, ws):
    _run_id, run, events = await _finished_run(client, app, ws)
    assert run["status"] == "succeeded" and run["output"] == mock_output(LONG_WORDS)
    names = [e["event"] for e in events]
    assert_well_formed(events, run)
    assert names[1] == "run.started" and names[-1] == "run.completed"
    usage = next(e for e in events if e["event"] == "run.usage")["data"]
    assert usage == {"input_tokens": 40, "output_tokens": 40}
    # An event id carries the output offset the reader has after it.
    text = ""
    for event in events:
        if event["event"] == "run.delta":
            text += event["data"]["text"]
        assert offset_of(event) == len(text), event


@pytest.mark.parametrize("query", [False, True], ids=["header", "query"])
async def test_resuming_from_every_event_id_gives_exactly_the_rest(client, app, ws, query):
    run_id, run, events = await _finished_run(client, app, ws)
    assert sum(e["event"] == "run.delta" for e in events) >= 3, "want several deltas to resume between"
    for index, event in enumerate(events):
        resumed = await events_of(client, ws, run_id, event["id"], query=query)
        prior = delta_text(events[: index + 1])
        if event["event"] in TERMINAL_EVENTS:
            assert resumed == [], "resuming after the terminal event closes at once"
            continue
        assert prior + delta_text(resumed) == run["output"], (event["id"], resumed)
        assert all(seq_of(e) > seq_of(event) for e in resumed)
        after_usage = "run.usage" in [e["event"] for e in events[: index + 1]]
        assert_well_formed(resumed, run, first=None, prior=prior, usage=not after_usage)
        assert [e["event"] for e in resumed] == [e["event"] for e in events[index + 1 :]]


async def test_resume_after_the_live_stream_expired_comes_from_the_database(client, app, ws):
    run_id, run, events = await _finished_run(client, app, ws)
    await app.state.run_backends.events.close(run_id, ttl_seconds=0)
    assert await app.state.run_backends.events.read(run_id, 0) == []

    # From the start: the whole output, the usage, the terminal event.
    fresh = await events_of(client, ws, run_id)
    assert delta_text(fresh) == run["output"]
    assert [e["event"] for e in fresh][-2:] == ["run.usage", "run.completed"]
    assert fresh[-1]["data"] == run

    for index, event in enumerate(events):
        if event["event"] in TERMINAL_EVENTS:
            assert await events_of(client, ws, run_id, event["id"]) == []
            continue
        resumed = await events_of(client, ws, run_id, event["id"])
        prior = delta_text(events[: index + 1])
        assert prior + delta_text(resumed) == run["output"], (event["id"], resumed)
        names = [e["event"] for e in resumed]
        assert names[-1] == "run.completed" and names.count("run.completed") == 1
        assert resumed[-1]["data"] == run
        if event["event"] != "run.usage":
            assert names[-2] == "run.usage", names
            assert resumed[-2]["data"] == {"input_tokens": 40, "output_tokens": 40}


async def test_resume_after_usage_on_an_expired_stream_gives_only_the_terminal_event(client, app, ws):
    run_id, _run, events = await _finished_run(client, app, ws)
    await app.state.run_backends.events.close(run_id, ttl_seconds=0)
    usage = next(e for e in events if e["event"] == "run.usage")
    resumed = await events_of(client, ws, run_id, usage["id"])
    assert [e["event"] for e in resumed] == ["run.completed"]


async def test_resumed_stream_from_the_database_has_strictly_increasing_ids(client, app, ws):
    run_id, _run, events = await _finished_run(client, app, ws)
    await app.state.run_backends.events.close(run_id, ttl_seconds=0)
    first_delta = next(e for e in events if e["event"] == "run.delta")
    resumed = await events_of(client, ws, run_id, first_delta["id"])
    seqs = [seq_of(e) for e in resumed]
    assert seqs == sorted(set(seqs)), seqs


@pytest.mark.parametrize("bad", ["abc", "1-x", "-3", "1-2-3", "4--1"])
async def test_malformed_last_event_id_is_422(client, app, ws, bad):
    pid = await new_prompt(client, ws)
    run_id = await start(client, ws, pid, {"words": "x"})
    url = f"/workspaces/{ws}/runs/{run_id}/events"
    assert_problem(await client.get(url, headers={"Last-Event-ID": bad}), 422)
    assert_problem(await client.get(url, params={"last_event_id": bad}), 422)


async def test_events_answer_404_to_strangers_and_work_with_cookie_or_api_key(client, app, make_client, owner, ws):
    run_id, run, events = await _finished_run(client, app, ws)
    stranger = await signup(make_client())
    theirs = await create_workspace(stranger, "Elsewhere")
    assert_problem(await stranger.client.get(f"/workspaces/{ws}/runs/{run_id}/events"), 404)
    assert_problem(await stranger.client.get(f"/workspaces/{theirs}/runs/{run_id}/events"), 404)
    assert_problem(await stranger.client.get(f"/workspaces/{theirs}/runs/{run_id}"), 404)
    assert_problem(await client.get(f"/workspaces/{ws}/runs/{uuid.uuid4()}/events"), 404)

    # Cookie (an EventSource sends the session cookie and can only pass the id in the query).
    assert client.cookies.get("csrf_token")
    middle = next(e for e in events if e["event"] == "run.delta")
    resumed = await events_of(client, ws, run_id, middle["id"], query=True)
    assert middle["data"]["text"] + delta_text(resumed) == run["output"]

    key = await create_api_key(owner, ws)
    bearer = make_client(csrf=False)
    bearer.headers["Authorization"] = f"Bearer {key['key']}"
    by_key = await events_of(bearer, ws, run_id)
    assert by_key == events
    unauthenticated = make_client(csrf=False)
    assert_problem(await unauthenticated.get(f"/workspaces/{ws}/runs/{run_id}/events"), 401)


# --- live streams over a real server -----------------------------------------------------------------


@contextlib.asynccontextmanager
async def live_server(app) -> AsyncIterator[str]:
    """The app under uvicorn on a free loopback port, as a task in this test's event loop."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=1,
        http="h11",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert not task.done(), "uvicorn stopped at start-up"
            assert time.monotonic() < deadline, "uvicorn did not start"
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


async def read_until_end(client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None) -> list[dict]:
    events = []
    async with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        async for event in sse_events(response):
            events.append(event)
            if event["event"] in TERMINAL_EVENTS:
                break
    return events


@contextlib.asynccontextmanager
async def api_client(base: str, key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=httpx.Timeout(15.0)
    ) as http:
        yield http


async def test_two_live_readers_both_get_the_whole_text(client, app, owner, ws):
    use_mock_timing(app, ttft_ms=5, token_ms=15)
    key = (await create_api_key(owner, ws))["key"]
    pid = await new_prompt(client, ws, "{{words}}")
    async with live_server(app) as base, api_client(base, key) as http, RunningWorker(app):
        accepted = (
            await http.post(f"/workspaces/{ws}/runs", json={"prompt_id": pid, "variables": {"words": LONG_WORDS}})
        ).json()
        url = f"/workspaces/{ws}/runs/{accepted['id']}/events"
        first, second = await asyncio.gather(read_until_end(http, url), read_until_end(http, url))
        run = await wait_for(client, ws, accepted["id"])
    assert run["status"] == "succeeded" and run["output"] == mock_output(LONG_WORDS)
    for events in (first, second):
        assert_well_formed(events, run)
        assert sum(e["event"] == "run.delta" for e in events) >= 2


async def start_and_leave_after_two_deltas(http, ws: str, pid: str) -> tuple[dict[str, Any], str, list[dict[str, Any]]]:
    """Starts a long run and reads its stream until two deltas arrived, then closes the connection."""
    body = {"prompt_id": pid, "variables": {"words": LONG_WORDS}}
    accepted = (await http.post(f"/workspaces/{ws}/runs", json=body)).json()
    url = f"/workspaces/{ws}/runs/{accepted['id']}/events"
    before: list[dict[str, Any]] = []
    async with http.stream("GET", url) as response:
        async for event in sse_events(response):
            before.append(event)
            if sum(e["event"] == "run.delta" for e in before) >= 2:
                break  # leaving the block closes the connection mid-stream
    return accepted, url, before


async def test_a_live_reader_that_reconnects_with_its_last_id_gets_exactly_the_rest(client, app, owner, ws):
    use_mock_timing(app, ttft_ms=5, token_ms=20)
    key = (await create_api_key(owner, ws))["key"]
    pid = await new_prompt(client, ws, "{{words}}")
    async with live_server(app) as base, api_client(base, key) as http, RunningWorker(app):
        accepted, url, before = await start_and_leave_after_two_deltas(http, ws, pid)
        assert (await get_run(client, ws, accepted["id"]))["status"] == "running"
        await asyncio.sleep(0.1)  # the run goes on without a reader
        after = await read_until_end(http, url, headers={"Last-Event-ID": before[-1]["id"]})
        run = await wait_for(client, ws, accepted["id"])
    assert run["status"] == "succeeded"
    prior = delta_text(before)
    assert prior and len(prior) < len(run["output"])
    assert prior + delta_text(after) == run["output"] == mock_output(LONG_WORDS)
    assert all(seq_of(e) > seq_of(before[-1]) for e in after)
    assert_well_formed(after, run, first=None, prior=prior)


async def test_closing_the_connection_does_not_cancel_the_run(client, app, owner, ws):
    use_mock_timing(app, ttft_ms=5, token_ms=15)
    key = (await create_api_key(owner, ws))["key"]
    pid = await new_prompt(client, ws, "{{words}}")
    async with live_server(app) as base, api_client(base, key) as http, RunningWorker(app):
        accepted = (
            await http.post(f"/workspaces/{ws}/runs", json={"prompt_id": pid, "variables": {"words": LONG_WORDS}})
        ).json()
        async with http.stream("GET", f"/workspaces/{ws}/runs/{accepted['id']}/events") as response:
            async for event in sse_events(response):
                if event["event"] == "run.delta":
                    break
        run = await wait_for(client, ws, accepted["id"])
    assert run["status"] == "succeeded"
    assert run["output"] == mock_output(LONG_WORDS) and run["stop_reason"] == "end_turn"


# --- cancellation ------------------------------------------------------------------------------------


async def test_cancelling_a_running_run_keeps_partial_output_and_bills_it(client, app, ws):
    use_mock_timing(app, ttft_ms=5, token_ms=50)
    words = " ".join(chr(ord("a") + i % 26) for i in range(80))  # one-letter words: 1 token each, 4 s in all
    full = mock_output(words)
    pid = await new_prompt(client, ws, "{{words}}")
    async with RunningWorker(app):
        run_id = await start(client, ws, pid, {"words": words})
        deadline = time.monotonic() + 5
        while len((await get_run(client, ws, run_id))["output"]) < 2:
            assert time.monotonic() < deadline, "no token streamed"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.25)
        asked = time.monotonic()
        response = await client.post(f"/workspaces/{ws}/runs/{run_id}/cancel")
        assert response.status_code == 202, response.text
        assert response.json()["id"] == run_id
        run = await wait_for(client, ws, run_id, timeout=5)
        took = time.monotonic() - asked
        events = await events_of(client, ws, run_id)
    assert run["status"] == "cancelled"
    assert took < 1.0, f"cancelled after {took:.2f}s"
    output = run["output"]
    assert output and len(output) < len(full) and full.startswith(output), output
    usage = run["usage"]
    assert usage["estimated"] is True
    assert usage["input_tokens"] == 80
    assert usage["output_tokens"] == len(output.split())
    assert Decimal(run["cost_usd"]) > 0
    assert run["cost_usd"] == usd(usage["input_tokens"], usage["output_tokens"])
    assert events[-1]["event"] == "run.cancelled" and events[-1]["data"] == run
    assert delta_text(events) == output
    # Nothing streams after the cancel: the output stays as it is.
    await asyncio.sleep(0.2)
    assert (await get_run(client, ws, run_id))["output"] == output


async def test_cancelling_a_queued_run_is_immediate(client, app, ws):
    pid = await new_prompt(client, ws)
    run_id = await start(client, ws, pid, {"words": "never runs"})
    response = await client.post(f"/workspaces/{ws}/runs/{run_id}/cancel")
    assert response.status_code == 202, response.text
    run = await get_run(client, ws, run_id)
    assert run["status"] == "cancelled" and run["output"] == ""
    assert run["finished_at"] is not None
    events = await events_of(client, ws, run_id)
    assert [e["event"] for e in events] == ["run.queued", "run.cancelled"]
    assert events[-1]["data"] == run
    # A worker arriving later does not run it.
    async with RunningWorker(app):
        await asyncio.sleep(0.2)
    assert (await get_run(client, ws, run_id))["status"] == "cancelled"


async def test_cancel_of_a_finished_run_is_409_and_needs_an_editor(client, app, make_client, owner, ws):
    pid = await new_prompt(client, ws)
    async with RunningWorker(app):
        done = await start(client, ws, pid, {"words": "done"})
        await wait_for(client, ws, done)
    assert_problem(await client.post(f"/workspaces/{ws}/runs/{done}/cancel"), 409)
    queued = await start(client, ws, pid, {"words": "waiting"})
    viewer = await member(make_client, owner, ws, "viewer")
    assert_problem(await viewer.client.post(f"/workspaces/{ws}/runs/{queued}/cancel"), 403)
    assert (await get_run(client, ws, queued))["status"] == "queued"
    assert_problem(await client.post(f"/workspaces/{ws}/runs/{uuid.uuid4()}/cancel"), 404)


# --- rerun and delete ----------------------------------------------------------------------------------


async def test_rerun_reissues_the_same_snapshot(client, app, ws):
    pid = await new_prompt(client, ws, "Repeat {{words}}", system="Sys {{words}}")
    async with RunningWorker(app):
        original_id = await start(client, ws, pid, {"words": "same again"}, overrides={"temperature": 0})
        original = await wait_for(client, ws, original_id)
        # A newer version does not change what a rerun sends.
        await new_version(client, ws, pid, "Changed {{words}}")
        response = await client.post(f"/workspaces/{ws}/runs/{original_id}/rerun")
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "queued" and response.json()["id"] != original_id
        rerun = await wait_for(client, ws, response.json()["id"])
    assert rerun["rerun_of"] == original_id
    assert rerun["snapshot"] == original["snapshot"]
    assert rerun["version_id"] == original["version_id"] and rerun["version"] == 1
    assert rerun["output"] == original["output"] == "Repeat same again "
    assert rerun["usage"] == original["usage"] and rerun["cost_usd"] == original["cost_usd"]


async def test_delete_by_author_or_admin_and_not_by_another_editor(client, app, make_client, owner, ws):
    editor = await member(make_client, owner, ws, "editor")
    other = await member(make_client, owner, ws, "editor")
    admin = await member(make_client, owner, ws, "admin")
    pid = await new_prompt(client, ws)
    mine = await start(editor.client, ws, pid, {"words": "mine"})
    theirs = await start(editor.client, ws, pid, {"words": "theirs"})

    assert_problem(await other.client.delete(f"/workspaces/{ws}/runs/{mine}"), 403)
    assert (await get_run(client, ws, mine))["status"] == "queued"
    # An unfinished run is cancelled (and settled) before it can be deleted.
    assert_problem(await editor.client.delete(f"/workspaces/{ws}/runs/{mine}"), 409)
    for run_id in (mine, theirs):
        assert (await editor.client.post(f"/workspaces/{ws}/runs/{run_id}/cancel")).status_code == 202

    assert (await editor.client.delete(f"/workspaces/{ws}/runs/{mine}")).status_code == 204
    assert (await admin.client.delete(f"/workspaces/{ws}/runs/{theirs}")).status_code == 204
    for run_id in (mine, theirs):
        assert_problem(await client.get(f"/workspaces/{ws}/runs/{run_id}"), 404)
        assert_problem(await client.get(f"/workspaces/{ws}/runs/{run_id}/events"), 404)
        assert_problem(await client.delete(f"/workspaces/{ws}/runs/{run_id}"), 404)
    assert (await client.get(f"/workspaces/{ws}/runs")).json()["items"] == []

    log = (await client.get(f"/workspaces/{ws}/audit-log", params={"limit": 200})).json()["items"]
    deleted = [e for e in log if e["action"] == "run.deleted"]
    by_target = {e["target"]["id"]: e for e in deleted}
    assert len(deleted) == 2 and set(by_target) == {mine, theirs}
    assert all(e["target"]["type"] == "run" for e in deleted)
    assert by_target[mine]["actor"]["user_id"] == editor.id
    assert by_target[theirs]["actor"]["user_id"] == admin.id


# --- Anthropic through a loopback fake ----------------------------------------------------------------

ANTHROPIC_KEY = "sk-ant-workspace-key-0123456789"
HAIKU = {"provider": "anthropic", "model": "claude-haiku-4-5", "max_tokens": 300}


@pytest.fixture(scope="module")
def anthropic_server() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic()
    with run_fake(fake):
        yield fake


@pytest.fixture
async def anthropic_ws(client, app, ws, anthropic_server) -> str:
    anthropic_server.reset()
    app.state.settings.provider_hosts = "127.0.0.1"
    response = await client.put(
        f"/workspaces/{ws}/providers/anthropic", json={"api_key": ANTHROPIC_KEY, "base_url": anthropic_server.base_url}
    )
    assert response.status_code == 200, response.text
    return ws


async def test_anthropic_run_streams_the_fake_with_its_usage_and_the_haiku_price(
    client, app, anthropic_ws, anthropic_server
):
    ws = anthropic_ws
    pid = await new_prompt(client, ws, "Summarize: {{text}}", system="You are {{persona}}.", config=HAIKU)
    async with RunningWorker(app):
        run_id = await start(client, ws, pid, {"persona": "terse", "text": "a long story"})
        run = await wait_for(client, ws, run_id)
        events = await events_of(client, ws, run_id)
    assert run["status"] == "succeeded", run["error"]
    assert run["output"] == "Hello from the fake"
    assert run["stop_reason"] == "end_turn"
    assert run["usage"] == {"input_tokens": 12, "output_tokens": 4, "estimated": False}
    price = price_for("anthropic", "claude-haiku-4-5")
    assert run["snapshot"]["price"] == price
    assert run["cost_usd"] == usd(12, 4, (int(price["input_per_mtok"]), int(price["output_per_mtok"])))
    assert run["cost_usd"] == "0.000032"
    assert_well_formed(events, run)

    assert len(anthropic_server.exchanges) == 1
    exchange = anthropic_server.last
    assert exchange.path == "/v1/messages"
    sent_key = exchange.headers.get("x-api-key") or exchange.headers.get("authorization", "").removeprefix("Bearer ")
    assert sent_key == ANTHROPIC_KEY  # SDK 2.x sends it as a bearer token, earlier ones as x-api-key
    assert exchange.body["model"] == "claude-haiku-4-5"
    assert exchange.body["max_tokens"] == 300
    assert exchange.body["system"] == "You are terse."
    assert exchange.body["messages"] == [{"role": "user", "content": "Summarize: a long story"}]
    assert exchange.body["stream"] is True


async def test_anthropic_529_before_the_first_token_is_retried(client, app, anthropic_ws, anthropic_server):
    ws = anthropic_ws
    anthropic_server.reset(AnthropicScript(fail_first=1, failure=529, words=["Second", "time", "lucky"]))
    pid = await new_prompt(client, ws, config=HAIKU)
    async with RunningWorker(app):
        run_id = await start(client, ws, pid, {"words": "hello"})
        run = await wait_for(client, ws, run_id)
    assert run["status"] == "succeeded", run["error"]
    assert run["output"] == "Second time lucky"
    assert [e.status for e in anthropic_server.exchanges] == [529, 200]
    assert run["usage"] == {"input_tokens": 12, "output_tokens": 3, "estimated": False}


async def test_anthropic_error_mid_stream_fails_with_partial_output(client, app, anthropic_ws, anthropic_server):
    ws = anthropic_ws
    anthropic_server.reset(AnthropicScript(words=["one", "two", "three", "four"], error_after=2))
    pid = await new_prompt(client, ws, config=HAIKU)
    async with RunningWorker(app):
        run_id = await start(client, ws, pid, {"words": "hello"})
        run = await wait_for(client, ws, run_id)
        events = await events_of(client, ws, run_id)
    assert run["status"] == "failed"
    assert run["error"] is not None and run["error"]["kind"]
    assert run["output"] == "one two"
    assert len(anthropic_server.exchanges) == 1, "no retry once text has streamed"
    assert run["usage"]["input_tokens"] == 12 and run["usage"]["output_tokens"] >= 2
    assert Decimal(run["cost_usd"]) > 0
    assert delta_text(events) == "one two" and events[-1]["event"] == "run.failed"


# --- the reconciler: lost workers and lost queue entries ----------------------------------------------


async def _claim_as_dead_worker(app, run_id: str, lease: timedelta):
    async with app.state.sessionmaker() as session, session.begin():
        run = await repo.claim(session, uuid.UUID(run_id), "dead-worker", lease)
    assert run is not None
    return run


async def test_a_busy_run_row_never_holds_up_the_progress_saves_and_is_not_mistaken_for_a_lost_lease(
    client, app, ws, db_engine
):
    pid = await new_prompt(client, ws, "{{words}}")
    busy_id = await start(client, ws, pid, {"words": "busy row"})
    free_id = await start(client, ws, pid, {"words": "free row"})
    worker = reconciler(app, worker_id="dead-worker")
    busy = InFlight(run=await _claim_as_dead_worker(app, busy_id, timedelta(seconds=30)), output=["busy "])
    free = InFlight(run=await _claim_as_dead_worker(app, free_id, timedelta(seconds=30)), output=["free "])
    async with db_engine.connect() as other:
        transaction = await other.begin()
        # Another transaction holds the busy run's row (as a settlement or a cancel request would).
        await other.execute(text("SELECT 1 FROM run WHERE id = :id FOR UPDATE"), {"id": busy_id})
        saved = await asyncio.wait_for(asyncio.gather(worker._persist(busy), worker._persist(free)), 5)
        await transaction.rollback()
    assert saved == [False, True]  # skipped, not waited for
    assert not busy.lease_lost and not busy.cancel.is_set()
    assert await worker._persist(busy) is True  # saved once the row is free
    async with db_engine.connect() as conn:
        chars = dict((await conn.execute(text("SELECT id::text, output_chars FROM run"))).all())
    assert chars == {busy_id: len("busy "), free_id: len("free ")}


async def test_a_run_whose_worker_died_before_any_token_is_retried(client, app, ws):
    pid = await new_prompt(client, ws, "{{words}}")
    run_id = await start(client, ws, pid, {"words": "back from the dead"})
    await _claim_as_dead_worker(app, run_id, timedelta(milliseconds=50))
    assert (await get_run(client, ws, run_id))["status"] == "running"
    await asyncio.sleep(0.1)  # the lease expires; the dead worker never renews it

    assert await reconciler(app).reconcile_once() == {"retried": 1, "failed": 0, "republished": 0}
    assert (await get_run(client, ws, run_id))["status"] == "queued"
    async with RunningWorker(app):
        run = await wait_for(client, ws, run_id)
        events = await events_of(client, ws, run_id)
    assert run["status"] == "succeeded"
    assert run["output"] == "back from the dead "
    started = [e for e in events if e["event"] == "run.started"]
    assert len(started) == 1 and started[0]["data"]["attempt"] == 2
    assert_well_formed(events, run)


async def test_a_run_whose_worker_died_mid_stream_fails_as_worker_lost_with_its_output(client, app, ws):
    pid = await new_prompt(client, ws, "{{words}}")
    run_id = await start(client, ws, pid, {"words": "alpha beta gamma delta"})
    claimed = await _claim_as_dead_worker(app, run_id, timedelta(seconds=30))
    dead = reconciler(app, worker_id="dead-worker", lease_seconds=0.05)
    await dead._persist(InFlight(run=claimed, output=["alpha ", "beta "]))
    await asyncio.sleep(0.1)

    assert await reconciler(app).reconcile_once() == {"retried": 0, "failed": 1, "republished": 0}
    run = await get_run(client, ws, run_id)
    assert run["status"] == "failed"
    assert run["error"]["kind"] == "worker_lost"
    assert run["output"] == "alpha beta "
    assert run["usage"]["estimated"] is True
    events = await events_of(client, ws, run_id)
    assert delta_text(events) == "alpha beta "
    assert events[-1]["event"] == "run.failed" and events[-1]["data"] == run
    # It stays failed: a worker arriving later does not run it again.
    async with RunningWorker(app):
        await asyncio.sleep(0.2)
    assert (await get_run(client, ws, run_id))["status"] == "failed"


async def test_worker_lost_keeps_the_longest_output_the_live_stream_saw(client, app, ws):
    pid = await new_prompt(client, ws, "{{words}}")
    run_id = await start(client, ws, pid, {"words": "alpha beta gamma delta"})
    claimed = await _claim_as_dead_worker(app, run_id, timedelta(seconds=30))
    dead = reconciler(app, worker_id="dead-worker", lease_seconds=0.05)
    flight = InFlight(run=claimed, output=["alpha ", "beta "])
    await dead._emit(flight, "run.delta", {"text": "alpha beta ", "offset": 11})
    await dead._persist(flight)
    await dead._emit(flight, "run.delta", {"text": "gamma ", "offset": 17})  # streamed, never saved
    await asyncio.sleep(0.1)

    assert (await reconciler(app).reconcile_once())["failed"] == 1
    run = await get_run(client, ws, run_id)
    assert run["status"] == "failed" and run["error"]["kind"] == "worker_lost"
    assert run["output"] == "alpha beta gamma "
    events = await events_of(client, ws, run_id)
    assert delta_text(events) == run["output"] and events[-1]["event"] == "run.failed"


async def test_queued_runs_the_queue_lost_are_published_again(client, app, ws, db_engine, settings):
    pid = await new_prompt(client, ws, "{{words}}")
    lost = await start(client, ws, pid, {"words": "lost in redis"})
    recent = await start(client, ws, pid, {"words": "just dispatched"})
    waiting = await start(client, ws, pid, {"words": "behind a cap"})
    await app.state.redis.delete(f"{settings.redis_prefix}runs:queue")  # Redis lost the queue
    async with db_engine.begin() as conn:
        await conn.execute(
            text("UPDATE run SET dispatched_at = now() - interval '60 seconds' WHERE id = :id"), {"id": lost}
        )
        await conn.execute(
            text("UPDATE run SET dispatched_at = NULL, created_at = now() - interval '60 seconds' WHERE id = :id"),
            {"id": waiting},
        )

    # The cap is full with the two dispatched runs, so the third really is waiting its turn.
    assert (await client.put(f"/workspaces/{ws}/limits", json={"max_concurrent_runs": 2})).status_code == 200
    assert await reconciler(app).reconcile_once() == {"retried": 0, "failed": 0, "republished": 1}
    async with db_engine.connect() as conn:
        still_waiting = (
            await conn.execute(text("SELECT dispatched_at IS NULL FROM run WHERE id = :id"), {"id": waiting})
        ).scalar_one()
    assert still_waiting, "a run waiting behind its workspace's cap must not be published"
    async with RunningWorker(app):
        run = await wait_for(client, ws, lost)
        await asyncio.sleep(0.2)
    assert run["status"] == "succeeded" and run["output"] == "lost in redis "
    assert (await get_run(client, ws, recent))["status"] == "queued"


# --- encryption ----------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump not installed")
async def test_pg_dump_holds_no_output_or_variable_text(client, app, ws, database_url):
    canary = uuid.uuid4().hex
    pid = await new_prompt(client, ws, "Echo {{secret}}")
    async with RunningWorker(app):
        run_id = await start(client, ws, pid, {"secret": f"variable-{canary} output-{canary[::-1]}"})
        run = await wait_for(client, ws, run_id)
    assert run["status"] == "succeeded" and canary in run["output"] and canary[::-1] in run["output"]
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    dump = await asyncio.to_thread(
        subprocess.run, ["pg_dump", "--data-only", dsn], capture_output=True, check=True, timeout=60
    )
    assert run_id.encode() in dump.stdout, "the dump holds the run row"
    for secret in (canary, canary[::-1]):
        assert secret.encode() not in dump.stdout
        assert secret.encode("utf-16-le") not in dump.stdout


async def test_redis_holds_no_run_text_in_the_clear(client, app, ws, settings):
    canary = uuid.uuid4().hex
    pid = await new_prompt(client, ws, "Echo {{secret}}", system="System {{secret}}")
    async with RunningWorker(app):
        run_id = await start(client, ws, pid, {"secret": f"canary-{canary}"})
        run = await wait_for(client, ws, run_id)
    assert canary in run["output"]
    entries = await app.state.redis.xrange(f"{settings.redis_prefix}run:{run_id}:events")
    assert len(entries) >= 5, entries
    raw = b"".join(
        (k if isinstance(k, bytes) else str(k).encode()) + (v if isinstance(v, bytes) else str(v).encode())
        for _, fields in entries
        for k, v in fields.items()
    )
    assert b"run.delta" in raw  # event names are metadata; their payloads are sealed
    assert canary.encode() not in raw and b"Echo" not in raw and b"System" not in raw
    # Nothing else under the test's prefix holds it either.
    async for key in app.state.redis.scan_iter(match=f"{settings.redis_prefix}*"):
        kind = (await app.state.redis.type(key)).decode()
        if kind == "stream":
            for _, fields in await app.state.redis.xrange(key):
                assert all(
                    canary.encode() not in bytes(v if isinstance(v, bytes) else str(v).encode())
                    for v in fields.values()
                )
        elif kind == "string":
            assert canary.encode() not in (await app.state.redis.get(key) or b"")


# --- more of the contract: estimate, roles, cancel edge cases, Redis lost mid-run ------------------------


async def test_estimate_is_exact_for_mock_and_writes_nothing(client, ws, db_engine):
    pid = await new_prompt(client, ws, None)
    draft = {"system": "Two words", "messages": [{"role": "user", "content": "Echo {{w}}"}], "model_config": MOCK}
    response = await client.post(
        f"/workspaces/{ws}/runs/estimate",
        json={"prompt_id": pid, "draft": draft, "variables": {"w": "a b c"}, "overrides": {"max_tokens": 1000}},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"input_tokens": 6, "max_output_tokens": 1000, "max_cost_usd": usd(6, 1000)}
    assert await count_rows(db_engine) == 0
    assert await count_rows(db_engine, "prompt_version") == 0


async def test_a_viewer_cannot_start_a_run(client, make_client, owner, ws, db_engine):
    pid = await new_prompt(client, ws)
    viewer = await member(make_client, owner, ws, "viewer")
    response = await viewer.client.post(f"/workspaces/{ws}/runs", json={"prompt_id": pid, "variables": {"words": "x"}})
    assert_problem(response, 403)
    assert await count_rows(db_engine) == 0
    # A viewer reads runs, though.
    run_id = await start(client, ws, pid, {"words": "x"})
    assert (await viewer.client.get(f"/workspaces/{ws}/runs/{run_id}")).status_code == 200
    assert (await viewer.client.get(f"/workspaces/{ws}/runs")).json()["items"][0]["id"] == run_id


async def test_cancel_before_the_first_token(client, app, ws):
    use_mock_timing(app, ttft_ms=3000, token_ms=5)
    pid = await new_prompt(client, ws, "{{words}}")
    async with RunningWorker(app):
        run_id = await start(client, ws, pid, {"words": "slow to start"})
        await wait_for(client, ws, run_id, statuses={"running"})
        await asyncio.sleep(0.1)
        asked = time.monotonic()
        assert (await client.post(f"/workspaces/{ws}/runs/{run_id}/cancel")).status_code == 202
        run = await wait_for(client, ws, run_id, timeout=5)
        took = time.monotonic() - asked
        events = await events_of(client, ws, run_id)
    assert run["status"] == "cancelled" and took < 1.0, (run["status"], took)
    assert run["output"] == ""
    assert run["usage"]["output_tokens"] == 0 and run["usage"]["estimated"] is True
    assert run["cost_usd"] == usd(run["usage"]["input_tokens"], 0)
    assert events[-1]["event"] == "run.cancelled" and delta_text(events) == ""


async def test_a_lost_cancel_signal_still_cancels_through_the_durable_flag(client, app, ws, db_engine):
    use_mock_timing(app, ttft_ms=5, token_ms=50)
    words = " ".join(chr(ord("a") + i % 26) for i in range(80))
    pid = await new_prompt(client, ws, "{{words}}")
    async with RunningWorker(app):
        run_id = await start(client, ws, pid, {"words": words})
        deadline = time.monotonic() + 5
        while not (await get_run(client, ws, run_id))["output"]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        asked = time.monotonic()
        async with db_engine.begin() as conn:  # the flag, without the signal
            await conn.execute(text("UPDATE run SET cancel_requested_at = now() WHERE id = :id"), {"id": run_id})
        run = await wait_for(client, ws, run_id, timeout=5)
        took = time.monotonic() - asked
    assert run["status"] == "cancelled"
    assert took < 2.0, f"the durable flag took {took:.2f}s"
    assert run["output"] and mock_output(words).startswith(run["output"])


async def test_a_reader_resumes_exactly_after_redis_lost_the_live_stream_mid_run(client, app, owner, ws, settings):
    use_mock_timing(app, ttft_ms=5, token_ms=20)
    key = (await create_api_key(owner, ws))["key"]
    pid = await new_prompt(client, ws, "{{words}}")
    async with live_server(app) as base, api_client(base, key) as http, RunningWorker(app):
        accepted, url, before = await start_and_leave_after_two_deltas(http, ws, pid)
        await asyncio.sleep(0.1)
        await app.state.redis.delete(f"{settings.redis_prefix}run:{accepted['id']}:events")  # Redis lost it
        after = await read_until_end(http, url, headers={"Last-Event-ID": before[-1]["id"]})
        run = await wait_for(client, ws, accepted["id"])
    assert run["status"] == "succeeded" and run["output"] == mock_output(LONG_WORDS)
    prior = delta_text(before)
    assert prior + delta_text(after) == run["output"]
    assert after[-1]["event"] == "run.completed" and after[-1]["data"] == run
    assert [e["event"] for e in after].count("run.completed") == 1
