"""Identity: my sessions (list, revoke one, revoke the others), changing my password, and what an instance
admin can do to accounts (list, disable, enable, sign out everywhere)."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from tests.factories import PASSWORD, Account, assert_problem, create_api_key, create_workspace, signup

NEW_PASSWORD = "a different horse entirely"


async def login(make_client, email: str, password: str = PASSWORD):
    client = make_client()
    response = await client.post("/auth/login", json={"email": email, "password": password})
    return client, response


async def test_my_sessions_list_and_revoke(client, make_client):
    me = await signup(client)
    laptop, response = await login(make_client, me.email)
    assert response.status_code == 200
    sessions = (await client.get("/me/sessions")).json()
    assert len(sessions) == 2 and [s["current"] for s in sessions].count(True) == 1
    other = next(s for s in sessions if not s["current"])
    assert other["client_address"] == "127.0.0.1" and other["expires_at"] > other["created_at"]

    assert (await client.delete(f"/me/sessions/{other['id']}")).status_code == 204
    assert_problem(await laptop.get("/me"), 401)
    assert_problem(await client.delete(f"/me/sessions/{other['id']}"), 404)  # already revoked
    assert_problem(await client.delete(f"/me/sessions/{uuid.uuid4()}"), 404)
    assert (await client.get("/me")).status_code == 200


async def test_someone_elses_session_cannot_be_revoked(client, make_client):
    await signup(client)
    stranger = await signup(make_client())
    [theirs] = (await stranger.client.get("/me/sessions")).json()
    assert_problem(await client.delete(f"/me/sessions/{theirs['id']}"), 404)
    assert (await stranger.client.get("/me")).status_code == 200


async def test_revoke_others_keeps_only_this_session(client, make_client):
    me = await signup(client)
    phones = [(await login(make_client, me.email))[0] for _ in range(2)]
    assert (await client.post("/me/sessions/revoke-others")).status_code == 204
    for phone in phones:
        assert_problem(await phone.get("/me"), 401)
    assert [s["current"] for s in (await client.get("/me/sessions")).json()] == [True]


async def test_an_api_key_cannot_manage_sessions(client, make_client):
    me = await signup(client)
    ws = await create_workspace(me)
    key = (await create_api_key(me, ws))["key"]
    bearer = make_client()
    bearer.headers["Authorization"] = f"Bearer {key}"
    assert_problem(await bearer.get("/me/sessions"), 403)
    change = {"current_password": PASSWORD, "new_password": "x" * 12}
    assert_problem(await bearer.post("/me/password", json=change), 403)


async def test_changing_the_password_signs_out_every_other_session(client, make_client, db_engine):
    me = await signup(client)
    laptop, _ = await login(make_client, me.email)
    wrong = await client.post("/me/password", json={"current_password": "not it at all", "new_password": NEW_PASSWORD})
    assert_problem(wrong, 403, "wrong-password")
    same = await client.post("/me/password", json={"current_password": PASSWORD, "new_password": PASSWORD})
    assert_problem(same, 409)
    assert_problem(await client.post("/me/password", json={"current_password": PASSWORD, "new_password": "short"}), 422)
    assert (await laptop.get("/me")).status_code == 200  # nothing changed yet

    changed = await client.post("/me/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert changed.status_code == 204
    assert_problem(await laptop.get("/me"), 401)
    assert (await client.get("/me")).status_code == 200
    assert (await login(make_client, me.email))[1].status_code == 401
    assert (await login(make_client, me.email, NEW_PASSWORD))[1].status_code == 200
    async with db_engine.connect() as conn:
        query = text("SELECT action, after FROM audit_entry WHERE action = 'password.changed'")
        audit = (await conn.execute(query)).all()
    assert len(audit) == 1 and audit[0].after == {"other_sessions_revoked": 1}
    assert NEW_PASSWORD not in str(audit)


async def _admin_and_user(client, make_client) -> tuple[Account, Account]:
    admin = await signup(client)  # the first account of an instance is its admin
    user = await signup(make_client())
    me = (await client.get("/me")).json()
    assert me["is_instance_admin"] is True
    return admin, user


async def test_only_instance_admins_administer_accounts(client, make_client):
    admin, user = await _admin_and_user(client, make_client)
    assert_problem(await user.client.get("/admin/users"), 403)
    assert_problem(await user.client.patch(f"/admin/users/{admin.id}", json={"disabled": True}), 403)
    ws = await create_workspace(admin)
    key = (await create_api_key(admin, ws))["key"]
    bearer = make_client()
    bearer.headers["Authorization"] = f"Bearer {key}"
    assert_problem(await bearer.get("/admin/users"), 403)  # an API key is never an instance admin


async def test_an_admin_lists_searches_and_pages_through_accounts(client, make_client):
    admin, user = await _admin_and_user(client, make_client)
    for _ in range(3):
        await signup(make_client())
    page = (await client.get("/admin/users", params={"limit": 2})).json()
    rest = (await client.get("/admin/users", params={"cursor": page["next_cursor"], "limit": 10})).json()
    emails = [u["email"] for u in page["items"] + rest["items"]]
    assert len(emails) == 5 and emails[0] == admin.email and rest["next_cursor"] is None
    found = (await client.get("/admin/users", params={"q": user.email.upper()})).json()["items"]
    assert [u["id"] for u in found] == [user.id]
    assert found[0]["live_sessions"] == 1 and found[0]["disabled"] is False


async def test_disabling_signs_out_everywhere_and_refuses_login_until_enabled(client, make_client, db_engine):
    admin, user = await _admin_and_user(client, make_client)
    disabled = await client.patch(f"/admin/users/{user.id}", json={"disabled": True})
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    assert disabled.json()["live_sessions"] == 0
    assert_problem(await user.client.get("/me"), 401)
    assert (await login(make_client, user.email))[1].status_code == 401
    enabled = await client.patch(f"/admin/users/{user.id}", json={"disabled": False})
    assert enabled.json()["disabled"] is False
    assert (await login(make_client, user.email))[1].status_code == 200
    assert_problem(await client.patch(f"/admin/users/{admin.id}", json={"disabled": True}), 409)
    assert_problem(await client.patch(f"/admin/users/{uuid.uuid4()}", json={"disabled": True}), 404)
    async with db_engine.connect() as conn:
        actions = await conn.execute(text("SELECT action FROM audit_entry WHERE target_id = :id"), {"id": user.id})
        assert [row.action for row in actions] == ["user.updated", "user.updated"]


async def test_an_admin_signs_an_account_out_everywhere(client, make_client):
    _admin, user = await _admin_and_user(client, make_client)
    second, _ = await login(make_client, user.email)
    reset = await client.post(f"/admin/users/{user.id}/revoke-sessions")
    assert reset.status_code == 200 and reset.json()["live_sessions"] == 0
    assert_problem(await user.client.get("/me"), 401)
    assert_problem(await second.get("/me"), 401)
    assert (await login(make_client, user.email))[1].status_code == 200  # the account itself still works


async def test_i_can_change_my_name_but_not_with_an_api_key(client, make_client):
    me = await signup(client)
    changed = await client.patch("/me", json={"name": "  Ada Lovelace "})
    assert changed.status_code == 200 and changed.json()["name"] == "Ada Lovelace"
    assert (await client.get("/me")).json()["name"] == "Ada Lovelace"
    assert_problem(await client.patch("/me", json={"name": "   "}), 422)
    assert_problem(await client.patch("/me", json={"name": ""}), 422)
    ws = await create_workspace(me)
    bearer = make_client()
    bearer.headers["Authorization"] = f"Bearer {(await create_api_key(me, ws))['key']}"
    assert_problem(await bearer.patch("/me", json={"name": "Key"}), 403)
    assert (await client.get("/me")).json()["name"] == "Ada Lovelace"
