"""Accounts and sessions: signup, login, logout, cookies, CSRF, login throttling, signup modes, /me."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import text

from backend.app import create_app
from backend.models import metadata
from tests.factories import PASSWORD, assert_problem, create_workspace, signup

PROBLEM = "application/problem+json"


# Local helpers




def parse_set_cookies(response: Response) -> dict[str, dict[str, Any]]:
    """Set-Cookie headers read textually: name -> {value, attrs (lower-cased names), raw}."""
    cookies: dict[str, dict[str, Any]] = {}
    for header in response.headers.get_list("set-cookie"):
        name_value, *attributes = [part.strip() for part in header.split(";")]
        name, _, value = name_value.partition("=")
        attrs: dict[str, str] = {}
        for attribute in attributes:
            key, _, val = attribute.partition("=")
            attrs[key.strip().lower()] = val.strip()
        cookies[name] = {"value": value, "attrs": attrs, "raw": header}
    return cookies


def new_email() -> str:
    return f"acc-{uuid.uuid4().hex[:10]}@example.com"


async def post_signup(client: AsyncClient, email: str, password: str = PASSWORD, **extra: Any) -> Response:
    return await client.post("/auth/signup", json={"email": email, "password": password, "name": "N", **extra})


async def post_login(client: AsyncClient, email: str, password: str = PASSWORD, **kw: Any) -> Response:
    return await client.post("/auth/login", json={"email": email, "password": password}, **kw)


async def dump_database(db_engine) -> str:
    """Every row of every table of the metadata, as PostgreSQL's row text (bytea appears as hex)."""
    lines: list[str] = []
    async with db_engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = await conn.execute(text(f'SELECT t::text FROM "{table.name}" AS t'))
            lines.extend(f"{table.name}: {row}" for row in rows.scalars())
    return "\n".join(lines)


class CsrfClient(AsyncClient):
    """Like the conftest client: echoes the csrf_token cookie in X-CSRF-Token on writes."""

    async def request(self, method: str, url, **kwargs):
        csrf = self.cookies.get("csrf_token")
        if csrf and method.upper() in {"POST", "PUT", "PATCH", "DELETE"}:
            headers = dict(kwargs.pop("headers", None) or {})
            headers.setdefault("X-CSRF-Token", csrf)
            kwargs["headers"] = headers
        return await super().request(method, url, **kwargs)


@pytest.fixture
async def build_app(settings, db_engine):
    """Apps on the same database and Redis keyspace as the test, with some settings changed."""
    built = []

    def factory(**overrides: Any):
        application = create_app(settings.model_copy(update=overrides))
        built.append(application)
        return application

    yield factory
    for application in built:
        if application.state.redis is not None:
            await application.state.redis.aclose()
        await application.state.engine.dispose()


@pytest.fixture
async def client_for():
    """Clients on any app: client_for(app, base_url=..., csrf=True)."""
    clients: list[AsyncClient] = []

    def factory(application, *, base_url: str = "http://testserver/api/v1", csrf: bool = True) -> AsyncClient:
        cls = CsrfClient if csrf else AsyncClient
        made = cls(transport=ASGITransport(app=application), base_url=base_url)
        clients.append(made)
        return made

    yield factory
    for made in clients:
        await made.aclose()


# Cookies


def _assert_session_cookies(response: Response, *, secure: bool) -> None:
    cookies = parse_set_cookies(response)
    session, csrf = cookies["pp_session"], cookies["csrf_token"]
    assert len(session["value"]) >= 32 and len(csrf["value"]) >= 32
    assert session["value"] != csrf["value"]

    assert "httponly" in session["attrs"], session["raw"]
    assert session["attrs"].get("samesite", "").lower() == "lax", session["raw"]
    assert session["attrs"].get("path") == "/", session["raw"]

    assert "httponly" not in csrf["attrs"], csrf["raw"]  # the SPA must be able to read it
    assert csrf["attrs"].get("samesite", "").lower() == "lax", csrf["raw"]
    assert csrf["attrs"].get("path") == "/", csrf["raw"]

    for cookie in (session, csrf):
        assert ("secure" in cookie["attrs"]) is secure, cookie["raw"]


async def test_signup_sets_httponly_session_and_readable_csrf_cookie(client, db_engine):
    email = new_email()
    response = await post_signup(client, email)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == email and body["name"] == "N"
    assert uuid.UUID(body["id"])
    assert not any("password" in key for key in body)
    _assert_session_cookies(response, secure=False)
    assert client.cookies.get("csrf_token") == parse_set_cookies(response)["csrf_token"]["value"]
    me = await client.get("/me")
    assert me.status_code == 200 and me.json()["id"] == body["id"]


@pytest.mark.parametrize("domain", ["corp.local", "lab.internal", "qa.test"])
async def test_addresses_on_internal_domains_are_accounts_too(make_client, domain):
    """Found by schemathesis (20 examples): `format: email` allows any domain, but email-validator refused
    special-use ones (.local, .test, …) with a 422. A self-hosted instance's people may live there; the
    address is never checked for delivery, so only its syntax counts."""
    email = f"ada-{uuid.uuid4().hex[:6]}@{domain}"
    client = make_client()
    assert (await post_signup(client, email)).status_code == 201
    assert (await post_login(make_client(), email)).status_code == 200
    assert (await client.post("/auth/forgot-password", json={"email": email})).status_code == 202
    refused = await post_signup(make_client(), f"ada@{domain}@x")
    assert refused.status_code == 422 and "email" in refused.text


async def test_a_password_keeps_its_surrounding_spaces(make_client):
    """Found by schemathesis (100 examples): request bodies strip strings, and passwords were stripped too
    (the validators meant to stop it ran before the stripping), so "   " passed `minLength` 1 in the
    document and was refused as empty. Whitespace is part of a password now, as given."""
    email = new_email()
    assert (await post_signup(make_client(), email, password="  spaced out  ")).status_code == 201
    assert (await post_login(make_client(), email, password="  spaced out  ")).status_code == 200
    assert (await post_login(make_client(), email, password="spaced out")).status_code == 401
    assert (await post_login(make_client(), email, password="   ")).status_code == 401  # not a 422


async def test_login_sets_the_same_cookies(client, make_client):
    account = await signup(client)
    response = await post_login(make_client(), account.email)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == account.id
    _assert_session_cookies(response, secure=False)


async def test_cookies_are_secure_over_https(app, client_for):
    https = client_for(app, base_url="https://testserver/api/v1")
    email = new_email()
    response = await post_signup(https, email)
    assert response.status_code == 201, response.text
    _assert_session_cookies(response, secure=True)
    response = await post_login(client_for(app, base_url="https://testserver/api/v1"), email)
    assert response.status_code == 200, response.text
    _assert_session_cookies(response, secure=True)


async def test_cookies_are_secure_when_forced_by_settings(build_app, client_for):
    forced = build_app(secure_cookies=True)
    email = new_email()
    response = await post_signup(client_for(forced), email)
    assert response.status_code == 201, response.text
    _assert_session_cookies(response, secure=True)
    response = await post_login(client_for(forced), email)
    assert response.status_code == 200, response.text
    _assert_session_cookies(response, secure=True)


# Login, logout, identity


async def test_login_wrong_password_and_unknown_email_answer_alike(client, make_client):
    account = await signup(client)
    ok = await post_login(make_client(), account.email)
    assert ok.status_code == 200, ok.text
    assert ok.json()["email"] == account.email

    wrong = await post_login(make_client(), account.email, "not the password at all")
    unknown = await post_login(make_client(), new_email(), "not the password at all")
    wrong_body = assert_problem(wrong, 401)
    unknown_body = assert_problem(unknown, 401)
    assert wrong_body == unknown_body  # no user enumeration
    assert "set-cookie" not in wrong.headers and "set-cookie" not in unknown.headers


async def test_failed_login_sets_no_session(make_client):
    account = await signup(make_client())
    attacker = make_client()
    assert (await post_login(attacker, account.email, "guess guess guess")).status_code == 401
    assert not attacker.cookies
    assert_problem(await attacker.get("/me"), 401)


async def test_logout_ends_the_session_on_the_server(client, make_client):
    account = await signup(client)
    token = client.cookies.get("pp_session")
    assert token
    logout_response = await client.post("/auth/logout")
    assert logout_response.status_code == 204, logout_response.text
    cleared = parse_set_cookies(logout_response)
    for name in ("pp_session", "csrf_token"):
        assert cleared[name]["attrs"].get("max-age") == "0", cleared[name]["raw"]
    assert_problem(await client.get("/me"), 401, "unauthenticated")

    # Replaying the old cookie does not work either: the session was revoked, not only forgotten.
    replay = make_client(csrf=False)
    replay.cookies.set("pp_session", token)
    assert_problem(await replay.get("/me"), 401)
    # And a fresh login still works.
    assert (await post_login(make_client(), account.email)).status_code == 200


async def test_email_is_case_insensitive(make_client, db_engine):
    response = await post_signup(make_client(), "Foo@Example.com")
    assert response.status_code == 201, response.text
    for variant in ("foo@example.com", "FOO@EXAMPLE.COM", "Foo@Example.com"):
        login = await post_login(make_client(), variant)
        assert login.status_code == 200, (variant, login.text)
        assert login.json()["id"] == response.json()["id"]
    async with db_engine.connect() as conn:
        emails = (await conn.execute(text("SELECT email FROM user_account"))).scalars().all()
    assert emails == ["foo@example.com"]


async def test_duplicate_email_is_409(make_client, db_engine):
    email = new_email()
    assert (await post_signup(make_client(), email)).status_code == 201
    assert_problem(await post_signup(make_client(), email), 409)
    assert_problem(await post_signup(make_client(), email.upper()), 409)
    async with db_engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM user_account"))).scalar_one()
    assert count == 1


async def test_me_lists_workspaces_with_roles_and_instance_admin_flag(make_client):
    first = await signup(make_client())
    second = await signup(make_client())
    ws_a = await create_workspace(first, "Alpha")
    ws_b = await create_workspace(second, "Beta")
    added = await first.client.post(f"/workspaces/{ws_a}/members", json={"email": second.email, "role": "editor"})
    assert added.status_code == 201, added.text

    me_first = (await first.client.get("/me")).json()
    me_second = (await second.client.get("/me")).json()
    assert me_first["id"] == first.id and me_first["email"] == first.email
    assert me_first["is_instance_admin"] is True
    assert me_second["is_instance_admin"] is False
    assert [(w["id"], w["name"], w["role"]) for w in me_first["workspaces"]] == [(ws_a, "Alpha", "owner")]
    assert {(w["id"], w["name"], w["role"]) for w in me_second["workspaces"]} == {
        (ws_a, "Alpha", "editor"),
        (ws_b, "Beta", "owner"),
    }


async def test_me_without_credentials_is_401(make_client):
    anonymous = make_client()
    assert_problem(await anonymous.get("/me"), 401, "unauthenticated")
    garbage = make_client(csrf=False)
    garbage.cookies.set("pp_session", "not-a-session")
    assert_problem(await garbage.get("/me"), 401)


async def test_no_credentials_is_401_before_body_validation(make_client):
    anonymous = make_client()
    assert_problem(await anonymous.post("/workspaces", json={"unexpected": 1}), 401)
    assert_problem(await anonymous.post("/workspaces", json={}), 401)


async def test_no_credentials_is_401_even_for_malformed_json(make_client):
    malformed = {"content": b"{not json", "headers": {"content-type": "application/json"}}
    assert_problem(await make_client().post("/workspaces", **malformed), 401)
    bad_key = {"content": b"{not json", "headers": {"content-type": "application/json", "Authorization": "Bearer x"}}
    assert_problem(await make_client().post("/workspaces", **bad_key), 401)
    # With credentials, the same body is a validation error naming the body.
    account = await signup(make_client())
    problem = assert_problem(await account.client.post("/workspaces", **malformed), 422)
    assert problem["errors"][0]["loc"][0] == "body"


# Password storage


async def test_password_is_stored_as_argon2id_with_owasp_parameters(client, db_engine):
    account = await signup(client)
    async with db_engine.connect() as conn:
        stored = (
            await conn.execute(text("SELECT password_hash FROM user_account WHERE id = :id"), {"id": account.id})
        ).scalar_one()
    match = re.fullmatch(r"\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+", stored)
    assert match, stored
    memory, time_cost, parallelism = (int(g) for g in match.groups())
    assert memory >= 19456
    assert time_cost >= 2
    assert parallelism >= 1
    assert PASSWORD not in stored


async def test_plaintext_password_is_in_no_column_of_any_table(make_client, db_engine):
    password = f"Plaintext-{uuid.uuid4().hex}"
    email = new_email()
    owner_client = make_client()
    assert (await post_signup(owner_client, email, password)).status_code == 201
    assert (await post_login(make_client(), email, password)).status_code == 200
    assert (await post_login(make_client(), email, password + "x")).status_code == 401
    ws = (await owner_client.post("/workspaces", json={"name": "Dump"})).json()["id"]
    assert (await owner_client.post(f"/workspaces/{ws}/api-keys", json={"name": "k"})).status_code == 201

    dump = await dump_database(db_engine)
    assert email in dump and "auth_session:" in dump  # the dump sees the rows
    assert password not in dump
    assert password.encode().hex() not in dump
    # Session and CSRF tokens are kept hashed as well.
    for secret in (owner_client.cookies.get("pp_session"), owner_client.cookies.get("csrf_token")):
        assert secret and secret not in dump and secret.encode().hex() not in dump


# CSRF


async def test_cookie_writes_need_the_csrf_header(make_client, db_engine):
    browser = make_client(csrf=False)
    await signup(browser)
    csrf = browser.cookies.get("csrf_token")
    assert csrf

    assert_problem(await browser.post("/workspaces", json={"name": "NoHeader"}), 403, "csrf-failed")
    assert_problem(
        await browser.post("/workspaces", json={"name": "Wrong"}, headers={"X-CSRF-Token": "wrong-value"}),
        403,
        "csrf-failed",
    )
    async with db_engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM workspace"))).scalar_one() == 0

    ok = await browser.post("/workspaces", json={"name": "Right"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201, ok.text
    ws = ok.json()["id"]

    # Reads need no header.
    assert (await browser.get("/workspaces")).status_code == 200
    assert (await browser.get(f"/workspaces/{ws}")).status_code == 200

    # PATCH and DELETE are checked too, and refused writes change nothing.
    assert_problem(await browser.patch(f"/workspaces/{ws}", json={"name": "Renamed"}), 403, "csrf-failed")
    assert_problem(await browser.delete(f"/workspaces/{ws}"), 403, "csrf-failed")
    current = (await browser.get(f"/workspaces/{ws}")).json()
    assert current["name"] == "Right"
    # Logout is a cookie POST as well.
    assert_problem(await browser.post("/auth/logout"), 403, "csrf-failed")
    assert (await browser.get("/me")).status_code == 200


async def test_csrf_token_is_bound_to_the_session(make_client):
    alice = make_client(csrf=False)
    bob = make_client(csrf=False)
    await signup(alice)
    await signup(bob)
    alice_session = alice.cookies.get("pp_session")

    # A forged pair (cookie == header, but not the session's token) is refused.
    forged = make_client(csrf=False)
    forged.cookies.set("pp_session", alice_session)
    forged.cookies.set("csrf_token", "attacker-chosen")
    response = await forged.post("/workspaces", json={"name": "x"}, headers={"X-CSRF-Token": "attacker-chosen"})
    assert_problem(response, 403, "csrf-failed")

    # Another session's valid token is refused too.
    bob_csrf = bob.cookies.get("csrf_token")
    crossed = make_client(csrf=False)
    crossed.cookies.set("pp_session", alice_session)
    crossed.cookies.set("csrf_token", bob_csrf)
    response = await crossed.post("/workspaces", json={"name": "x"}, headers={"X-CSRF-Token": bob_csrf})
    assert_problem(response, 403, "csrf-failed")


async def test_bearer_writes_need_no_csrf_header(client, make_client):
    owner = await signup(client)
    ws = await create_workspace(owner)
    key = (await client.post(f"/workspaces/{ws}/api-keys", json={"name": "ci"})).json()["key"]
    bearer = make_client(csrf=False)
    response = await bearer.post(
        f"/workspaces/{ws}/prompts", json={"name": "from-key"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 201, response.text
    response = await bearer.patch(
        f"/workspaces/{ws}", json={"name": "Renamed by key"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Renamed by key"


async def test_signup_and_login_check_origin(make_client, db_engine):
    email = new_email()
    foreign = {"Origin": "https://evil.example"}
    assert_problem(await make_client().post(
        "/auth/signup", json={"email": email, "password": PASSWORD, "name": "N"}, headers=foreign
    ), 403)
    async with db_engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM user_account"))).scalar_one() == 0

    same = {"Origin": "http://testserver"}
    response = await make_client().post(
        "/auth/signup", json={"email": email, "password": PASSWORD, "name": "N"}, headers=same
    )
    assert response.status_code == 201, response.text

    refused = make_client()
    response = await post_login(refused, email, headers=foreign)
    assert_problem(response, 403)
    assert "set-cookie" not in response.headers
    response = await post_login(refused, email, headers={"Origin": "http://testserver.evil.example"})
    assert_problem(response, 403)
    response = await post_login(make_client(), email, headers=same)
    assert response.status_code == 200, response.text


# Login throttling


async def test_account_is_throttled_after_ten_failures(make_client):
    victim = await signup(make_client())
    bystander = await signup(make_client())
    attacker = make_client()
    for attempt in range(10):
        response = await post_login(attacker, victim.email, f"wrong password {attempt}")
        assert_problem(response, 401)

    blocked = await post_login(make_client(), victim.email)  # the RIGHT password
    body = assert_problem(blocked, 429)
    retry_after = blocked.headers.get("retry-after")
    assert retry_after is not None and retry_after.isdigit(), retry_after
    assert 0 < int(retry_after) <= 900
    assert "set-cookie" not in blocked.headers
    # The account bucket ignores the case of the address.
    assert_problem(await post_login(make_client(), victim.email.upper()), 429)
    assert body["status"] == 429

    # Another account from the same address is not affected.
    assert (await post_login(make_client(), bystander.email)).status_code == 200


async def test_successful_login_resets_the_account_failures(make_client):
    account = await signup(make_client())
    for attempt in range(9):
        assert (await post_login(make_client(), account.email, f"wrong {attempt}")).status_code == 401
    assert (await post_login(make_client(), account.email)).status_code == 200
    for attempt in range(9):
        assert (await post_login(make_client(), account.email, f"again {attempt}")).status_code == 401
    assert (await post_login(make_client(), account.email)).status_code == 200


async def test_address_is_throttled_across_accounts(build_app, client_for):
    limited = build_app(login_attempts_per_address=5)
    owner = client_for(limited)
    email = new_email()
    assert (await post_signup(owner, email)).status_code == 201
    for _ in range(5):
        # A different (unknown) account each time: only the per-address limit can trip.
        assert_problem(await post_login(client_for(limited), new_email(), "wrong password"), 401)
    blocked = await post_login(client_for(limited), email)
    assert_problem(blocked, 429)
    assert blocked.headers.get("retry-after", "").isdigit()
    assert int(blocked.headers["retry-after"]) > 0


async def test_successful_logins_do_not_use_up_the_address_limit(build_app, client_for):
    # An office behind one NAT: many people logging in correctly never lock each other out.
    limited = build_app(login_attempts_per_address=3)
    email = new_email()
    assert (await post_signup(client_for(limited), email)).status_code == 201
    for _ in range(6):
        assert (await post_login(client_for(limited), email)).status_code == 200
    for _ in range(3):
        assert_problem(await post_login(client_for(limited), new_email(), "wrong password"), 401)
    assert_problem(await post_login(client_for(limited), email), 429)


async def test_concurrent_guesses_cannot_exceed_the_account_limit(make_client):
    victim = await signup(make_client())

    async def guess(n: int) -> int:
        return (await post_login(make_client(), victim.email, f"concurrent guess {n}")).status_code

    codes = await asyncio.gather(*(guess(n) for n in range(25)))
    assert set(codes) <= {401, 429}, codes
    assert codes.count(401) <= 10, sorted(codes)


# Signup modes


async def test_invite_mode_requires_a_token_after_the_first_account(build_app, client_for):
    invite_only = build_app(signup="invite")
    first = client_for(invite_only)
    assert (await post_signup(first, new_email())).status_code == 201
    ws = (await first.post("/workspaces", json={"name": "Invite only"})).json()["id"]

    refused = await post_signup(client_for(invite_only), new_email())
    assert_problem(refused, 403, "signup-closed")
    assert "set-cookie" not in refused.headers

    invited_email = new_email()
    invitation = await first.post(f"/workspaces/{ws}/members", json={"email": invited_email, "role": "viewer"})
    assert invitation.status_code == 201, invitation.text
    token = invitation.json()["invite_token"]

    assert_problem(await post_signup(client_for(invite_only), invited_email, invite_token="bogus-token"), 422)
    joined_client = client_for(invite_only)
    joined = await post_signup(joined_client, invited_email, invite_token=token)
    assert joined.status_code == 201, joined.text
    me = (await joined_client.get("/me")).json()
    assert [(w["id"], w["role"]) for w in me["workspaces"]] == [(ws, "viewer")]


async def test_closed_mode_refuses_everyone_but_the_first(build_app, client_for, db_engine):
    closed = build_app(signup="closed")
    first = client_for(closed)
    assert (await post_signup(first, new_email())).status_code == 201
    assert_problem(await post_signup(client_for(closed), new_email()), 403, "signup-closed")

    # Even a valid invitation does not open a closed instance.
    ws = (await first.post("/workspaces", json={"name": "Closed"})).json()["id"]
    invited_email = new_email()
    invitation = await first.post(f"/workspaces/{ws}/members", json={"email": invited_email, "role": "editor"})
    assert invitation.status_code == 201, invitation.text
    response = await post_signup(client_for(closed), invited_email, invite_token=invitation.json()["invite_token"])
    assert_problem(response, 403, "signup-closed")
    async with db_engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM user_account"))).scalar_one() == 1
        accepted = (await conn.execute(text("SELECT accepted_at FROM invitation"))).scalar_one()
    assert accepted is None


async def test_open_mode_is_the_default(make_client):
    await signup(make_client())
    await signup(make_client())  # no token needed for a second account


# Validation


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"password": "sh0rt!"}, "password"),
        ({"surprise": "field"}, "surprise"),
        ({"name": ""}, "name"),
    ],
)
async def test_signup_validation_names_the_field_and_never_echoes_the_password(
    make_client, db_engine, overrides, field
):
    password = f"Secret-{uuid.uuid4().hex}"
    body = {"email": new_email(), "password": password, "name": "N", **overrides}
    response = await make_client().post("/auth/signup", json=body)
    problem = assert_problem(response, 422)
    locs = [tuple(error["loc"]) for error in problem["errors"]]
    assert ("body", field) in locs, locs
    assert all(isinstance(error["msg"], str) and error["msg"] for error in problem["errors"])
    assert body["password"] not in response.text
    async with db_engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM user_account"))).scalar_one() == 0


async def test_login_validation_never_echoes_the_password(make_client):
    password = f"Secret-{uuid.uuid4().hex}"
    response = await make_client().post(
        "/auth/login", json={"email": "nope", "password": password, "remember": True}
    )
    problem = assert_problem(response, 422)
    locs = {tuple(error["loc"]) for error in problem["errors"]}
    assert {("body", "email"), ("body", "remember")} <= locs
    assert password not in response.text


# DELETE /me (API.md, Auth)


async def test_delete_me_removes_the_account(make_client, db_engine):
    owner = await signup(make_client())
    shared = await create_workspace(owner, "Shared")
    name = f"Person {uuid.uuid4().hex[:8]}"
    email = new_email()
    leaver_client = make_client()
    response = await leaver_client.post("/auth/signup", json={"email": email, "password": PASSWORD, "name": name})
    assert response.status_code == 201, response.text
    leaver_id = response.json()["id"]
    added = await owner.client.post(f"/workspaces/{shared}/members", json={"email": email, "role": "editor"})
    assert added.status_code == 201
    solo = (await leaver_client.post("/workspaces", json={"name": "Solo"})).json()["id"]
    key = (await leaver_client.post(f"/workspaces/{shared}/api-keys", json={"name": "k"})).json()["key"]
    second_session = make_client()
    assert (await post_login(second_session, email)).status_code == 200

    response = await leaver_client.delete("/me")
    assert response.status_code == 202, response.text

    # Every credential is dead: this session, the other session, the API key, the password.
    assert_problem(await leaver_client.get("/me"), 401)
    assert_problem(await second_session.get("/me"), 401)
    assert_problem(await make_client(csrf=False).get("/me", headers={"Authorization": f"Bearer {key}"}), 401)
    assert_problem(await post_login(make_client(), email), 401)
    # The shared workspace stays with its owner, without the leaver; the leaver's own one is gone.
    members = (await owner.client.get(f"/workspaces/{shared}/members")).json()
    assert [m["user_id"] for m in members] == [owner.id]
    assert (await owner.client.get(f"/workspaces/{shared}")).status_code == 200
    async with db_engine.connect() as conn:
        live = (
            await conn.execute(
                text("SELECT count(*) FROM workspace WHERE id = :ws AND deleted_at IS NULL"), {"ws": solo}
            )
        ).scalar_one()
        account_rows = (
            await conn.execute(text("SELECT email, name FROM user_account WHERE id = :id"), {"id": leaver_id})
        ).all()
        audited = (
            await conn.execute(
                text("SELECT workspace_id, after FROM audit_entry WHERE action = 'account.deleted' AND target_id = :i"),
                {"i": leaver_id},
            )
        ).all()
    assert live == 0
    assert all(row.email != email and row.name != name for row in account_rows)
    assert [(row.workspace_id, row.after) for row in audited] == [(None, {"workspaces_left": 2})]  # one entry
    # The address can be used for a new account afterwards.
    assert (await post_signup(make_client(), email)).status_code == 201


async def test_delete_me_leaves_the_address_nowhere(make_client, db_engine):
    owner = await signup(make_client())
    ws = await create_workspace(owner)
    leaver = await signup(make_client())
    added = await owner.client.post(f"/workspaces/{ws}/members", json={"email": leaver.email, "role": "editor"})
    assert added.status_code == 201
    assert (await leaver.client.delete("/me")).status_code == 202

    audit = await owner.client.get(f"/workspaces/{ws}/audit-log")
    assert audit.status_code == 200
    assert leaver.email not in audit.text
    dump = await dump_database(db_engine)
    assert owner.email in dump  # the dump sees the rows
    assert leaver.email not in dump


async def test_delete_me_is_409_for_the_last_owner_of_a_shared_workspace(make_client, db_engine):
    owner = await signup(make_client())
    member = await signup(make_client())
    ws = await create_workspace(owner)
    added = await owner.client.post(f"/workspaces/{ws}/members", json={"email": member.email, "role": "editor"})
    assert added.status_code == 201
    assert_problem(await owner.client.delete("/me"), 409)
    assert (await owner.client.get("/me")).status_code == 200
    assert (await owner.client.get(f"/workspaces/{ws}")).json()["role"] == "owner"
    # With a second owner the first may go.
    promoted = await owner.client.patch(f"/workspaces/{ws}/members/{member.id}", json={"role": "owner"})
    assert promoted.status_code == 200
    assert (await owner.client.delete("/me")).status_code == 202
    assert (await member.client.get(f"/workspaces/{ws}")).status_code == 200


async def test_delete_me_needs_csrf_and_a_signed_in_user(make_client):
    browser = make_client(csrf=False)
    account = await signup(browser)
    assert_problem(await browser.delete("/me"), 403, "csrf-failed")
    assert_problem(await make_client().delete("/me"), 401)
    assert (await browser.get("/me")).status_code == 200

    # An API key acts inside one workspace; it cannot delete its creator's account.
    csrf = {"X-CSRF-Token": browser.cookies.get("csrf_token")}
    ws = (await browser.post("/workspaces", json={"name": "K"}, headers=csrf)).json()["id"]
    key = (await browser.post(f"/workspaces/{ws}/api-keys", json={"name": "k"}, headers=csrf)).json()["key"]
    response = await make_client(csrf=False).delete("/me", headers={"Authorization": f"Bearer {key}"})
    assert_problem(response, 403)
    assert (await browser.get("/me")).status_code == 200
    assert (await post_login(make_client(), account.email)).status_code == 200
