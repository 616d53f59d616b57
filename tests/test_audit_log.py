"""The audit log is complete: each action API.md lists writes exactly one entry, with actor, target, before
and after (secrets masked), client address and time."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.factories import add_member, create_api_key, create_workspace, signup
from tests.runs_helpers import RunningWorker
from tests.test_runs import wait_for

MOCK = {"provider": "mock", "model": "mock-1", "max_tokens": 64}
PROVIDER_KEY = "sk-ant-api03-" + "x" * 40 + "SECRET"


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"mock_ttft_ms": 1, "mock_token_ms": 1})


async def test_every_listed_action_writes_exactly_one_entry(client, make_client, app):
    owner = await signup(client)
    ws = await create_workspace(owner)
    member = await signup(make_client())
    await add_member(owner, ws, member, "viewer")  # member.added
    assert (await client.patch(f"/workspaces/{ws}/members/{member.id}", json={"role": "editor"})).status_code == 200
    invited = await client.post(f"/workspaces/{ws}/members", json={"email": "later@example.com", "role": "viewer"})
    assert invited.status_code == 201, invited.text  # member.invited
    assert (await client.delete(f"/workspaces/{ws}/members/{member.id}")).status_code == 204
    key = await create_api_key(owner, ws)
    assert (await client.delete(f"/workspaces/{ws}/api-keys/{key['id']}")).status_code == 204
    provider = await client.put(f"/workspaces/{ws}/providers/anthropic", json={"api_key": PROVIDER_KEY})
    assert provider.status_code == 200, provider.text
    assert (await client.put(f"/workspaces/{ws}/limits", json={"runs_per_minute": 100})).status_code == 200
    assert (await client.put(f"/workspaces/{ws}/safety/policy", json={"injection": "off"})).status_code == 200

    pid = (await client.post(f"/workspaces/{ws}/prompts", json={"name": "audited"})).json()["id"]
    body = {"messages": [{"role": "user", "content": "{{text}}"}], "model_config": MOCK}
    assert (await client.post(f"/workspaces/{ws}/prompts/{pid}/versions", json=body)).status_code == 201
    label = await client.put(f"/workspaces/{ws}/prompts/{pid}/labels/production", json={"version": 1})
    assert label.status_code == 200
    run = await client.post(f"/workspaces/{ws}/runs", json={"prompt_id": pid, "variables": {"text": "a@b.example.com"}})
    run_id = run.json()["id"]
    async with RunningWorker(app):
        await wait_for(client, ws, run_id)
    flags = (await client.get(f"/workspaces/{ws}/safety/flags")).json()["items"]
    [flag] = [f for f in flags if f["where"] == "input"]
    patched = await client.patch(f"/workspaces/{ws}/safety/flags/{flag['id']}", json={"status": "resolved"})
    assert patched.status_code == 200
    assert (await client.delete(f"/workspaces/{ws}/runs/{run_id}")).status_code == 204
    assert (await client.delete(f"/workspaces/{ws}/prompts/{pid}")).status_code == 204

    response = await client.get(f"/workspaces/{ws}/audit-log", params={"limit": 200})
    assert response.status_code == 200
    items = response.json()["items"]
    counts = Counter(item["action"] for item in items)
    for action in (
        "member.added",
        "member.role_changed",
        "member.invited",
        "member.removed",
        "api_key.created",
        "api_key.revoked",
        "provider.updated",
        "limits.updated",
        "policy.updated",
        "label.moved",
        "flag.resolved",
        "run.deleted",
        "prompt.deleted",
    ):
        assert counts[action] == 1, (action, counts)
    for item in items:
        assert item["actor"]["user_id"] == owner.id and item["client_address"] == "127.0.0.1"
        assert item["target"]["type"] and item["created_at"]
    assert PROVIDER_KEY not in response.text and "SECRET" not in response.text  # only the last four, masked
    assert "a@b.example.com" not in response.text
