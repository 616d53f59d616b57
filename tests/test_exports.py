"""Workspace exports on real PostgreSQL: an admin's JSON Lines archive of the whole workspace, made in the
background with progress, sealed at rest, downloadable only by the admin who asked (plain or gzip), audited;
deleted content absent from every later export and discarded from stored ones; a dead generator's export
finished by the maintenance pass."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import uuid

import pytest
from sqlalchemy import text

from backend.lifecycle import exports
from backend.maintenance import run_once
from backend.workspaces.service import purge_deleted_workspaces
from tests.factories import add_member, assert_problem, create_workspace, signup
from tests.runs_helpers import RunningWorker
from tests.test_runs import wait_for

SECRET_WORD = "marzipan"  # appears only in content: never in a sealed chunk, always in the opened archive


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"mock_ttft_ms": 1, "mock_token_ms": 1})


async def finished(client, ws: str, export_id: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        export = (await client.get(f"/workspaces/{ws}/exports/{export_id}")).json()
        if export["status"] in ("succeeded", "failed", "expired"):
            return export
        assert time.monotonic() < deadline, f"export still {export['status']} after {timeout}s"
        await asyncio.sleep(0.05)


async def export_lines(client, ws: str) -> list[dict]:
    response = await client.post(f"/workspaces/{ws}/exports")
    assert response.status_code == 202, response.text
    export = await finished(client, ws, response.json()["id"])
    assert export["status"] == "succeeded", export
    download = await client.get(
        f"/workspaces/{ws}/exports/{export['id']}/download", headers={"Accept-Encoding": "identity"}
    )
    assert download.status_code == 200, download.text
    assert download.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in download.text.splitlines()]


async def a_run(client, ws: str, prompt_id: str, words: str) -> str:
    response = await client.post(f"/workspaces/{ws}/runs", json={"prompt_id": prompt_id, "variables": {"w": words}})
    assert response.status_code == 202, response.text
    return response.json()["id"]


async def populated(client, make_client, app) -> dict:
    """A workspace with a bit of everything: members, two prompts with versions, a label, a comment, a dataset,
    finished runs (one flagged for an email address)."""
    owner = await signup(client)
    ws = await create_workspace(owner, "Exported")
    editor = await signup(make_client())
    await add_member(owner, ws, editor, "editor")
    ids: dict = {"ws": ws, "owner": owner, "editor": editor, "runs": {}}
    for name in ("alpha", "beta"):
        prompt = (await client.post(f"/workspaces/{ws}/prompts", json={"name": name})).json()
        ids[name] = prompt["id"]
        for system in (f"You like {SECRET_WORD}.", "Be brief."):
            body = {
                "system": system,
                "messages": [{"role": "user", "content": "Say {{w}}"}],
                "model_config": {"provider": "mock", "model": "mock-1", "max_tokens": 64},
            }
            saved = await client.post(f"/workspaces/{ws}/prompts/{prompt['id']}/versions", json=body)
            assert saved.status_code == 201, saved.text
    assert (
        await client.put(f"/workspaces/{ws}/prompts/{ids['alpha']}/labels/production", json={"version": 1})
    ).status_code == 200
    comment = await editor.client.post(
        f"/workspaces/{ws}/prompts/{ids['alpha']}/versions/1/comments", json={"body": f"More {SECRET_WORD} please"}
    )
    assert comment.status_code == 201, comment.text
    ids["comment"] = comment.json()["id"]
    dataset = await client.post(
        f"/workspaces/{ws}/datasets", json={"name": "cases", "rows": [{"w": f"{SECRET_WORD} cake"}, {"w": "tea"}]}
    )
    assert dataset.status_code == 201, dataset.text
    ids["dataset"] = dataset.json()["id"]
    ids["runs"]["plain"] = await a_run(client, ws, ids["alpha"], f"{SECRET_WORD} now")
    ids["runs"]["flagged"] = await a_run(client, ws, ids["alpha"], "mail me at jo@example.com")
    ids["runs"]["beta"] = await a_run(editor.client, ws, ids["beta"], "beta words")
    async with RunningWorker(app):
        for run_id in ids["runs"].values():
            await wait_for(client, ws, run_id)
    return ids


async def test_an_admin_exports_the_whole_workspace_as_json_lines(client, make_client, app, db_engine):
    ids = await populated(client, make_client, app)
    ws = ids["ws"]
    lines = await export_lines(client, ws)

    assert lines[0]["type"] == "export" and lines[0]["format"] == 1 and lines[0]["workspace"]["id"] == ws
    assert lines[-1]["type"] == "end"
    body = lines[1:-1]
    by_type: dict[str, list[dict]] = {}
    for line in body:
        by_type.setdefault(line["type"], []).append(line)
    assert lines[-1]["counts"] == {kind: len(items) for kind, items in by_type.items()}
    assert lines[0]["records"] == lines[-1]["records"] == len(body)
    # Grouped by type, in the documented order.
    order = ["member", "prompt", "version", "label", "comment", "dataset", "run", "flag"]
    assert [line["type"] for line in body] == sorted((line["type"] for line in body), key=order.index)

    assert {m["email"] for m in by_type["member"]} == {ids["owner"].email, ids["editor"].email}
    assert {m["role"] for m in by_type["member"]} == {"owner", "editor"}
    assert {p["name"] for p in by_type["prompt"]} == {"alpha", "beta"}
    assert sorted((v["prompt_id"], v["number"]) for v in by_type["version"]) == sorted(
        (ids[name], n) for name in ("alpha", "beta") for n in (1, 2)
    )
    first = next(v for v in by_type["version"] if v["prompt_id"] == ids["alpha"] and v["number"] == 1)
    assert first["system"] == f"You like {SECRET_WORD}." and first["messages"][0]["content"] == "Say {{w}}"
    assert by_type["label"] == [
        {**by_type["label"][0], "type": "label", "prompt_id": ids["alpha"], "name": "production", "version": 1}
    ]
    assert [(c["id"], c["body"], c["version"]) for c in by_type["comment"]] == [
        (ids["comment"], f"More {SECRET_WORD} please", 1)
    ]
    assert by_type["dataset"][0]["rows"] == [{"w": f"{SECRET_WORD} cake"}, {"w": "tea"}]
    # Every run exactly as the API shows it.
    assert {r["id"] for r in by_type["run"]} == set(ids["runs"].values())
    for run in by_type["run"]:
        shown = (await client.get(f"/workspaces/{ws}/runs/{run['id']}")).json()
        assert {k: v for k, v in run.items() if k != "type"} == shown
    assert {f["run_id"] for f in by_type["flag"]} == {ids["runs"]["flagged"]}
    assert all(f["excerpt"] and "jo@example.com" not in f["excerpt"] for f in by_type["flag"])  # masked as shown


async def test_only_the_requesting_admin_downloads_and_both_routes_are_audited(client, make_client, app, db_engine):
    ids = await populated(client, make_client, app)
    ws, editor = ids["ws"], ids["editor"]
    admin = await signup(make_client())
    await add_member(ids["owner"], ws, admin, "admin")
    assert_problem(await editor.client.post(f"/workspaces/{ws}/exports"), 403)
    assert_problem(await editor.client.get(f"/workspaces/{ws}/exports"), 403)

    export = (await client.post(f"/workspaces/{ws}/exports")).json()
    assert export["status"] == "queued" and export["progress"] == {"done": 0, "total": 0}
    export = await finished(client, ws, export["id"])
    assert export["status"] == "succeeded" and export["progress"]["done"] == export["progress"]["total"] > 0
    assert export["expires_at"] is not None

    # Another admin sees it listed and its status, but cannot open it; a member of no rank cannot even see it.
    assert [e["id"] for e in (await admin.client.get(f"/workspaces/{ws}/exports")).json()] == [export["id"]]
    assert (await admin.client.get(f"/workspaces/{ws}/exports/{export['id']}")).json()["status"] == "succeeded"
    assert_problem(await admin.client.get(f"/workspaces/{ws}/exports/{export['id']}/download"), 403, "export-not-yours")
    assert_problem(await editor.client.get(f"/workspaces/{ws}/exports/{export['id']}/download"), 403)
    stranger = await signup(make_client())
    other_ws = await create_workspace(stranger, "Elsewhere")
    assert_problem(await stranger.client.get(f"/workspaces/{other_ws}/exports/{export['id']}"), 404, "export-not-found")
    assert_problem(await client.get(f"/workspaces/{ws}/exports/{uuid.uuid4()}"), 404, "export-not-found")

    # gzip when the client takes it: the stored members pass through, and inflate to the plain download.
    plain = await client.get(
        f"/workspaces/{ws}/exports/{export['id']}/download", headers={"Accept-Encoding": "identity"}
    )
    async with client.stream(
        "GET", f"/workspaces/{ws}/exports/{export['id']}/download", headers={"Accept-Encoding": "gzip"}
    ) as response:
        assert response.headers["content-encoding"] == "gzip"
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert raw[:2] == b"\x1f\x8b" and gzip.decompress(raw) == plain.content
    assert SECRET_WORD.encode() in plain.content

    audit = (await client.get(f"/workspaces/{ws}/audit-log")).json()["items"]
    actions = [entry["action"] for entry in audit if entry["target"]["id"] == export["id"]]
    assert sorted(actions) == ["export.created", "export.downloaded", "export.downloaded"]


async def test_the_archive_is_sealed_at_rest_and_made_in_pieces(client, make_client, app, db_engine, monkeypatch):
    monkeypatch.setattr(exports, "CHUNK_LINES", 3)  # several gzip members for a small workspace
    ids = await populated(client, make_client, app)
    lines = await export_lines(client, ids["ws"])
    async with db_engine.connect() as conn:
        chunks = (await conn.execute(text("SELECT seq, data FROM workspace_export_chunk ORDER BY seq"))).all()
    assert [seq for seq, _ in chunks] == list(range(len(chunks))) and len(chunks) == -(-len(lines) // 3)
    for _, data in chunks:
        assert SECRET_WORD.encode() not in data and not data.startswith(b"\x1f\x8b")
        with pytest.raises(OSError):
            gzip.decompress(data)  # ciphertext, not a gzip member


async def test_one_export_at_a_time(client, make_client, app, db_engine):
    owner = await signup(client)
    ws = await create_workspace(owner)
    # Hold the generator while it counts the records (a table the request itself never reads): it is running.
    async with db_engine.connect() as blocker:
        await blocker.execute(text("LOCK TABLE safety_flag IN ACCESS EXCLUSIVE MODE"))
        first = await client.post(f"/workspaces/{ws}/exports")
        assert first.status_code == 202
        second = assert_problem(await client.post(f"/workspaces/{ws}/exports"), 409, "export-in-progress")
        assert first.json()["id"] in second["detail"]
        assert_problem(
            await client.get(f"/workspaces/{ws}/exports/{first.json()['id']}/download"), 409, "export-not-ready"
        )
        await blocker.rollback()
    assert (await finished(client, ws, first.json()["id"]))["status"] == "succeeded"
    assert (await client.post(f"/workspaces/{ws}/exports")).status_code == 202  # the next one may start
    for export in (await client.get(f"/workspaces/{ws}/exports")).json():
        await finished(client, ws, export["id"])


async def test_deleted_content_is_absent_from_exports_and_discarded_from_stored_ones(
    client, make_client, app, db_engine
):
    ids = await populated(client, make_client, app)
    ws = ids["ws"]
    before = await export_lines(client, ws)
    stored = (await client.get(f"/workspaces/{ws}/exports")).json()[0]

    assert (await client.delete(f"/workspaces/{ws}/runs/{ids['runs']['plain']}")).status_code == 204
    # The archive made before may hold the deleted run: it is gone, not downloadable.
    assert (await client.get(f"/workspaces/{ws}/exports/{stored['id']}")).json()["status"] == "expired"
    assert_problem(await client.get(f"/workspaces/{ws}/exports/{stored['id']}/download"), 409, "export-not-ready")
    async with db_engine.connect() as conn:
        left = await conn.scalar(
            text("SELECT count(*) FROM workspace_export_chunk WHERE export_id = :id"), {"id": stored["id"]}
        )
    assert left == 0
    after_run = await export_lines(client, ws)
    assert ids["runs"]["plain"] in {line.get("id") for line in before}
    assert ids["runs"]["plain"] not in {line.get("id") for line in after_run}
    assert len(after_run) == len(before) - 1

    assert (await client.delete(f"/workspaces/{ws}/prompts/{ids['alpha']}")).status_code == 204
    after_prompt = await export_lines(client, ws)
    assert not [line for line in after_prompt if ids["alpha"] in (line.get("id"), line.get("prompt_id"))]
    assert {line["type"] for line in after_prompt if line["type"] in ("comment", "label", "flag")} == set()
    assert {p["name"] for p in after_prompt if p["type"] == "prompt"} == {"beta"}

    # A member deletes their account: their address is nowhere, what they wrote stays, attributed to nobody.
    editor = ids["editor"]
    assert (await editor.client.delete("/me")).status_code == 202
    after_me = await export_lines(client, ws)
    assert editor.email not in json.dumps(after_me)
    assert [m["email"] for m in after_me if m["type"] == "member"] == [ids["owner"].email]
    assert {r["id"] for r in after_me if r["type"] == "run"} == {ids["runs"]["beta"]}


async def test_a_deleted_workspace_goes_with_its_runs_and_exports(client, make_client, app, db_engine):
    owner = await signup(client)
    ws = await create_workspace(owner)
    prompt = (await client.post(f"/workspaces/{ws}/prompts", json={"name": "many"})).json()
    config = {"provider": "mock", "model": "mock-1", "max_tokens": 64}
    body = {"messages": [{"role": "user", "content": "{{w}}"}], "model_config": config}
    await client.post(f"/workspaces/{ws}/prompts/{prompt['id']}/versions", json=body)
    for n in range(5):
        await a_run(client, ws, prompt["id"], f"run {n}")
    await export_lines(client, ws)
    assert (await client.delete(f"/workspaces/{ws}")).status_code == 202
    # Runs go two at a time (each batch its own transaction), then the workspace with everything else.
    assert await purge_deleted_workspaces(app.state.sessionmaker, batch=2) == 1
    async with db_engine.connect() as conn:
        for table in ("run", "workspace_export", "workspace_export_chunk", "prompt"):
            count = await conn.scalar(text(f"SELECT count(*) FROM {table} WHERE workspace_id = :ws"), {"ws": ws})
            assert count == 0, table


async def test_an_export_whose_maker_died_is_finished_by_the_maintenance_pass(client, make_client, app, db_engine):
    owner = await signup(client)
    ws = await create_workspace(owner)
    await client.post(f"/workspaces/{ws}/prompts", json={"name": "kept"})
    async with db_engine.begin() as conn:  # as a process that claimed it and then died would leave it
        export_id = await conn.scalar(
            text(
                "INSERT INTO workspace_export (id, workspace_id, requested_by, status, attempts, heartbeat_at, done) "
                "VALUES (gen_random_uuid(), :ws, :user, 'running', 1, now() - interval '10 minutes', 3) RETURNING id"
            ),
            {"ws": ws, "user": owner.id},
        )
    assert (await run_once(app.state.sessionmaker, app.state.keyring))["exports_resumed"] == 1
    export = await finished(client, ws, str(export_id))
    assert export["status"] == "succeeded" and export["progress"] == {"done": 2, "total": 2}  # owner + prompt
    download = await client.get(f"/workspaces/{ws}/exports/{export_id}/download")
    assert [json.loads(line)["type"] for line in download.text.splitlines()] == ["export", "member", "prompt", "end"]
    # A fresh one (heartbeat now) is left alone: its maker is alive.
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO workspace_export (id, workspace_id, requested_by, status, attempts, heartbeat_at) "
                "VALUES (gen_random_uuid(), :ws, :user, 'running', 1, now())"
            ),
            {"ws": ws, "user": owner.id},
        )
    assert (await run_once(app.state.sessionmaker, app.state.keyring))["exports_resumed"] == 0


async def test_archives_past_their_time_are_removed(client, app, db_engine):
    owner = await signup(client)
    ws = await create_workspace(owner)
    await export_lines(client, ws)
    async with db_engine.begin() as conn:
        await conn.execute(text("UPDATE workspace_export SET expires_at = now() - interval '1 second'"))
    assert (await run_once(app.state.sessionmaker))["exports_removed"] == 1
    export = (await client.get(f"/workspaces/{ws}/exports")).json()[0]
    assert export["status"] == "expired"
    async with db_engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM workspace_export_chunk")) == 0
