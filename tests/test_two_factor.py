"""Two-factor authentication (TOTP, recovery codes, rate limit, workspace requirement), one-time password
resets made by an instance admin, and the instance settings (signup mode, domains, default limits)."""

from __future__ import annotations

import time

import pyotp
from sqlalchemy import text

from tests.factories import PASSWORD, Account, assert_problem, create_api_key, create_workspace, signup


async def login(make_client, email: str, password: str = PASSWORD, **extra):
    client = make_client()
    response = await client.post("/auth/login", json={"email": email, "password": password, **extra})
    return client, response


def next_code(secret: str, after: int = 0) -> str:
    """The code of a step later than the one last used (each step's code works once)."""
    return pyotp.TOTP(secret).at(int(time.time()) + 30 * after)


async def turn_on(account: Account) -> tuple[str, list[str]]:
    setup = (await account.client.post("/me/2fa/totp/setup")).json()
    assert setup["otpauth_uri"].startswith("otpauth://totp/") and "Prompt%20Playground" in setup["otpauth_uri"]
    assert setup["qr_svg"].startswith("data:image/svg+xml") and "%3Cpath" in setup["qr_svg"]  # a drawn QR code
    assert_problem(await account.client.post("/me/2fa/totp/enable", json={"code": "000000"}), 401, "totp-invalid")
    enabled = await account.client.post("/me/2fa/totp/enable", json={"code": next_code(setup["secret"])})
    assert enabled.status_code == 200, enabled.text
    return setup["secret"], enabled.json()["recovery_codes"]


async def test_totp_login_needs_the_code_and_each_code_works_once(client, make_client, db_engine):
    me = await signup(client)
    assert (await client.get("/me/2fa")).json() == {"totp": False}
    secret, recovery = await turn_on(me)
    assert (await client.get("/me/2fa")).json() == {"totp": True} and len(recovery) == 10

    _, missing = await login(make_client, me.email)
    assert_problem(missing, 401, "totp-required")
    _, wrong = await login(make_client, me.email, totp_code="123456")
    assert_problem(wrong, 401, "totp-invalid")
    _, wrong_password = await login(make_client, me.email, "not the password", totp_code=next_code(secret, 1))
    assert wrong_password.status_code == 401 and "totp" not in wrong_password.json()["type"]
    code = next_code(secret, 1)
    browser, ok = await login(make_client, me.email, totp_code=code)
    assert ok.status_code == 200 and (await browser.get("/me")).status_code == 200
    _, replay = await login(make_client, me.email, totp_code=code)
    assert_problem(replay, 401, "totp-invalid")  # a code is never accepted twice

    _, with_recovery = await login(make_client, me.email, recovery_code=recovery[0])
    assert with_recovery.status_code == 200
    _, again = await login(make_client, me.email, recovery_code=recovery[0])
    assert_problem(again, 401, "totp-invalid")
    async with db_engine.connect() as conn:
        stored = (await conn.execute(text("SELECT wrapped_secret, recovery_hashes FROM user_totp"))).one()
    assert secret.encode() not in stored.wrapped_secret and len(stored.recovery_hashes) == 9
    assert all(code not in str(stored.recovery_hashes) for code in recovery)


async def test_wrong_second_factors_are_rate_limited(client, make_client):
    me = await signup(client)
    secret, _ = await turn_on(me)
    for _ in range(5):
        assert_problem((await login(make_client, me.email, totp_code="000000"))[1], 401, "totp-invalid")
    limited = (await login(make_client, me.email, totp_code=next_code(secret, 1)))[1]
    assert_problem(limited, 429)
    assert "Retry-After" in limited.headers


async def test_turning_off_needs_the_password(client, make_client):
    me = await signup(client)
    await turn_on(me)
    assert_problem(await client.post("/me/2fa/totp/disable", json={"password": "wrong one"}), 403)
    assert (await client.post("/me/2fa/totp/disable", json={"password": PASSWORD})).status_code == 204
    assert (await login(make_client, me.email))[1].status_code == 200


async def test_a_workspace_can_require_2fa_of_its_members(client, make_client):
    owner = await signup(client)
    ws = await create_workspace(owner)
    member = await signup(make_client())
    invited = await client.post(f"/workspaces/{ws}/members", json={"email": member.email, "role": "editor"})
    assert invited.status_code == 201, invited.text
    assert_problem(await client.patch(f"/workspaces/{ws}", json={"require_2fa": True}), 409)  # owner has no 2FA
    await turn_on(owner)
    patched = await client.patch(f"/workspaces/{ws}", json={"require_2fa": True})
    assert patched.status_code == 200 and patched.json()["require_2fa"] is True
    assert_problem(await member.client.get(f"/workspaces/{ws}/prompts"), 403, "two-factor-required")
    key = (await create_api_key(owner, ws))["key"]
    bearer = make_client()
    bearer.headers["Authorization"] = f"Bearer {key}"
    assert (await bearer.get(f"/workspaces/{ws}/prompts")).status_code == 200  # its creator has 2FA
    await turn_on(member)
    assert (await member.client.get(f"/workspaces/{ws}/prompts")).status_code == 200


async def test_an_admin_made_reset_token_sets_a_new_password_once(client, make_client):
    _admin = await signup(client)
    user = await signup(make_client())
    created = await client.post(f"/admin/users/{user.id}/password-reset")
    assert created.status_code == 201
    token = created.json()["token"]
    anonymous = make_client()
    unknown = {"token": "x" * 20, "new_password": "n" * 12}
    assert_problem(await anonymous.post("/auth/password-reset", json=unknown), 400)
    used = await anonymous.post("/auth/password-reset", json={"token": token, "new_password": "brand new password"})
    assert used.status_code == 204
    assert_problem(await user.client.get("/me"), 401)  # signed out everywhere
    assert (await login(make_client, user.email, "brand new password"))[1].status_code == 200
    again = await anonymous.post("/auth/password-reset", json={"token": token, "new_password": "another password"})
    assert_problem(again, 400, "reset-token-invalid")
    assert_problem(await user.client.post(f"/admin/users/{user.id}/password-reset"), 401)


async def test_instance_settings_govern_signup_and_new_workspaces(client, make_client):
    admin = await signup(client)
    defaults = {"signup": "open", "allowed_domains": [], "default_limits": {}}
    assert (await client.get("/admin/settings")).json() == defaults
    changed = await client.put(
        "/admin/settings",
        json={"allowed_domains": ["@Example.com"], "default_limits": {"max_concurrent_runs": 3}},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["allowed_domains"] == ["example.com"]
    stranger = make_client()
    refused = await stranger.post(
        "/auth/signup", json={"email": "x@elsewhere.org", "password": PASSWORD, "name": "X"}
    )
    assert_problem(refused, 403)
    assert (await signup(make_client(), email="ok-user@example.com")).email == "ok-user@example.com"
    ws = await create_workspace(admin)
    assert (await client.get(f"/workspaces/{ws}/limits")).json()["max_concurrent_runs"] == 3
    await client.put("/admin/settings", json={"signup": "closed"})
    closed = await make_client().post(
        "/auth/signup", json={"email": "late@example.com", "password": PASSWORD, "name": "Late"}
    )
    assert_problem(closed, 403)
    assert_problem(await client.put("/admin/settings", json={"allowed_domains": ["not a domain"]}), 422)
