"""Prometheus metrics: the api's /metrics (runs created and refused, streams, queue) and the worker's
(runs finished, TTFT and duration, provider errors, runs in flight), optionally behind a bearer token; the
worker's /healthz on the same port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import MASTER_KEY, REDIS_URL
from tests.factories import assert_problem, create_workspace, signup
from tests.processes import free_port
from tests.runs_helpers import RunningWorker
from tests.test_runs import events_of, wait_for

METRICS = "http://testserver/metrics"


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"mock_ttft_ms": 5, "mock_token_ms": 2})


def value(text: str, name: str, **labels: str) -> float:
    """One sample of the exposition text (0 when absent, as for a counter never incremented)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        match = re.fullmatch(r"([a-zA-Z_:]+)(?:\{(.*)\})? (\S+)", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    return 0.0


async def test_api_metrics_count_runs_refusals_streams_and_worker_figures(client, app):
    owner = await signup(client)
    ws = await create_workspace(owner)
    pid = (await client.post(f"/workspaces/{ws}/prompts", json={"name": "m"})).json()["id"]
    body = {"messages": [{"role": "user", "content": "{{w}}"}], "model_config": {"provider": "mock",
            "model": "mock-1", "max_tokens": 64}}
    assert (await client.post(f"/workspaces/{ws}/prompts/{pid}/versions", json=body)).status_code == 201
    before = (await client.get(METRICS)).text
    run = await client.post(f"/workspaces/{ws}/runs", json={"prompt_id": pid, "variables": {"w": "one two"}})
    run_id = run.json()["id"]
    async with RunningWorker(app):
        await wait_for(client, ws, run_id)
    await events_of(client, ws, run_id)
    await client.put(f"/workspaces/{ws}/limits", json={"monthly_budget_usd": "0.000001"})
    refused = await client.post(f"/workspaces/{ws}/runs", json={"prompt_id": pid, "variables": {"w": "x"}})
    assert refused.status_code == 402
    response = await client.get(METRICS)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    after = response.text
    mock = {"provider": "mock", "model": "mock-1"}

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("playground_runs_created_total", **mock) == 1
    assert delta("playground_refusals_total", reason="budget") == 1
    assert delta("playground_runs_finished_total", status="succeeded", **mock) == 1
    assert delta("playground_run_ttft_seconds_count", **mock) == 1
    assert delta("playground_run_duration_seconds_count", **mock) == 1
    assert value(after, "playground_sse_streams") == value(before, "playground_sse_streams")  # closed again
    assert value(after, "playground_queue_depth") == 0 and "playground_runs_waiting" in after
    assert "process_cpu_seconds_total" in after
    assert ws not in after and run_id not in after  # no workspace or run ever becomes a label


async def test_metrics_can_require_a_bearer_token(make_client, app):
    app.state.settings = app.state.settings.model_copy(update={"metrics_token": "scrape-me"})
    client = make_client()
    assert_problem(await client.get(METRICS), 401)
    assert_problem(await client.get(METRICS, headers={"Authorization": "Bearer wrong"}), 401)
    assert (await client.get(METRICS, headers={"Authorization": "Bearer scrape-me"})).status_code == 200


@pytest.mark.slow
def test_the_worker_serves_its_own_metrics_on_its_port(database_url, redis_prefix, db_engine):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYGROUND_")}
    env.update(
        PLAYGROUND_DATABASE_URL=database_url,
        PLAYGROUND_REDIS_URL=REDIS_URL,
        PLAYGROUND_REDIS_PREFIX=redis_prefix,
        PLAYGROUND_MASTER_KEY=MASTER_KEY,
        PLAYGROUND_WORKER_METRICS_PORT=str(port),
        PLAYGROUND_METRICS_TOKEN="worker-token",
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "worker", "--concurrency", "4"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                token = {"Authorization": "Bearer worker-token"}
                response = httpx.get(f"http://127.0.0.1:{port}/metrics", headers=token)
                break
            except httpx.TransportError:
                assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
                assert time.monotonic() < deadline, "the worker's metrics port never opened"
                time.sleep(0.2)
        assert response.status_code == 200
        assert "playground_worker_runs_in_flight 0.0" in response.text
        assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 401
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}  # liveness, no token
        assert httpx.get(f"http://127.0.0.1:{port}/other", headers={"Authorization": "Bearer x"}).status_code == 404
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
