"""The Python client against a running server (a real `playground api` and `playground worker` on loopback):
prompts by label with the local cache and ETag revalidation, rendering, runs streamed exactly, errors."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from backend.client import Playground, PlaygroundError
from tests.conftest import MASTER_KEY, REDIS_URL
from tests.factories import PASSWORD
from tests.processes import free_port

pytestmark = pytest.mark.slow


class Counting(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.statuses.append(response.status_code)
        return response


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYGROUND_")}
    env.update(
        PLAYGROUND_DATABASE_URL=database_url,
        PLAYGROUND_REDIS_URL=REDIS_URL,
        PLAYGROUND_REDIS_PREFIX=f"pp-client-{port}:",
        PLAYGROUND_MASTER_KEY=MASTER_KEY,
        PLAYGROUND_WORKER_METRICS_PORT="0",
        PLAYGROUND_MOCK_TTFT_MS="5",
        PLAYGROUND_MOCK_TOKEN_MS="2",
    )
    cli = [sys.executable, "-m", "backend.cli"]
    api = subprocess.Popen([*cli, "api", "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([*cli, "worker", "--concurrency", "8"], env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert api.poll() is None and time.monotonic() < deadline, "the api did not start"
            time.sleep(0.2)
        yield base
    finally:
        for proc in (api, worker):
            proc.terminate()
        for proc in (api, worker):
            proc.wait(timeout=30)


def setup_workspace(base: str) -> tuple[str, str]:
    """Signs up like the SPA, makes a workspace, a prompt with two versions and a label, and an API key."""
    with httpx.Client(base_url=f"{base}/api/v1") as web:
        email = f"client-{time.monotonic_ns()}@example.com"
        assert web.post("/auth/signup", json={"email": email, "password": PASSWORD, "name": "C"}).status_code == 201
        web.headers["X-CSRF-Token"] = web.cookies["csrf_token"]
        ws = web.post("/workspaces", json={"name": "Client"}).json()["id"]
        pid = web.post(f"/workspaces/{ws}/prompts", json={"name": "greeting"}).json()["id"]
        for user in ("Say {{words}}", "Please say {{words}}"):
            body = {"messages": [{"role": "user", "content": user}],
                    "model_config": {"provider": "mock", "model": "mock-1", "max_tokens": 64}}
            assert web.post(f"/workspaces/{ws}/prompts/{pid}/versions", json=body).status_code == 201
        assert web.put(f"/workspaces/{ws}/prompts/{pid}/labels/production", json={"version": 1}).status_code == 200
        key = web.post(f"/workspaces/{ws}/api-keys", json={"name": "app"}).json()["key"]
        return ws, key


def test_prompts_by_label_are_cached_and_revalidated_by_etag(server, db_engine):  # db_engine: emptied after
    ws, key = setup_workspace(server)
    transport = Counting()
    with Playground(server, key, ws, cache_seconds=0.2, transport=transport) as pg:
        first = pg.prompt("greeting", label="production")
        assert first.number == 1 and first.variables == ["words"]
        assert pg.prompt("greeting", label="production") is first and transport.statuses == [200]  # cached
        time.sleep(0.25)
        assert pg.prompt("greeting", label="production") == first and transport.statuses == [200, 304]
        assert pg.prompt("greeting").number == 2  # the latest, cached apart from the label
        assert first.render({"words": "hi there"}).messages == [{"role": "user", "content": "Say hi there"}]
        with pytest.raises(PlaygroundError) as missing:
            pg.prompt("no-such-prompt")
        assert missing.value.status == 404 and missing.value.type == "prompt-not-found"


def test_runs_stream_exactly_and_errors_are_problems(server, db_engine):
    ws, key = setup_workspace(server)
    with Playground(server, key, ws) as pg:
        version = pg.prompt("greeting", label="production")
        run = pg.complete(version, {"words": "one two three"}, idempotency_key="client-test-1")
        assert run.status == "succeeded" and run.output == "Say one two three "
        events = list(pg.stream(run.id))  # a finished run replays from the start
        assert [e.name for e in events][-1] == "run.completed"
        assert "".join(e.data["text"] for e in events if e.name == "run.delta") == run.output
        assert pg.get_run(run.id).output == run.output
        with pytest.raises(PlaygroundError) as bad:
            pg.run(version, {"wrong": "x"})
        assert bad.value.status == 422
        again = pg.run(version, {"words": "one two three"}, idempotency_key="client-test-1")
        assert again.id == run.id  # the same key and body: the same run, not a second one
        with pytest.raises(PlaygroundError) as reused:
            pg.run(version, {"words": "x"}, idempotency_key="client-test-1")
        assert reused.value.status == 409 and reused.value.type == "idempotency-key-reused"
