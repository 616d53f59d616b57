"""The authorization matrix (issue 14, part 2): every route by every kind of caller → its expected status.

The routes are enumerated at test time from the OpenAPI document (plus the three operational routes outside
it), and MATRIX below holds one explicit row per route. A route added later without a row fails
test_every_route_has_a_row, so nobody can add a route without deciding who may call it.

Each call is made against real objects (a real prompt, version, run, comparison, export, comment, ...) so
that a caller who is allowed through reaches the handler and gets its real success, or the domain answer
written in the row. Destructive calls get a fresh object of their own (see BUILDERS), so the shared world
stays intact and a DELETE by an owner really deletes. docs/decisions/authz-matrix.md has the design and the
findings.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pyotp
import pytest
from httpx import ASGITransport, AsyncClient
from redis.asyncio import Redis

from backend.app import create_app
from backend.core.migrate import upgrade_to_head_async
from backend.core.settings import Settings
from tests.conftest import ADMIN_DSN, MASTER_KEY, REDIS_URL, Client, _async_url
from tests.factories import PASSWORD, PROBLEM, Account, add_member, create_api_key, create_workspace, signup
from tests.runs_helpers import RunningWorker
from tests.test_runs import wait_for

ROLES = (
    "anonymous",
    "stranger",
    "viewer",
    "editor",
    "admin",
    "owner",
    "foreign_key",
    "revoked_key",
    "instance_admin",
    "owner_key",
)
# anonymous: no credentials. stranger: signed in, member of nothing here. viewer..owner: signed-in members of
# the workspace W with that role. foreign_key: an API key of another workspace (its creator's). revoked_key:
# an API key of W, revoked. instance_admin: the instance's administrator (first account), member of nothing here.
# owner_key: a live API key of W made by its owner (a key acts as its creator, with the creator's role, in
# its one workspace; it never manages the account, nor mints further keys).

# A cell is one status, or a tuple of statuses when more than one is right (none is, today).
S = int | tuple[int, ...]
W = "/api/v1/workspaces/{ws}"
P = W + "/prompts/{prompt_id}"
V = P + "/versions/{number}"
C = W + "/comparisons/{comparison_id}"

# fmt: off
#                                                               anon strg view edit admn ownr fkey rkey iadm okey
MATRIX: dict[tuple[str, str], tuple[S, S, S, S, S, S, S, S, S, S]] = {
    # Public routes: the same answer for everyone, signed in or not.
    ("POST", "/api/v1/auth/signup"):                           (201, 201, 201, 201, 201, 201, 201, 201, 201, 201),
    ("POST", "/api/v1/auth/login"):                            (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("POST", "/api/v1/auth/password-reset"):                   (204, 204, 204, 204, 204, 204, 204, 204, 204, 204),
    ("POST", "/api/v1/auth/forgot-password"):                  (202, 202, 202, 202, 202, 202, 202, 202, 202, 202),
    ("GET", "/api/v1/auth/sso"):                               (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    # No identity provider is configured here: SSO answers that it is not set up, whoever asks.
    ("GET", "/api/v1/auth/sso/start"):                         (404, 404, 404, 404, 404, 404, 404, 404, 404, 404),
    ("GET", "/api/v1/auth/sso/callback"):                      (404, 404, 404, 404, 404, 404, 404, 404, 404, 404),
    # Operational routes outside /api/v1 (no metrics token configured here).
    ("GET", "/healthz"):                                       (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/readyz"):                                        (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/metrics"):                                       (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),

    # The account. An API key acts inside one workspace: it may read who it is, but never manage the account.
    ("POST", "/api/v1/auth/logout"):                           (401, 204, 204, 204, 204, 204, 204, 401, 204, 204),
    ("GET", "/api/v1/me"):                                     (401, 200, 200, 200, 200, 200, 200, 401, 200, 200),
    ("PATCH", "/api/v1/me"):                                   (401, 200, 200, 200, 200, 200, 403, 401, 200, 403),
    # The last owner of a workspace with other members cannot leave it ownerless (409).
    ("DELETE", "/api/v1/me"):                                  (401, 202, 202, 202, 202, 409, 403, 401, 202, 403),
    ("GET", "/api/v1/me/sessions"):                            (401, 200, 200, 200, 200, 200, 403, 401, 200, 403),
    ("DELETE", "/api/v1/me/sessions/{session_id}"):            (401, 204, 204, 204, 204, 204, 403, 401, 204, 403),
    ("POST", "/api/v1/me/sessions/revoke-others"):             (401, 204, 204, 204, 204, 204, 403, 401, 204, 403),
    ("POST", "/api/v1/me/password"):                           (401, 204, 204, 204, 204, 204, 403, 401, 204, 403),
    ("GET", "/api/v1/me/2fa"):                                 (401, 200, 200, 200, 200, 200, 403, 401, 200, 403),
    ("POST", "/api/v1/me/2fa/totp/setup"):                     (401, 200, 200, 200, 200, 200, 403, 401, 200, 403),
    ("POST", "/api/v1/me/2fa/totp/enable"):                    (401, 200, 200, 200, 200, 200, 403, 401, 200, 403),
    ("POST", "/api/v1/me/2fa/totp/disable"):                   (401, 204, 204, 204, 204, 204, 403, 401, 204, 403),
    ("GET", "/api/v1/models"):                                 (401, 200, 200, 200, 200, 200, 200, 401, 200, 200),
    ("GET", "/api/v1/workspaces"):                             (401, 200, 200, 200, 200, 200, 200, 401, 200, 200),
    ("POST", "/api/v1/workspaces"):                            (401, 201, 201, 201, 201, 201, 403, 401, 201, 403),

    # Instance administration: the instance admin, signed in; nobody else, and never with an API key.
    ("GET", "/api/v1/admin/users"):                            (401, 403, 403, 403, 403, 403, 403, 401, 200, 403),
    ("PATCH", "/api/v1/admin/users/{user_id}"):                (401, 403, 403, 403, 403, 403, 403, 401, 200, 403),
    ("POST", "/api/v1/admin/users/{user_id}/revoke-sessions"): (401, 403, 403, 403, 403, 403, 403, 401, 200, 403),
    ("POST", "/api/v1/admin/users/{user_id}/password-reset"):  (401, 403, 403, 403, 403, 403, 403, 401, 201, 403),
    ("GET", "/api/v1/admin/settings"):                         (401, 403, 403, 403, 403, 403, 403, 401, 200, 403),
    ("PUT", "/api/v1/admin/settings"):                         (401, 403, 403, 403, 403, 403, 403, 401, 200, 403),

    # The workspace W. Outsiders (stranger, another workspace's key, the instance admin) get 404: they learn
    # nothing about W; a revoked key is 401 before anything else.
    ("GET", W):                                                (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("PATCH", W):                                              (401, 404, 403, 403, 200, 200, 404, 401, 404, 200),
    ("DELETE", W):                                             (401, 404, 403, 403, 403, 202, 404, 401, 404, 403),
    ("GET", W + "/members"):                                   (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("POST", W + "/members"):                                  (401, 404, 403, 403, 201, 201, 404, 401, 404, 403),
    ("PATCH", W + "/members/{user_id}"):                       (401, 404, 403, 403, 200, 200, 404, 401, 404, 403),
    # Removing someone else (a viewer): admin+. (Leaving oneself is anyone's right; tests/test_workspaces.py.)
    ("DELETE", W + "/members/{user_id}"):                      (401, 404, 403, 403, 204, 204, 404, 401, 404, 204),
    ("GET", W + "/invitations"):                               (401, 404, 403, 403, 200, 200, 404, 401, 404, 200),
    ("DELETE", W + "/invitations/{invitation_id}"):            (401, 404, 403, 403, 204, 204, 404, 401, 404, 204),
    ("POST", W + "/api-keys"):                                 (401, 404, 403, 201, 201, 201, 404, 401, 404, 403),
    ("GET", W + "/api-keys"):                                  (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    # The owner's key: only its creator or an admin+ may revoke it.
    ("DELETE", W + "/api-keys/{api_key_id}"):                  (401, 404, 403, 403, 204, 204, 404, 401, 404, 204),
    ("GET", W + "/audit-log"):                                 (401, 404, 403, 403, 200, 200, 404, 401, 404, 200),
    ("PUT", W + "/providers/{provider}"):                      (401, 404, 403, 403, 200, 200, 404, 401, 404, 200),
    ("DELETE", W + "/providers/{provider}"):                   (401, 404, 403, 403, 204, 204, 404, 401, 404, 204),
    ("GET", W + "/providers"):                                 (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("GET", W + "/limits"):                                    (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("PUT", W + "/limits"):                                    (401, 404, 403, 403, 200, 200, 404, 401, 404, 200),
    ("GET", W + "/usage"):                                     (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("GET", W + "/usage/latency"):                             (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("GET", W + "/models"):                                    (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("PUT", W + "/price-overrides/{provider}/{model}"):        (401, 404, 403, 403, 200, 200, 404, 401, 404, 200),
    ("GET", W + "/safety/policy"):                             (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("PUT", W + "/safety/policy"):                             (401, 404, 403, 403, 200, 200, 404, 401, 404, 200),
    ("GET", W + "/safety/flags"):                              (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("PATCH", W + "/safety/flags/{flag_id}"):                  (401, 404, 403, 403, 200, 200, 404, 401, 404, 200),
    ("GET", W + "/safety/summary"):                            (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("GET", W + "/retention"):                                 (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("PUT", W + "/retention"):                                 (401, 404, 403, 403, 200, 200, 404, 401, 404, 200),
    # Exports hold everything of W: admin+; the archive opens only for the admin who asked (the owner here).
    ("POST", W + "/exports"):                                  (401, 404, 403, 403, 202, 202, 404, 401, 404, 202),
    ("GET", W + "/exports"):                                   (401, 404, 403, 403, 200, 200, 404, 401, 404, 200),
    ("GET", W + "/exports/{export_id}"):                       (401, 404, 403, 403, 200, 200, 404, 401, 404, 200),
    ("GET", W + "/exports/{export_id}/download"):              (401, 404, 403, 403, 403, 200, 404, 401, 404, 200),

    # Prompts and versions.
    ("POST", W + "/prompts"):                                  (401, 404, 403, 201, 201, 201, 404, 401, 404, 201),
    ("GET", W + "/prompts"):                                   (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("POST", W + "/prompts/import"):                           (401, 404, 403, 201, 201, 201, 404, 401, 404, 201),
    ("GET", W + "/prompts/by-name/{name}"):                    (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("GET", P):                                                (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("PATCH", P):                                              (401, 404, 403, 200, 200, 200, 404, 401, 404, 200),
    ("DELETE", P):                                             (401, 404, 403, 403, 204, 204, 404, 401, 404, 204),
    ("GET", P + "/export"):                                    (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("POST", P + "/versions"):                                 (401, 404, 403, 201, 201, 201, 404, 401, 404, 201),
    ("GET", P + "/versions"):                                  (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("GET", V):                                                (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    # Versions are immutable: 405 for anyone who may write at all (a viewer is told its role first).
    ("PUT", V):                                                (401, 404, 403, 405, 405, 405, 404, 401, 404, 405),
    ("PATCH", V):                                              (401, 404, 403, 405, 405, 405, 404, 401, 404, 405),
    ("DELETE", V):                                             (401, 404, 403, 405, 405, 405, 404, 401, 404, 405),
    ("GET", P + "/versions/{a}/diff/{b}"):                     (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("PUT", P + "/labels/{label}"):                            (401, 404, 403, 200, 200, 200, 404, 401, 404, 200),
    ("GET", P + "/labels"):                                    (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    # Comments: any member comments; resolving the owner's comment is editor+, deleting it admin+.
    ("POST", V + "/comments"):                                 (401, 404, 201, 201, 201, 201, 404, 401, 404, 201),
    ("GET", V + "/comments"):                                  (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("PATCH", V + "/comments/{comment_id}"):                   (401, 404, 403, 200, 200, 200, 404, 401, 404, 200),
    ("DELETE", V + "/comments/{comment_id}"):                  (401, 404, 403, 403, 204, 204, 404, 401, 404, 204),

    # Runs (the shared run is the owner's, finished).
    ("POST", W + "/runs"):                                     (401, 404, 403, 202, 202, 202, 404, 401, 404, 202),
    ("GET", W + "/runs"):                                      (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("POST", W + "/runs/estimate"):                            (401, 404, 403, 200, 200, 200, 404, 401, 404, 200),
    ("POST", W + "/runs/code"):                                (401, 404, 403, 200, 200, 200, 404, 401, 404, 200),
    ("GET", W + "/runs/{run_id}/code"):                        (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("GET", W + "/runs/{run_id}"):                             (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    # The owner's finished run: its author or admin+.
    ("DELETE", W + "/runs/{run_id}"):                          (401, 404, 403, 403, 204, 204, 404, 401, 404, 204),
    ("GET", W + "/runs/{run_id}/events"):                      (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("POST", W + "/runs/{run_id}/cancel"):                     (401, 404, 403, 202, 202, 202, 404, 401, 404, 202),
    ("POST", W + "/runs/{run_id}/rerun"):                      (401, 404, 403, 202, 202, 202, 404, 401, 404, 202),

    # Datasets.
    ("POST", W + "/datasets"):                                 (401, 404, 403, 201, 201, 201, 404, 401, 404, 201),
    ("GET", W + "/datasets"):                                  (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("POST", W + "/datasets/import"):                          (401, 404, 403, 201, 201, 201, 404, 401, 404, 201),
    ("GET", W + "/datasets/{dataset_id}"):                     (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("DELETE", W + "/datasets/{dataset_id}"):                  (401, 404, 403, 204, 204, 204, 404, 401, 404, 204),
    ("POST", W + "/datasets/{dataset_id}/rows"):               (401, 404, 403, 201, 201, 201, 404, 401, 404, 201),

    # Comparisons (the shared one is finished, with a model-graded assertion).
    ("POST", W + "/comparisons"):                              (401, 404, 403, 202, 202, 202, 404, 401, 404, 202),
    ("GET", W + "/comparisons"):                               (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("GET", C):                                                (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("GET", C + "/events"):                                    (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("POST", C + "/cancel"):                                   (401, 404, 403, 202, 202, 202, 404, 401, 404, 202),
    ("POST", C + "/cells/{run_id}/rerun"):                     (401, 404, 403, 202, 202, 202, 404, 401, 404, 202),
    ("GET", C + "/diff"):                                      (401, 404, 200, 200, 200, 200, 404, 401, 404, 200),
    ("POST", C + "/assertions"):                               (401, 404, 403, 201, 201, 201, 404, 401, 404, 201),
    ("POST", C + "/grade"):                                    (401, 404, 403, 202, 202, 202, 404, 401, 404, 202),
    ("DELETE", C + "/assertions/{assertion_id}"):              (401, 404, 403, 204, 204, 204, 404, 401, 404, 204),
    ("PUT", C + "/cells/{run_id}/rating"):                     (401, 404, 403, 200, 200, 200, 404, 401, 404, 200),
    ("DELETE", C + "/cells/{run_id}/rating"):                  (401, 404, 403, 204, 204, 204, 404, 401, 404, 204),
}
# fmt: on

OPERATIONAL = [("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")]


def _enumerated_routes() -> list[tuple[str, str]]:
    app = create_app(Settings(database_url="postgresql+asyncpg://unused@127.0.0.1/unused", master_key=MASTER_KEY))
    routes = [(method.upper(), path) for path, methods in app.openapi()["paths"].items() for method in methods]
    present = {(method, route.path) for route in app.routes for method in getattr(route, "methods", None) or ()}
    return sorted(routes + [op for op in OPERATIONAL if op in present])


ROUTES = _enumerated_routes()


def test_every_route_has_a_row():
    """A route added without a row here fails: decide who may call it, and write it down."""
    missing = sorted(set(ROUTES) - set(MATRIX))
    stale = sorted(set(MATRIX) - set(ROUTES))
    assert not missing, f"routes without a row in MATRIX: {missing}"
    assert not stale, f"rows in MATRIX for routes that no longer exist: {stale}"
    assert len(ROUTES) >= 100


# The world: one database, app and set of callers for the whole module (tests never change what others read;
# destructive calls get fresh objects from BUILDERS).


@dataclass
class World:
    app: Any
    ws: str
    accounts: dict[str, Account]
    keys: dict[str, str]
    ids: dict[str, Any] = field(default_factory=dict)

    def client(self, role: str) -> AsyncClient:
        """A new client acting as `role` (a copy of its cookies, or its bearer key), so nothing a call does to
        its cookie jar (a login, a logout) reaches the shared accounts."""
        transport = ASGITransport(app=self.app)
        if role in self.keys:
            headers = {"Authorization": f"Bearer {self.keys[role]}"}
            return AsyncClient(transport=transport, base_url="http://testserver", headers=headers)
        client = Client(transport=transport, base_url="http://testserver")
        if role in self.accounts:
            client.cookies = self.accounts[role].client.cookies
        return client

    @property
    def owner(self) -> AsyncClient:
        return self.accounts["owner"].client


def _client(app) -> Client:
    return Client(transport=ASGITransport(app=app), base_url="http://testserver/api/v1")


@pytest.fixture(scope="module")
async def matrix_app() -> AsyncIterator[Any]:
    name = f"pp_test_authz_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = _async_url(ADMIN_DSN, name)
    prefix = f"pp-test:{uuid.uuid4().hex[:12]}:"
    application = None
    try:
        await upgrade_to_head_async(url)
        settings = Settings(
            database_url=url,
            redis_url=REDIS_URL,
            redis_prefix=prefix,
            master_key=MASTER_KEY,
            mock_ttft_ms=1,
            mock_token_ms=1,
        )
        application = create_app(settings)
        yield application
    finally:
        if application is not None:
            await application.state.exports.aclose()
            if application.state.redis is not None:
                await application.state.redis.aclose()
            await application.state.engine.dispose()
        redis = Redis.from_url(REDIS_URL)
        keys = [k async for k in redis.scan_iter(match=prefix + "*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        admin = await asyncpg.connect(ADMIN_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _ok(response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in (statuses or (200, 201, 202)), f"{response.request.url}: {response.text}"
    return response.json() if response.content else {}


VERSION_BODY = {
    "system": "You are terse.",
    "messages": [{"role": "user", "content": "Say {{w}}"}],
    "model_config": {"provider": "mock", "model": "mock-1", "max_tokens": 64},
}


@pytest.fixture(scope="module")
async def world(matrix_app) -> World:
    app = matrix_app
    accounts: dict[str, Account] = {}
    accounts["instance_admin"] = await signup(_client(app))  # the first account of the instance
    owner = accounts["owner"] = await signup(_client(app))
    ws = await create_workspace(owner, "Matrix")
    for role in ("viewer", "editor", "admin"):
        accounts[role] = await signup(_client(app))
        await add_member(owner, ws, accounts[role], role)
    accounts["stranger"] = await signup(_client(app))
    foreigner = await signup(_client(app))
    foreign_ws = await create_workspace(foreigner, "Elsewhere")
    revoked = await create_api_key(owner, ws, "revoked")
    await _ok(await owner.client.delete(f"/workspaces/{ws}/api-keys/{revoked['id']}"), 204)
    keys = {
        "foreign_key": (await create_api_key(foreigner, foreign_ws))["key"],
        "revoked_key": revoked["key"],
        "owner_key": (await create_api_key(owner, ws, "owner's"))["key"],
    }
    w = World(app=app, ws=ws, accounts=accounts, keys=keys)
    o = owner.client
    ids = w.ids

    # A spare member (for re-roling) and a floater (added, removed, reset and re-roled by the tests).
    ids["spare"] = await signup(_client(app))
    await add_member(owner, ws, ids["spare"], "editor")
    ids["floater"] = await signup(_client(app))

    prompt = await _ok(await o.post(f"/workspaces/{ws}/prompts", json={"name": "matrix"}))
    ids["prompt_id"], ids["name"] = prompt["id"], "matrix"
    await _ok(await o.post(f"/workspaces/{ws}/prompts/{prompt['id']}/versions", json=VERSION_BODY))
    await _ok(
        await o.post(
            f"/workspaces/{ws}/prompts/{prompt['id']}/versions", json={**VERSION_BODY, "system": "You are kind."}
        )
    )
    await _ok(await o.put(f"/workspaces/{ws}/prompts/{prompt['id']}/labels/production", json={"version": 1}))
    comment = await _ok(
        await o.post(f"/workspaces/{ws}/prompts/{prompt['id']}/versions/1/comments", json={"body": "ok"})
    )
    ids["comment_id"] = comment["id"]
    rubric = await _ok(await o.post(f"/workspaces/{ws}/prompts", json={"name": "rubric"}))
    rubric_body = {**VERSION_BODY, "messages": [{"role": "user", "content": "PASS {{output}}"}]}
    await _ok(await o.post(f"/workspaces/{ws}/prompts/{rubric['id']}/versions", json=rubric_body))
    ids["rubric_id"] = rubric["id"]

    dataset = await _ok(await o.post(f"/workspaces/{ws}/datasets", json={"name": "cases", "rows": [{"w": "tea"}]}))
    ids["dataset_id"] = dataset["id"]
    run = await _ok(
        await o.post(
            f"/workspaces/{ws}/runs",
            json={"prompt_id": prompt["id"], "version": 1, "variables": {"w": "mail jo@example.com"}},
        )
    )
    ids["run_id"] = run["id"]
    comparison = await _ok(
        await o.post(
            f"/workspaces/{ws}/comparisons", json={"prompt_id": prompt["id"], "versions": [1, 2], "rows": [{"w": "hi"}]}
        )
    )
    ids["comparison_id"] = comparison["id"]
    ids["cells"] = [cell["run_id"] for cell in comparison["cells"]]
    async with RunningWorker(app):
        for run_id in [run["id"], *ids["cells"]]:
            await wait_for(o, ws, run_id)
    assertion = {"kind": "model_graded", "prompt_id": rubric["id"]}
    await _ok(await o.post(f"/workspaces/{ws}/comparisons/{comparison['id']}/assertions", json=assertion))
    flags = await _ok(await o.get(f"/workspaces/{ws}/safety/flags"))
    assert flags["items"], "the run with an email address was flagged"
    ids["flag_id"] = flags["items"][0]["id"]

    ids["export_id"] = await _finished_export(w, ws)
    return w


# Calls: how each route is called, with real ids and a valid body.


@dataclass
class Call:
    path: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    client: AsyncClient | None = None  # None: the role's own client
    # A path the owner reads afterwards: 404 once the call succeeded (it really deleted), 200 when it was refused.
    probe: str | None = None


def _fill(w: World, template: str, **values: Any) -> str:
    pool = {
        "ws": w.ws,
        "number": 1,
        "a": 1,
        "b": 2,
        "provider": "anthropic",
        "label": "staging",
        "model": "mock-1",
        **{k: v for k, v in w.ids.items() if isinstance(v, str)},
        **values,
    }
    return re.sub(r"\{([^}]+)\}", lambda m: str(pool[m.group(1)]), template.removeprefix("/api/v1"))


def _fresh_email() -> str:
    return f"nobody-{uuid.uuid4().hex[:10]}@example.com"


def _unique_version() -> dict[str, Any]:
    return {**VERSION_BODY, "system": f"Version {uuid.uuid4().hex}"}


RUN_BODY = {"version": 1, "variables": {"w": "hello there"}}

Builder = Callable[[World, str, str, str], Awaitable[Call]]
BUILDERS: dict[tuple[str, str], Builder] = {}
BODIES: dict[tuple[str, str], Callable[[World], dict[str, Any]]] = {}


def builds(method: str, path: str):
    def register(fn: Builder) -> Builder:
        BUILDERS[(method, path)] = fn
        return fn

    return register


def body(method: str, path: str, make: Callable[[World], dict[str, Any]]) -> None:
    BODIES[(method, path)] = make


# Plain bodies (the shared objects are enough).
body("POST", "/api/v1/auth/signup", lambda w: {"json": {"email": _fresh_email(), "password": PASSWORD, "name": "N"}})
body("POST", "/api/v1/auth/forgot-password", lambda w: {"json": {"email": _fresh_email()}})
body("GET", "/api/v1/auth/sso/callback", lambda w: {"params": {"code": "x", "state": "y"}})
body("PATCH", "/api/v1/me", lambda w: {"json": {"name": "Still Me"}})
body("POST", "/api/v1/workspaces", lambda w: {"json": {"name": "Another"}})
body("PATCH", "/api/v1/admin/users/{user_id}", lambda w: {"json": {"disabled": False}})
body("PUT", "/api/v1/admin/settings", lambda w: {"json": {"signup": "open"}})
body("PATCH", W, lambda w: {"json": {"name": "Matrix"}})
body("POST", W + "/members", lambda w: {"json": {"email": _fresh_email(), "role": "viewer"}})
body("PATCH", W + "/members/{user_id}", lambda w: {"json": {"role": "viewer"}})
body("POST", W + "/api-keys", lambda w: {"json": {"name": "ci"}})
body("PUT", W + "/providers/{provider}", lambda w: {"json": {"api_key": "sk-ant-matrix-0000"}})
body("PUT", W + "/limits", lambda w: {"json": {"max_queued_runs": 1000}})
body(
    "PUT",
    W + "/price-overrides/{provider}/{model}",
    lambda w: {"json": {"input_per_mtok": "3", "output_per_mtok": "15"}},
)
body("PUT", W + "/safety/policy", lambda w: {"json": {"pii": "flag"}})
body("PUT", W + "/retention", lambda w: {"json": {"runs_days": None}})
body("POST", W + "/prompts", lambda w: {"json": {"name": f"p-{uuid.uuid4().hex[:8]}"}})
body("GET", W + "/prompts/by-name/{name}", lambda w: {"params": {"label": "production"}})
body("PATCH", P, lambda w: {"json": {"description": "shared"}})
body("POST", P + "/versions", lambda w: {"json": {**_unique_version(), "message": "m"}})
body("PUT", V, lambda w: {"json": VERSION_BODY})
body("PATCH", V, lambda w: {"json": VERSION_BODY})
body("PUT", P + "/labels/{label}", lambda w: {"json": {"version": 1}})
body("POST", V + "/comments", lambda w: {"json": {"body": "a note"}})
body("PATCH", V + "/comments/{comment_id}", lambda w: {"json": {"resolved": True}})
body("POST", W + "/runs", lambda w: {"json": {"prompt_id": w.ids["prompt_id"], **RUN_BODY}})
body("POST", W + "/runs/estimate", lambda w: {"json": {"prompt_id": w.ids["prompt_id"], **RUN_BODY}})
body("POST", W + "/runs/code", lambda w: {"json": {"prompt_id": w.ids["prompt_id"], **RUN_BODY}})
body("POST", W + "/datasets", lambda w: {"json": {"name": f"d-{uuid.uuid4().hex[:8]}", "rows": [{"w": "x"}]}})
body(
    "POST",
    W + "/datasets/import",
    lambda w: {"files": {"file": (f"cases-{uuid.uuid4().hex[:8]}.csv", b"w\nhello\n", "text/csv")}},
)
body("POST", W + "/datasets/{dataset_id}/rows", lambda w: {"json": {"variables": {"w": "more"}}})
body(
    "POST",
    W + "/comparisons",
    lambda w: {"json": {"prompt_id": w.ids["prompt_id"], "versions": [1], "rows": [{"w": "x"}]}},
)
body("GET", C + "/diff", lambda w: {"params": {"a": w.ids["cells"][0], "b": w.ids["cells"][1]}})
body("POST", C + "/assertions", lambda w: {"json": {"kind": "contains", "value": "hi"}})
body("PUT", C + "/cells/{run_id}/rating", lambda w: {"json": {"thumbs": "up"}})


async def _default_call(w: World, method: str, path: str, role: str) -> Call:
    values = {}
    if path.startswith(C + "/cells/"):
        values["run_id"] = w.ids["cells"][0]
    if "{user_id}" in path and "/admin/" in path:
        values["user_id"] = w.ids["floater"].id
    if "{user_id}" in path and "/members/" in path:
        values["user_id"] = w.ids["spare"].id
    extra = BODIES.get((method, path), lambda w: {})(w)
    return Call(_fill(w, path, **values), extra)


# Fresh objects for calls that destroy or change what they touch. Made by the owner (or the instance admin)
# before the call, whatever the role: the builder never guesses the outcome.


async def _fresh_run(w: World) -> str:
    run = await _ok(await w.owner.post(f"/workspaces/{w.ws}/runs", json={"prompt_id": w.ids["prompt_id"], **RUN_BODY}))
    return run["id"]


async def _like_w(w: World, name: str, role: str) -> tuple[str, AsyncClient | None]:
    """A new workspace of W's owner with W's members; for owner_key, a key of its owner there."""
    ws = await create_workspace(w.accounts["owner"], name)
    for member in ("viewer", "editor", "admin"):
        await add_member(w.accounts["owner"], ws, w.accounts[member], member)
    if role != "owner_key":
        return ws, None
    key = (await create_api_key(w.accounts["owner"], ws))["key"]
    headers = {"Authorization": f"Bearer {key}"}
    return ws, AsyncClient(transport=ASGITransport(app=w.app), base_url="http://testserver", headers=headers)


@builds("DELETE", W)
async def _(w, method, path, role):
    ws, client = await _like_w(w, "Doomed", role)
    return Call(f"/workspaces/{ws}", client=client, probe=f"/workspaces/{ws}")


@builds("POST", W + "/exports")
async def _(w, method, path, role):
    # One export at a time per workspace: each call gets a workspace of its own, with W's members.
    ws, client = await _like_w(w, "Exported", role)
    return Call(f"/workspaces/{ws}/exports", client=client)


async def _finished_export(w: World, ws: str) -> str:
    export = await _ok(await w.owner.post(f"/workspaces/{ws}/exports"), 202)
    for _ in range(400):
        status = (await _ok(await w.owner.get(f"/workspaces/{ws}/exports/{export['id']}")))["status"]
        if status not in ("queued", "running"):
            break
        await asyncio.sleep(0.05)
    assert status == "succeeded", status
    return export["id"]


@builds("GET", W + "/exports/{export_id}/download")
async def _(w, method, path, role):
    # Deleting a run, a prompt or an account (other rows do) discards W's stored archives: a fresh one, asked
    # for by the owner, in a workspace of its own with W's members.
    ws, client = await _like_w(w, "Downloaded", role)
    return Call(f"/workspaces/{ws}/exports/{await _finished_export(w, ws)}/download", client=client)


@builds("DELETE", W + "/members/{user_id}")
async def _(w, method, path, role):
    floater = await signup(_client(w.app))
    await add_member(w.accounts["owner"], w.ws, floater, "viewer")
    return Call(f"/workspaces/{w.ws}/members/{floater.id}")


@builds("DELETE", W + "/invitations/{invitation_id}")
async def _(w, method, path, role):
    invited = await _ok(
        await w.owner.post(f"/workspaces/{w.ws}/members", json={"email": _fresh_email(), "role": "viewer"})
    )
    return Call(f"/workspaces/{w.ws}/invitations/{invited['invitation']['id']}")


@builds("DELETE", W + "/api-keys/{api_key_id}")
async def _(w, method, path, role):
    key = await create_api_key(w.accounts["owner"], w.ws, "doomed")
    return Call(f"/workspaces/{w.ws}/api-keys/{key['id']}")


@builds("DELETE", W + "/providers/{provider}")
async def _(w, method, path, role):
    await _ok(await w.owner.put(f"/workspaces/{w.ws}/providers/openai", json={"api_key": "sk-openai-matrix-0000"}))
    return Call(f"/workspaces/{w.ws}/providers/openai")


@builds("PATCH", W + "/safety/flags/{flag_id}")
async def _(w, method, path, role):
    run_id = await _fresh_run_with(w, "write to jo@example.com")
    flags = await _ok(await w.owner.get(f"/workspaces/{w.ws}/safety/flags", params={"status": "open"}))
    flag = next(f for f in flags["items"] if f["run_id"] == run_id)
    return Call(f"/workspaces/{w.ws}/safety/flags/{flag['id']}", {"json": {"status": "resolved", "note": "fine"}})


async def _fresh_run_with(w: World, words: str) -> str:
    body = {"prompt_id": w.ids["prompt_id"], "version": 1, "variables": {"w": words}}
    return (await _ok(await w.owner.post(f"/workspaces/{w.ws}/runs", json=body)))["id"]


@builds("POST", W + "/prompts/import")
async def _(w, method, path, role):
    document = await _ok(await w.owner.get(f"/workspaces/{w.ws}/prompts/{w.ids['prompt_id']}/export"))
    document["prompt"]["name"] = f"imported-{uuid.uuid4().hex[:8]}"
    return Call(f"/workspaces/{w.ws}/prompts/import", {"json": document})


@builds("DELETE", P)
async def _(w, method, path, role):
    prompt = await _ok(
        await w.owner.post(f"/workspaces/{w.ws}/prompts", json={"name": f"doomed-{uuid.uuid4().hex[:8]}"})
    )
    url = f"/workspaces/{w.ws}/prompts/{prompt['id']}"
    return Call(url, probe=url)


@builds("DELETE", V + "/comments/{comment_id}")
async def _(w, method, path, role):
    url = f"/workspaces/{w.ws}/prompts/{w.ids['prompt_id']}/versions/1/comments"
    comment = await _ok(await w.owner.post(url, json={"body": "doomed"}))
    return Call(f"{url}/{comment['id']}")


@builds("DELETE", W + "/runs/{run_id}")
async def _(w, method, path, role):
    run_id = await _fresh_run(w)
    await _ok(await w.owner.post(f"/workspaces/{w.ws}/runs/{run_id}/cancel"), 202)  # finished: cancelled
    return Call(f"/workspaces/{w.ws}/runs/{run_id}", probe=f"/workspaces/{w.ws}/runs/{run_id}")


@builds("POST", W + "/runs/{run_id}/cancel")
async def _(w, method, path, role):
    return Call(f"/workspaces/{w.ws}/runs/{await _fresh_run(w)}/cancel")


@builds("DELETE", W + "/datasets/{dataset_id}")
async def _(w, method, path, role):
    dataset = await _ok(
        await w.owner.post(
            f"/workspaces/{w.ws}/datasets", json={"name": f"doomed-{uuid.uuid4().hex[:8]}", "rows": [{"w": "x"}]}
        )
    )
    url = f"/workspaces/{w.ws}/datasets/{dataset['id']}"
    return Call(url, probe=url)


async def _fresh_cancelled_comparison(w: World) -> dict[str, Any]:
    body = {"prompt_id": w.ids["prompt_id"], "versions": [1], "rows": [{"w": "x"}]}
    comparison = await _ok(await w.owner.post(f"/workspaces/{w.ws}/comparisons", json=body), 202)
    await _ok(await w.owner.post(f"/workspaces/{w.ws}/comparisons/{comparison['id']}/cancel"), 202)
    return comparison


@builds("POST", C + "/cancel")
async def _(w, method, path, role):
    body = {"prompt_id": w.ids["prompt_id"], "versions": [1], "rows": [{"w": "x"}]}
    comparison = await _ok(await w.owner.post(f"/workspaces/{w.ws}/comparisons", json=body), 202)
    return Call(f"/workspaces/{w.ws}/comparisons/{comparison['id']}/cancel")


@builds("POST", C + "/cells/{run_id}/rerun")
async def _(w, method, path, role):
    comparison = await _fresh_cancelled_comparison(w)
    return Call(f"/workspaces/{w.ws}/comparisons/{comparison['id']}/cells/{comparison['cells'][0]['run_id']}/rerun")


@builds("DELETE", C + "/assertions/{assertion_id}")
async def _(w, method, path, role):
    url = f"/workspaces/{w.ws}/comparisons/{w.ids['comparison_id']}/assertions"
    assertion = await _ok(await w.owner.post(url, json={"kind": "contains", "value": "doomed"}))
    return Call(f"{url}/{assertion['id']}")


@builds("DELETE", C + "/cells/{run_id}/rating")
async def _(w, method, path, role):
    # One's own rating is withdrawn: the caller rates first when it may.
    url = f"/workspaces/{w.ws}/comparisons/{w.ids['comparison_id']}/cells/{w.ids['cells'][1]}/rating"
    if role in ("editor", "admin", "owner", "owner_key"):
        await _ok(await w.client(role).put("/api/v1" + url, json={"thumbs": "down"}))
    return Call(url)


@builds("POST", "/api/v1/auth/login")
async def _(w, method, path, role):
    floater = w.ids["floater"]
    return Call("/auth/login", {"json": {"email": floater.email, "password": PASSWORD}})


@builds("POST", "/api/v1/auth/password-reset")
async def _(w, method, path, role):
    target = await signup(_client(w.app))
    admin = w.accounts["instance_admin"].client
    reset = await _ok(await admin.post(f"/admin/users/{target.id}/password-reset"), 201)
    return Call("/auth/password-reset", {"json": {"token": reset["token"], "new_password": "another fine password"}})


# Account-level calls that end a session or change a password, 2FA or the account itself act on a fresh
# account standing in for the role: a signed-in member of W with that role (the owner: the only owner of a
# workspace with another member), a stranger, the instance admin's own promoted account, or an API key.


async def _stand_in(w: World, role: str) -> tuple[AsyncClient, Account | None]:
    if role in ("anonymous", "revoked_key"):
        return w.client(role), None
    account = await signup(_client(w.app))
    if role in ("viewer", "editor", "admin"):
        await add_member(w.accounts["owner"], w.ws, account, role)
    elif role == "owner":
        ws = await create_workspace(account, "Mine")
        await add_member(account, ws, w.accounts["viewer"], "viewer")
    elif role == "instance_admin":
        admin = w.accounts["instance_admin"].client
        await _ok(await admin.patch(f"/admin/users/{account.id}", json={"is_instance_admin": True}))
    elif role in ("foreign_key", "owner_key"):
        ws = await create_workspace(account, "Keyed")
        key = (await create_api_key(account, ws))["key"]
        bearer = AsyncClient(
            transport=ASGITransport(app=w.app), base_url="http://testserver", headers={"Authorization": f"Bearer {key}"}
        )
        return bearer, account
    client = Client(transport=ASGITransport(app=w.app), base_url="http://testserver")
    client.cookies = account.client.cookies
    return client, account


async def _login(w: World, account: Account) -> AsyncClient:
    client = _client(w.app)
    await _ok(await client.post("/auth/login", json={"email": account.email, "password": PASSWORD}))
    return client


def _account_builder(method: str, path: str, prepare=None):
    async def build(w, _method, _path, role):
        client, account = await _stand_in(w, role)
        extra = await prepare(w, account, role) if prepare is not None and account is not None else {}
        url = extra.pop("path", path.removeprefix("/api/v1").replace("{session_id}", str(uuid.uuid4())))
        return Call(url, extra, client)

    BUILDERS[(method, path)] = build


async def _password_body(w, account, role):
    return {"json": {"current_password": PASSWORD, "new_password": "a brand new password"}}


async def _other_session(w, account, role):
    other = await _login(w, account)
    sessions = await _ok(await other.get("/me/sessions"))
    mine = next(s for s in sessions if s.get("current"))
    return {"path": f"/me/sessions/{mine['id']}"}


async def _totp_code(w, account, role):
    setup = await _ok(await account.client.post("/me/2fa/totp/setup"))
    return {"json": {"code": pyotp.TOTP(setup["secret"]).now()}}


async def _totp_on(w, account, role):
    await _ok(await account.client.post("/me/2fa/totp/enable", json=(await _totp_code(w, account, role))["json"]))
    return {"json": {"password": PASSWORD}}


async def _second_session(w, account, role):
    await _login(w, account)
    return {}


_account_builder("POST", "/api/v1/auth/logout")
_account_builder("DELETE", "/api/v1/me")
_account_builder("POST", "/api/v1/me/password", _password_body)
_account_builder("DELETE", "/api/v1/me/sessions/{session_id}", _other_session)
_account_builder("POST", "/api/v1/me/sessions/revoke-others", _second_session)
_account_builder("POST", "/api/v1/me/2fa/totp/enable", _totp_code)
_account_builder("POST", "/api/v1/me/2fa/totp/disable", _totp_on)
_account_builder("POST", "/api/v1/me/2fa/totp/setup")


def _cases() -> list[Any]:
    return [
        pytest.param(method, path, role, id=f"{method} {path.removeprefix('/api/v1')} as {role}")
        for method, path in ROUTES
        if (method, path) in MATRIX
        for role in ROLES
    ]


@pytest.mark.parametrize(("method", "path", "role"), _cases())
async def test_route_answers_each_caller_as_written(world, method, path, role):
    expected = MATRIX[(method, path)][ROLES.index(role)]
    builder = BUILDERS.get((method, path))
    call = await builder(world, method, path, role) if builder else await _default_call(world, method, path, role)
    client = call.client or world.client(role)
    url = call.path if call.path.startswith(("/healthz", "/readyz", "/metrics")) else "/api/v1" + call.path
    async with client:
        response = await client.request(method, url, **call.kwargs)
    allowed = expected if isinstance(expected, tuple) else (expected,)
    assert response.status_code in allowed, (
        f"{method} {path} as {role}: expected {expected}, got {response.status_code} {response.text[:300]}"
    )
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith(PROBLEM), response.headers["content-type"]
    if call.probe is not None:
        after = await world.owner.get(call.probe)
        assert after.status_code == (404 if response.is_success else 200), f"{call.probe}: {after.text[:300]}"


@pytest.mark.parametrize("policy", ["require_2fa", "require_sso"])
async def test_the_sign_in_policy_is_changed_by_a_person_not_a_key(world, policy):
    """PATCH /workspaces/{ws} renames with a key (in the matrix); who must use 2FA or SSO is not a key's call."""
    url = f"/api/v1/workspaces/{world.ws}"
    async with world.client("owner_key") as key:
        response = await key.patch(url, json={policy: False})
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    async with world.client("owner") as owner:
        response = await owner.patch(url, json={policy: False})
    assert response.status_code == 200, response.text
    assert response.json()[policy] is False


# A workspace that requires two-factor authentication: a member without it is turned away (403
# two-factor-required) by every route of the workspace, before its role or the object is looked at.

WORKSPACE_ROUTES = [route for route in ROUTES if "{ws}" in route[1]]


@pytest.fixture(scope="module")
async def strict_workspace(world) -> str:
    guard = await signup(_client(world.app))
    setup = await _ok(await guard.client.post("/me/2fa/totp/setup"))
    await _ok(await guard.client.post("/me/2fa/totp/enable", json={"code": pyotp.TOTP(setup["secret"]).now()}))
    ws = await create_workspace(guard, "Strict")
    await add_member(guard, ws, world.accounts["admin"], "admin")  # W's admin, who has no second factor
    await _ok(await guard.client.patch(f"/workspaces/{ws}", json={"require_2fa": True}))
    return ws


def _any_ids(path: str, ws: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "ws":
            return ws
        if name in ("number", "a", "b"):
            return "1"
        return {"provider": "anthropic", "label": "production", "name": "x", "model": "mock-1"}.get(
            name, str(uuid.uuid4())
        )

    return re.sub(r"\{([^}]+)\}", value, path)


@pytest.mark.parametrize(("method", "path"), WORKSPACE_ROUTES)
async def test_a_member_without_2fa_is_turned_away_where_it_is_required(world, strict_workspace, method, path):
    async with world.client("admin") as admin:
        response = await admin.request(method, _any_ids(path, strict_workspace), json={})
    assert response.status_code == 403, f"{method} {path}: {response.status_code} {response.text[:300]}"
    assert response.json()["type"].endswith("/two-factor-required"), response.text
