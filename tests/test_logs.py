"""Structured logs: JSON lines carrying request, workspace and run ids; never prompt content, outputs or
secrets — checked with canaries pushed through every path that logs (requests, runs, failures, refusals)."""

from __future__ import annotations

import io
import json
import logging

import pytest

from backend.observability.logs import JsonFormatter
from tests.factories import create_api_key, create_workspace, signup
from tests.runs_helpers import RunningWorker
from tests.test_runs import events_of, wait_for

CANARY = "CANARY7f3a9"
PROVIDER_KEY = f"sk-ant-api03-{CANARY}-abcdefghijklmnopqrstuvwxyz0123456789"


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"mock_ttft_ms": 2, "mock_token_ms": 1})


@pytest.fixture
def captured():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)


async def test_no_content_or_secret_reaches_the_logs_and_lines_carry_their_ids(client, make_client, app, captured):
    owner = await signup(client)
    ws = await create_workspace(owner)
    key = (await create_api_key(owner, ws))["key"]
    await client.put(f"/workspaces/{ws}/providers/anthropic", json={"api_key": PROVIDER_KEY})
    pid = (await client.post(f"/workspaces/{ws}/prompts", json={"name": "logged"})).json()["id"]
    version = {
        "system": f"System says {CANARY}-system",
        "messages": [{"role": "user", "content": "{{secret}}"}],
        "model_config": {"provider": "mock", "model": "mock-1", "max_tokens": 64},
    }
    assert (await client.post(f"/workspaces/{ws}/prompts/{pid}/versions", json=version)).status_code == 201
    bearer = make_client(csrf=False)
    bearer.headers["Authorization"] = f"Bearer {key}"
    ok = await bearer.post(f"/workspaces/{ws}/runs", json={"prompt_id": pid, "variables": {"secret": f"{CANARY}-var"}})
    failing = await bearer.post(
        f"/workspaces/{ws}/runs", json={"prompt_id": pid, "variables": {"secret": f"{CANARY} MOCK_FAIL_MID x y z"}}
    )
    bad = await bearer.post(f"/workspaces/{ws}/runs", json={"prompt_id": pid, "variables": {f"{CANARY}": "x"}})
    assert (ok.status_code, failing.status_code, bad.status_code) == (202, 202, 422)
    async with RunningWorker(app):
        assert (await wait_for(client, ws, ok.json()["id"]))["output"] == f"{CANARY}-var "
        assert (await wait_for(client, ws, failing.json()["id"]))["status"] == "failed"
    await events_of(client, ws, ok.json()["id"])
    await make_client().post("/auth/login", json={"email": owner.email, "password": f"{CANARY}-wrong"})

    text = captured.getvalue()
    assert CANARY not in text and key not in text and PROVIDER_KEY not in text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "playground.access"]
    assert access and all(len(line["request_id"]) >= 8 for line in access)
    runs = [line for line in access if line["path"] == f"/api/v1/workspaces/{ws}/runs"]
    assert {line["status"] for line in runs} == {202, 422} and all(line["workspace_id"] == ws for line in runs)
    finished = [line for line in lines if line["msg"] == "run finished"]
    assert {line["run_id"] for line in finished} == {ok.json()["id"], failing.json()["id"]}
    assert {line["status"] for line in finished} == {"succeeded", "failed"}


async def test_a_request_id_is_echoed_or_made(client):
    response = await client.get("http://testserver/healthz", headers={"X-Request-ID": "trace-0123456789"})
    assert response.headers["x-request-id"] == "trace-0123456789"
    made = await client.get("http://testserver/healthz", headers={"X-Request-ID": "bad id; drop table"})
    assert made.headers["x-request-id"] != "bad id; drop table" and len(made.headers["x-request-id"]) == 32
