"""API keys: creation, storage, bearer authentication, revocation, and acting as the creator."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import text

from backend.models import metadata
from tests.factories import Account, add_member, assert_problem, create_api_key, create_workspace, signup

PROBLEM = "application/problem+json"


# Local helpers




def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def secret_of(created: dict[str, Any]) -> str:
    """The part of the key after its public prefix (and separator)."""
    rest = created["key"][len(created["prefix"]) :]
    secret = rest.lstrip("_")
    assert len(secret) >= 20, created
    return secret


async def dump_database(db_engine) -> str:
    lines: list[str] = []
    async with db_engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = await conn.execute(text(f'SELECT t::text FROM "{table.name}" AS t'))
            lines.extend(f"{table.name}: {row}" for row in rows.scalars())
    return "\n".join(lines)


async def set_role(owner: Account, ws: str, member: Account, role: str) -> None:
    response = await owner.client.patch(f"/workspaces/{ws}/members/{member.id}", json={"role": role})
    assert response.status_code == 200, response.text


@pytest.fixture
async def team(make_client):
    """A workspace with an owner, an admin, an editor and a viewer, plus an anonymous bearer client."""
    owner = await signup(make_client())
    ws = await create_workspace(owner, "Keys")
    members: dict[str, Any] = {"owner": owner}
    for role in ("admin", "editor", "viewer"):
        member = await signup(make_client())
        await add_member(owner, ws, member, role)
        members[role] = member
    members["anon"] = make_client(csrf=False)
    return ws, members


# Creation and storage


async def test_create_key_returns_the_secret_once(team):
    ws, m = team
    response = await m["editor"].client.post(f"/workspaces/{ws}/api-keys", json={"name": "deploy"})
    assert response.status_code == 201, response.text
    created = response.json()
    assert uuid.UUID(created["id"])
    assert created["name"] == "deploy"
    assert created["key"].startswith("ppk_")
    assert created["prefix"].startswith("ppk_")
    assert created["key"].startswith(created["prefix"])
    assert len(created["key"]) > len(created["prefix"]) + 20
    assert created["created_by"] == m["editor"].id
    assert created["revoked_at"] is None and created["last_used_at"] is None

    other = await create_api_key(m["editor"], ws, "deploy")
    assert other["key"] != created["key"] and other["prefix"] != created["prefix"]


async def test_create_key_needs_editor(team, db_engine):
    ws, m = team
    for role in ("owner", "admin", "editor"):
        assert (await m[role].client.post(f"/workspaces/{ws}/api-keys", json={"name": role})).status_code == 201
    assert_problem(await m["viewer"].client.post(f"/workspaces/{ws}/api-keys", json={"name": "v"}), 403)
    assert_problem(await m["editor"].client.post(f"/workspaces/{ws}/api-keys", json={"name": ""}), 422)
    assert_problem(await m["editor"].client.post(f"/workspaces/{ws}/api-keys", json={}), 422)
    async with db_engine.connect() as conn:
        names = (await conn.execute(text("SELECT name FROM api_key ORDER BY name"))).scalars().all()
    assert names == ["admin", "editor", "owner"]


async def test_list_never_shows_the_secret(team):
    ws, m = team
    created = await create_api_key(m["editor"], ws, "listed")
    for role in ("editor", "admin", "owner"):
        response = await m[role].client.get(f"/workspaces/{ws}/api-keys")
        assert response.status_code == 200, response.text
        assert created["prefix"] in response.text  # the listing does show the key...
        assert created["key"] not in response.text  # ...but never its secret
        assert secret_of(created) not in response.text
        assert all("key" not in item for item in response.json())


async def test_only_a_hash_of_the_key_is_stored(team, db_engine):
    ws, m = team
    created = await create_api_key(m["editor"], ws, "stored")
    secret = secret_of(created)
    async with db_engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT t::text AS whole, prefix, secret_hash FROM api_key AS t WHERE id = :id"),
                {"id": created["id"]},
            )
        ).one()
    assert row.prefix == created["prefix"]
    assert isinstance(row.secret_hash, bytes) and len(row.secret_hash) == 32
    assert secret.encode() not in row.secret_hash
    assert secret not in row.whole and created["key"] not in row.whole

    dump = await dump_database(db_engine)
    assert created["prefix"] in dump  # the dump sees the key's row
    assert secret not in dump
    assert secret.encode().hex() not in dump


# Bearer authentication


async def test_bearer_is_bound_to_one_workspace(make_client):
    owner = await signup(make_client())
    ws = await create_workspace(owner, "Bound")
    other_ws = await create_workspace(owner, "Other")
    key = (await create_api_key(owner, ws))["key"]
    anon = make_client(csrf=False)

    response = await anon.get(f"/workspaces/{ws}", headers=bearer(key))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == ws and response.json()["role"] == "owner"

    me = await anon.get("/me", headers=bearer(key))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == owner.id
    assert [w["id"] for w in me.json()["workspaces"]] == [ws]
    listing = await anon.get("/workspaces", headers=bearer(key))
    assert [w["id"] for w in listing.json()] == [ws]

    assert_problem(await anon.get(f"/workspaces/{other_ws}", headers=bearer(key)), 404)
    assert_problem(await anon.get(f"/workspaces/{other_ws}/members", headers=bearer(key)), 404)
    assert_problem(
        await anon.post(f"/workspaces/{other_ws}/api-keys", json={"name": "escape"}, headers=bearer(key)), 404
    )
    # The cookie session still sees both.
    assert len((await owner.client.get("/workspaces")).json()) == 2


async def test_malformed_credentials_are_401(make_client):
    owner = await signup(make_client())
    ws = await create_workspace(owner)
    await create_api_key(owner, ws)
    anon = make_client(csrf=False)
    for authorization in ("Bearer nonsense", "Bearer ", "Bearer ppk_", "Basic dXNlcjpwYXNz", "Token whatever"):
        response = await anon.get(f"/workspaces/{ws}", headers={"Authorization": authorization})
        assert_problem(response, 401)
        headers = {"Authorization": authorization}
        response = await anon.post(f"/workspaces/{ws}/api-keys", json={"name": "x"}, headers=headers)
        assert_problem(response, 401)


async def test_wrong_secret_with_the_right_prefix_is_401(team):
    ws, m = team
    created = await create_api_key(m["owner"], ws)
    secret = secret_of(created)
    separator = created["key"][len(created["prefix"]) : len(created["key"]) - len(secret)]
    flipped = ("A" if secret[0] != "A" else "B") + secret[1:]
    forged = [
        created["prefix"] + separator + flipped,
        created["prefix"] + separator + secret[:-1],
        created["prefix"] + separator + secret + "x",
        created["prefix"] + separator,
    ]
    for key in forged:
        assert_problem(await m["anon"].get(f"/workspaces/{ws}", headers=bearer(key)), 401)
        assert_problem(await m["anon"].get("/me", headers=bearer(key)), 401)
    # The genuine key still works.
    assert (await m["anon"].get(f"/workspaces/{ws}", headers=bearer(created["key"]))).status_code == 200


async def test_last_used_at_is_set_after_use(team, db_engine):
    ws, m = team
    created = await create_api_key(m["editor"], ws)
    async with db_engine.connect() as conn:
        before = (
            await conn.execute(text("SELECT last_used_at FROM api_key WHERE id = :id"), {"id": created["id"]})
        ).scalar_one()
    assert before is None
    assert (await m["anon"].get(f"/workspaces/{ws}", headers=bearer(created["key"]))).status_code == 200
    async with db_engine.connect() as conn:
        after = (
            await conn.execute(text("SELECT last_used_at FROM api_key WHERE id = :id"), {"id": created["id"]})
        ).scalar_one()
    assert after is not None
    listed = {k["id"]: k for k in (await m["editor"].client.get(f"/workspaces/{ws}/api-keys")).json()}
    assert listed[created["id"]]["last_used_at"] is not None


# Revocation


async def test_revoke_kills_the_key(team, db_engine):
    ws, m = team
    created = await create_api_key(m["editor"], ws)
    assert (await m["anon"].get(f"/workspaces/{ws}", headers=bearer(created["key"]))).status_code == 200
    response = await m["editor"].client.delete(f"/workspaces/{ws}/api-keys/{created['id']}")
    assert response.status_code == 204, response.text
    assert_problem(await m["anon"].get(f"/workspaces/{ws}", headers=bearer(created["key"])), 401)
    assert_problem(await m["anon"].get("/me", headers=bearer(created["key"])), 401)
    assert_problem(await m["editor"].client.delete(f"/workspaces/{ws}/api-keys/{created['id']}"), 404)
    assert_problem(await m["owner"].client.delete(f"/workspaces/{ws}/api-keys/{created['id']}"), 404)
    listed = {k["id"]: k for k in (await m["editor"].client.get(f"/workspaces/{ws}/api-keys")).json()}
    assert listed[created["id"]]["revoked_at"] is not None
    async with db_engine.connect() as conn:
        revoked_at = (
            await conn.execute(text("SELECT revoked_at FROM api_key WHERE id = :id"), {"id": created["id"]})
        ).scalar_one()
    assert revoked_at is not None


async def test_revoking_unknown_key_is_404_for_admins(team):
    ws, m = team
    assert_problem(await m["admin"].client.delete(f"/workspaces/{ws}/api-keys/{uuid.uuid4()}"), 404)


async def test_a_key_of_another_workspace_cannot_be_revoked_here(make_client):
    alice = await signup(make_client())
    ws_a = await create_workspace(alice, "A")
    ws_b = await create_workspace(alice, "B")
    created = await create_api_key(alice, ws_b)
    assert_problem(await alice.client.delete(f"/workspaces/{ws_a}/api-keys/{created['id']}"), 404)
    anon = make_client(csrf=False)
    assert (await anon.get(f"/workspaces/{ws_b}", headers=bearer(created["key"]))).status_code == 200


async def test_viewer_revokes_only_own_keys_and_admin_revokes_any(team):
    ws, m = team
    viewer = m["viewer"]
    editor_key = await create_api_key(m["editor"], ws, "editor's")
    # The viewer's own key: made while editor, then demoted.
    await set_role(m["owner"], ws, viewer, "editor")
    viewer_key = await create_api_key(viewer, ws, "viewer's")
    await set_role(m["owner"], ws, viewer, "viewer")

    assert_problem(await viewer.client.delete(f"/workspaces/{ws}/api-keys/{editor_key['id']}"), 403)
    assert_problem(await m["editor"].client.delete(f"/workspaces/{ws}/api-keys/{viewer_key['id']}"), 403)
    assert (await m["anon"].get(f"/workspaces/{ws}", headers=bearer(editor_key["key"]))).status_code == 200

    response = await viewer.client.delete(f"/workspaces/{ws}/api-keys/{viewer_key['id']}")
    assert response.status_code == 204, response.text
    assert_problem(await m["anon"].get(f"/workspaces/{ws}", headers=bearer(viewer_key["key"])), 401)

    response = await m["admin"].client.delete(f"/workspaces/{ws}/api-keys/{editor_key['id']}")
    assert response.status_code == 204, response.text
    assert_problem(await m["anon"].get(f"/workspaces/{ws}", headers=bearer(editor_key["key"])), 401)


async def test_list_shows_own_keys_to_members_and_all_to_admins(team):
    ws, m = team
    keys = {role: await create_api_key(m[role], ws, role) for role in ("owner", "admin", "editor")}
    all_ids = {k["id"] for k in keys.values()}

    editor_list = (await m["editor"].client.get(f"/workspaces/{ws}/api-keys")).json()
    assert [k["id"] for k in editor_list] == [keys["editor"]["id"]]
    viewer_list = await m["viewer"].client.get(f"/workspaces/{ws}/api-keys")
    assert viewer_list.status_code == 200 and viewer_list.json() == []
    for role in ("admin", "owner"):
        listed = (await m[role].client.get(f"/workspaces/{ws}/api-keys")).json()
        assert {k["id"] for k in listed} == all_ids
        assert {k["created_by"] for k in listed} == {m[r].id for r in ("owner", "admin", "editor")}


# The key acts as its creator


async def test_key_follows_its_creators_role(team, db_engine):
    ws, m = team
    created = await create_api_key(m["editor"], ws)
    key = created["key"]
    ok = await m["anon"].post(f"/workspaces/{ws}/prompts", json={"name": "by key"}, headers=bearer(key))
    assert ok.status_code == 201, ok.text
    assert ok.json()["created_by"] == m["editor"].id
    # A key never mints keys (they would outlive its revocation).
    minted = await m["anon"].post(f"/workspaces/{ws}/api-keys", json={"name": "child"}, headers=bearer(key))
    assert_problem(minted, 403)
    # An editor's key cannot do what the editor cannot.
    assert_problem(await m["anon"].get(f"/workspaces/{ws}/audit-log", headers=bearer(key)), 403)
    assert_problem(await m["anon"].patch(f"/workspaces/{ws}", json={"name": "x"}, headers=bearer(key)), 403)

    await set_role(m["owner"], ws, m["editor"], "viewer")
    assert (await m["anon"].get(f"/workspaces/{ws}", headers=bearer(key))).json()["role"] == "viewer"
    assert_problem(await m["anon"].post(f"/workspaces/{ws}/prompts", json={"name": "again"}, headers=bearer(key)), 403)
    async with db_engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM prompt"))).scalar_one()
    assert count == 1

    await set_role(m["owner"], ws, m["editor"], "admin")
    assert (await m["anon"].get(f"/workspaces/{ws}/audit-log", headers=bearer(key))).status_code == 200


async def test_key_dies_when_its_creator_leaves(team):
    ws, m = team
    created = await create_api_key(m["editor"], ws)
    assert (await m["anon"].get(f"/workspaces/{ws}", headers=bearer(created["key"]))).status_code == 200
    response = await m["admin"].client.delete(f"/workspaces/{ws}/members/{m['editor'].id}")
    assert response.status_code == 204, response.text
    assert_problem(await m["anon"].get(f"/workspaces/{ws}", headers=bearer(created["key"])), 401)
    assert_problem(await m["anon"].get("/me", headers=bearer(created["key"])), 401)


async def test_key_stays_dead_when_its_creator_is_added_back(team):
    ws, m = team
    created = await create_api_key(m["editor"], ws)
    assert (await m["admin"].client.delete(f"/workspaces/{ws}/members/{m['editor'].id}")).status_code == 204
    await add_member(m["owner"], ws, m["editor"], "editor")
    assert_problem(await m["anon"].get(f"/workspaces/{ws}", headers=bearer(created["key"])), 401)
    listed = {k["id"]: k for k in (await m["admin"].client.get(f"/workspaces/{ws}/api-keys")).json()}
    assert listed[created["id"]]["revoked_at"] is not None


async def test_key_cannot_create_workspaces(team, db_engine):
    ws, m = team
    created = await create_api_key(m["owner"], ws)
    response = await m["anon"].post("/workspaces", json={"name": "Sneaky"}, headers=bearer(created["key"]))
    assert_problem(response, 403)
    async with db_engine.connect() as conn:
        names = (await conn.execute(text("SELECT name FROM workspace"))).scalars().all()
    assert names == ["Keys"]


async def test_key_dies_with_its_workspace(team):
    ws, m = team
    created = await create_api_key(m["owner"], ws)
    assert (await m["owner"].client.delete(f"/workspaces/{ws}")).status_code == 202
    response = await m["anon"].get(f"/workspaces/{ws}", headers=bearer(created["key"]))
    assert response.status_code in (401, 404), response.text
    assert_problem(response, response.status_code)
    assert_problem(await m["anon"].get("/me", headers=bearer(created["key"])), 401)


async def test_key_actions_are_audited_with_the_key(team):
    ws, m = team
    created = await create_api_key(m["admin"], ws)
    made = await m["anon"].put(
        f"/workspaces/{ws}/limits", json={"max_queued_runs": 999}, headers=bearer(created["key"])
    )
    assert made.status_code == 200, made.text
    items = (await m["owner"].client.get(f"/workspaces/{ws}/audit-log")).json()["items"]
    newest = items[0]
    assert newest["action"] == "limits.updated"
    assert newest["target"]["id"] == ws
    assert newest["actor"]["user_id"] == m["admin"].id
    assert newest["actor"]["api_key_id"] == created["id"]
    # The session-made key before it carries no key id.
    assert items[1]["action"] == "api_key.created" and items[1]["actor"]["api_key_id"] is None


async def test_bearer_takes_no_cookie_and_needs_no_csrf(team):
    ws, m = team
    created = await create_api_key(m["editor"], ws)
    anon: AsyncClient = m["anon"]
    response = await anon.post(f"/workspaces/{ws}/prompts", json={"name": "n"}, headers=bearer(created["key"]))
    assert response.status_code == 201, response.text
    assert "set-cookie" not in response.headers
    assert not anon.cookies
