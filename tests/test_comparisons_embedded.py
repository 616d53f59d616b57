"""A grid in the `playground up` shape (no Redis: in-process queue, event streams and limiter): created, run by
the in-process worker, streamed on one connection with every run's text complete, resumed per cell."""

from __future__ import annotations

import asyncio

import pytest

from tests.factories import create_workspace, signup
from tests.runs_helpers import RunningWorker, parse_sse
from tests.test_comparison_stream import assert_each_run_complete, grid_prompt, outputs_of, rows


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"redis_url": None, "mock_ttft_ms": 5, "mock_token_ms": 3})


async def test_a_grid_streams_and_resumes_on_the_in_process_backends(client, app):
    assert app.state.redis is None
    ws = await create_workspace(await signup(client))
    pid = await grid_prompt(client, ws)
    body = {"prompt_id": pid, "versions": [1, 2], "rows": rows(2, 10)}
    accepted = (await client.post(f"/workspaces/{ws}/comparisons", json=body)).json()
    url = f"/workspaces/{ws}/comparisons/{accepted['id']}/events"
    async with RunningWorker(app):
        streamed = parse_sse((await client.get(url)).text)  # the whole grid, live, on one connection
        for _ in range(200):
            if (await client.get(f"/workspaces/{ws}/comparisons/{accepted['id']}")).json()["status"] == "completed":
                break
            await asyncio.sleep(0.05)
    outputs = await outputs_of(client, ws, accepted["id"])
    assert len(outputs) == 4
    assert_each_run_complete(streamed, outputs)
    assert streamed[-1]["event"] == "comparison.completed"
    first = {}
    for event in streamed:
        if event["event"] == "run.delta":
            first.setdefault(event["data"]["cell"], event)
    resumed = parse_sse((await client.get(url, params={"positions": ",".join(e["id"] for e in first.values())})).text)
    assert_each_run_complete(resumed, outputs, {e["data"]["run_id"]: e["data"]["text"] for e in first.values()})
