"""Single sign-on with OpenID Connect against a real (small) provider on loopback that signs real tokens:
sign-in, account creation and linking by verified email, every ID token check, and requiring SSO."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from backend.core.settings import Settings
from backend.identity import sso
from tests.factories import assert_problem, create_workspace, signup
from tests.fakes.anthropic_server import run_fake
from tests.fakes.oidc_provider import FakeOidc, Knobs


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeOidc]:
    fake = FakeOidc()
    with run_fake(fake):  # type: ignore[arg-type]
        yield fake


@pytest.fixture
def settings(settings, provider):
    provider.knobs = Knobs()
    provider.user = {"sub": "u-1", "email": "ada@example.com", "name": "Ada"}
    sso._cache.clear()
    return settings.model_copy(
        update={
            "oidc_issuer": provider.base_url,
            "oidc_client_id": provider.client_id,
            "oidc_client_secret": provider.client_secret,
            "oidc_name": "Acme SSO",
        }
    )


async def sign_in(client, next_path: str = "/w/here") -> httpx.Response:
    """The browser's round trip: our start → the provider's authorize → our callback."""
    start = await client.get("/auth/sso/start", params={"next": next_path})
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    async with httpx.AsyncClient() as browser:
        at_provider = await browser.get(authorize)
    assert at_provider.status_code == 302, at_provider.text
    callback = urlsplit(at_provider.headers["location"])
    assert callback.path == "/api/v1/auth/sso/callback"
    return await client.get("/auth/sso/callback", params={k: v[0] for k, v in parse_qs(callback.query).items()})


async def test_the_login_page_learns_that_sso_is_on(client):
    assert (await client.get("/auth/sso")).json() == {"enabled": True, "name": "Acme SSO"}


async def test_a_first_sso_sign_in_creates_the_account_and_signs_in(client, provider):
    back = await sign_in(client, "/w/somewhere?tab=runs")
    assert back.status_code == 302 and back.headers["location"] == "/w/somewhere?tab=runs"
    me = await client.get("/me")
    assert me.status_code == 200 and me.json()["email"] == "ada@example.com" and me.json()["name"] == "Ada"
    [current] = (await client.get("/me/sessions")).json()
    assert current["current"] is True
    start = urlsplit((await client.get("/auth/sso/start")).headers["location"])
    query = parse_qs(start.query)
    assert query["code_challenge_method"] == ["S256"] and query["scope"] == ["openid email profile"]
    assert len(query["state"][0]) >= 40 and len(query["nonce"][0]) >= 30


async def test_an_existing_account_is_linked_by_its_verified_email(client, make_client, provider):
    existing = await signup(make_client(), email="ada@example.com")
    assert (await sign_in(client)).status_code == 302
    assert (await client.get("/me")).json()["id"] == existing.id
    provider.user = {"sub": "u-1", "email": "renamed@example.com"}  # the same identity, a new address
    browser = make_client()
    assert (await sign_in(browser)).status_code == 302
    assert (await browser.get("/me")).json()["id"] == existing.id  # found by issuer + subject


@pytest.mark.parametrize(
    ("knob", "reason"),
    [
        ("wrong_nonce", "sso-failed"),
        ("wrong_audience", "sso-failed"),
        ("expired", "sso-failed"),
        ("foreign_key", "sso-failed"),
        ("email_verified", "sso-failed"),
    ],
)
async def test_every_id_token_check_holds(client, provider, knob, reason):
    setattr(provider.knobs, knob, knob != "email_verified")  # email_verified=False; the others True
    back = await sign_in(client)
    assert back.status_code == 302 and back.headers["location"] == f"/login?sso_error={reason}"
    assert_problem(await client.get("/me"), 401)


async def test_a_callback_cannot_be_replayed_or_forged(client, provider):
    start = await client.get("/auth/sso/start")
    async with httpx.AsyncClient() as browser:
        at_provider = await browser.get(start.headers["location"])
    params = {k: v[0] for k, v in parse_qs(urlsplit(at_provider.headers["location"]).query).items()}
    forged = await client.get("/auth/sso/callback", params={**params, "state": "x" * 43})
    assert forged.headers["location"] == "/login?sso_error=sso-failed"
    assert (await client.get("/auth/sso/callback", params=params)).headers["location"] == "/"  # the real one
    replay = await client.get("/auth/sso/callback", params=params)
    assert replay.headers["location"] == "/login?sso_error=sso-failed"


async def test_the_next_path_never_leaves_the_site(client):
    back = await sign_in(client, "//evil.example.com/phish")
    assert back.headers["location"] == "/"


async def test_closed_signup_refuses_unknown_accounts_but_not_known_ones(client, make_client, provider):
    admin = await signup(make_client())  # the first account: instance admin
    assert (await admin.client.put("/admin/settings", json={"signup": "closed"})).status_code == 200
    assert (await sign_in(client)).headers["location"] == "/login?sso_error=sso-failed"
    provider.user = {"sub": "u-9", "email": admin.email, "name": "Admin"}
    assert (await sign_in(make_client())).headers["location"] == "/w/here"  # an existing account links


async def test_the_allowed_domains_are_enforced(make_client, app, provider):
    app.state.settings = app.state.settings.model_copy(update={"oidc_allowed_domains": "acme.org, other.org"})
    assert (await sign_in(make_client())).headers["location"] == "/login?sso_error=sso-failed"  # example.com
    provider.user = {"sub": "u-2", "email": "lin@other.org", "name": "Lin"}
    assert (await sign_in(make_client())).headers["location"] == "/w/here"


async def test_a_workspace_can_require_sso(client, make_client, provider):
    owner = await signup(make_client(), email="ada@example.com")
    ws = await create_workspace(owner)
    assert_problem(await owner.client.patch(f"/workspaces/{ws}", json={"require_sso": True}), 409)
    assert (await sign_in(client)).status_code == 302  # the same person, now through SSO
    assert (await client.patch(f"/workspaces/{ws}", json={"require_sso": True})).json()["require_sso"] is True
    assert_problem(await owner.client.get(f"/workspaces/{ws}/prompts"), 403, "sso-required")  # password session
    assert (await client.get(f"/workspaces/{ws}/prompts")).status_code == 200


async def test_sso_off_is_a_404_problem(make_client, app):
    app.state.settings = app.state.settings.model_copy(update={"oidc_issuer": None})
    client = make_client()
    assert (await client.get("/auth/sso")).json() == {"enabled": False, "name": None}
    assert_problem(await client.get("/auth/sso/start"), 404, "sso-not-configured")


def role_map(app, claim: str = "groups", **grants) -> None:
    app.state.settings = app.state.settings.model_copy(
        update={"oidc_role_claim": claim, "oidc_role_map": Settings(oidc_role_map=grants).oidc_role_map}
    )


async def audit(owner, ws: str) -> list[dict]:
    return (await owner.client.get(f"/workspaces/{ws}/audit-log")).json()["items"]


async def test_groups_in_the_id_token_grant_workspace_roles_at_each_sign_in(make_client, app, provider):
    owner = await signup(make_client())
    ws = await create_workspace(owner, "Research")
    slug = (await owner.client.get(f"/workspaces/{ws}")).json()["slug"]
    other = await create_workspace(owner, "Ops")
    role_map(
        app,
        readers={"workspace": ws, "role": "viewer"},
        builders=[{"workspace": slug, "role": "editor"}, {"workspace": "Ops", "role": "viewer"}],
        ignored={"workspace": "no-such-workspace", "role": "admin"},
    )
    provider.user = {"sub": "u-7", "email": "kim@example.com", "name": "Kim", "groups": ["readers", "ignored"]}
    kim = make_client()
    assert (await sign_in(kim)).headers["location"] == "/w/here"
    assert [(w["id"], w["role"]) for w in (await kim.get("/me")).json()["workspaces"]] == [(ws, "viewer")]
    [added] = [e for e in await audit(owner, ws) if e["action"] == "member.added"]
    assert added["actor"]["user_id"] is None and added["after"]["via"] == "sso"
    assert added["after"]["group"] == "readers" and added["after"]["role"] == "viewer"

    # The next sign-in brings a new group: the highest role wins (editor over viewer), in both workspaces.
    provider.user["groups"] = ["readers", "builders"]
    assert (await sign_in(make_client())).status_code == 302
    roles = {w["id"]: w["role"] for w in (await kim.get("/me")).json()["workspaces"]}
    assert roles == {ws: "editor", other: "viewer"}
    [changed] = [e for e in await audit(owner, ws) if e["action"] == "member.role_changed"]
    assert changed["before"] == {"role": "viewer"} and changed["after"]["role"] == "editor"
    assert changed["actor"]["user_id"] is None and changed["after"]["via"] == "sso"

    # Back to readers only: the provider decides, so the role comes down again; nobody is removed.
    provider.user["groups"] = "readers"  # a single string counts as one group
    assert (await sign_in(make_client())).status_code == 302
    roles = {w["id"]: w["role"] for w in (await kim.get("/me")).json()["workspaces"]}
    assert roles == {ws: "viewer", other: "viewer"}
    assert [e["action"] for e in await audit(owner, other)].count("member.added") == 1


async def test_the_role_map_leaves_owners_alone_and_reads_the_configured_claim(make_client, app, provider):
    owner = await signup(make_client(), email="ada@example.com")
    ws = await create_workspace(owner)
    role_map(app, claim="roles", staff={"workspace": ws, "role": "viewer"})
    provider.user = {"sub": "u-1", "email": "ada@example.com", "name": "Ada", "groups": ["staff"]}
    assert (await sign_in(make_client())).status_code == 302  # the groups claim is not the one configured
    provider.user = {"sub": "u-1", "email": "ada@example.com", "name": "Ada", "roles": ["staff"]}
    assert (await sign_in(make_client())).status_code == 302
    [membership] = (await owner.client.get("/me")).json()["workspaces"]
    assert membership["role"] == "owner"  # an owner is never demoted by the map
    assert not [e for e in await audit(owner, ws) if e["action"] == "member.role_changed"]


def test_a_bad_role_map_stops_the_process_at_start():
    with pytest.raises(ValueError, match="oidc_role_map"):
        Settings(oidc_role_map={"g": {"workspace": "x", "role": "owner"}})
