"""Plain async factories for tests: each one goes through the public API, like a user would."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from httpx import AsyncClient, Response

PASSWORD = "correct horse battery staple"
PROBLEM = "application/problem+json"


@dataclass
class Account:
    client: AsyncClient
    id: str
    email: str


async def signup(client: AsyncClient, email: str | None = None, **extra: Any) -> Account:
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": PASSWORD, "name": "Test User", **extra}
    response = await client.post("/auth/signup", json=body)
    assert response.status_code == 201, response.text
    return Account(client=client, id=response.json()["id"], email=email)


async def create_workspace(account: Account, name: str = "Acme") -> str:
    response = await account.client.post("/workspaces", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def add_member(owner: Account, ws: str, member: Account, role: str) -> None:
    response = await owner.client.post(f"/workspaces/{ws}/members", json={"email": member.email, "role": role})
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "added"


async def create_api_key(account: Account, ws: str, name: str = "ci") -> dict[str, Any]:
    response = await account.client.post(f"/workspaces/{ws}/api-keys", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()


def assert_problem(response: Response, status: int, type_suffix: str | None = None) -> dict[str, Any]:
    """An RFC 9457 problem with this status (and problem type, when given)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers["content-type"]
    body = response.json()
    assert body["status"] == status
    for field in ("type", "title", "detail"):
        assert isinstance(body[field], str) and body[field], body
    if type_suffix is not None:
        assert body["type"].endswith("/" + type_suffix), body["type"]
    return body
