"""Identity end to end in Chromium, on a `playground up` of its own configured for single sign-on with the
loopback OpenID provider of tests/fakes/oidc_provider.py: signing in through the provider (and landing in the
workspace its groups map to), and two-factor authentication from setting it up in the account screen to
logging in with a code and with a recovery code."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pyotp
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import (
    ConsoleErrors,
    Server,
    _unexpected,
    new_page,
    playground_up,
    screenshot,
    unique_email,
)
from tests.browser.helpers import PASSWORD, sign_up
from tests.fakes.anthropic_server import run_fake
from tests.fakes.oidc_provider import FakeOidc

pytestmark = pytest.mark.slow  # a real `playground up`, an OpenID provider and Chromium

SSO_NAME = "Acme SSO"
TEAM = "SSO team"  # its slug, sso-team, is what the role map names


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeOidc]:
    fake = FakeOidc()
    with run_fake(fake):  # type: ignore[arg-type]
        yield fake


@pytest.fixture(scope="module")
def sso_server(provider: FakeOidc) -> Iterator[Server]:
    """`playground up` with single sign-on through the loopback provider and a role map for its groups."""
    role_map = json.dumps({"engineering": {"workspace": "sso-team", "role": "editor"}})
    with playground_up(
        "pp-browser-sso-",
        PLAYGROUND_OIDC_ISSUER=provider.base_url,
        PLAYGROUND_OIDC_CLIENT_ID=provider.client_id,
        PLAYGROUND_OIDC_CLIENT_SECRET=provider.client_secret,
        PLAYGROUND_OIDC_NAME=SSO_NAME,
        PLAYGROUND_OIDC_ROLE_MAP=role_map,
    ) as up:
        yield up


@pytest.fixture
def expected_http_errors() -> list[int]:
    return []


@pytest.fixture
async def page(browser, sso_server, expected_http_errors) -> Iterator[Page]:
    errors = ConsoleErrors()
    page = await new_page(browser, sso_server, errors)
    yield page
    await page.context.close()
    assert _unexpected(errors, expected_http_errors) == [], "the browser console reported errors"


async def log_out(page: Page) -> None:
    await page.get_by_role("button", name="Log out").click()
    await page.wait_for_url("**/login")


async def log_in(page: Page, email: str) -> None:
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()


def code_after(secret: str, steps: int) -> str:
    """The code of a later 30-second step: each step's code works once, and the server takes one step ahead."""
    return pyotp.TOTP(secret).at(int(time.time()) + 30 * steps)


async def test_the_first_account_administers_the_instance(page: Page, browser, sso_server: Server):
    # Runs first on this module's fresh server: its account is the first one, so the instance admin.
    email, _ = await sign_up(page, "Root", "Root's team")
    async with httpx.AsyncClient(base_url=f"{sso_server.base}/api/v1") as api:
        other = unique_email("lin")
        body = {"email": other, "password": PASSWORD, "name": "Lin"}
        assert (await api.post("/auth/signup", json=body)).status_code == 201
    await page.get_by_role("link", name="Admin").click()  # in the header, for instance admins only
    await page.wait_for_url("**/admin")
    users = page.get_by_role("region", name="Users")
    await expect(users.get_by_test_id("user-list")).to_contain_text(email)
    await users.get_by_label("Search users").fill("lin-")
    await expect(users.get_by_test_id("user-list").locator("tr")).to_have_count(1)
    await users.get_by_role("button", name=f"Disable {other}").click()
    await expect(users.get_by_role("button", name=f"Enable {other}")).to_be_visible()
    await expect(users).to_contain_text("disabled")
    await users.get_by_role("button", name=f"Enable {other}").click()
    await users.get_by_role("button", name=f"Create a password reset link for {other}").click()
    link = await users.get_by_test_id("reset-link").inner_text()
    assert "/reset-password?token=" in link

    settings = page.get_by_role("region", name="Instance settings")
    await settings.get_by_label("Signup").select_option("invite")
    await settings.get_by_label("Allowed email domains (one per line; empty for any)").fill("example.com")
    await settings.get_by_label("Runs per minute (workspace)").fill("120")
    await settings.get_by_role("button", name="Save instance settings").click()
    await expect(settings.get_by_role("status")).to_contain_text("Saved")
    await screenshot(page, "instance-admin")
    saved = await (await page.request.get("/api/v1/admin/settings")).json()
    assert saved == {"signup": "invite", "allowed_domains": ["example.com"], "default_limits": {"runs_per_minute": 120}}
    await settings.get_by_label("Signup").select_option("open")  # the other tests sign up
    await settings.get_by_role("button", name="Save instance settings").click()
    await expect(settings.get_by_role("status")).to_contain_text("Saved")

    # Lin opens the link in a browser of their own and chooses a new password, then logs in with it.
    errors = ConsoleErrors()
    lin = await new_page(browser, sso_server, errors)
    try:
        await lin.goto("/" + link.split("/", 3)[3])
        await lin.get_by_label("New password", exact=True).fill("lin's new passphrase")
        await lin.get_by_label("New password again").fill("lin's new passphrase")
        await lin.get_by_role("button", name="Set new password").click()
        await expect(lin.get_by_role("status")).to_contain_text("Your new password is set")
        await lin.get_by_role("link", name="Log in").click()
        await lin.get_by_label("Email").fill(other)
        await lin.get_by_label("Password").fill("lin's new passphrase")
        await lin.get_by_role("button", name="Log in").click()
        await lin.wait_for_url("**/")
        await expect(lin.get_by_role("heading", name="Welcome, Lin")).to_be_visible()
        await expect(lin.get_by_role("link", name="Instance admin")).to_have_count(0)  # not an admin
    finally:
        await lin.context.close()
    assert list(errors) == []


@pytest.mark.parametrize("expected_http_errors", [[401]])  # the login's "code required" and the wrong code
async def test_two_factor_from_the_account_screen_to_logging_in_with_a_code_and_a_recovery_code(page: Page):
    email, ws = await sign_up(page, "Tove", "Tove's team")
    await page.get_by_role("link", name="Tove").click()  # the header's name leads to the account
    await page.wait_for_url("**/account")
    twofa = page.get_by_role("region", name="Two-factor authentication")
    await twofa.get_by_role("button", name="Set up two-factor authentication").click()
    await expect(twofa.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    secret = (await twofa.get_by_test_id("totp-secret").inner_text()).strip()
    assert len(secret) == 32
    await twofa.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    await twofa.get_by_role("button", name="Turn on").click()
    codes_list = twofa.get_by_test_id("recovery-codes")
    await expect(codes_list.locator("li")).to_have_count(10)
    recovery = [c.strip() for c in await codes_list.locator("li").all_inner_texts()]
    await screenshot(page, "account")
    await twofa.get_by_role("button", name="I have saved them").click()
    await expect(twofa).to_contain_text("Signing in asks for a code")

    # With 2FA on, the owner may require it of every member of the workspace.
    await page.goto(f"/w/{ws}/settings")
    require = page.get_by_role("region", name="Sign-in requirements").get_by_label(
        "Require two-factor authentication of every member"
    )
    await expect(require).not_to_be_checked()
    await require.click()  # checked once the server has saved it
    await expect(require).to_be_checked()
    assert (await (await page.request.get(f"/api/v1/workspaces/{ws}")).json())["require_2fa"] is True

    # Password, then the second factor: a wrong code is refused with the reason, a right one signs in.
    await log_out(page)
    await log_in(page, email)
    step = page.get_by_role("form", name="Second factor")
    await expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    right = code_after(secret, 1)
    await step.get_by_label("Authentication code").fill("000000" if right != "000000" else "111111")
    await step.get_by_role("button", name="Verify").click()
    await expect(step.get_by_role("alert")).to_contain_text("not right")
    await screenshot(page, "login-second-factor")
    await step.get_by_label("Authentication code").fill(right)
    await step.get_by_role("button", name="Verify").click()
    await page.wait_for_url(f"**/w/{ws}/prompts")

    # A recovery code instead of the app, once.
    await log_out(page)
    await log_in(page, email)
    await page.get_by_role("button", name="Use a recovery code").click()
    await page.get_by_label("Recovery code").fill(recovery[0])
    await page.get_by_role("button", name="Verify").click()
    await page.wait_for_url(f"**/w/{ws}/prompts")
    await log_out(page)
    await log_in(page, email)
    await page.get_by_role("button", name="Use a recovery code").click()
    await page.get_by_label("Recovery code").fill(recovery[0])
    await page.get_by_role("button", name="Verify").click()
    await expect(page.get_by_role("alert")).to_contain_text("used already")


async def test_signing_in_with_sso_lands_signed_in_in_the_workspace_the_groups_map_to(
    page: Page, sso_server: Server, provider: FakeOidc
):
    # Someone made the workspace the role map names (through the API, with a password account).
    async with httpx.AsyncClient(base_url=f"{sso_server.base}/api/v1") as api:
        body = {"email": unique_email("founder"), "password": PASSWORD, "name": "Founder"}
        assert (await api.post("/auth/signup", json=body)).status_code == 201
        headers = {"X-CSRF-Token": api.cookies["csrf_token"]}
        created = await api.post("/workspaces", json={"name": TEAM}, headers=headers)
        assert created.status_code == 201 and created.json()["slug"] == "sso-team"
        ws = created.json()["id"]

    email = unique_email("ada")
    provider.user = {"sub": f"sub-{email}", "email": email, "name": "Ada Byron", "groups": ["engineering"]}
    await page.goto(f"/w/{ws}/runs")  # a deep link, signed out: to the login and back afterwards
    await page.wait_for_url("**/login?next=*")
    button = page.get_by_role("link", name=f"Sign in with {SSO_NAME}")
    await expect(button).to_be_visible()
    await expect(page.get_by_role("link", name="Forgot password?")).to_be_visible()
    await screenshot(page, "login-sso")
    await button.click()  # off to the provider, which approves at once, and back through the callback
    await page.wait_for_url(f"**/w/{ws}/runs")
    await expect(page.get_by_role("link", name="Ada Byron")).to_be_visible()
    await page.goto(f"/w/{ws}/settings")
    await expect(page.get_by_text("Your role: editor")).to_be_visible()  # granted by the engineering group
    me = await page.request.get("/api/v1/me")
    assert (await me.json())["email"] == email
    sessions = await page.request.get("/api/v1/me/sessions")
    assert [s["current"] for s in await sessions.json()] == [True]


async def test_a_failed_sso_sign_in_comes_back_to_the_login_with_the_reason(page: Page, provider: FakeOidc):
    provider.knobs.email_verified = False
    try:
        provider.user = {"sub": "unverified", "email": unique_email("eve"), "name": "Eve"}
        await page.goto("/login")
        await page.get_by_role("link", name=f"Sign in with {SSO_NAME}").click()
        await page.wait_for_url("**/login?sso_error=sso-failed")
        await expect(page.get_by_role("alert")).to_contain_text("Single sign-on failed")
    finally:
        provider.knobs.email_verified = True
