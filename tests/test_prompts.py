"""Prompts domain on real PostgreSQL: prompts, immutable numbered versions (and the trigger that keeps them
so), catalogue validation, keyed content hashes, labels with history, by-name lookup with ETags, diffs,
comments and who may touch them, encryption at rest and rotation, export/import, audited deletion and the
purge of deleted workspaces, and the renderer runs use."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import shutil
import statistics
import subprocess
import time
import uuid
from typing import Any
from urllib.parse import quote

import pytest
from httpx import Response
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import async_sessionmaker

from backend.core.errors import InvalidFields
from backend.crypto.envelope import key_version_of
from backend.prompts import service as prompts
from backend.prompts.errors import VersionNotFound
from backend.prompts.rendering import content_hash_material
from backend.workspaces import service as workspaces
from tests.factories import Account, add_member, assert_problem, create_workspace, signup

PROBLEM = "application/problem+json"

VERSION: dict[str, Any] = {
    "system": "You are {{persona}}.",
    "messages": [{"role": "user", "content": "Summarize: {{text}}"}],
    "model_config": {
        "provider": "mock",
        "model": "mock-1",
        "max_tokens": 256,
        "temperature": 0.7,
        "top_p": None,
        "stop_sequences": [],
    },
    "message": "first draft",
}


def body(**changes: Any) -> dict[str, Any]:
    """VERSION with top-level fields replaced; `config` merges into model_config."""
    out = copy.deepcopy(VERSION)
    config = changes.pop("config", None)
    out.update(changes)
    if config is not None:
        out["model_config"] = {**out["model_config"], **config}
    return out




def error_locs(response: Response) -> list[list[Any]]:
    problem = assert_problem(response, 422, "validation-error")
    return [e["loc"] for e in problem["errors"]]


@pytest.fixture
def sessionmaker(db_engine):
    return async_sessionmaker(db_engine, expire_on_commit=False)


@pytest.fixture
async def owner(client) -> Account:
    return await signup(client)


@pytest.fixture
async def ws(owner) -> str:
    return await create_workspace(owner)


async def member(make_client, owner: Account, ws: str, role: str) -> Account:
    account = await signup(make_client())
    await add_member(owner, ws, account, role)
    return account


async def new_prompt(client, ws: str, name: str = "summarizer", description: str = "") -> str:
    response = await client.post(f"/workspaces/{ws}/prompts", json={"name": name, "description": description})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def save(client, ws: str, pid: str, payload: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = await client.post(f"/workspaces/{ws}/prompts/{pid}/versions", json=payload)
    assert response.status_code == status, response.text
    return response.json()


async def audit(client, ws: str, action: str) -> list[dict[str, Any]]:
    response = await client.get(f"/workspaces/{ws}/audit-log", params={"limit": 200})
    assert response.status_code == 200, response.text
    return [e for e in response.json()["items"] if e["action"] == action]


async def count(sessionmaker, sql: str, **params: Any) -> int:
    async with sessionmaker() as session:
        return (await session.execute(text(sql), params)).scalar_one()


# --- prompts ------------------------------------------------------------------------------------------


async def test_create_get_and_unique_names(client, make_client, owner, ws):
    response = await client.post(f"/workspaces/{ws}/prompts", json={"name": "summarizer", "description": "tl;dr"})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["name"] == "summarizer" and created["description"] == "tl;dr"
    assert created["archived"] is False and created["latest_version"] is None
    assert created["created_by"] == owner.id and created["updated_by"] == owner.id
    assert created["created_at"] and created["updated_at"]

    got = await client.get(f"/workspaces/{ws}/prompts/{created['id']}")
    assert got.status_code == 200 and got.json() == created

    taken = await client.post(f"/workspaces/{ws}/prompts", json={"name": "summarizer"})
    assert_problem(taken, 409, "prompt-name-taken")
    # Unique per workspace only: another workspace may use the same name.
    other_ws = await create_workspace(owner, "Other")
    assert (await client.post(f"/workspaces/{other_ws}/prompts", json={"name": "summarizer"})).status_code == 201

    assert_problem(await client.get(f"/workspaces/{ws}/prompts/{uuid.uuid4()}"), 404, "prompt-not-found")
    assert error_locs(await client.post(f"/workspaces/{ws}/prompts", json={"name": ""})) == [["body", "name"]]
    assert error_locs(await client.post(f"/workspaces/{ws}/prompts", json={"name": "x", "tags": []})) == [
        ["body", "tags"]
    ]

    viewer = await member(make_client, owner, ws, "viewer")
    assert_problem(await viewer.client.post(f"/workspaces/{ws}/prompts", json={"name": "mine"}), 403)
    assert (await viewer.client.get(f"/workspaces/{ws}/prompts/{created['id']}")).status_code == 200
    listed = (await client.get(f"/workspaces/{ws}/prompts")).json()["items"]
    assert [p["name"] for p in listed] == ["summarizer"]


async def test_list_paginates_with_a_cursor_and_hides_archived(client, ws):
    ids = [await new_prompt(client, ws, f"p{i}") for i in range(7)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(f"/workspaces/{ws}/prompts", params=params)).json()
        pages += 1
        assert len(page["items"]) <= 3
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(ids))  # most recently changed first, each exactly once

    archived = await client.patch(f"/workspaces/{ws}/prompts/{ids[2]}", json={"archived": True})
    assert archived.status_code == 200 and archived.json()["archived"] is True
    default = [p["id"] for p in (await client.get(f"/workspaces/{ws}/prompts")).json()["items"]]
    assert ids[2] not in default and len(default) == 6
    everything = (await client.get(f"/workspaces/{ws}/prompts", params={"include_archived": "true"})).json()
    assert ids[2] in [p["id"] for p in everything["items"]] and len(everything["items"]) == 7
    assert (await client.get(f"/workspaces/{ws}/prompts/{ids[2]}")).json()["archived"] is True

    back = await client.patch(f"/workspaces/{ws}/prompts/{ids[2]}", json={"archived": False})
    assert back.json()["archived"] is False
    assert len((await client.get(f"/workspaces/{ws}/prompts")).json()["items"]) == 7
    assert_problem(await client.get(f"/workspaces/{ws}/prompts", params={"cursor": "garbage!"}), 422)


async def test_patch_renames_describes_and_refuses_a_taken_name(client, make_client, owner, ws):
    a = await new_prompt(client, ws, "alpha")
    await new_prompt(client, ws, "beta")
    editor = await member(make_client, owner, ws, "editor")
    conflict = await editor.client.patch(f"/workspaces/{ws}/prompts/{a}", json={"name": "beta"})
    assert_problem(conflict, 409, "prompt-name-taken")
    assert (await client.get(f"/workspaces/{ws}/prompts/{a}")).json()["name"] == "alpha"

    renamed = await editor.client.patch(f"/workspaces/{ws}/prompts/{a}", json={"name": "gamma", "description": "d"})
    assert renamed.status_code == 200, renamed.text
    out = renamed.json()
    assert out["name"] == "gamma" and out["description"] == "d" and out["updated_by"] == editor.id
    assert out["created_by"] == owner.id and out["updated_at"] >= out["created_at"]
    assert (await client.get(f"/workspaces/{ws}/prompts/by-name/gamma")).status_code == 404  # no versions yet
    assert error_locs(await client.patch(f"/workspaces/{ws}/prompts/{a}", json={"version_count": 9})) == [
        ["body", "version_count"]
    ]
    viewer = await member(make_client, owner, ws, "viewer")
    assert_problem(await viewer.client.patch(f"/workspaces/{ws}/prompts/{a}", json={"archived": True}), 403)


async def test_concurrent_creates_of_one_name_give_one_201_and_409s(client, ws):
    responses = await asyncio.gather(
        *(client.post(f"/workspaces/{ws}/prompts", json={"name": "racy"}) for _ in range(10))
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 9
    for r in responses:
        if r.status_code == 409:
            assert_problem(r, 409, "prompt-name-taken")
    assert [p["name"] for p in (await client.get(f"/workspaces/{ws}/prompts")).json()["items"]] == ["racy"]


async def test_every_accepted_name_can_be_looked_up_by_name(client, ws):
    name = "team/summarizer"
    created = await client.post(f"/workspaces/{ws}/prompts", json={"name": name})
    if created.status_code == 422:  # refusing such names at creation would be fine too
        assert ["body", "name"] in error_locs(created)
        return
    assert created.status_code == 201, created.text
    v = await save(client, ws, created.json()["id"], VERSION)
    found = await client.get(f"/workspaces/{ws}/prompts/by-name/{quote(name, safe='')}")
    assert found.status_code == 200, found.text
    assert found.json()["id"] == v["id"]


# --- versions: saving and reading ---------------------------------------------------------------------


async def test_version_fields_numbering_parents_and_listing(client, owner, ws):
    pid = await new_prompt(client, ws)
    v1 = await save(client, ws, pid, VERSION)
    assert v1["number"] == 1 and v1["parent_version"] is None
    assert v1["variables"] == ["persona", "text"]
    assert v1["message"] == "first draft" and v1["created_by"] == owner.id and v1["prompt_id"] == pid
    assert v1["system"] == VERSION["system"] and v1["messages"] == VERSION["messages"]
    assert v1["model_config"]["provider"] == "mock" and v1["model_config"]["max_tokens"] == 256
    assert len(bytes.fromhex(v1["content_hash"])) == 32

    v2 = await save(client, ws, pid, body(system="Be {{persona}}", message="second"))
    v3 = await save(client, ws, pid, body(config={"temperature": 0.1}))
    assert (v2["number"], v2["parent_version"]) == (2, 1)
    assert (v3["number"], v3["parent_version"]) == (3, 2)

    listed = (await client.get(f"/workspaces/{ws}/prompts/{pid}/versions")).json()
    assert [v["number"] for v in listed] == [3, 2, 1]
    assert all("system" not in v and "messages" not in v for v in listed)  # summaries, no contents
    assert (await client.get(f"/workspaces/{ws}/prompts/{pid}")).json()["latest_version"] == 3
    assert (await client.get(f"/workspaces/{ws}/prompts/{pid}/versions/2")).json() == v2
    assert_problem(await client.get(f"/workspaces/{ws}/prompts/{pid}/versions/4"), 404, "version-not-found")


async def test_identical_content_returns_the_existing_version(client, ws):
    pid = await new_prompt(client, ws)
    v1 = await save(client, ws, pid, VERSION)
    await save(client, ws, pid, body(system="other"))
    # Same content, another commit message, and config spelled differently but meaning the same.
    again = await save(client, ws, pid, body(message="again", config={"top_p": None, "stop_sequences": []}), 200)
    assert again["id"] == v1["id"] and again["number"] == 1 and again["message"] == "first draft"
    assert [v["number"] for v in (await client.get(f"/workspaces/{ws}/prompts/{pid}/versions")).json()] == [2, 1]


INVALID_VERSIONS = [
    ("first-from-assistant", body(messages=[{"role": "assistant", "content": "hi"}]), ["body", "messages"]),
    ("no-messages", body(messages=[]), ["body", "messages"]),
    ("system-role", body(messages=[{"role": "system", "content": "x"}]), ["body", "messages", 0, "role"]),
    ("unknown-provider", body(config={"provider": "cohere"}), ["body", "model_config", "provider"]),
    ("unknown-mock-model", body(config={"model": "mock-2"}), ["body", "model_config", "model"]),
    (
        "unknown-anthropic-model",
        body(config={"provider": "anthropic", "model": "claude-9", "temperature": 0.5}),
        ["body", "model_config", "model"],
    ),
    ("mock-max-tokens", body(config={"max_tokens": 100_001}), ["body", "model_config", "max_tokens"]),
    (
        "haiku-max-tokens",
        body(
            config={"provider": "anthropic", "model": "claude-3-5-haiku-latest", "max_tokens": 8193, "temperature": 0.5}
        ),
        ["body", "model_config", "max_tokens"],
    ),
    (
        "openai-unknown-model-max-tokens",
        body(config={"provider": "openai", "model": "my-local-llama", "max_tokens": 40_000}),
        ["body", "model_config", "max_tokens"],
    ),
    ("zero-max-tokens", body(config={"max_tokens": 0}), ["body", "model_config", "max_tokens"]),
    (
        "anthropic-temperature",
        body(config={"provider": "anthropic", "model": "claude-sonnet-4-5", "temperature": 1.5}),
        ["body", "model_config", "temperature"],
    ),
    (
        "openai-top-k",
        body(config={"provider": "openai", "model": "gpt-4o", "top_k": 5}),
        ["body", "model_config", "top_k"],
    ),
    (
        "openai-five-stops",
        body(config={"provider": "openai", "model": "gpt-4o", "stop_sequences": ["a", "b", "c", "d", "e"]}),
        ["body", "model_config", "stop_sequences"],
    ),
    ("empty-stop", body(config={"stop_sequences": [""]}), ["body", "model_config", "stop_sequences", 0]),
    ("unknown-config-key", body(config={"frequency_penalty": 0.5}), ["body", "model_config", "frequency_penalty"]),
    ("unknown-top-level-key", body(labels=["production"]), ["body", "labels"]),
]


@pytest.mark.parametrize(("payload", "loc"), [c[1:] for c in INVALID_VERSIONS], ids=[c[0] for c in INVALID_VERSIONS])
async def test_invalid_versions_are_refused_naming_the_field(client, ws, payload, loc):
    pid = await new_prompt(client, ws)
    response = await client.post(f"/workspaces/{ws}/prompts/{pid}/versions", json=payload)
    assert loc in error_locs(response), response.text
    # Nothing half-written.
    assert (await client.get(f"/workspaces/{ws}/prompts/{pid}/versions")).json() == []
    assert (await client.get(f"/workspaces/{ws}/prompts/{pid}")).json()["latest_version"] is None


VALID_CONFIGS = [
    ("openai-compatible-unknown-model", {"provider": "openai", "model": "my-local-llama", "max_tokens": 32_768}),
    ("mock-temperature-1.5", {"temperature": 1.5}),
    ("mock-max-tokens-at-limit", {"max_tokens": 100_000}),
    ("openai-four-stops", {"provider": "openai", "model": "gpt-4o", "stop_sequences": ["a", "b", "c", "d"]}),
    (
        "anthropic-temperature-1",
        {"provider": "anthropic", "model": "claude-sonnet-4-5", "temperature": 1.0, "top_k": 40},
    ),
]


@pytest.mark.parametrize("config", [c[1] for c in VALID_CONFIGS], ids=[c[0] for c in VALID_CONFIGS])
async def test_valid_configs_are_accepted_as_given(client, ws, config):
    pid = await new_prompt(client, ws)
    saved = await save(client, ws, pid, body(config=config))
    for key, value in config.items():
        assert saved["model_config"][key] == value


async def test_whitespace_is_preserved_exactly(client, ws):
    pid = await new_prompt(client, ws)
    payload = body(
        system="  \n\tYou are {{persona}}.  \n\n",
        messages=[
            {"role": "user", "content": "   leading and trailing   \n\n"},
            {"role": "assistant", "content": "\n"},
            {"role": "user", "content": " \r\n{{ text }}\r\n "},
        ],
        config={"stop_sequences": ["\n\nHuman:", " ", "\t\n"]},
    )
    saved = await save(client, ws, pid, payload)
    got = (await client.get(f"/workspaces/{ws}/prompts/{pid}/versions/1")).json()
    for version in (saved, got):
        assert version["system"] == payload["system"]
        assert version["messages"] == payload["messages"]
        assert version["model_config"]["stop_sequences"] == ["\n\nHuman:", " ", "\t\n"]
    # Trimmed content is different content: a new version, not the same one.
    trimmed = body(
        system=payload["system"].strip(),
        messages=payload["messages"],
        config={"stop_sequences": ["\n\nHuman:", " ", "\t\n"]},
    )
    assert (await save(client, ws, pid, trimmed))["number"] == 2


async def test_unicode_round_trips_exactly(client, ws):
    pid = await new_prompt(client, ws)
    decomposed = "Cafe\u0301 \u05e9\u05dc\u05d5\u05dd \u200f\u0627\u0644\u0633\u0644\u0627\u0645\u200e"
    payload = body(
        system="\U0001f469\u200d\U0001f4bb 你好\uff0c世界 {{名字}} {{name}}",
        messages=[
            {"role": "user", "content": decomposed},
            {"role": "assistant", "content": "\U0001f1fa\U0001f1e6 \u0928\u092e\u0938\u094d\u0924\u0947 \ufeff"},
            {"role": "user", "content": "\U0001d518\U0001d52b\U0001d526 {{x}}"},
        ],
        config={"stop_sequences": ["。", "\U0001f6d1"]},
    )
    saved = await save(client, ws, pid, payload)
    got = (await client.get(f"/workspaces/{ws}/prompts/{pid}/versions/1")).json()
    assert got["system"] == payload["system"] and got["messages"] == payload["messages"]
    assert got["model_config"]["stop_sequences"] == ["。", "\U0001f6d1"]
    assert saved["variables"] == got["variables"] == ["name", "x"]  # only [A-Za-z0-9_] names are variables
    # No normalisation: the precomposed spelling is other content.
    composed = copy.deepcopy(payload)
    composed["messages"][0]["content"] = decomposed.replace("e\u0301", "\u00e9")
    assert (await save(client, ws, pid, composed))["number"] == 2
    assert (await client.get(f"/workspaces/{ws}/prompts/{pid}/versions/1")).json()["messages"][0]["content"] == (
        decomposed
    )


async def test_variables_listed_in_order_of_first_appearance(client, ws):
    pid = await new_prompt(client, ws)
    payload = body(
        system="{{zeta}} then {{alpha}}",
        messages=[
            {"role": "user", "content": "{{mid}} {{zeta}} \\{{escaped}} {{ spaced }}"},
            {"role": "assistant", "content": "{{beta}}"},
            {"role": "user", "content": "{{alpha}} {{last_1}} {single}"},
        ],
    )
    assert (await save(client, ws, pid, payload))["variables"] == ["zeta", "alpha", "mid", "spaced", "beta", "last_1"]


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(body(message="commit\x00message"), id="nul-in-commit-message"),
        pytest.param(body(config={"stop_sequences": ["\x00"]}), id="nul-in-stop-sequence"),
        pytest.param(body(system="lone \ud800 surrogate"), id="lone-surrogate-in-system"),
        pytest.param(body(system="nul \x00 in sealed content"), id="nul-in-system"),
    ],
)
async def test_unstorable_characters_are_a_clear_error_never_a_500(client, ws, payload):
    pid = await new_prompt(client, ws)
    raw = json.dumps(payload)  # keeps \ud800 as an escape, as a browser's JSON.stringify would send it
    response = await client.post(
        f"/workspaces/{ws}/prompts/{pid}/versions", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (201, 422), response.text
    if response.status_code == 422:
        assert_problem(response, 422)
        assert (await client.get(f"/workspaces/{ws}/prompts/{pid}/versions")).json() == []
    else:  # stored: then exactly as given
        got = (await client.get(f"/workspaces/{ws}/prompts/{pid}/versions/1")).json()
        assert got["system"] == payload["system"] and got["message"] == payload["message"]
        assert got["model_config"]["stop_sequences"] == payload["model_config"]["stop_sequences"]


async def test_nul_in_a_prompt_name_is_a_422(client, ws):
    response = await client.post(f"/workspaces/{ws}/prompts", json={"name": "a\x00b", "description": "d\x00"})
    assert_problem(response, 422)


# --- concurrency --------------------------------------------------------------------------------------


async def test_concurrent_saves_number_one_to_thirty_without_gaps(client, make_client, owner, ws):
    pid = await new_prompt(client, ws)
    editor = await member(make_client, owner, ws, "editor")
    clients = [client, editor.client]

    async def one(i: int) -> Response:
        return await clients[i % 2].post(
            f"/workspaces/{ws}/prompts/{pid}/versions", json=body(system=f"draft {i}", message=f"m{i}")
        )

    responses = await asyncio.gather(*(one(i) for i in range(30)))
    assert [r.status_code for r in responses] == [201] * 30, [r.text for r in responses if r.status_code != 201]
    numbers = sorted(r.json()["number"] for r in responses)
    assert numbers == list(range(1, 31))
    listed = (await client.get(f"/workspaces/{ws}/prompts/{pid}/versions")).json()
    assert [v["number"] for v in listed] == list(range(30, 0, -1))
    # Each version's parent is the one numbered just before it.
    assert all(v["parent_version"] == (v["number"] - 1 or None) for v in listed)
    assert len({v["id"] for v in listed}) == 30
    assert (await client.get(f"/workspaces/{ws}/prompts/{pid}")).json()["latest_version"] == 30


async def test_concurrent_identical_saves_make_one_version(client, make_client, owner, ws):
    pid = await new_prompt(client, ws)
    editor = await member(make_client, owner, ws, "editor")
    clients = [client, editor.client]
    responses = await asyncio.gather(
        *(clients[i % 2].post(f"/workspaces/{ws}/prompts/{pid}/versions", json=VERSION) for i in range(20))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [201], [r.text for r in responses if r.status_code not in (200, 201)]
    assert len({r.json()["id"] for r in responses}) == 1
    assert {r.json()["number"] for r in responses} == {1}
    assert len((await client.get(f"/workspaces/{ws}/prompts/{pid}/versions")).json()) == 1


async def test_save_racing_a_prompt_deletion_is_a_404(client, ws, db_engine):
    pid = await new_prompt(client, ws)
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    async with db_engine.connect() as conn, conn.begin():
        await conn.execute(text("SELECT id FROM prompt WHERE id = :p FOR UPDATE"), {"p": pid})
        post = asyncio.create_task(client.post(f"/workspaces/{ws}/prompts/{pid}/versions", json=VERSION))
        for _ in range(500):  # until the save is queued behind our lock
            async with db_engine.connect() as probe:
                if (await probe.execute(waiting)).scalar_one():
                    break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the save never waited for the prompt's row lock")
        # The audited deletion path, as DELETE .../prompts/{id} runs it, commits first.
        await conn.execute(text("SELECT set_config('playground.sanctioned', 'delete', true)"))
        await conn.execute(text("DELETE FROM prompt WHERE id = :p"), {"p": pid})
    response = await post
    assert_problem(response, 404, "prompt-not-found")


# --- content hash -------------------------------------------------------------------------------------


async def test_content_hash_is_keyed_per_workspace(client, owner, ws):
    other_ws = await create_workspace(owner, "Other")
    a = await save(client, ws, await new_prompt(client, ws), VERSION)
    a2 = await save(client, ws, await new_prompt(client, ws, "second"), VERSION)
    b = await save(client, other_ws, await new_prompt(client, other_ws), VERSION)
    assert a["content_hash"] != b["content_hash"]
    assert a["content_hash"] == a2["content_hash"]  # one key per workspace, not per prompt
    # Not a plain digest of the content, so it reveals nothing to someone who can guess the text.
    material = content_hash_material(VERSION["system"], VERSION["messages"], VERSION["model_config"])
    assert a["content_hash"] not in {hashlib.sha256(material).hexdigest(), hashlib.sha3_256(material).hexdigest()}


# --- the immutability trigger -------------------------------------------------------------------------


async def _version_row(db_engine, version_id: str) -> tuple:
    async with db_engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT number, message, system, messages, content_hash FROM prompt_version WHERE id = :id"),
                {"id": version_id},
            )
        ).one()


async def test_trigger_refuses_update_and_delete_outside_sanctioned_paths(client, ws, db_engine):
    pid = await new_prompt(client, ws)
    v = await save(client, ws, pid, VERSION)
    before = await _version_row(db_engine, v["id"])
    params = {"id": v["id"]}

    async def refused(*statements: str) -> str:
        with pytest.raises(DBAPIError) as caught:
            async with db_engine.begin() as conn:
                for statement in statements:
                    await conn.execute(text(statement), params)
        return str(caught.value)

    assert "immutable" in await refused("UPDATE prompt_version SET message = 'x' WHERE id = :id")
    assert "immutable" in await refused("UPDATE prompt_version SET system = system WHERE id = :id")
    assert "immutable" in await refused("DELETE FROM prompt_version WHERE id = :id")
    assert "immutable" in await refused("DELETE FROM prompt_version")
    # Re-encryption may change ciphertext columns only.
    sanction = "SELECT set_config('playground.sanctioned', '{}', true)"
    await refused(sanction.format("reencrypt"), "UPDATE prompt_version SET message = 'x' WHERE id = :id")
    await refused(sanction.format("reencrypt"), "UPDATE prompt_version SET number = 7 WHERE id = :id")
    await refused(sanction.format("reencrypt"), "UPDATE prompt_version SET content_hash = '\\x00' WHERE id = :id")
    await refused(sanction.format("reencrypt"), "DELETE FROM prompt_version WHERE id = :id")
    # The deletion path deletes; it does not edit. Any other reason is no reason.
    await refused(sanction.format("delete"), "UPDATE prompt_version SET message = 'x' WHERE id = :id")
    await refused(sanction.format("anything"), "DELETE FROM prompt_version WHERE id = :id")
    assert await _version_row(db_engine, v["id"]) == before

    async with db_engine.connect() as conn:
        async with conn.begin():
            await conn.execute(text(sanction.format("reencrypt")))
            updated = await conn.execute(
                text("UPDATE prompt_version SET system = system, messages = messages WHERE id = :id"), params
            )
            assert updated.rowcount == 1
        # The mark was local to that transaction: the next one on the same connection is refused again.
        with pytest.raises(DBAPIError):
            async with conn.begin():
                await conn.execute(text("UPDATE prompt_version SET system = system WHERE id = :id"), params)
    assert await _version_row(db_engine, v["id"]) == before
    got = (await client.get(f"/workspaces/{ws}/prompts/{pid}/versions/1")).json()
    assert got["system"] == VERSION["system"] and got["message"] == "first draft"


async def test_versions_answer_405_to_editors_and_403_to_viewers(client, make_client, owner, ws):
    pid = await new_prompt(client, ws)
    await save(client, ws, pid, VERSION)
    editor = await member(make_client, owner, ws, "editor")
    viewer = await member(make_client, owner, ws, "viewer")
    url = f"/workspaces/{ws}/prompts/{pid}/versions/1"
    for method in ("PUT", "PATCH", "DELETE"):
        for account in (editor, owner):
            response = await account.client.request(method, url, json=body(system="changed"))
            assert_problem(response, 405, "version-immutable")
            assert response.headers.get("allow") == "GET"
        assert_problem(await viewer.client.request(method, url, json={}), 403)
    got = (await client.get(url)).json()
    assert got["system"] == VERSION["system"]
    assert len((await client.get(f"/workspaces/{ws}/prompts/{pid}/versions")).json()) == 1


# --- rotation -----------------------------------------------------------------------------------------


async def test_rotation_reencrypts_versions_and_comments(client, app, ws, sessionmaker):
    pid = await new_prompt(client, ws)
    payload = body(system="  secret system \n", messages=[{"role": "user", "content": "héllo {{x}} \U0001f600\n"}])
    v = await save(client, ws, pid, payload)
    comment = (
        await client.post(f"/workspaces/{ws}/prompts/{pid}/versions/1/comments", json={"body": " why? \n"})
    ).json()

    async def key_versions() -> set[int]:
        async with sessionmaker() as session:
            row = (
                await session.execute(
                    text("SELECT system, messages FROM prompt_version WHERE id = :id"), {"id": v["id"]}
                )
            ).one()
            c = (
                await session.execute(text("SELECT body FROM version_comment WHERE id = :id"), {"id": comment["id"]})
            ).scalar_one()
        return {key_version_of(row[0]), key_version_of(row[1]), key_version_of(c)}

    assert await key_versions() == {1}
    version, rows = await workspaces.rotate_workspace_key(
        sessionmaker, app.state.keyring, uuid.UUID(ws), settle_seconds=0
    )
    assert version == 2 and rows >= 3
    assert await key_versions() == {2}

    got = (await client.get(f"/workspaces/{ws}/prompts/{pid}/versions/1")).json()
    assert got["system"] == payload["system"] and got["messages"] == payload["messages"]
    assert got["content_hash"] == v["content_hash"]
    comments = (await client.get(f"/workspaces/{ws}/prompts/{pid}/versions/1/comments")).json()
    assert [c["body"] for c in comments] == [" why? \n"]
    # The hash key survives rotation, so identical content still deduplicates.
    assert (await save(client, ws, pid, payload, 200))["id"] == v["id"]


# --- diff ---------------------------------------------------------------------------------------------


async def test_diff_reports_system_messages_and_config_changes(client, ws):
    pid = await new_prompt(client, ws)
    await save(client, ws, pid, body(system="You are {{persona}}.\nBe brief."))
    await save(
        client,
        ws,
        pid,
        body(
            system="You are {{persona}}.\nBe thorough.",
            messages=[*VERSION["messages"], {"role": "assistant", "content": "Sure: {{tone}}"}],
            config={"temperature": 0.2},
        ),
    )
    response = await client.get(f"/workspaces/{ws}/prompts/{pid}/versions/1/diff/2")
    assert response.status_code == 200, response.text
    d = response.json()
    assert d["from_version"] == 1 and d["to_version"] == 2 and d["changed"] is True
    assert d["system"]["changed"] is True
    assert d["system"]["before"] == "You are {{persona}}.\nBe brief."
    assert d["system"]["after"] == "You are {{persona}}.\nBe thorough."
    unified = d["system"]["unified"]
    assert "-Be brief." in unified and "+Be thorough." in unified and " You are {{persona}}.\n" in unified
    assert [(m["index"], m["status"]) for m in d["messages"]] == [(0, "unchanged"), (1, "added")]
    added = d["messages"][1]
    assert added["before"] is None and added["after"] == "Sure: {{tone}}" and added["role_after"] == "assistant"
    assert "+Sure: {{tone}}" in added["unified"]
    config = {c["key"]: c for c in d["model_config"]}
    assert config["temperature"] == {"key": "temperature", "status": "changed", "before": 0.7, "after": 0.2}
    assert config["max_tokens"]["status"] == "unchanged"
    assert d["variables"] == {"added": ["tone"], "removed": []}

    same = (await client.get(f"/workspaces/{ws}/prompts/{pid}/versions/2/diff/2")).json()
    assert same["changed"] is False and same["system"]["unified"] == ""
    back = (await client.get(f"/workspaces/{ws}/prompts/{pid}/versions/2/diff/1")).json()
    assert [m["status"] for m in back["messages"]] == ["unchanged", "removed"]
    assert_problem(await client.get(f"/workspaces/{ws}/prompts/{pid}/versions/1/diff/3"), 404)


# --- labels -------------------------------------------------------------------------------------------


async def test_labels_move_keep_history_and_are_audited(client, make_client, owner, ws):
    pid = await new_prompt(client, ws)
    for i in range(3):
        await save(client, ws, pid, body(system=f"v{i + 1}"))
    editor = await member(make_client, owner, ws, "editor")
    url = f"/workspaces/{ws}/prompts/{pid}/labels"

    first = await editor.client.put(f"{url}/production", json={"version": 1})
    assert first.status_code == 200, first.text
    assert first.json()["name"] == "production" and first.json()["version"] == 1
    assert first.json()["updated_by"] == editor.id
    assert (await client.put(f"{url}/production", json={"version": 3})).json()["version"] == 3
    assert (await editor.client.put(f"{url}/staging", json={"version": 2})).status_code == 200
    moved = await editor.client.put(f"{url}/production", json={"version": 2})
    assert moved.status_code == 200 and moved.json()["version"] == 2

    labels = {label["name"]: label for label in (await client.get(url)).json()}
    assert set(labels) == {"production", "staging"}
    history = [(m["from_version"], m["to_version"], m["moved_by"]) for m in labels["production"]["history"]]
    assert history == [(3, 2, editor.id), (1, 3, owner.id), (None, 1, editor.id)]  # newest first
    assert [(m["from_version"], m["to_version"]) for m in labels["staging"]["history"]] == [(None, 2)]

    entries = await audit(client, ws, "label.moved")
    assert [(e["before"], e["after"]) for e in entries if e["after"]["label"] == "production"] == [
        ({"label": "production", "version": 3}, {"label": "production", "version": 2}),
        ({"label": "production", "version": 1}, {"label": "production", "version": 3}),
        ({"label": "production", "version": None}, {"label": "production", "version": 1}),
    ]
    assert all(e["target"] == {"type": "prompt", "id": pid} for e in entries) and len(entries) == 4
    assert entries[0]["actor"]["user_id"] == editor.id

    for bad in ("Production", "prod_1", "a" * 41, "prod.1", "%20prod"):
        assert_problem(await client.put(f"{url}/{bad}", json={"version": 1}), 422)
    assert (await client.put(f"{url}/{'a' * 40}", json={"version": 1})).status_code == 200
    assert_problem(await client.put(f"{url}/production", json={"version": 9}), 404, "version-not-found")
    assert error_locs(await client.put(f"{url}/production", json={"version": 0})) == [["body", "version"]]
    assert_problem(await client.put(f"/workspaces/{ws}/prompts/{uuid.uuid4()}/labels/x", json={"version": 1}), 404)

    viewer = await member(make_client, owner, ws, "viewer")
    assert_problem(await viewer.client.put(f"{url}/production", json={"version": 1}), 403)
    assert (await viewer.client.get(url)).status_code == 200
    assert {label["name"]: label["version"] for label in (await client.get(url)).json()}["production"] == 2


async def test_label_name_with_a_trailing_newline_is_refused(client, ws):
    pid = await new_prompt(client, ws)
    await save(client, ws, pid, VERSION)
    response = await client.put(f"/workspaces/{ws}/prompts/{pid}/labels/prod%0A", json={"version": 1})
    assert_problem(response, 422)
    assert (await client.get(f"/workspaces/{ws}/prompts/{pid}/labels")).json() == []


# --- by-name lookup -----------------------------------------------------------------------------------


async def test_by_name_resolves_label_version_and_latest_with_etags(client, make_client, owner, ws):
    pid = await new_prompt(client, ws, "support-bot")
    v1 = await save(client, ws, pid, body(system="one"))
    v2 = await save(client, ws, pid, body(system="two"))
    v3 = await save(client, ws, pid, body(system="three"))
    await client.put(f"/workspaces/{ws}/prompts/{pid}/labels/production", json={"version": 2})
    viewer = await member(make_client, owner, ws, "viewer")
    url = f"/workspaces/{ws}/prompts/by-name/support-bot"

    labelled = await viewer.client.get(url, params={"label": "production"})
    assert labelled.status_code == 200, labelled.text
    assert labelled.json() == v2 == (await client.get(f"/workspaces/{ws}/prompts/{pid}/versions/2")).json()
    assert (await client.get(url, params={"version": 1})).json() == v1
    latest = await client.get(url)
    assert latest.json() == v3

    etag = labelled.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    again = await client.get(url, params={"label": "production"})
    assert again.headers["etag"] == etag  # stable
    assert latest.headers["etag"] != etag
    assert (await client.get(url, params={"version": 2})).headers["etag"] == etag  # same version, same tag

    cached = await viewer.client.get(url, params={"label": "production"}, headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b"" and cached.headers["etag"] == etag
    listed = await client.get(url, params={"label": "production"}, headers={"If-None-Match": f'"nope", {etag}'})
    assert listed.status_code == 304
    stale = await client.get(url, params={"label": "production"}, headers={"If-None-Match": '"nope"'})
    assert stale.status_code == 200 and stale.json() == v2

    # Moving the label changes what it answers, and so its ETag.
    await client.put(f"/workspaces/{ws}/prompts/{pid}/labels/production", json={"version": 3})
    after_move = await client.get(url, params={"label": "production"}, headers={"If-None-Match": etag})
    assert after_move.status_code == 200 and after_move.json() == v3
    assert after_move.headers["etag"] not in (etag, None)

    assert_problem(await client.get(f"/workspaces/{ws}/prompts/by-name/nobody"), 404, "prompt-not-found")
    assert_problem(await client.get(url, params={"label": "staging"}), 404, "version-not-found")
    assert_problem(await client.get(url, params={"version": 4}), 404, "version-not-found")
    assert_problem(await client.get(url, params={"label": "Bad Label"}), 422)
    assert_problem(await client.get(url, params={"label": "production", "version": 1}), 422)
    await new_prompt(client, ws, "empty")
    assert_problem(await client.get(f"/workspaces/{ws}/prompts/by-name/empty"), 404)


async def test_by_name_if_none_match_uses_weak_comparison(client, ws):
    pid = await new_prompt(client, ws, "bot")
    await save(client, ws, pid, VERSION)
    url = f"/workspaces/{ws}/prompts/by-name/bot"
    etag = (await client.get(url)).headers["etag"]
    assert (await client.get(url, headers={"If-None-Match": f"W/{etag}"})).status_code == 304
    assert (await client.get(url, headers={"If-None-Match": "*"})).status_code == 304


# --- comments -----------------------------------------------------------------------------------------


async def test_comment_permissions(client, make_client, owner, ws):
    pid = await new_prompt(client, ws)
    await save(client, ws, pid, VERSION)
    admin = await member(make_client, owner, ws, "admin")
    editor = await member(make_client, owner, ws, "editor")
    viewer = await member(make_client, owner, ws, "viewer")
    other_viewer = await member(make_client, owner, ws, "viewer")
    url = f"/workspaces/{ws}/prompts/{pid}/versions/1/comments"

    created = await viewer.client.post(url, json={"body": "  Looks good?\n"})
    assert created.status_code == 201, created.text
    c = created.json()
    assert c["author_id"] == viewer.id and c["body"] == "  Looks good?\n" and c["version"] == 1
    assert c["resolved"] is False and c["edited_at"] is None
    by_editor = (await editor.client.post(url, json={"body": "editor's note"})).json()
    assert [x["id"] for x in (await other_viewer.client.get(url)).json()] == [c["id"], by_editor["id"]]

    # Only the author edits the body, whatever the others' roles.
    for account in (other_viewer, editor, admin, owner):
        assert_problem(await account.client.patch(f"{url}/{c['id']}", json={"body": "hijacked"}), 403)
    edited = await viewer.client.patch(f"{url}/{c['id']}", json={"body": "Looks good."})
    assert edited.status_code == 200 and edited.json()["body"] == "Looks good." and edited.json()["edited_at"]

    # Author or editor+ resolves.
    assert_problem(await other_viewer.client.patch(f"{url}/{c['id']}", json={"resolved": True}), 403)
    assert_problem(await viewer.client.patch(f"{url}/{by_editor['id']}", json={"resolved": True}), 403)
    resolved = await editor.client.patch(f"{url}/{c['id']}", json={"resolved": True})
    assert resolved.status_code == 200 and resolved.json()["resolved"] is True
    assert resolved.json()["resolved_by"] == editor.id and resolved.json()["body"] == "Looks good."
    reopened = await viewer.client.patch(f"{url}/{c['id']}", json={"resolved": False})
    assert reopened.json()["resolved"] is False and reopened.json()["resolved_by"] is None

    # Author or admin+ deletes.
    assert_problem(await other_viewer.client.delete(f"{url}/{c['id']}"), 403)
    assert_problem(await editor.client.delete(f"{url}/{c['id']}"), 403)
    assert (await admin.client.delete(f"{url}/{by_editor['id']}")).status_code == 204
    own = (await other_viewer.client.post(url, json={"body": "mine"})).json()
    assert (await other_viewer.client.delete(f"{url}/{own['id']}")).status_code == 204
    assert (await owner.client.delete(f"{url}/{c['id']}")).status_code == 204
    assert (await client.get(url)).json() == []

    assert_problem(await client.patch(f"{url}/{uuid.uuid4()}", json={"resolved": True}), 404)
    assert error_locs(await client.post(url, json={"body": ""})) == [["body", "body"]]
    assert error_locs(await client.post(url, json={"body": "x", "pinned": True})) == [["body", "pinned"]]
    assert_problem(await client.post(f"/workspaces/{ws}/prompts/{pid}/versions/2/comments", json={"body": "x"}), 404)


@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump not installed")
async def test_pg_dump_holds_no_prompt_or_comment_text(client, ws, database_url):
    canary = uuid.uuid4().hex
    pid = await new_prompt(client, ws)
    await save(
        client,
        ws,
        pid,
        body(
            system=f"system-canary-{canary}",
            messages=[
                {"role": "user", "content": f"user-canary-{canary}"},
                {"role": "assistant", "content": f"assistant-canary-{canary}"},
            ],
        ),
    )
    await client.post(f"/workspaces/{ws}/prompts/{pid}/versions/1/comments", json={"body": f"comment-canary-{canary}"})
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    dump = subprocess.run(["pg_dump", "--data-only", dsn], capture_output=True, check=True, timeout=60).stdout
    assert b"prompt_version" in dump and b"version_comment" in dump
    assert canary.encode() not in dump
    assert canary.encode("utf-16-le") not in dump


# --- export and import --------------------------------------------------------------------------------


async def _three_versions(client, ws: str, name: str = "summarizer") -> str:
    pid = await new_prompt(client, ws, name, "exported prompt")
    await save(client, ws, pid, VERSION)
    await save(
        client, ws, pid, body(system=" Be {{persona}} \n", message="second", config={"stop_sequences": ["\n\nHuman:"]})
    )
    await save(
        client,
        ws,
        pid,
        body(
            messages=[
                *VERSION["messages"],
                {"role": "assistant", "content": "ok 🙂"},
                {"role": "user", "content": "more"},
            ],
            config={"provider": "anthropic", "model": "claude-haiku-4-5", "temperature": 0.3, "top_k": 5},
            message="third",
        ),
    )
    await client.put(f"/workspaces/{ws}/prompts/{pid}/labels/production", json={"version": 2})
    await client.put(f"/workspaces/{ws}/prompts/{pid}/labels/staging", json={"version": 3})
    return pid


async def test_export_document_shape(client, ws):
    pid = await _three_versions(client, ws)
    response = await client.get(f"/workspaces/{ws}/prompts/{pid}/export")
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["format"] == "prompt-playground.prompt" and doc["format_version"] == 1
    assert doc["prompt"] == {"name": "summarizer", "description": "exported prompt", "archived": False}
    assert [v["number"] for v in doc["versions"]] == [1, 2, 3]
    assert [v["message"] for v in doc["versions"]] == ["first draft", "second", "third"]
    assert doc["versions"][1]["system"] == " Be {{persona}} \n"
    assert doc["versions"][1]["model_config"]["stop_sequences"] == ["\n\nHuman:"]
    assert doc["versions"][2]["model_config"]["provider"] == "anthropic"
    assert doc["versions"][2]["model_config"]["top_k"] == 5
    assert doc["versions"][2]["messages"][1] == {"role": "assistant", "content": "ok 🙂"}
    assert sorted((label["name"], label["version"]) for label in doc["labels"]) == [("production", 2), ("staging", 3)]
    assert "id" not in doc["prompt"] and all("id" not in v and "content_hash" not in v for v in doc["versions"])


async def test_import_round_trip_into_another_workspace(client, make_client, owner, ws):
    pid = await _three_versions(client, ws)
    doc = (await client.get(f"/workspaces/{ws}/prompts/{pid}/export")).json()
    other_ws = await create_workspace(owner, "Other")
    editor = await member(make_client, owner, other_ws, "editor")

    response = await editor.client.post(f"/workspaces/{other_ws}/prompts/import", json=doc)
    assert response.status_code == 201, response.text
    imported = response.json()
    assert imported["id"] != pid and imported["name"] == "summarizer" and imported["latest_version"] == 3
    assert imported["description"] == "exported prompt" and imported["created_by"] == editor.id

    for number in (1, 2, 3):
        a = (await client.get(f"/workspaces/{ws}/prompts/{pid}/versions/{number}")).json()
        b = (await client.get(f"/workspaces/{other_ws}/prompts/{imported['id']}/versions/{number}")).json()
        assert b["id"] != a["id"] and b["prompt_id"] == imported["id"]
        for field in ("number", "system", "messages", "model_config", "variables", "message", "parent_version"):
            assert b[field] == a[field], field
        assert b["content_hash"] != a["content_hash"]  # keyed by the other workspace
    labels = {
        x["name"]: x["version"]
        for x in (await client.get(f"/workspaces/{other_ws}/prompts/{imported['id']}/labels")).json()
    }
    assert labels == {"production": 2, "staging": 3}
    by_label = await client.get(f"/workspaces/{other_ws}/prompts/by-name/summarizer", params={"label": "staging"})
    assert by_label.json()["messages"][1]["content"] == "ok 🙂"
    # The copy exports to the same document.
    again = (await client.get(f"/workspaces/{other_ws}/prompts/{imported['id']}/export")).json()
    strip = lambda d: [{k: v for k, v in x.items() if k != "created_at"} for x in d["versions"]]  # noqa: E731
    assert strip(again) == strip(doc) and again["prompt"] == doc["prompt"]
    assert sorted(map(str, again["labels"])) == sorted(map(str, doc["labels"]))

    # Into the same workspace under the same name: a conflict, and nothing half-written.
    assert_problem(await client.post(f"/workspaces/{ws}/prompts/import", json=doc), 409, "prompt-name-taken")
    assert len((await client.get(f"/workspaces/{ws}/prompts")).json()["items"]) == 1


async def test_import_refuses_bad_documents(client, make_client, owner, ws):
    pid = await _three_versions(client, ws)
    doc = (await client.get(f"/workspaces/{ws}/prompts/{pid}/export")).json()
    doc["prompt"]["name"] = "copy"
    url = f"/workspaces/{ws}/prompts/import"

    gap = copy.deepcopy(doc)
    gap["versions"][2]["number"] = 4
    assert ["body", "versions"] in error_locs(await client.post(url, json=gap))
    dangling = copy.deepcopy(doc)
    dangling["labels"].append({"name": "canary", "version": 7})
    assert ["body", "labels", 2, "version"] in error_locs(await client.post(url, json=dangling))
    duplicate = copy.deepcopy(doc)
    duplicate["versions"][1] = {**duplicate["versions"][0], "number": 2}
    assert_problem(await client.post(url, json=duplicate), 422)
    bad_model = copy.deepcopy(doc)
    bad_model["versions"][0]["model_config"]["model"] = "mock-2"
    assert_problem(await client.post(url, json=bad_model), 422)
    wrong_format = {**doc, "format": "langfuse"}
    assert ["body", "format"] in error_locs(await client.post(url, json=wrong_format))
    # None of those left a prompt behind.
    names = [
        p["name"]
        for p in (await client.get(f"/workspaces/{ws}/prompts", params={"include_archived": "true"})).json()["items"]
    ]
    assert names == ["summarizer"]

    viewer = await member(make_client, owner, ws, "viewer")
    assert_problem(await viewer.client.post(url, json=doc), 403)


# --- deletion -----------------------------------------------------------------------------------------


async def test_delete_prompt_through_the_audited_path(client, make_client, owner, ws, sessionmaker):
    pid = await _three_versions(client, ws)
    keep = await _three_versions(client, ws, "keeper")
    await client.post(f"/workspaces/{ws}/prompts/{pid}/versions/1/comments", json={"body": "c1"})
    await client.post(f"/workspaces/{ws}/prompts/{keep}/versions/1/comments", json={"body": "c2"})
    editor = await member(make_client, owner, ws, "editor")
    admin = await member(make_client, owner, ws, "admin")

    assert_problem(await editor.client.delete(f"/workspaces/{ws}/prompts/{pid}"), 403)
    assert (await admin.client.delete(f"/workspaces/{ws}/prompts/{pid}")).status_code == 204
    assert_problem(await client.get(f"/workspaces/{ws}/prompts/{pid}"), 404)
    assert_problem(await admin.client.delete(f"/workspaces/{ws}/prompts/{pid}"), 404)

    for table, column in (
        ("prompt", "id"),
        ("prompt_version", "prompt_id"),
        ("prompt_label", "prompt_id"),
        ("prompt_label_move", "prompt_id"),
    ):
        assert await count(sessionmaker, f"SELECT count(*) FROM {table} WHERE {column} = :p", p=pid) == 0, table
    assert await count(sessionmaker, "SELECT count(*) FROM version_comment") == 1
    assert await count(sessionmaker, "SELECT count(*) FROM prompt_version WHERE prompt_id = :p", p=keep) == 3
    assert len((await client.get(f"/workspaces/{ws}/prompts/{keep}/labels")).json()) == 2

    entries = await audit(client, ws, "prompt.deleted")
    assert len(entries) == 1
    assert entries[0]["target"] == {"type": "prompt", "id": pid}
    assert entries[0]["actor"]["user_id"] == admin.id
    assert entries[0]["before"]["name"] == "summarizer"
    # The name is free again, and a new prompt starts over at version 1.
    again = await new_prompt(client, ws, "summarizer")
    assert (await save(client, ws, again, VERSION))["number"] == 1


async def test_purge_of_a_deleted_workspace_removes_prompts_despite_the_trigger(client, owner, ws, sessionmaker):
    from backend.maintenance import run_once

    pid = await _three_versions(client, ws)
    await client.post(f"/workspaces/{ws}/prompts/{pid}/versions/2/comments", json={"body": "bye"})
    other_ws = await create_workspace(owner, "Survivor")
    survivor = await _three_versions(client, other_ws)
    assert (await client.delete(f"/workspaces/{ws}")).status_code == 202
    assert_problem(await client.get(f"/workspaces/{ws}/prompts/{pid}/versions/1"), 404)
    assert_problem(await client.get(f"/workspaces/{ws}/prompts/by-name/summarizer"), 404)
    assert (await run_once(sessionmaker))["workspaces_purged"] == 1
    for table in ("prompt", "prompt_version", "prompt_label", "prompt_label_move", "version_comment"):
        assert await count(sessionmaker, f"SELECT count(*) FROM {table} WHERE workspace_id = :ws", ws=ws) == 0, table
    assert await count(sessionmaker, "SELECT count(*) FROM prompt_version WHERE prompt_id = :p", p=survivor) == 3
    assert (await client.get(f"/workspaces/{other_ws}/prompts/{survivor}/versions/3")).status_code == 200


# --- tenant isolation ---------------------------------------------------------------------------------


async def test_another_workspaces_prompt_is_404_through_my_workspace(client, make_client, ws):
    pid = await _three_versions(client, ws)
    comment = (await client.post(f"/workspaces/{ws}/prompts/{pid}/versions/1/comments", json={"body": "x"})).json()
    stranger = await signup(make_client())
    mine = await create_workspace(stranger, "Mine")
    s = stranger.client
    base = f"/workspaces/{mine}/prompts/{pid}"
    for method, url, payload in [
        ("GET", base, None),
        ("PATCH", base, {"name": "stolen"}),
        ("DELETE", base, None),
        ("GET", f"{base}/versions", None),
        ("GET", f"{base}/versions/1", None),
        ("POST", f"{base}/versions", VERSION),
        ("GET", f"{base}/versions/1/diff/2", None),
        ("GET", f"{base}/labels", None),
        ("PUT", f"{base}/labels/production", {"version": 1}),
        ("GET", f"{base}/versions/1/comments", None),
        ("POST", f"{base}/versions/1/comments", {"body": "x"}),
        ("PATCH", f"{base}/versions/1/comments/{comment['id']}", {"resolved": True}),
        ("DELETE", f"{base}/versions/1/comments/{comment['id']}", None),
        ("GET", f"{base}/export", None),
        ("GET", f"/workspaces/{mine}/prompts/by-name/summarizer", None),
    ]:
        response = await s.request(method, url, json=payload)
        assert_problem(response, 404)
    # And straight at the owner's workspace: not a member, so 404 as well.
    assert_problem(await s.get(f"/workspaces/{ws}/prompts/{pid}"), 404)
    assert (await client.get(f"/workspaces/{ws}/prompts/{pid}")).json()["name"] == "summarizer"
    assert len((await client.get(f"/workspaces/{ws}/prompts/{pid}/versions/1/comments")).json()) == 1


# --- rendering (what runs use) ------------------------------------------------------------------------


async def test_render_version_checks_variables_and_never_rerenders_values(client, app, ws, sessionmaker):
    pid = await new_prompt(client, ws)
    saved = await save(client, ws, pid, body(messages=[{"role": "user", "content": "  Summarize: {{text}}\n"}]))
    keyring = app.state.keyring
    async with sessionmaker() as session:
        version = await prompts.get_version_by_id(session, uuid.UUID(ws), uuid.UUID(saved["id"]))
        rendered = await prompts.render_version(
            session, keyring, version, {"persona": "{{text}}", "text": "a \\{{persona}} b {{persona}}"}
        )
        assert rendered.system == "You are {{text}}."
        assert rendered.messages == [{"role": "user", "content": "  Summarize: a \\{{persona}} b {{persona}}\n"}]

        with pytest.raises(InvalidFields) as missing:
            await prompts.render_version(session, keyring, version, {"persona": "x"})
        assert missing.value.status == 422
        assert [e["loc"] for e in missing.value.errors] == [["body", "variables", "text"]]

        with pytest.raises(InvalidFields) as extra:
            await prompts.render_version(session, keyring, version, {"persona": "x", "text": "y", "tone": "z"})
        assert [e["loc"] for e in extra.value.errors] == [["body", "variables", "tone"]]

        with pytest.raises(InvalidFields) as both:
            await prompts.render_version(session, keyring, version, {"text": 3, "tone": "VALUE-CANARY"})
        assert sorted(map(tuple, (e["loc"] for e in both.value.errors))) == sorted(
            [("body", "variables", "persona"), ("body", "variables", "text"), ("body", "variables", "tone")]
        )
        assert "VALUE-CANARY" not in str(both.value) + json.dumps(both.value.errors)  # names, never values

        # The version is not found through another workspace.
        with pytest.raises(VersionNotFound):
            await prompts.get_version_by_id(session, uuid.uuid4(), uuid.UUID(saved["id"]))


# --- latency (printed, not asserted) ------------------------------------------------------------------


async def test_measure_version_save_and_lookup_latency(client, ws, capsys):
    pid = await new_prompt(client, ws, "bench")
    url = f"/workspaces/{ws}/prompts/{pid}/versions"

    def stats(samples: list[float]) -> str:
        ordered = sorted(samples)
        p95 = ordered[int(len(ordered) * 0.95) - 1]
        return f"median {statistics.median(ordered) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms (n={len(ordered)})"

    creates = []
    for i in range(200):
        start = time.perf_counter()
        response = await client.post(url, json=body(system=f"bench {i} {{{{persona}}}}"))
        creates.append(time.perf_counter() - start)
        assert response.status_code == 201
    await client.put(f"/workspaces/{ws}/prompts/{pid}/labels/production", json={"version": 100})
    lookup = f"/workspaces/{ws}/prompts/by-name/bench"
    etag = (await client.get(lookup, params={"label": "production"})).headers["etag"]
    full, conditional = [], []
    for _ in range(500):
        start = time.perf_counter()
        response = await client.get(lookup, params={"label": "production"})
        full.append(time.perf_counter() - start)
        assert response.status_code == 200
    for _ in range(500):
        start = time.perf_counter()
        response = await client.get(lookup, params={"label": "production"}, headers={"If-None-Match": etag})
        conditional.append(time.perf_counter() - start)
        assert response.status_code == 304
    with capsys.disabled():
        print(f"\nversion create: {stats(creates)}")
        print(f"by-name lookup (200): {stats(full)}")
        print(f"by-name lookup (304): {stats(conditional)}")
