"""Schemathesis over the whole OpenAPI document (issue 14, part 1).

Every operation of `create_app(...).openapi()` is fuzzed in-process over ASGI against the real app on a
private PostgreSQL database and a private Redis key prefix, with positive and negative data and every
stateless check schemathesis has (server errors, status codes, content types, response headers and
schemas, negative data rejection, positive data acceptance, missing required headers, unsupported
methods, ignored auth...). The caller is a real signed-up user (session cookie + X-CSRF-Token) who owns a
real workspace; the path parameters are filled with real ids so the fuzzing reaches past the 404s.

Operations that destroy what later cases stand on (logging out, revoking sessions, changing the password,
deleting the account or the workspace, deleting a resource) run with throwaway state of their own: a
fresh user for each case for the account-level ones, a fresh resource for each case for the deletes.

Budget: PLAYGROUND_SCHEMATHESIS_EXAMPLES examples per operation and phase (default 2 in CI; e.g. 200 on
demand, see docs/decisions/adversarial-testing.md). Seeded and derandomized, so a run is reproducible.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

import asyncpg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from redis.asyncio import Redis
from schemathesis.checks import CHECKS as CHECK_REGISTRY
from schemathesis.checks import load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.python.asgi import get_client, shutdown_lifespans

from backend.app import create_app
from backend.core.migrate import upgrade_to_head_async
from backend.core.settings import Settings
from tests.conftest import ADMIN_DSN, MASTER_KEY, REDIS_URL, _async_url

EXAMPLES = int(os.environ.get("PLAYGROUND_SCHEMATHESIS_EXAMPLES", "2"))
SEED = int(os.environ.get("PLAYGROUND_SCHEMATHESIS_SEED", "1414"))
BASE = "http://testserver/api/v1"
PASSWORD = "correct horse battery staple"

load_all_checks()
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "missing_required_header",
    "unsupported_method",
    "ignored_auth",
]

# Operations after which the calling session, its user or its workspace is gone or changed: each case
# runs as a fresh user with a fresh workspace of its own.
SELF_DESTRUCTIVE = {
    ("POST", "/api/v1/auth/logout"),
    ("DELETE", "/api/v1/me"),
    ("PATCH", "/api/v1/me"),
    ("DELETE", "/api/v1/workspaces/{ws}"),
    ("DELETE", "/api/v1/me/sessions/{session_id}"),
    ("POST", "/api/v1/me/sessions/revoke-others"),
    ("POST", "/api/v1/me/password"),
    ("POST", "/api/v1/me/2fa/totp/setup"),
    ("POST", "/api/v1/me/2fa/totp/enable"),
    ("POST", "/api/v1/me/2fa/totp/disable"),
}
# Operations on another user: each case targets a fresh user who is a member of the shared workspace.
ON_ANOTHER_USER = {
    ("PATCH", "/api/v1/workspaces/{ws}/members/{user_id}"),
    ("DELETE", "/api/v1/workspaces/{ws}/members/{user_id}"),
    ("PATCH", "/api/v1/admin/users/{user_id}"),
    ("POST", "/api/v1/admin/users/{user_id}/revoke-sessions"),
    ("POST", "/api/v1/admin/users/{user_id}/password-reset"),
}
# Deletes of one resource: each case removes a fresh one, so the shared ids keep pointing at live rows.
FRESH_FOR_DELETE = {
    "/api/v1/workspaces/{ws}/prompts/{prompt_id}": "prompt_id",
    "/api/v1/workspaces/{ws}/prompts/{prompt_id}/versions/{number}/comments/{comment_id}": "comment_id",
    "/api/v1/workspaces/{ws}/runs/{run_id}": "run_id",
    "/api/v1/workspaces/{ws}/datasets/{dataset_id}": "dataset_id",
    "/api/v1/workspaces/{ws}/api-keys/{api_key_id}": "api_key_id",
    "/api/v1/workspaces/{ws}/invitations/{invitation_id}": "invitation_id",
}


# Expectations a config entry cannot give (schemathesis applies the first matching operations entry):
# Rules across fields or against data a JSON Schema cannot carry, each a 422 naming the field: a provider
# and model must be in the catalogue (versions, runs, estimates, code, comparisons, imports), a price
# override is a decimal string, a dataset row needs run_id or variables, a rating thumbs or a score, a
# regex assertion a value, grading a model-graded assertion, a provider's base_url an absolute http(s)
# URL on an allowed host (the SSRF guard), an uploaded dataset a CSV with a header row, a limit other than
# the budget a number (null only removes the budget; the shared optional model allows it). And versions are
# immutable by contract: PUT, PATCH and DELETE of one are always 405.
W = "/api/v1/workspaces/{ws}"
POSITIVE_ALSO = {
    ("POST", f"{W}/prompts/{{prompt_id}}/versions"): {422},
    ("POST", f"{W}/runs"): {422},
    ("POST", f"{W}/runs/estimate"): {422},
    ("POST", f"{W}/runs/code"): {422},
    ("POST", f"{W}/comparisons"): {422},
    ("POST", f"{W}/prompts/import"): {422},
    ("PUT", f"{W}/price-overrides/{{provider}}/{{model}}"): {422},
    ("POST", f"{W}/datasets/{{dataset_id}}/rows"): {422},
    ("POST", f"{W}/comparisons/{{comparison_id}}/assertions"): {422},
    ("POST", f"{W}/comparisons/{{comparison_id}}/grade"): {422},
    ("PUT", f"{W}/comparisons/{{comparison_id}}/cells/{{run_id}}/rating"): {422},
    ("PUT", f"{W}/providers/{{provider}}"): {422},
    ("PUT", f"{W}/limits"): {422},
    ("POST", f"{W}/datasets/import"): {422},
    ("PUT", f"{W}/prompts/{{prompt_id}}/versions/{{number}}"): {405},
    ("PATCH", f"{W}/prompts/{{prompt_id}}/versions/{{number}}"): {405},
    ("DELETE", f"{W}/prompts/{{prompt_id}}/versions/{{number}}"): {405},
}
# Lenient on purpose: `from`/`to` take a Unix time as well as an ISO date, and `monthly_budget_usd` a JSON
# number as well as a decimal string (stored as the same exact decimal). negative_data_rejection is not
# run on these; what they do refuse is covered by their own tests.
LENIENT = {("GET", f"{W}/runs"), ("GET", f"{W}/usage"), ("GET", f"{W}/usage/latency"), ("PUT", f"{W}/limits")}
POSITIVE_OK = (401, 403, 404, 409, 429)


class World:
    """A signed-up user and its workspace, filled with one of everything, reached over ASGI."""

    def __init__(self, app: Any, email: str | None = None) -> None:
        self.client = get_client(app)
        self.email = email or f"fuzz-{uuid.uuid4().hex[:12]}@example.com"
        response = self.post("/auth/signup", {"email": self.email, "password": PASSWORD, "name": "Fuzz User"})
        assert response.status_code == 201, response.text
        self.user_id = response.json()["id"]
        self.ws = self.post("/workspaces", {"name": f"Fuzz {uuid.uuid4().hex[:6]}"}).json()["id"]
        self.ids: dict[str, Any] = {"ws": self.ws, "user_id": self.user_id}

    @property
    def csrf(self) -> str:
        return self.client.cookies["csrf_token"]

    @property
    def auth_headers(self) -> dict[str, str]:
        cookie = "; ".join(f"{k}={v}" for k, v in self.client.cookies.items())
        return {"Cookie": cookie, "X-CSRF-Token": self.csrf}

    def post(self, path: str, body: Any = None, expect: int | None = None, **kwargs: Any) -> Any:
        headers = {"X-CSRF-Token": self.client.cookies.get("csrf_token", "")}
        response = self.client.post(BASE + path, json=body, headers=headers, **kwargs)
        if expect is not None:
            assert response.status_code == expect, (path, response.status_code, response.text)
        return response

    def put(self, path: str, body: Any, expect: int = 200) -> Any:
        response = self.client.put(BASE + path, json=body, headers={"X-CSRF-Token": self.csrf})
        assert response.status_code == expect, (path, response.status_code, response.text)
        return response

    def get(self, path: str) -> Any:
        response = self.client.get(BASE + path)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def fresh(self, name: str) -> str:
        """A new resource of the kind a path parameter names, in this world's workspace."""
        ws = f"/workspaces/{self.ws}"
        if name == "prompt_id":
            return self.post(f"{ws}/prompts", {"name": f"p-{uuid.uuid4().hex[:8]}"}, 201).json()["id"]
        if name == "comment_id":
            path = f"{ws}/prompts/{self.ids['prompt_id']}/versions/1/comments"
            return self.post(path, {"body": "again"}, 201).json()["id"]
        if name == "run_id":
            body = {"prompt_id": self.ids["prompt_id"], "version": 1, "variables": {"persona": "x", "text": "y"}}
            return self.post(f"{ws}/runs", body, 202).json()["id"]
        if name == "dataset_id":
            body = {"name": f"d-{uuid.uuid4().hex[:6]}", "rows": [{"persona": "x", "text": "y"}]}
            return self.post(f"{ws}/datasets", body, 201).json()["id"]
        if name == "api_key_id":
            return self.post(f"{ws}/api-keys", {"name": "throwaway"}, 201).json()["id"]
        if name == "invitation_id":
            email = f"inv-{uuid.uuid4().hex[:8]}@example.com"
            before = {i["id"] for i in self.get(f"{ws}/invitations")}
            self.post(f"{ws}/members", {"email": email, "role": "viewer"}, 201)
            return next(i["id"] for i in self.get(f"{ws}/invitations") if i["id"] not in before)
        raise AssertionError(name)

    def populate(self) -> dict[str, Any]:
        """One of each resource; returns the path parameters that reach them."""
        ws = f"/workspaces/{self.ws}"
        prompt = self.post(f"{ws}/prompts", {"name": f"p-{uuid.uuid4().hex[:8]}", "description": "d"}, 201).json()
        version_body = {
            "system": "You are {{persona}}.",
            "messages": [{"role": "user", "content": "Summarize: {{text}}"}],
            "model_config": {"provider": "mock", "model": "mock-1", "max_tokens": 32},
            "message": "first",
        }
        self.post(f"{ws}/prompts/{prompt['id']}/versions", version_body, 201)
        version_body["system"] = "You are {{persona}}, briefly."
        self.post(f"{ws}/prompts/{prompt['id']}/versions", version_body, 201)
        self.put(f"{ws}/prompts/{prompt['id']}/labels/production", {"version": 1})
        comment = self.post(f"{ws}/prompts/{prompt['id']}/versions/1/comments", {"body": "looks good"}, 201).json()
        variables = {"persona": "a pirate", "text": "hello there"}
        run = self.post(f"{ws}/runs", {"prompt_id": prompt["id"], "version": 1, "variables": variables}, 202).json()
        dataset = self.post(f"{ws}/datasets", {"name": f"d-{uuid.uuid4().hex[:6]}", "rows": [variables]}, 201).json()
        comparison = self.post(
            f"{ws}/comparisons", {"prompt_id": prompt["id"], "versions": [1, 2], "dataset_id": dataset["id"]}, 202
        ).json()
        key = self.post(f"{ws}/api-keys", {"name": "fuzz"}, 201).json()
        invite = self.post(f"{ws}/members", {"email": f"inv-{uuid.uuid4().hex[:8]}@example.com", "role": "viewer"})
        export = self.post(f"{ws}/exports")
        assert export.status_code in (202, 409), export.text  # 409: one is still being made; use that one
        export_id = export.json().get("id") or export.json()["export_id"]
        sessions = self.get("/me/sessions")
        ids = {
            "prompt_id": prompt["id"],
            "name": prompt["name"],
            "number": 1,
            "a": 1,
            "b": 2,
            "label": "production",
            "comment_id": comment["id"],
            "run_id": comparison["cells"][0]["run_id"],
            "dataset_id": dataset["id"],
            "comparison_id": comparison["id"],
            "api_key_id": key["id"],
            "export_id": export_id,
            "session_id": sessions[0]["id"],
        }
        invitations = self.get(f"{ws}/invitations")
        assert invite.status_code == 201, invite.text
        ids["invitation_id"] = invitations[0]["id"]
        flags = self.get(f"{ws}/safety/flags")["items"]
        if flags:
            ids["flag_id"] = flags[0]["id"]
        self.ids.update(ids)
        self.single_run_id = run["id"]
        return self.ids


DATABASE = f"pp_test_{uuid.uuid4().hex[:12]}"
REDIS_PREFIX = f"pp-test:{uuid.uuid4().hex[:12]}:"
# Building the app opens no connection: the database is created by the fixture before the first request.
# A run worker in the process finishes the runs, so event streams end and finished-run answers are reached.
APP = create_app(
    Settings(
        database_url=_async_url(ADMIN_DSN, DATABASE),
        redis_url=REDIS_URL,
        redis_prefix=REDIS_PREFIX,
        master_key=MASTER_KEY,
        mock_ttft_ms=0,
        mock_token_ms=0,
    ),
    workers=2,
)
NEGATIVE_REJECTED = ["400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429", "5xx"]
POSITIVE_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": SEED,
        # The security schemes (session cookie, bearer key) are filled by us with real credentials, not
        # generated: a random bearer token would make nearly every case a 401. `ignored_auth` still
        # checks each operation without them.
        "generation": {
            "mode": "all",
            "max-examples": EXAMPLES,
            "deterministic": True,
            "with-security-parameters": False,
        },
        "checks": {
            # A body made schema-invalid by exceeding a maxItems can be larger than the 2 MiB cap, which
            # refuses it first with 413: that is a rejection too.
            "negative_data_rejection": {"expected-statuses": [*NEGATIVE_REJECTED, "413"]},
        },
        "operations": [
            # A token's validity is state, not shape: a well-formed but unknown invite token is a 422
            # naming invite_token, an unknown reset token a 400. No schema can tell a live token apart.
            {
                "include-path": "/api/v1/auth/signup",
                "checks": {"positive_data_acceptance": {"expected-statuses": [*POSITIVE_ACCEPTED, "422"]}},
            },
            {
                "include-path": "/api/v1/auth/password-reset",
                "checks": {"positive_data_acceptance": {"expected-statuses": [*POSITIVE_ACCEPTED, "400"]}},
            },
            # Cursors are opaque strings the API hands out (signed position); any other string is a 422
            # naming `cursor`. The schema can only say "string".
            {
                "include-path-regex": "/(audit-log|prompts|runs|safety/flags|admin/users|datasets|comparisons)$",
                "include-method": "GET",
                "checks": {"positive_data_acceptance": {"expected-statuses": [*POSITIVE_ACCEPTED, "422"]}},
            },
        ],
    }
)
schema = schemathesis.openapi.from_dict(APP.openapi(), config=CONFIG)
schema.app = APP  # every request, and every check that re-sends one, goes to the app over ASGI


STATS: dict[str, Any] = {"cases": 0, "operations": set(), "statuses": {}, "seconds": {}, "404": {}}


@pytest.fixture(scope="module")
def fuzz_app():
    async def create() -> None:
        admin = await asyncpg.connect(ADMIN_DSN)
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
        await admin.close()
        await upgrade_to_head_async(_async_url(ADMIN_DSN, DATABASE))

    async def drop() -> None:
        admin = await asyncpg.connect(ADMIN_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await admin.close()
        client = Redis.from_url(REDIS_URL)
        keys = [k async for k in client.scan_iter(match=REDIS_PREFIX + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()

    asyncio.run(create())
    STATS["started"] = time.monotonic()
    try:
        yield APP
    finally:
        shutdown_lifespans()
        asyncio.run(drop())


@pytest.fixture(scope="module")
def world(fuzz_app) -> World:
    first = World(fuzz_app)  # the first account: instance admin, so the admin routes are reached too
    first.populate()
    return first


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_api_conforms(case, world: World, fuzz_app) -> None:
    key = (case.method.upper(), case.operation.path)
    params = case.path_parameters if case.path_parameters is not None else {}
    # Path parameters take the real ids (schemathesis fixes its overrides at collection, before the ids
    # exist), unless the case is negative in its path: then its invalid value is what is being tried.
    if case.meta is None or not case.meta.is_negative_at(ParameterLocation.PATH):
        for name in params:
            if name in world.ids:
                params[name] = world.ids[name]
    headers = world.auth_headers
    if key in SELF_DESTRUCTIVE:
        throwaway = World(fuzz_app)
        throwaway.ids["session_id"] = throwaway.get("/me/sessions")[0]["id"]
        headers = throwaway.auth_headers
        for name in params:
            if name in throwaway.ids and params[name] == world.ids.get(name):
                params[name] = throwaway.ids[name]
    elif key in ON_ANOTHER_USER:
        other = World(fuzz_app)
        world.post(f"/workspaces/{world.ws}/members", {"email": other.email, "role": "editor"}, 201)
        if params.get("user_id") == world.user_id:
            params["user_id"] = other.user_id
    elif key[0] == "DELETE" and case.operation.path in FRESH_FOR_DELETE:
        name = FRESH_FOR_DELETE[case.operation.path]
        if params.get(name) == world.ids.get(name):
            params[name] = world.fresh(name)
    STATS["cases"] += 1
    operation = (case.operation.method.upper(), case.operation.path)  # key is what is sent (may differ)
    STATS["operations"].add(operation)
    started = time.monotonic()
    skip = set()
    if operation in POSITIVE_ALSO:
        skip.add("positive_data_acceptance")
    if operation in LENIENT:
        skip.add("negative_data_rejection")
    response = case.call_and_validate(
        headers={**(case.headers or {}), **headers},
        checks=CHECK_REGISTRY.get_by_names([name for name in CHECKS if name not in skip]),
    )
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if operation in POSITIVE_ALSO and key == operation and positive:
        # positive_data_acceptance with the statuses this operation may also give to schema-valid data
        code = response.status_code
        assert code < 400 or code in POSITIVE_OK or code in POSITIVE_ALSO[operation], (code, response.text[:300])
    STATS["statuses"][response.status_code] = STATS["statuses"].get(response.status_code, 0) + 1
    if response.status_code == 404:
        STATS["404"][operation] = STATS["404"].get(operation, 0) + 1
    STATS["seconds"][operation] = STATS["seconds"].get(operation, 0.0) + time.monotonic() - started


def test_every_operation_was_fuzzed(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture) -> None:
    """Runs after the cases above (pytest keeps file order): every collected operation got cases, and
    the run's figures are printed."""
    collected = [item for item in request.session.items if item.originalname == "test_api_conforms"]
    if not STATS["cases"]:
        pytest.skip("no schemathesis case ran in this session")
    assert len(STATS["operations"]) == len(collected), sorted(STATS["operations"])
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(STATS["statuses"].items()))
    slowest = sorted(STATS["seconds"].items(), key=lambda kv: -kv[1])[:5]
    with capsys.disabled():
        print(
            f"\nschemathesis: {len(STATS['operations'])} operations, {STATS['cases']} cases "
            f"({EXAMPLES} examples per operation and phase, seed {SEED}) in "
            f"{time.monotonic() - STATS['started']:.0f} s; statuses {statuses}; slowest (s, requests only): "
            + ", ".join(f"{m} {p} {t:.1f}" for (m, p), t in slowest)
            + "; most 404s: "
            + ", ".join(f"{m} {p} {n}" for (m, p), n in sorted(STATS["404"].items(), key=lambda kv: -kv[1])[:5])
        )
