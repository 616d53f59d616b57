"""Every route of the OpenAPI document, enumerated at test time: 401 without credentials, 404 for a
stranger (and for another workspace's API key), 403 for a viewer on writes. A route added later that
forgets its authorization fails here without anyone editing this file."""

from __future__ import annotations

import re
import uuid

import pytest

from backend.app import create_app
from backend.core.settings import Settings
from tests.conftest import MASTER_KEY
from tests.factories import add_member, create_api_key, create_workspace, signup

PUBLIC = {
    ("POST", "/api/v1/auth/signup"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/password-reset"),
    ("POST", "/api/v1/auth/forgot-password"),
    ("GET", "/api/v1/auth/sso"),
    ("GET", "/api/v1/auth/sso/start"),
    ("GET", "/api/v1/auth/sso/callback"),
}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
# Writes a viewer may make; each is still covered by the 401/404 checks here, and by its own tests for who
# may do what (tests/test_prompts.py: viewers comment, and edit or delete only their own comments).
COMMENT = "/api/v1/workspaces/{ws}/prompts/{prompt_id}/versions/{number}/comments"
VIEWER_SELF_SERVICE: set[tuple[str, str]] = {
    ("POST", COMMENT),
    ("PATCH", COMMENT + "/{comment_id}"),
    ("DELETE", COMMENT + "/{comment_id}"),
}


def _operations() -> tuple[list[tuple[str, str]], dict[str, str]]:
    app = create_app(Settings(database_url="postgresql+asyncpg://unused@127.0.0.1/unused", master_key=MASTER_KEY))
    ops, types = [], {}
    for path, methods in app.openapi()["paths"].items():
        for method, operation in methods.items():
            ops.append((method.upper(), path))
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    types[parameter["name"]] = parameter["schema"].get("type", "string")
    return sorted(ops), types


OPERATIONS, PARAMETER_TYPES = _operations()
WORKSPACE_OPERATIONS = [op for op in OPERATIONS if "{ws}" in op[1]]


def _fill(path: str, ws: str) -> str:
    path = path.removeprefix("/api/v1").replace("{ws}", ws)

    # Any other id is a well-formed value nobody has (a fresh UUID, a number no version has), so only
    # authorization can answer first.
    def value(match: re.Match[str]) -> str:
        if PARAMETER_TYPES.get(match.group(1)) == "integer":
            return "987654"
        if match.group(1) in ("name", "label"):
            return "no-such-name"
        return str(uuid.uuid4())

    return re.sub(r"\{([^}]+)\}", value, path)


def test_the_route_table_is_not_empty():
    assert len(WORKSPACE_OPERATIONS) >= 10
    assert all(path.startswith("/api/v1/") for _, path in OPERATIONS)


@pytest.fixture
async def world(make_client):
    owner = await signup(make_client())
    ws = await create_workspace(owner, "Target")
    viewer = await signup(make_client())
    await add_member(owner, ws, viewer, "viewer")
    stranger = await signup(make_client())
    other_ws = await create_workspace(stranger, "Elsewhere")
    foreign_key = (await create_api_key(stranger, other_ws))["key"]
    return {"ws": ws, "viewer": viewer, "stranger": stranger, "foreign_key": foreign_key}


@pytest.mark.parametrize(("method", "path"), [op for op in OPERATIONS if op not in PUBLIC])
async def test_anonymous_gets_401(make_client, method, path):
    anonymous = make_client()
    response = await anonymous.request(method, _fill(path, str(uuid.uuid4())), json={})
    assert response.status_code == 401, f"{method} {path}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(("method", "path"), WORKSPACE_OPERATIONS)
async def test_stranger_gets_404(world, method, path):
    response = await world["stranger"].client.request(method, _fill(path, world["ws"]), json={})
    assert response.status_code == 404, f"{method} {path}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(("method", "path"), WORKSPACE_OPERATIONS)
async def test_foreign_api_key_gets_404(world, make_client, method, path):
    bearer = make_client()
    headers = {"Authorization": f"Bearer {world['foreign_key']}"}
    response = await bearer.request(method, _fill(path, world["ws"]), json={}, headers=headers)
    assert response.status_code == 404, f"{method} {path}: {response.status_code} {response.text}"


@pytest.mark.parametrize(
    ("method", "path"),
    [op for op in WORKSPACE_OPERATIONS if op[0] in WRITES and op not in VIEWER_SELF_SERVICE],
)
async def test_viewer_gets_403_on_writes(world, method, path):
    response = await world["viewer"].client.request(method, _fill(path, world["ws"]), json={})
    assert response.status_code == 403, f"{method} {path}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(("method", "path"), [op for op in WORKSPACE_OPERATIONS if op[0] == "GET"])
async def test_unknown_workspace_is_404_for_members_too(world, method, path):
    response = await world["viewer"].client.request(method, _fill(path, str(uuid.uuid4())))
    assert response.status_code == 404, f"{method} {path}: {response.status_code} {response.text}"
