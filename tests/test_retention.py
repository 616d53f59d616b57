"""Retention: run contents past the workspace's policy are removed in the background, in batches; costs,
token counts, usage totals and the runs themselves stay; the policy is audited."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from backend.lifecycle.service import expire_run_contents
from backend.maintenance import run_once
from tests.factories import add_member, assert_problem, create_workspace, signup
from tests.runs_helpers import RunningWorker
from tests.test_runs import wait_for


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"mock_ttft_ms": 1, "mock_token_ms": 1})


async def test_old_run_contents_go_and_everything_else_stays(client, make_client, app, db_engine):
    owner = await signup(client)
    ws = await create_workspace(owner)
    other_ws = await create_workspace(owner, "Keeps everything")
    assert (await client.get(f"/workspaces/{ws}/retention")).json() == {"runs_days": None}
    viewer = await signup(make_client())
    await add_member(owner, ws, viewer, "viewer")
    assert_problem(await viewer.client.put(f"/workspaces/{ws}/retention", json={"runs_days": 1}), 403)
    assert_problem(await client.put(f"/workspaces/{ws}/retention", json={"runs_days": 0}), 422)
    assert (await client.put(f"/workspaces/{ws}/retention", json={"runs_days": 7})).json() == {"runs_days": 7}

    run_ids = {}
    for name, space in (("old", ws), ("new", ws), ("elsewhere", other_ws)):
        pid = (await client.post(f"/workspaces/{space}/prompts", json={"name": name})).json()["id"]
        body = {"messages": [{"role": "user", "content": "{{t}}"}],
                "model_config": {"provider": "mock", "model": "mock-1", "max_tokens": 64}}
        await client.post(f"/workspaces/{space}/prompts/{pid}/versions", json=body)
        response = await client.post(
            f"/workspaces/{space}/runs", json={"prompt_id": pid, "variables": {"t": f"{name} mail a@b.example.com"}}
        )
        run_ids[name] = (space, response.json()["id"])
    async with RunningWorker(app):
        for space, run_id in run_ids.values():
            await wait_for(client, space, run_id)
    before = {name: (await client.get(f"/workspaces/{s}/runs/{r}")).json() for name, (s, r) in run_ids.items()}
    usage_before = (await client.get(f"/workspaces/{ws}/usage")).json()["total"]
    async with db_engine.begin() as conn:  # the old run and the one elsewhere are eight days old
        for name in ("old", "elsewhere"):
            await conn.execute(text("UPDATE run SET created_at = now() - interval '8 days' WHERE id = :id"),
                               {"id": run_ids[name][1]})

    assert await expire_run_contents(app.state.sessionmaker, batch=10) == 1
    assert await expire_run_contents(app.state.sessionmaker) == 0  # nothing left to do
    old = (await client.get(f"/workspaces/{ws}/runs/{run_ids['old'][1]}")).json()
    assert old["snapshot"] is None and old["output"] == "" and old["contents_expired_at"] is not None
    kept = ("status", "usage", "cost_usd", "ttft_ms", "duration_ms", "flags", "version")
    assert {k: old[k] for k in kept} == {k: before["old"][k] for k in kept}
    for name in ("new", "elsewhere"):  # too recent, or in a workspace that keeps everything
        space, run_id = run_ids[name]
        now = (await client.get(f"/workspaces/{space}/runs/{run_id}")).json()
        assert {**now, "created_at": None} == {**before[name], "created_at": None}
    assert (await client.get(f"/workspaces/{ws}/usage")).json()["total"] == usage_before
    flags = (await client.get(f"/workspaces/{ws}/safety/flags", params={"run_id": run_ids["old"][1]})).json()
    assert flags["items"] and all(flag["excerpt"] == "" for flag in flags["items"])
    assert_problem(await client.post(f"/workspaces/{ws}/runs/{run_ids['old'][1]}/rerun"), 409, "contents-expired")
    assert_problem(await client.get(f"/workspaces/{ws}/runs/{run_ids['old'][1]}/code"), 409)
    log = (await client.get(f"/workspaces/{ws}/audit-log")).json()["items"]
    assert [e["action"] for e in log].count("retention.updated") == 1

    async with db_engine.begin() as conn:
        await conn.execute(text("UPDATE run SET created_at = now() - interval '8 days' WHERE id = :id"),
                           {"id": run_ids["new"][1]})
    assert (await run_once(app.state.sessionmaker))["run_contents_expired"] == 1  # the housekeeping pass
