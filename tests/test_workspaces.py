"""Workspaces, members, invitations, roles and the audit log, through the public API."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy import text

from backend.models import metadata
from tests.factories import PASSWORD, Account, add_member, assert_problem, create_api_key, create_workspace, signup

PROBLEM = "application/problem+json"


# Local helpers




def new_email() -> str:
    return f"ws-{uuid.uuid4().hex[:10]}@example.com"


async def invite(admin: Account, ws: str, email: str, role: str = "editor") -> dict[str, Any]:
    response = await admin.client.post(f"/workspaces/{ws}/members", json={"email": email, "role": role})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "invited", body
    return body


async def signup_with_token(client: AsyncClient, email: str, token: str) -> Response:
    return await client.post(
        "/auth/signup", json={"email": email, "password": PASSWORD, "name": "Invited", "invite_token": token}
    )


async def role_in_db(db_engine, ws: str, user_id: str) -> str | None:
    async with db_engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT role FROM membership WHERE workspace_id = :ws AND user_id = :u"),
                {"ws": ws, "u": user_id},
            )
        ).scalar_one_or_none()


async def dump_database(db_engine) -> str:
    """Every row of every table of the metadata, as PostgreSQL's row text (bytea appears as hex)."""
    lines: list[str] = []
    async with db_engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = await conn.execute(text(f'SELECT t::text FROM "{table.name}" AS t'))
            lines.extend(f"{table.name}: {row}" for row in rows.scalars())
    return "\n".join(lines)


async def statuses(*requests) -> list[int | str]:
    """Runs requests concurrently; an exception escaping the app counts as a 500."""
    results = await asyncio.gather(*requests, return_exceptions=True)
    return [r.status_code if isinstance(r, Response) else f"500 {type(r).__name__}" for r in results]


async def my_workspace_ids(account: Account) -> list[str]:
    response = await account.client.get("/me")
    assert response.status_code == 200, response.text
    return [w["id"] for w in response.json()["workspaces"]]


@pytest.fixture
async def team(make_client):
    """A workspace with an owner, an admin, an editor, a viewer, and a stranger outside it."""
    owner = await signup(make_client())
    ws = await create_workspace(owner, "Team")
    members = {"owner": owner}
    for role in ("admin", "editor", "viewer"):
        member = await signup(make_client())
        await add_member(owner, ws, member, role)
        members[role] = member
    members["stranger"] = await signup(make_client())
    return ws, members


# Workspaces


async def test_create_workspace_makes_the_caller_owner(client, db_engine):
    owner = await signup(client)
    response = await client.post("/workspaces", json={"name": "Acme Corp"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert uuid.UUID(body["id"])
    assert body["name"] == "Acme Corp"
    assert body["role"] == "owner"
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", body["slug"]), body["slug"]
    assert await role_in_db(db_engine, body["id"], owner.id) == "owner"


async def test_workspace_validation(client):
    await signup(client)
    for bad in ({}, {"name": ""}, {"name": "x" * 101}, {"name": "ok", "extra": 1}):
        assert_problem(await client.post("/workspaces", json=bad), 422)
    problem = assert_problem(await client.post("/workspaces", json={"name": "ok", "colour": "red"}), 422)
    assert ["body", "colour"] in [error["loc"] for error in problem["errors"]]


async def test_same_name_gets_a_different_slug(client, make_client, db_engine):
    await signup(client)
    other = await signup(make_client())
    first = (await client.post("/workspaces", json={"name": "Acme"})).json()
    second = (await client.post("/workspaces", json={"name": "Acme"})).json()
    third = (await other.client.post("/workspaces", json={"name": "Acme"})).json()
    slugs = {first["slug"], second["slug"], third["slug"]}
    assert len(slugs) == 3, slugs
    async with db_engine.connect() as conn:
        stored = (await conn.execute(text("SELECT slug FROM workspace"))).scalars().all()
    assert sorted(stored) == sorted(slugs)


async def test_list_shows_only_my_workspaces(make_client):
    alice = await signup(make_client())
    bob = await signup(make_client())
    a1 = await create_workspace(alice, "A1")
    a2 = await create_workspace(alice, "A2")
    b1 = await create_workspace(bob, "B1")
    alice_list = (await alice.client.get("/workspaces")).json()
    bob_list = (await bob.client.get("/workspaces")).json()
    assert sorted(w["id"] for w in alice_list) == sorted([a1, a2])
    assert [w["id"] for w in bob_list] == [b1]
    assert all(w["role"] == "owner" for w in alice_list + bob_list)


async def test_get_workspace_by_role(team):
    ws, m = team
    for role in ("owner", "admin", "editor", "viewer"):
        response = await m[role].client.get(f"/workspaces/{ws}")
        assert response.status_code == 200, response.text
        assert response.json()["id"] == ws and response.json()["role"] == role
    assert_problem(await m["stranger"].client.get(f"/workspaces/{ws}"), 404)
    assert_problem(await m["owner"].client.get(f"/workspaces/{uuid.uuid4()}"), 404)
    assert_problem(await m["owner"].client.get("/workspaces/not-a-uuid"), 422)


async def test_patch_workspace_needs_admin(team, db_engine):
    ws, m = team
    response = await m["admin"].client.patch(f"/workspaces/{ws}", json={"name": "Renamed"})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Renamed"
    assert (await m["viewer"].client.get(f"/workspaces/{ws}")).json()["name"] == "Renamed"

    assert_problem(await m["editor"].client.patch(f"/workspaces/{ws}", json={"name": "Editor"}), 403)
    assert_problem(await m["viewer"].client.patch(f"/workspaces/{ws}", json={"name": "Viewer"}), 403)
    assert_problem(await m["stranger"].client.patch(f"/workspaces/{ws}", json={"name": "Stranger"}), 404)
    async with db_engine.connect() as conn:
        name = (await conn.execute(text("SELECT name FROM workspace WHERE id = :ws"), {"ws": ws})).scalar_one()
    assert name == "Renamed"


async def test_delete_workspace_owner_only(team, db_engine):
    ws, m = team
    for role in ("admin", "editor", "viewer"):
        assert_problem(await m[role].client.delete(f"/workspaces/{ws}"), 403)
    assert_problem(await m["stranger"].client.delete(f"/workspaces/{ws}"), 404)
    assert (await m["admin"].client.get(f"/workspaces/{ws}")).status_code == 200

    response = await m["owner"].client.delete(f"/workspaces/{ws}")
    assert response.status_code == 202, response.text
    assert response.json()["id"] == ws

    for role in ("owner", "admin", "viewer"):
        assert_problem(await m[role].client.get(f"/workspaces/{ws}"), 404)
        assert ws not in [w["id"] for w in (await m[role].client.get("/workspaces")).json()]
        assert ws not in await my_workspace_ids(m[role])
    assert_problem(await m["owner"].client.delete(f"/workspaces/{ws}"), 404)
    async with db_engine.connect() as conn:
        live = (
            await conn.execute(
                text("SELECT count(*) FROM workspace WHERE id = :ws AND deleted_at IS NULL"), {"ws": ws}
            )
        ).scalar_one()
    assert live == 0  # either gone already or marked deleted


async def test_concurrent_same_name_workspaces_get_distinct_slugs(client, db_engine):
    await signup(client)
    codes = await statuses(*(client.post("/workspaces", json={"name": "Race"}) for _ in range(5)))
    assert codes == [201] * 5, codes
    async with db_engine.connect() as conn:
        slugs = (await conn.execute(text("SELECT slug FROM workspace"))).scalars().all()
    assert len(set(slugs)) == 5


# Members


async def test_add_registered_user(client, make_client, db_engine):
    owner = await signup(client)
    ws = await create_workspace(owner)
    newcomer = await signup(make_client())
    response = await client.post(f"/workspaces/{ws}/members", json={"email": newcomer.email.upper(), "role": "viewer"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "added"
    assert body["member"]["user_id"] == newcomer.id
    assert body["member"]["email"] == newcomer.email
    assert body["member"]["role"] == "viewer"
    assert await role_in_db(db_engine, ws, newcomer.id) == "viewer"
    assert ws in await my_workspace_ids(newcomer)

    members = (await newcomer.client.get(f"/workspaces/{ws}/members")).json()
    assert {(x["user_id"], x["role"]) for x in members} == {(owner.id, "owner"), (newcomer.id, "viewer")}

    again = await client.post(f"/workspaces/{ws}/members", json={"email": newcomer.email, "role": "admin"})
    assert_problem(again, 409)
    assert await role_in_db(db_engine, ws, newcomer.id) == "viewer"


async def test_concurrent_adds_of_one_user_give_one_201_and_409s(client, make_client, db_engine):
    owner = await signup(client)
    ws = await create_workspace(owner)
    newcomer = await signup(make_client())
    body = {"email": newcomer.email, "role": "viewer"}
    codes = await statuses(*(client.post(f"/workspaces/{ws}/members", json=body) for _ in range(5)))
    assert sorted(codes, key=str) == [201, 409, 409, 409, 409], codes
    assert await role_in_db(db_engine, ws, newcomer.id) == "viewer"


async def test_concurrent_invitations_of_one_address_leave_one_open(client, db_engine):
    owner = await signup(client)
    ws = await create_workspace(owner)
    body = {"email": new_email(), "role": "viewer"}
    codes = await statuses(*(client.post(f"/workspaces/{ws}/members", json=body) for _ in range(5)))
    assert all(code in (201, 409) for code in codes), codes
    assert 201 in codes
    async with db_engine.connect() as conn:
        open_count = (
            await conn.execute(text("SELECT count(*) FROM invitation WHERE accepted_at IS NULL AND revoked_at IS NULL"))
        ).scalar_one()
    assert open_count == 1


async def test_adding_members_needs_admin(team):
    ws, m = team
    outsider = new_email()
    for role in ("editor", "viewer"):
        response = await m[role].client.post(f"/workspaces/{ws}/members", json={"email": outsider})
        assert_problem(response, 403)
    assert_problem(await m["stranger"].client.post(f"/workspaces/{ws}/members", json={"email": outsider}), 404)
    assert_problem(
        await m["owner"].client.post(f"/workspaces/{ws}/members", json={"email": outsider, "role": "god"}), 422
    )
    response = await m["admin"].client.post(f"/workspaces/{ws}/members", json={"email": outsider, "role": "owner"})
    assert_problem(response, 403)


async def test_unknown_email_gets_an_invitation(client, db_engine):
    owner = await signup(client)
    ws = await create_workspace(owner)
    email = new_email()
    before = datetime.now(UTC)
    body = await invite(owner, ws, email, "viewer")
    token = body["invite_token"]
    assert isinstance(token, str) and len(token) >= 32
    assert token in body["invite_url"]
    assert body["invite_url"].startswith("http")
    expires = datetime.fromisoformat(body["expires_at"])
    assert expires.tzinfo is not None
    assert before + timedelta(days=1) < expires < before + timedelta(days=31)
    async with db_engine.connect() as conn:
        row = (await conn.execute(text("SELECT email, role FROM invitation"))).one()
    assert row.email == email and row.role == "viewer"
    dump = await dump_database(db_engine)
    assert email in dump  # the dump sees the invitation...
    assert token not in dump and token.encode().hex() not in dump  # ...but not its token
    # Nobody joined yet.
    members = (await client.get(f"/workspaces/{ws}/members")).json()
    assert [x["user_id"] for x in members] == [owner.id]


async def test_signup_without_token_never_joins_and_with_token_joins(client, make_client):
    owner = await signup(client)
    ws = await create_workspace(owner)
    uninvited, invited = new_email(), new_email()
    await invite(owner, ws, uninvited, "editor")
    token = (await invite(owner, ws, invited, "viewer"))["invite_token"]

    no_token = await signup(make_client(), uninvited)
    assert await my_workspace_ids(no_token) == []
    assert_problem(await no_token.client.get(f"/workspaces/{ws}"), 404)

    joined_client = make_client()
    response = await signup_with_token(joined_client, invited, token)
    assert response.status_code == 201, response.text
    me = (await joined_client.get("/me")).json()
    assert [(w["id"], w["role"]) for w in me["workspaces"]] == [(ws, "viewer")]
    members = {x["email"]: x["role"] for x in (await client.get(f"/workspaces/{ws}/members")).json()}
    assert members == {owner.email: "owner", invited: "viewer"}


async def test_invite_token_is_single_use(client, make_client):
    owner = await signup(client)
    ws = await create_workspace(owner)
    email = new_email()
    token = (await invite(owner, ws, email))["invite_token"]
    assert (await signup_with_token(make_client(), email, token)).status_code == 201
    problem = assert_problem(await signup_with_token(make_client(), email, token), 422)
    assert ["body", "invite_token"] in [error["loc"] for error in problem["errors"]]
    assert_problem(await signup_with_token(make_client(), new_email(), token), 422)


async def test_invite_token_is_bound_to_its_email(client, make_client, db_engine):
    owner = await signup(client)
    ws = await create_workspace(owner)
    email = new_email()
    token = (await invite(owner, ws, email))["invite_token"]
    thief = new_email()
    assert_problem(await signup_with_token(make_client(), thief, token), 422)
    async with db_engine.connect() as conn:
        count = (
            await conn.execute(text("SELECT count(*) FROM user_account WHERE email = :e"), {"e": thief})
        ).scalar_one()
    assert count == 0
    # The invitation was not consumed by the failed attempt, and the address matches in any case.
    assert (await signup_with_token(make_client(), email.upper(), token)).status_code == 201


async def test_expired_invitation_is_refused(client, make_client, db_engine):
    owner = await signup(client)
    ws = await create_workspace(owner)
    email = new_email()
    token = (await invite(owner, ws, email))["invite_token"]
    async with db_engine.begin() as conn:
        await conn.execute(text("UPDATE invitation SET expires_at = now() - interval '1 minute'"))
    assert_problem(await signup_with_token(make_client(), email, token), 422)
    assert (await client.get(f"/workspaces/{ws}/invitations")).json() == []


async def test_reinviting_replaces_the_old_token(client, make_client):
    owner = await signup(client)
    ws = await create_workspace(owner)
    email = new_email()
    old = (await invite(owner, ws, email, "viewer"))["invite_token"]
    new = (await invite(owner, ws, email, "admin"))["invite_token"]
    assert old != new
    assert_problem(await signup_with_token(make_client(), email, old), 422)
    joined = make_client()
    assert (await signup_with_token(joined, email, new)).status_code == 201
    assert [w["role"] for w in (await joined.get("/me")).json()["workspaces"]] == ["admin"]


async def test_invitation_to_a_deleted_workspace_is_unusable(client, make_client):
    owner = await signup(client)
    ws = await create_workspace(owner)
    email = new_email()
    token = (await invite(owner, ws, email))["invite_token"]
    assert (await client.delete(f"/workspaces/{ws}")).status_code == 202
    assert_problem(await signup_with_token(make_client(), email, token), 422)


async def test_invitations_list_and_revoke(team, make_client):
    ws, m = team
    email = new_email()
    body = await invite(m["admin"], ws, email, "editor")
    token = body["invite_token"]

    listing = await m["admin"].client.get(f"/workspaces/{ws}/invitations")
    assert listing.status_code == 200, listing.text
    items = listing.json()
    assert [(i["email"], i["role"]) for i in items] == [(email, "editor")]
    assert items[0]["invite_token"] is None
    assert token not in listing.text
    invitation_id = items[0]["id"]

    assert_problem(await m["editor"].client.get(f"/workspaces/{ws}/invitations"), 403)
    assert_problem(await m["editor"].client.delete(f"/workspaces/{ws}/invitations/{invitation_id}"), 403)
    assert_problem(await m["stranger"].client.get(f"/workspaces/{ws}/invitations"), 404)

    response = await m["owner"].client.delete(f"/workspaces/{ws}/invitations/{invitation_id}")
    assert response.status_code == 204, response.text
    assert (await m["admin"].client.get(f"/workspaces/{ws}/invitations")).json() == []
    assert_problem(await m["owner"].client.delete(f"/workspaces/{ws}/invitations/{invitation_id}"), 404)
    assert_problem(await signup_with_token(make_client(), email, token), 422)


async def test_accepted_invitation_leaves_the_list(client, make_client):
    owner = await signup(client)
    ws = await create_workspace(owner)
    email = new_email()
    token = (await invite(owner, ws, email))["invite_token"]
    assert len((await client.get(f"/workspaces/{ws}/invitations")).json()) == 1
    assert (await signup_with_token(make_client(), email, token)).status_code == 201
    assert (await client.get(f"/workspaces/{ws}/invitations")).json() == []


async def test_adding_a_registered_user_voids_their_open_invitation(client, make_client):
    owner = await signup(client)
    ws = await create_workspace(owner)
    email = new_email()
    await invite(owner, ws, email, "viewer")
    await signup(make_client(), email)  # without the token: not a member
    added = await client.post(f"/workspaces/{ws}/members", json={"email": email, "role": "editor"})
    assert added.status_code == 201 and added.json()["status"] == "added"
    assert (await client.get(f"/workspaces/{ws}/invitations")).json() == []


# Roles


async def test_admin_changes_roles_below_owner(team, db_engine):
    ws, m = team
    admin = m["admin"].client
    for target, new_role in (("editor", "viewer"), ("viewer", "admin"), ("editor", "editor"), ("viewer", "editor")):
        response = await admin.patch(f"/workspaces/{ws}/members/{m[target].id}", json={"role": new_role})
        assert response.status_code == 200, response.text
        assert response.json()["role"] == new_role and response.json()["user_id"] == m[target].id
        assert await role_in_db(db_engine, ws, m[target].id) == new_role


async def test_admin_cannot_grant_or_touch_owner(team, db_engine):
    ws, m = team
    admin = m["admin"].client
    assert_problem(await admin.patch(f"/workspaces/{ws}/members/{m['editor'].id}", json={"role": "owner"}), 403)
    assert await role_in_db(db_engine, ws, m["editor"].id) == "editor"
    assert_problem(await admin.patch(f"/workspaces/{ws}/members/{m['admin'].id}", json={"role": "owner"}), 403)
    assert_problem(await admin.patch(f"/workspaces/{ws}/members/{m['owner'].id}", json={"role": "viewer"}), 403)
    assert_problem(await admin.delete(f"/workspaces/{ws}/members/{m['owner'].id}"), 403)
    assert await role_in_db(db_engine, ws, m["owner"].id) == "owner"
    assert await role_in_db(db_engine, ws, m["admin"].id) == "admin"


async def test_owner_grants_owner_and_owners_can_demote_each_other(team, db_engine):
    ws, m = team
    owner = m["owner"].client
    response = await owner.patch(f"/workspaces/{ws}/members/{m['admin'].id}", json={"role": "owner"})
    assert response.status_code == 200, response.text
    assert await role_in_db(db_engine, ws, m["admin"].id) == "owner"
    # The new owner may demote the first one: another owner remains.
    response = await m["admin"].client.patch(f"/workspaces/{ws}/members/{m['owner'].id}", json={"role": "admin"})
    assert response.status_code == 200, response.text
    assert await role_in_db(db_engine, ws, m["owner"].id) == "admin"
    # ...and now the demoted one is an admin: it cannot touch the owner.
    assert_problem(await owner.patch(f"/workspaces/{ws}/members/{m['admin'].id}", json={"role": "viewer"}), 403)


async def test_last_owner_cannot_be_demoted_or_removed(team, db_engine):
    ws, m = team
    owner = m["owner"]
    problem = assert_problem(
        await owner.client.patch(f"/workspaces/{ws}/members/{owner.id}", json={"role": "admin"}), 409
    )
    assert problem["type"].endswith("/last-owner")
    assert_problem(await owner.client.delete(f"/workspaces/{ws}/members/{owner.id}"), 409)
    assert await role_in_db(db_engine, ws, owner.id) == "owner"

    # With a second owner, the first may leave.
    assert (
        await owner.client.patch(f"/workspaces/{ws}/members/{m['admin'].id}", json={"role": "owner"})
    ).status_code == 200
    response = await owner.client.delete(f"/workspaces/{ws}/members/{owner.id}")
    assert response.status_code == 204, response.text
    assert await role_in_db(db_engine, ws, owner.id) is None
    # The remaining sole owner is protected in turn.
    assert_problem(await m["admin"].client.delete(f"/workspaces/{ws}/members/{m['admin'].id}"), 409)


async def test_members_can_leave_and_viewers_cannot_remove_others(team, db_engine):
    ws, m = team
    assert_problem(await m["viewer"].client.delete(f"/workspaces/{ws}/members/{m['editor'].id}"), 403)
    assert_problem(await m["editor"].client.delete(f"/workspaces/{ws}/members/{m['viewer'].id}"), 403)
    assert_problem(await m["viewer"].client.patch(f"/workspaces/{ws}/members/{m['viewer'].id}",
                                                  json={"role": "admin"}), 403)
    assert await role_in_db(db_engine, ws, m["editor"].id) == "editor"
    assert await role_in_db(db_engine, ws, m["viewer"].id) == "viewer"

    response = await m["viewer"].client.delete(f"/workspaces/{ws}/members/{m['viewer'].id}")
    assert response.status_code == 204, response.text
    assert await role_in_db(db_engine, ws, m["viewer"].id) is None
    assert_problem(await m["viewer"].client.get(f"/workspaces/{ws}"), 404)
    assert ws not in await my_workspace_ids(m["viewer"])


async def test_admin_removes_members(team, db_engine):
    ws, m = team
    response = await m["admin"].client.delete(f"/workspaces/{ws}/members/{m['editor'].id}")
    assert response.status_code == 204, response.text
    assert await role_in_db(db_engine, ws, m["editor"].id) is None
    assert_problem(await m["editor"].client.get(f"/workspaces/{ws}"), 404)
    assert_problem(await m["admin"].client.delete(f"/workspaces/{ws}/members/{m['editor'].id}"), 404)


async def test_unknown_member_is_404(team):
    ws, m = team
    nobody = uuid.uuid4()
    assert_problem(await m["admin"].client.patch(f"/workspaces/{ws}/members/{nobody}", json={"role": "viewer"}), 404)
    assert_problem(await m["admin"].client.delete(f"/workspaces/{ws}/members/{nobody}"), 404)
    # A registered user who is not a member is unknown here too.
    stranger = m["stranger"].id
    assert_problem(await m["admin"].client.patch(f"/workspaces/{ws}/members/{stranger}", json={"role": "viewer"}), 404)
    assert_problem(
        await m["admin"].client.patch(f"/workspaces/{ws}/members/{m['editor'].id}", json={"role": "root"}), 422
    )


# Audit log


async def _audit(account: Account, ws: str, **params: Any) -> Response:
    return await account.client.get(f"/workspaces/{ws}/audit-log", params=params)


async def test_audit_log_records_member_and_key_changes(client, make_client):
    owner = await signup(client)
    ws = await create_workspace(owner)
    member = await signup(make_client())
    await add_member(owner, ws, member, "viewer")
    invited_email = new_email()
    invitation = await invite(owner, ws, invited_email, "editor")
    assert (
        await client.patch(f"/workspaces/{ws}/members/{member.id}", json={"role": "editor"})
    ).status_code == 200
    assert (await client.delete(f"/workspaces/{ws}/members/{member.id}")).status_code == 204
    key = await create_api_key(owner, ws, "audited")
    assert (await client.delete(f"/workspaces/{ws}/api-keys/{key['id']}")).status_code == 204

    response = await _audit(owner, ws)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["next_cursor"] is None
    items = page["items"]
    assert [i["action"] for i in items] == [
        "api_key.revoked",
        "api_key.created",
        "member.removed",
        "member.role_changed",
        "member.invited",
        "member.added",
    ]
    created = [datetime.fromisoformat(i["created_at"]) for i in items]
    assert created == sorted(created, reverse=True)
    assert len({i["id"] for i in items}) == len(items)
    for item in items:
        assert item["actor"]["user_id"] == owner.id
        assert item["actor"]["email"] == owner.email
        assert item["actor"]["api_key_id"] is None
        assert item["client_address"] == "127.0.0.1"

    by_action = {i["action"]: i for i in items}
    added = by_action["member.added"]
    assert added["target"] == {"type": "user", "id": member.id}
    assert added["after"]["role"] == "viewer" and added["after"]["email"] == member.email
    invited = by_action["member.invited"]
    assert invited["target"] == {"type": "invitation", "id": invitation["invitation"]["id"]}
    assert invited["after"]["email"] == invited_email and invited["after"]["role"] == "editor"
    changed = by_action["member.role_changed"]
    assert changed["target"] == {"type": "user", "id": member.id}
    assert changed["before"] == {"role": "viewer"} and changed["after"] == {"role": "editor"}
    removed = by_action["member.removed"]
    assert removed["target"] == {"type": "user", "id": member.id}
    assert removed["before"]["role"] == "editor" and removed["after"] is None
    key_created = by_action["api_key.created"]
    assert key_created["target"] == {"type": "api_key", "id": key["id"]}
    assert key_created["after"]["name"] == "audited" and key_created["after"]["prefix"] == key["prefix"]
    key_revoked = by_action["api_key.revoked"]
    assert key_revoked["target"] == {"type": "api_key", "id": key["id"]}
    assert key_revoked["before"]["prefix"] == key["prefix"]

    # Secrets are never in the log.
    secret = key["key"][len(key["prefix"]) :].lstrip("_")
    assert key["key"] not in response.text and secret not in response.text
    assert invitation["invite_token"] not in response.text


async def test_audit_log_records_joining_by_invitation(client, make_client):
    owner = await signup(client)
    ws = await create_workspace(owner)
    email = new_email()
    token = (await invite(owner, ws, email, "viewer"))["invite_token"]
    joined_client = make_client()
    joined = await signup_with_token(joined_client, email, token)
    assert joined.status_code == 201
    items = (await _audit(owner, ws)).json()["items"]
    newest = items[0]
    assert newest["action"] == "member.added"
    assert newest["target"] == {"type": "user", "id": joined.json()["id"]}
    assert newest["after"]["role"] == "viewer"


async def test_audit_log_needs_admin(team):
    ws, m = team
    for role in ("owner", "admin"):
        assert (await _audit(m[role], ws)).status_code == 200
    for role in ("editor", "viewer"):
        assert_problem(await _audit(m[role], ws), 403)
    assert_problem(await _audit(m["stranger"], ws), 404)


async def test_audit_log_is_per_workspace(make_client):
    alice = await signup(make_client())
    bob = await signup(make_client())
    ws_a = await create_workspace(alice, "A")
    ws_b = await create_workspace(alice, "B")
    await add_member(alice, ws_a, bob, "admin")
    assert [i["action"] for i in (await _audit(alice, ws_a)).json()["items"]] == ["member.added"]
    assert (await _audit(alice, ws_b)).json()["items"] == []


async def test_audit_log_pagination(client, make_client):
    owner = await signup(client)
    ws = await create_workspace(owner)
    for n in range(7):
        await create_api_key(owner, ws, f"k{n}")
    full = (await _audit(owner, ws, limit=200)).json()
    assert full["next_cursor"] is None
    all_ids = [i["id"] for i in full["items"]]
    assert len(all_ids) == 7

    for limit in (1, 2, 3, 7):
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": limit}
            if cursor:
                params["cursor"] = cursor
            response = await _audit(owner, ws, **params)
            assert response.status_code == 200, response.text
            page = response.json()
            assert len(page["items"]) <= limit
            seen.extend(i["id"] for i in page["items"])
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert pages < 20
        assert seen == all_ids, limit
    # An exact fit announces no further page.
    assert (await _audit(owner, ws, limit=7)).json()["next_cursor"] is None
    assert (await _audit(owner, ws, limit=6)).json()["next_cursor"] is not None


def _cursor_of(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    ["garbage!!", "bm90IGpzb24", _cursor_of(["x"]), _cursor_of({"a": 1}), _cursor_of(5), _cursor_of(["x", "y"])],
)
async def test_audit_log_bad_cursor_is_422(client, cursor):
    owner = await signup(client)
    ws = await create_workspace(owner)
    problem = assert_problem(await _audit(owner, ws, cursor=cursor), 422)
    assert ["query", "cursor"] in [error["loc"] for error in problem["errors"]]


async def test_audit_log_cursor_with_a_non_string_id_is_422(client):
    owner = await signup(client)
    ws = await create_workspace(owner)
    response = await _audit(owner, ws, cursor=_cursor_of(["2026-01-01T00:00:00+00:00", 5]))
    assert_problem(response, 422)


async def test_audit_log_limit_bounds(client):
    owner = await signup(client)
    ws = await create_workspace(owner)
    assert_problem(await _audit(owner, ws, limit=0), 422)
    assert_problem(await _audit(owner, ws, limit=201), 422)
