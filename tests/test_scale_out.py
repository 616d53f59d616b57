"""Scale-out: two api and two worker processes on one PostgreSQL and Redis, on loopback, under a mixed load
(runs posted to both apis, every run read on the other api, cancels, a worker killed with SIGKILL). Every
run ends, every reader gets exactly the run's output, and the usage totals equal the runs' costs. Prints the
figures (docs/decisions/scale-out.md keeps them)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from tests.conftest import MASTER_KEY, REDIS_URL
from tests.processes import free_port, stop_process
from tests.test_run_faults import PLAYGROUND, Reading, _env, _wait_healthy, expected_output, read_events, words

pytestmark = pytest.mark.slow

RUNS, CANCELS, WORDS = 60, 8, 120


@pytest.fixture
def cluster(database_url: str):
    tmp = Path(tempfile.mkdtemp(prefix="pp-scale-"))
    env = _env(
        PLAYGROUND_DATABASE_URL=database_url,
        PLAYGROUND_REDIS_URL=REDIS_URL,
        PLAYGROUND_REDIS_PREFIX=f"pp-scale:{uuid.uuid4().hex[:8]}:",
        PLAYGROUND_MASTER_KEY=MASTER_KEY,
        PLAYGROUND_WORKER_METRICS_PORT="0",
        PLAYGROUND_WORKER_LEASE_SECONDS="3",
        PLAYGROUND_RECONCILE_SECONDS="0.5",
        PLAYGROUND_LOST_DISPATCH_SECONDS="3",
        PLAYGROUND_MOCK_TTFT_MS="30",
        PLAYGROUND_MOCK_TOKEN_MS="15",
        # Four processes on a PostgreSQL that others share (max_connections 100): 10 connections each at most.
        PLAYGROUND_DB_POOL_SIZE="5",
        PLAYGROUND_DB_MAX_OVERFLOW="5",
    )
    procs: list[subprocess.Popen] = []
    ports = [free_port(), free_port()]
    for port in ports:
        log = tmp / f"api-{port}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([*PLAYGROUND, "api", "--port", str(port)], env=env, stdout=out, stderr=out)
        procs.append(proc)
        _wait_healthy(proc, port, log)
    workers = []
    for index in range(2):
        with open(tmp / f"worker-{index}.log", "wb") as out:
            command = [*PLAYGROUND, "worker", "--concurrency", "50"]
            workers.append(subprocess.Popen(command, env=env, stdout=out, stderr=out))
    try:
        yield SimpleNamespace(apis=[f"http://127.0.0.1:{p}" for p in ports], workers=workers, tmp=tmp)
    finally:
        for proc in [*procs, *workers]:
            stop_process(proc, timeout=30)


def prepare(base: str) -> SimpleNamespace:
    with httpx.Client(base_url=f"{base}/api/v1", timeout=30) as web:
        email = f"scale-{uuid.uuid4().hex[:8]}@example.com"
        signed = web.post("/auth/signup", json={"email": email, "password": "long enough 1", "name": "S"})
        assert signed.status_code == 201, signed.text
        web.headers["X-CSRF-Token"] = web.cookies["csrf_token"]
        ws = web.post("/workspaces", json={"name": "Scale"}).json()["id"]
        limits = {"max_concurrent_runs": 200, "runs_per_minute": 10_000, "member_runs_per_minute": 10_000}
        assert web.put(f"/workspaces/{ws}/limits", json=limits).status_code == 200
        pid = web.post(f"/workspaces/{ws}/prompts", json={"name": "echo"}).json()["id"]
        body = {"messages": [{"role": "user", "content": "{{text}}"}],
                "model_config": {"provider": "mock", "model": "mock-1", "max_tokens": 1000}}
        assert web.post(f"/workspaces/{ws}/prompts/{pid}/versions", json=body).status_code == 201
        return SimpleNamespace(ws=ws, prompt_id=pid, cookies=dict(web.cookies), csrf=web.headers["X-CSRF-Token"])


async def test_two_apis_and_two_workers_under_mixed_load_lose_nothing(cluster, db_engine):  # emptied after
    user = prepare(cluster.apis[0])
    clients = [
        httpx.AsyncClient(base_url=f"{base}/api/v1", cookies=user.cookies, headers={"X-CSRF-Token": user.csrf},
                          timeout=60)
        for base in cluster.apis
    ]
    texts: dict[str, str] = {}
    started = time.monotonic()

    async def post(index: int) -> str:
        text = words(f"r{index}", WORDS)
        response = await clients[index % 2].post(
            f"/workspaces/{user.ws}/runs", json={"prompt_id": user.prompt_id, "variables": {"text": text}}
        )
        assert response.status_code == 202, response.text
        texts[response.json()["id"]] = text
        return response.json()["id"]

    run_ids = await asyncio.gather(*(post(i) for i in range(RUNS)))
    posted_in = time.monotonic() - started
    readers = {
        run_id: asyncio.create_task(read_events(clients[(i + 1) % 2], user, run_id, Reading(), timeout=90))
        for i, run_id in enumerate(run_ids)
    }
    await asyncio.sleep(0.3)
    cancelled = run_ids[:: RUNS // CANCELS][:CANCELS]
    for run_id in cancelled:
        response = await clients[1].post(f"/workspaces/{user.ws}/runs/{run_id}/cancel")
        assert response.status_code in (202, 409), response.text  # 409: it had finished already
    cluster.workers[0].send_signal(signal.SIGKILL)  # while the last runs posted still stream
    readings = dict(zip(readers, await asyncio.gather(*readers.values()), strict=True))
    took = time.monotonic() - started

    finals = {}
    for run_id in run_ids:
        finals[run_id] = (await clients[0].get(f"/workspaces/{user.ws}/runs/{run_id}")).json()
    statuses = Counter((f["status"], (f["error"] or {}).get("kind")) for f in finals.values())
    for run_id, final in finals.items():
        readings[run_id].check(final)  # exactly the output, one terminal event, ordered ids
        expected = expected_output(texts[run_id])
        if final["status"] == "succeeded":
            assert final["output"] == expected
        else:
            assert expected.startswith(final["output"]), final  # a prefix: cancelled, or its worker was killed
            assert final["status"] == "cancelled" or (final["error"] or {}).get("kind") == "worker_lost", final
    usage = (await clients[0].get(f"/workspaces/{user.ws}/usage", params={"group_by": "model"})).json()
    assert Decimal(usage["total"]["cost_usd"]) == sum(Decimal(f["cost_usd"]) for f in finals.values())
    for client in clients:
        await client.aclose()
    print(
        f"\nscale-out: {RUNS} runs of {WORDS} words posted to 2 apis in {posted_in:.2f}s "
        f"({RUNS / posted_in:.0f}/s), read on the other api; {len(cancelled)} cancels; one of 2 workers killed; "
        f"all terminal after {took:.1f}s; {dict(statuses)}; load {os.getloadavg()[0]:.1f}"
    )
