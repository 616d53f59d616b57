"""Per-workspace encryption on real PostgreSQL: provider credentials, binding, rotation, shredding."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import async_sessionmaker

from backend.crypto.envelope import DecryptionError
from backend.crypto.master import LocalKeyProvider, UnknownMasterKey, generate_master_key, parse_master_key
from backend.crypto.service import KeyDestroyed, Keyring
from backend.workspaces import service as workspaces
from backend.workspaces.models import ProviderCredential
from tests.factories import add_member, create_workspace, signup

SECRET = "sk-ant-canary-" + uuid.uuid4().hex


@pytest.fixture
def sessionmaker(db_engine):
    return async_sessionmaker(db_engine, expire_on_commit=False)


async def _put_key(account, ws, secret=SECRET, provider="anthropic", **extra):
    return await account.client.put(f"/workspaces/{ws}/providers/{provider}", json={"api_key": secret, **extra})


async def _credential(sessionmaker, ws) -> ProviderCredential:
    async with sessionmaker() as session:
        query = select(ProviderCredential).where(ProviderCredential.workspace_id == uuid.UUID(ws))
        return (await session.execute(query)).scalar_one()


async def _read_key(sessionmaker, keyring, ws, provider="anthropic"):
    async with sessionmaker() as session:
        access = await workspaces.provider_access(session, keyring, _settings(), uuid.UUID(ws), provider)
        return access.api_key if access else None


def _settings(**overrides):
    from backend.core.settings import Settings

    return Settings(database_url="postgresql+asyncpg://unused/unused", **overrides)


async def test_provider_key_is_stored_sealed_and_shown_only_by_its_last_four(client, app, sessionmaker):
    owner = await signup(client)
    ws = await create_workspace(owner)
    response = await _put_key(owner, ws)
    assert response.status_code == 200, response.text
    assert response.json()["key_last4"] == SECRET[-4:]
    listing = await client.get(f"/workspaces/{ws}/providers")
    assert SECRET not in listing.text and SECRET[:-4] not in listing.text
    assert listing.json()[0]["key_last4"] == SECRET[-4:]

    credential = await _credential(sessionmaker, ws)
    assert SECRET.encode() not in credential.api_key
    assert await _read_key(sessionmaker, app.state.keyring, ws) == SECRET

    audit = (await client.get(f"/workspaces/{ws}/audit-log")).json()["items"]
    assert audit[0]["action"] == "provider.updated"
    assert SECRET not in str(audit)


@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump not installed")
async def test_pg_dump_of_the_database_holds_no_provider_key(client, database_url):
    owner = await signup(client)
    ws = await create_workspace(owner)
    assert (await _put_key(owner, ws)).status_code == 200
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    dump = subprocess.run(["pg_dump", "--data-only", dsn], capture_output=True, check=True, timeout=60).stdout
    assert b"provider_credential" in dump  # the table was dumped …
    assert SECRET.encode() not in dump  # … but not the key
    assert SECRET[:-4].encode() not in dump


async def test_ciphertext_moved_to_another_row_or_workspace_does_not_decrypt(client, make_client, app, sessionmaker):
    owner = await signup(client)
    ws_a = await create_workspace(owner, "A")
    ws_b = await create_workspace(owner, "B")
    await _put_key(owner, ws_a, provider="anthropic")
    await _put_key(owner, ws_a, secret="sk-other-" + uuid.uuid4().hex, provider="openai")
    await _put_key(owner, ws_b, secret="sk-bbbb-" + uuid.uuid4().hex, provider="anthropic")
    async with sessionmaker() as session, session.begin():
        # Same workspace, another row: the openai row gets the anthropic row's ciphertext.
        await session.execute(text(
            "UPDATE provider_credential SET api_key = (SELECT api_key FROM provider_credential "
            "WHERE workspace_id = :a AND provider = 'anthropic') WHERE workspace_id = :a AND provider = 'openai'"
        ), {"a": ws_a})
        # Another workspace: B's anthropic row gets A's ciphertext.
        await session.execute(text(
            "UPDATE provider_credential SET api_key = (SELECT api_key FROM provider_credential "
            "WHERE workspace_id = :a AND provider = 'anthropic') WHERE workspace_id = :b AND provider = 'anthropic'"
        ), {"a": ws_a, "b": ws_b})
    keyring = app.state.keyring
    assert await _read_key(sessionmaker, keyring, ws_a, "anthropic") == SECRET
    with pytest.raises(DecryptionError):
        await _read_key(sessionmaker, keyring, ws_a, "openai")
    with pytest.raises(DecryptionError):
        await _read_key(sessionmaker, keyring, ws_b, "anthropic")


async def test_tampered_ciphertext_does_not_decrypt(client, app, sessionmaker):
    owner = await signup(client)
    ws = await create_workspace(owner)
    await _put_key(owner, ws)
    async with sessionmaker() as session, session.begin():
        await session.execute(text(
            "UPDATE provider_credential SET api_key = overlay(api_key placing '\\xff'::bytea from 50 for 1) "
            "WHERE workspace_id = :ws"
        ), {"ws": ws})
    with pytest.raises(DecryptionError):
        await _read_key(sessionmaker, app.state.keyring, ws)


async def test_each_workspace_has_its_own_wrapped_key(client, sessionmaker):
    owner = await signup(client)
    a, b = await create_workspace(owner, "A"), await create_workspace(owner, "B")
    async with sessionmaker() as session:
        rows = (await session.execute(text(
            "SELECT workspace_id::text, version, state, wrapped_key FROM workspace_key ORDER BY workspace_id"
        ))).all()
    assert sorted(r[0] for r in rows) == sorted([a, b])
    assert all(r[1] == 1 and r[2] == "active" and r[3] for r in rows)
    assert rows[0][3] != rows[1][3]


async def test_rotation_while_reading_and_writing(client, app, sessionmaker):
    owner = await signup(client)
    ws = await create_workspace(owner)
    keyring: Keyring = app.state.keyring
    await _put_key(owner, ws, secret="sk-initial-0000")
    stop = asyncio.Event()
    seen: list[str] = []
    errors: list[BaseException] = []

    async def writer():
        n = 0
        while not stop.is_set():
            n += 1
            response = await _put_key(owner, ws, secret=f"sk-write-{n:08d}")
            if response.status_code != 200:
                errors.append(AssertionError(response.text))
            await asyncio.sleep(0)

    async def reader():
        while not stop.is_set():
            try:
                seen.append(await _read_key(sessionmaker, keyring, ws))
            except BaseException as exc:
                errors.append(exc)
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(writer()), asyncio.create_task(reader()), asyncio.create_task(reader())]
    await asyncio.sleep(0.2)
    for _ in range(3):
        version, _ = await workspaces.rotate_workspace_key(sessionmaker, keyring, uuid.UUID(ws), settle_seconds=0.05)
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*tasks)
    assert errors == []
    assert version == 4 and len(seen) > 10
    # After the last pass every value is sealed under the active key.
    await keyring.reencrypt_workspace(sessionmaker, uuid.UUID(ws))
    credential = await _credential(sessionmaker, ws)
    from backend.crypto.envelope import key_version_of

    assert key_version_of(credential.api_key) == 4
    assert (await _read_key(sessionmaker, keyring, ws)).startswith("sk-write-")
    audit = (await client.get(f"/workspaces/{ws}/audit-log", params={"limit": 200})).json()["items"]
    assert sum(e["action"] == "key.rotated" for e in audit) == 3


async def test_master_rotation_rewraps_every_key(client, app, sessionmaker):
    owner = await signup(client)
    ws = await create_workspace(owner)
    await _put_key(owner, ws)
    old = app.state.keyring.provider
    new_key = generate_master_key()
    old_key = app.state.settings.master_key
    # Every process is given the new key as current and the old one as previous, then rotate-master runs.
    rotating = Keyring(LocalKeyProvider(parse_master_key(new_key), [parse_master_key(old_key)]))
    touched = await workspaces.rotate_master_key(sessionmaker, rotating)
    assert uuid.UUID(ws) in touched
    # Afterwards the old master key can be dropped: a process holding only the new one reads everything.
    only_new = Keyring(LocalKeyProvider(parse_master_key(new_key)))
    assert await _read_key(sessionmaker, only_new, ws) == SECRET
    only_old = Keyring(old)
    only_old.invalidate()
    with pytest.raises(UnknownMasterKey):
        await _read_key(sessionmaker, only_old, ws)


async def test_deleting_a_workspace_shreds_its_key_in_every_process(client, app, sessionmaker, database_url):
    owner = await signup(client)
    ws = await create_workspace(owner)
    await _put_key(owner, ws)
    # A second process's keyring, listening for invalidations, with the key already cached.
    other = Keyring(app.state.keyring.provider, cache_seconds=3600)
    await other.start_listener(database_url)
    await asyncio.wait_for(other.listening.wait(), 10)
    assert await _read_key(sessionmaker, other, ws) == SECRET
    credential = await _credential(sessionmaker, ws)

    assert (await client.delete(f"/workspaces/{ws}")).status_code == 202
    try:
        async with sessionmaker() as session:
            for _ in range(100):
                try:
                    await other.open(session, uuid.UUID(ws), "provider_credential", "api_key", credential.id,
                                     credential.api_key)
                except KeyDestroyed:
                    break
                await asyncio.sleep(0.02)
            else:
                pytest.fail("the other process kept decrypting with its cached key after the workspace was deleted")
            keys = (await session.execute(text(
                "SELECT state, wrapped_key FROM workspace_key WHERE workspace_id = :ws"), {"ws": ws})).all()
        assert keys == [("destroyed", None)]
    finally:
        await other.stop_listener()


async def test_deleted_workspaces_are_purged_in_the_background(client, sessionmaker):
    from backend.maintenance import run_once

    owner = await signup(client)
    ws = await create_workspace(owner)
    await _put_key(owner, ws)
    await client.delete(f"/workspaces/{ws}")
    assert (await run_once(sessionmaker))["workspaces_purged"] == 1
    async with sessionmaker() as session:
        for table in ("workspace", "provider_credential", "workspace_key", "membership"):
            column = "id" if table == "workspace" else "workspace_id"
            count = (await session.execute(text(f"SELECT count(*) FROM {table} WHERE {column} = :ws"), {"ws": ws}))
            assert count.scalar_one() == 0, table
        audit = (await session.execute(text(
            "SELECT action FROM audit_entry WHERE workspace_id = :ws AND action = 'workspace.deleted'"), {"ws": ws}))
        assert audit.scalar_one() == "workspace.deleted"


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/v1",
        "https://169.254.169.254/latest/meta-data",
        "https://10.1.2.3/v1",
        "https://192.168.0.10/v1",
        "https://localhost:8443/v1",
        "https://[::1]/v1",
        "https://[::ffff:127.0.0.1]/v1",
        "http://8.8.8.8/v1",
        "https://user:pass@8.8.8.8/v1",
        "ftp://8.8.8.8/",
        "not a url",
    ],
)
async def test_provider_base_url_refuses_private_and_odd_targets(client, url):
    owner = await signup(client)
    ws = await create_workspace(owner)
    response = await _put_key(owner, ws, base_url=url)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["loc"] == ["body", "base_url"]
    assert (await client.get(f"/workspaces/{ws}/providers")).json() == []


async def test_provider_base_url_public_or_operator_allowed(client, app):
    owner = await signup(client)
    ws = await create_workspace(owner)
    assert (await _put_key(owner, ws, base_url="https://8.8.8.8/v1/")).json()["base_url"] == "https://8.8.8.8/v1"
    app.state.settings.provider_hosts = "127.0.0.1, llm.internal"
    response = await _put_key(owner, ws, provider="openai", base_url="http://127.0.0.1:11434/v1")
    assert response.status_code == 200, response.text


async def test_server_keys_are_shared_only_when_allowed_and_never_with_a_workspace_url(client, app, sessionmaker):
    owner = await signup(client)
    ws = await create_workspace(owner)
    keyring = app.state.keyring
    async with sessionmaker() as session:
        closed = _settings(anthropic_api_key="sk-server-key-1234")
        assert await workspaces.provider_access(session, keyring, closed, uuid.UUID(ws), "anthropic") is None
        shared = _settings(anthropic_api_key="sk-server-key-1234", share_server_keys=True)
        access = await workspaces.provider_access(session, keyring, shared, uuid.UUID(ws), "anthropic")
        assert access.api_key == "sk-server-key-1234" and access.base_url is None and access.source == "server"
    await _put_key(owner, ws, secret="sk-own-key-5678", base_url="https://8.8.8.8/v1")
    async with sessionmaker() as session:
        access = await workspaces.provider_access(session, keyring, shared, uuid.UUID(ws), "anthropic")
    assert access.api_key == "sk-own-key-5678" and access.source == "workspace"


async def test_providers_are_admin_only_to_change(client, make_client):
    owner = await signup(client)
    ws = await create_workspace(owner)
    editor = await signup(make_client())
    await add_member(owner, ws, editor, "editor")
    assert (await _put_key(editor, ws)).status_code == 403
    assert (await editor.client.get(f"/workspaces/{ws}/providers")).status_code == 200
    assert (await _put_key(owner, ws, provider="cohere")).status_code == 422
