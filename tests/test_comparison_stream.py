"""The grid's one event stream, with a real worker: every cell's run events on one connection (data carrying
run_id), the concatenated deltas of each run equal to its final output, ending with comparison.completed;
resumption after a disconnect (positions) and from the database copy; cookie and Bearer auth."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import defaultdict
from typing import Any

import pytest

from tests.factories import assert_problem, create_api_key, create_workspace, signup
from tests.runs_helpers import RunningWorker, parse_sse
from tests.test_runs import api_client, live_server, sse_events

MOCK = {"provider": "mock", "model": "mock-1", "max_tokens": 256}
TERMINAL = {"run.completed", "run.failed", "run.cancelled"}


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"mock_ttft_ms": 5, "mock_token_ms": 4})


@pytest.fixture
async def owner(client):
    return await signup(client)


@pytest.fixture
async def ws(owner):
    return await create_workspace(owner)


def slow_mock(app, token_ms: int) -> None:
    app.state.settings = app.state.settings.model_copy(update={"mock_ttft_ms": 5, "mock_token_ms": token_ms})


async def grid_prompt(client, ws: str) -> str:
    pid = (await client.post(f"/workspaces/{ws}/prompts", json={"name": f"p-{uuid.uuid4().hex[:8]}"})).json()["id"]
    for user in ("{{a}}", "Again {{a}}"):
        body = {"system": "", "messages": [{"role": "user", "content": user}], "model_config": MOCK}
        assert (await client.post(f"/workspaces/{ws}/prompts/{pid}/versions", json=body)).status_code == 201
    return pid


def rows(n: int = 2, length: int = 30) -> list[dict[str, str]]:
    return [{"a": " ".join(f"r{r}w{i}" for i in range(length))} for r in range(n)]


def by_run(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if event["event"] != "comparison.completed":
            grouped[event["data"]["run_id"]].append(event)
    return grouped


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["data"]["text"] for e in events if e["event"] == "run.delta")


def assert_each_run_complete(
    events: list[dict[str, Any]], outputs: dict[str, str], prior: dict[str, str] | None = None
):
    prior = prior or {}
    grouped = by_run(events)
    assert set(grouped) <= set(outputs)
    for run_id, output in outputs.items():
        own = grouped.get(run_id, [])
        assert prior.get(run_id, "") + text_of(own) == output, run_id
        assert sum(e["event"] in TERMINAL for e in own) == (0 if prior.get(run_id) == output and not own else 1)
        offsets = [e["data"]["offset"] for e in own if e["event"] == "run.delta"]
        assert offsets == sorted(set(offsets))
    assert len({e["id"] for e in events}) == len(events), "ids are unique"


async def outputs_of(client, ws: str, cid: str) -> dict[str, str]:
    grid = (await client.get(f"/workspaces/{ws}/comparisons/{cid}")).json()
    assert grid["status"] == "completed"
    return {c["run_id"]: c["output"] for c in grid["cells"]}


async def read_all(http, url: str, params: dict[str, str] | None = None, headers=None) -> list[dict[str, Any]]:
    events = []
    async with http.stream("GET", url, params=params, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        async for event in sse_events(response):
            events.append(event)
            if event["event"] == "comparison.completed":
                break
    return events


async def test_one_connection_streams_the_whole_grid(client, app, owner, ws):
    slow_mock(app, 12)
    key = (await create_api_key(owner, ws))["key"]
    pid = await grid_prompt(client, ws)
    async with live_server(app) as base, api_client(base, key) as http, RunningWorker(app):
        accepted = (
            await http.post(
                f"/workspaces/{ws}/comparisons", json={"prompt_id": pid, "versions": [1, 2], "rows": rows()}
            )
        ).json()
        events = await read_all(http, accepted["events_url"].removeprefix("/api/v1"))
    outputs = await outputs_of(client, ws, accepted["id"])
    assert len(outputs) == 4 and all(outputs.values())
    assert events[-1]["event"] == "comparison.completed" and events[-1]["id"] == "completed"
    assert events[-1]["data"]["progress"] == {"done": 4, "total": 4}
    assert events[-1]["data"]["totals"]["output_tokens"] > 0
    assert_each_run_complete(events, outputs)
    assert {e["event"] for e in events} >= {"run.queued", "run.started", "run.delta", "run.usage", "run.completed"}
    for event in events[:-1]:
        position, generation, seq_offset = event["id"].split(":")
        assert int(position) == event["data"]["cell"] and generation == "0" and "-" in seq_offset
    # Deltas of different runs interleave on the one connection.
    delta_runs = [e["data"]["run_id"] for e in events if e["event"] == "run.delta"]
    switches = sum(1 for a, b in itertools.pairwise(delta_runs) if a != b)
    assert switches >= 3


async def test_a_reader_that_reconnects_with_its_positions_gets_exactly_the_rest(client, app, owner, ws):
    slow_mock(app, 15)
    key = (await create_api_key(owner, ws))["key"]
    pid = await grid_prompt(client, ws)
    async with live_server(app) as base, api_client(base, key) as http, RunningWorker(app):
        body = {"prompt_id": pid, "versions": [1, 2], "rows": rows(2, 40)}
        accepted = (await http.post(f"/workspaces/{ws}/comparisons", json=body)).json()
        url = accepted["events_url"].removeprefix("/api/v1")
        before: list[dict[str, Any]] = []
        async with http.stream("GET", url) as response:
            async for event in sse_events(response):
                before.append(event)
                if sum(e["event"] == "run.delta" for e in before) >= 6:
                    break  # leave mid-grid
        await asyncio.sleep(0.2)  # the grid goes on without a reader
        last: dict[int, str] = {}
        for event in before:
            last[event["data"]["cell"]] = event["id"]
        after = await read_all(http, url, params={"positions": ",".join(last.values())})
    outputs = await outputs_of(client, ws, accepted["id"])
    prior = {run_id: text_of(events) for run_id, events in by_run(before).items()}
    assert any(prior.values()) and any(len(p) < len(outputs[r]) for r, p in prior.items())
    for run_id, output in outputs.items():
        assert prior.get(run_id, "") + text_of(by_run(after).get(run_id, [])) == output
    # Nothing the reader had is sent again: every resumed cell's events come after its last id.
    for event in after[:-1]:
        cell = event["data"]["cell"]
        if cell in last:
            old = int(last[cell].split(":")[2].split("-")[0])
            assert int(event["id"].split(":")[2].split("-")[0]) > old, (event["id"], last[cell])
    assert after[-1]["event"] == "comparison.completed"


async def test_a_finished_grid_streams_from_the_live_copy_or_the_database_and_resumes_per_cell(
    client, app, make_client, owner, ws
):
    pid = await grid_prompt(client, ws)
    accepted = (
        await client.post(f"/workspaces/{ws}/comparisons", json={"prompt_id": pid, "versions": [1, 2], "rows": rows()})
    ).json()
    url = f"/workspaces/{ws}/comparisons/{accepted['id']}/events"
    async with RunningWorker(app):
        for _ in range(400):
            if (await client.get(f"/workspaces/{ws}/comparisons/{accepted['id']}")).json()["status"] == "completed":
                break
            await asyncio.sleep(0.05)
    outputs = await outputs_of(client, ws, accepted["id"])

    # Cookie auth (an EventSource) on the ASGI client: the buffered stream holds everything.
    whole = parse_sse((await client.get(url)).text)
    assert_each_run_complete(whole, outputs)
    assert whole[-1]["event"] == "comparison.completed"

    # Resuming every cell from one of its middle deltas gives exactly the rest of each.
    middle: dict[int, dict[str, Any]] = {}
    for event in whole:
        if event["event"] == "run.delta" and event["data"]["cell"] not in middle:
            middle[event["data"]["cell"]] = event
    positions = ",".join(e["id"] for e in middle.values())
    resumed = parse_sse((await client.get(url, params={"positions": positions})).text)
    prior = {e["data"]["run_id"]: e["data"]["text"] for e in middle.values()}
    assert_each_run_complete(resumed, outputs, prior)

    # Last-Event-ID of one cell resumes that cell; the others start over (their data carries the offset).
    one = next(iter(middle.values()))
    single = parse_sse((await client.get(url, headers={"Last-Event-ID": one["id"]})).text)
    own = by_run(single)[one["data"]["run_id"]]
    assert one["data"]["text"] + text_of(own) == outputs[one["data"]["run_id"]]

    # After comparison.completed: nothing more.
    assert parse_sse((await client.get(url, headers={"Last-Event-ID": "completed"})).text) == []

    # The live copies gone (expired, or Redis lost them): the same from the database copy.
    for run_id in outputs:
        await app.state.run_backends.events.close(run_id, ttl_seconds=0)
    from_db = parse_sse((await client.get(url)).text)
    assert_each_run_complete(from_db, outputs)
    resumed_db = parse_sse((await client.get(url, params={"positions": positions})).text)
    assert_each_run_complete(resumed_db, outputs, prior)

    # Bearer auth too; strangers and the unauthenticated get nothing.
    bearer = make_client(csrf=False)
    bearer.headers["Authorization"] = f"Bearer {(await create_api_key(owner, ws))['key']}"
    assert_each_run_complete(parse_sse((await bearer.get(url)).text), outputs)
    assert_problem(await make_client(csrf=False).get(url), 401)
    stranger = await signup(make_client())
    assert_problem(await stranger.client.get(url), 404)


@pytest.mark.parametrize("bad", ["abc", "1:0", "1:0:x-1", "-1:0:1-0", "1:0:1-2-3"])
async def test_malformed_positions_are_422(client, ws, bad):
    pid = await grid_prompt(client, ws)
    accepted = (
        await client.post(f"/workspaces/{ws}/comparisons", json={"prompt_id": pid, "versions": [1], "rows": rows(1)})
    ).json()
    url = f"/workspaces/{ws}/comparisons/{accepted['id']}/events"
    assert_problem(await client.get(url, params={"positions": bad}), 422)
    assert_problem(await client.get(url, headers={"Last-Event-ID": bad}), 422)


async def test_a_cell_rerun_while_the_stream_is_open_is_followed_too(client, app, owner, ws):
    slow_mock(app, 6)
    key = (await create_api_key(owner, ws))["key"]
    pid = await grid_prompt(client, ws)
    async with live_server(app) as base, api_client(base, key) as http, RunningWorker(app):
        body = {"prompt_id": pid, "versions": [1], "rows": [rows(1, 5)[0], rows(1, 60)[0]]}
        accepted = (await http.post(f"/workspaces/{ws}/comparisons", json=body)).json()
        url = accepted["events_url"].removeprefix("/api/v1")
        events: list[dict[str, Any]] = []
        first_run = accepted["cells"][0]["run_id"]
        rerun_id = None
        async with http.stream("GET", url) as response:
            async for event in sse_events(response):
                events.append(event)
                if event["event"] == "run.completed" and event["data"]["run_id"] == first_run and rerun_id is None:
                    reply = await http.post(f"/workspaces/{ws}/comparisons/{accepted['id']}/cells/{first_run}/rerun")
                    assert reply.status_code == 202, reply.text
                    rerun_id = reply.json()["run_id"]
                if event["event"] == "comparison.completed":
                    break
    assert rerun_id is not None
    outputs = await outputs_of(client, ws, accepted["id"])
    assert rerun_id in outputs
    rerun_events = by_run(events)[rerun_id]
    assert text_of(rerun_events) == outputs[rerun_id] and rerun_events[-1]["event"] == "run.completed"
    assert all(e["id"].startswith("0:1:") for e in rerun_events)
