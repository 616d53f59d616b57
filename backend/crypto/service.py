"""Per-workspace envelope encryption: data keys, sealing and opening fields, rotation and shredding.

Other domains call `Keyring.seal_field` / `Keyring.open_field` on rows whose columns were declared with
`encrypted_column()`; nothing else about keys leaks out of this package.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import func
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.core.database import mark_sanctioned
from backend.core.tasks import cancel_and_wait
from backend.crypto import envelope
from backend.crypto import repository as repo
from backend.crypto.envelope import DecryptionError
from backend.crypto.master import KeyProvider
from backend.crypto.models import WorkspaceKey

logger = logging.getLogger(__name__)

INVALIDATION_CHANNEL = "playground_keys"
# Unwrapped keys live this long in a process at most, even if an invalidation were somehow missed.
DEFAULT_CACHE_SECONDS = 30.0


class KeyDestroyed(DecryptionError):
    """The workspace's keys were shredded: its content is unreadable, by design."""


# Where a key lookup that misses the cache reads from: the caller's session, or a fresh one when it has none.
SessionSource = AsyncSession | async_sessionmaker[AsyncSession]


def _context(workspace_id: uuid.UUID, version: int) -> bytes:
    return f"workspace:{workspace_id}:v{version}".encode()


class Keyring:
    """One per process: unwraps data keys on demand and keeps them briefly.

    Rotation and shredding NOTIFY every process through PostgreSQL, on commit; a listener that lost its
    connection drops the whole cache, since it may have missed a message.
    """

    def __init__(self, provider: KeyProvider, *, cache_seconds: float = DEFAULT_CACHE_SECONDS) -> None:
        self.provider = provider
        self.cache_seconds = cache_seconds
        self._keys: dict[tuple[uuid.UUID, int], tuple[bytes, float]] = {}
        self._active: dict[uuid.UUID, tuple[int, float]] = {}
        self._hash_keys: dict[uuid.UUID, tuple[bytes, float]] = {}
        self._generation = 0
        self._generations: dict[uuid.UUID, int] = {}
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    # Cache

    def _generation_of(self, workspace_id: uuid.UUID) -> tuple[int, int]:
        return self._generation, self._generations.get(workspace_id, 0)

    def invalidate(self, workspace_id: uuid.UUID | None = None) -> None:
        # Bumped so that a lookup that read the database before this invalidation cannot put its (now
        # stale) answer back into the cache afterwards.
        if workspace_id is None:
            self._generation += 1
        else:
            self._generations[workspace_id] = self._generations.get(workspace_id, 0) + 1
        if workspace_id is None:
            self._keys.clear()
            self._active.clear()
            self._hash_keys.clear()
            return
        self._active.pop(workspace_id, None)
        self._hash_keys.pop(workspace_id, None)
        for cached in [k for k in self._keys if k[0] == workspace_id]:
            self._keys.pop(cached, None)

    def _fresh(self, expires: float) -> bool:
        return time.monotonic() < expires

    def _cached_key(self, workspace_id: uuid.UUID, version: int | None) -> tuple[int, bytes] | None:
        if version is None:
            active = self._active.get(workspace_id)
            if active and self._fresh(active[1]):
                version = active[0]
        if version is not None:
            cached = self._keys.get((workspace_id, version))
            if cached and self._fresh(cached[1]):
                return version, cached[0]
        return None

    async def _data_key(
        self, session: SessionSource, workspace_id: uuid.UUID, version: int | None
    ) -> tuple[int, bytes]:
        cached = self._cached_key(workspace_id, version)
        if cached is not None:
            return cached
        if not isinstance(session, AsyncSession):
            # A hot path that only needs a session on a cache miss (the worker's events, the SSE readers).
            async with session() as own, own.begin():
                return await self._data_key(own, workspace_id, version)
        generation = self._generation_of(workspace_id)
        row = await repo.get_key(session, workspace_id, version)
        if row is None and version is None and not await repo.get_key(session, workspace_id, 1):
            # A workspace from before encryption existed gets its first key on its first write.
            await self.create_workspace_key(session, workspace_id)
            row = await repo.get_key(session, workspace_id, None)
        if row is None:
            wanted = "an active data key" if version is None else f"data key v{version}"
            raise DecryptionError(f"workspace {workspace_id} has no {wanted}")
        if row.wrapped_key is None or row.master_key_id is None:
            raise KeyDestroyed(f"the data keys of workspace {workspace_id} were destroyed")
        key = await asyncio.to_thread(
            self.provider.unwrap, row.master_key_id, row.wrapped_key, _context(workspace_id, row.version)
        )
        if self._generation_of(workspace_id) == generation:
            expires = time.monotonic() + self.cache_seconds
            self._keys[(workspace_id, row.version)] = (key, expires)
            if row.state == "active":
                self._active[workspace_id] = (row.version, expires)
        return row.version, key

    # Fields

    async def seal(
        self, session: SessionSource, workspace_id: uuid.UUID, table: str, column: str, row_id: Any, plaintext: bytes
    ) -> bytes:
        version, key = await self._data_key(session, workspace_id, None)
        ad = envelope.associated_data(workspace_id, table, column, row_id)
        return envelope.seal(key, version, plaintext, ad)

    async def open(
        self, session: SessionSource, workspace_id: uuid.UUID, table: str, column: str, row_id: Any, ciphertext: bytes
    ) -> bytes:
        _, key = await self._data_key(session, workspace_id, envelope.key_version_of(ciphertext))
        ad = envelope.associated_data(workspace_id, table, column, row_id)
        return envelope.unseal(key, ciphertext, ad)

    async def seal_field(self, session: AsyncSession, row: Any, column: str, value: bytes | str) -> None:
        """Sets `row.<column>` to the sealed value; gives the row its id first, since the id is bound in."""
        if getattr(row, "id", None) is None:
            row.id = uuid.uuid4()
        plaintext = value.encode() if isinstance(value, str) else value
        sealed = await self.seal(session, row.workspace_id, row.__tablename__, column, row.id, plaintext)
        setattr(row, column, sealed)

    async def open_field(self, session: AsyncSession, row: Any, column: str) -> bytes:
        return await self.open(session, row.workspace_id, row.__tablename__, column, row.id, getattr(row, column))

    async def open_text(self, session: AsyncSession, row: Any, column: str) -> str:
        return (await self.open_field(session, row, column)).decode()

    async def content_hash(self, session: AsyncSession, workspace_id: uuid.UUID, material: bytes) -> bytes:
        """HMAC-SHA256 of `material` under a per-workspace hashing key.

        The hashing key is derived from the workspace's first data key, which rotation retires but keeps,
        so equal content keeps an equal hash across rotations; shredding destroys it with the rest.
        """
        cached = self._hash_keys.get(workspace_id)
        if cached and self._fresh(cached[1]):
            hash_key = cached[0]
        else:
            _, first = await self._data_key(session, workspace_id, 1)
            hash_key = HKDF(
                algorithm=hashes.SHA256(), length=32, salt=None, info=b"prompt-playground/content-hash/v1"
            ).derive(first)
            self._hash_keys[workspace_id] = (hash_key, time.monotonic() + self.cache_seconds)
        return hmac.new(hash_key, material, hashlib.sha256).digest()

    # Lifecycle of a workspace's keys

    async def create_workspace_key(self, session: AsyncSession, workspace_id: uuid.UUID) -> None:
        master_id, wrapped = await asyncio.to_thread(
            self.provider.wrap, envelope.new_data_key(), _context(workspace_id, 1)
        )
        session.add(
            WorkspaceKey(
                workspace_id=workspace_id, version=1, state="active", master_key_id=master_id, wrapped_key=wrapped
            )
        )
        await session.flush()

    async def rotate_workspace_key(self, session: AsyncSession, workspace_id: uuid.UUID) -> int:
        """A new active version for new writes; older versions stay readable until re-encryption is done."""
        keys = await repo.lock_keys(session, workspace_id)
        if not keys or any(k.state == "destroyed" for k in keys):
            raise DecryptionError(f"workspace {workspace_id} has no live keys to rotate")
        version = keys[-1].version + 1
        for key in keys:
            if key.state == "active":
                key.state = "retired"
                key.retired_at = func.now()
        master_id, wrapped = await asyncio.to_thread(
            self.provider.wrap, envelope.new_data_key(), _context(workspace_id, version)
        )
        session.add(
            WorkspaceKey(
                workspace_id=workspace_id, version=version, state="active", master_key_id=master_id, wrapped_key=wrapped
            )
        )
        await session.flush()
        await repo.notify(session, INVALIDATION_CHANNEL, str(workspace_id))
        self.invalidate(workspace_id)
        return version

    async def shred(self, session: AsyncSession, workspace_id: uuid.UUID) -> int:
        """Destroys every version of the workspace's data key: its ciphertexts become noise, everywhere."""
        destroyed = await repo.destroy_keys(session, workspace_id)
        await repo.notify(session, INVALIDATION_CHANNEL, str(workspace_id))
        self.invalidate(workspace_id)
        return destroyed

    async def reencrypt_workspace(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        workspace_id: uuid.UUID,
        *,
        batch_size: int = 200,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Re-seals every encrypted value of the workspace under its active key, one short transaction per batch.

        Reads keep working throughout: each value is readable under whichever version its header names.
        """
        total = 0
        for table, column in repo.encrypted_columns():
            while True:
                async with sessionmaker() as session, session.begin():
                    await mark_sanctioned(session, "reencrypt")
                    version, _ = await self._data_key(session, workspace_id, None)
                    rows = await repo.rows_under_old_keys(session, table, column, workspace_id, version, batch_size)
                    for row_id, ciphertext in rows:
                        plaintext = await self.open(session, workspace_id, table.name, column.name, row_id, ciphertext)
                        resealed = await self.seal(session, workspace_id, table.name, column.name, row_id, plaintext)
                        await repo.store_ciphertext(session, table, column, row_id, resealed)
                total += len(rows)
                if progress and rows:
                    progress(total)
                if len(rows) < batch_size:
                    break
        return total

    async def rewrap_all(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, batch_size: int = 200
    ) -> list[uuid.UUID]:
        """Re-wraps every live data key under the current master key; returns the workspaces touched."""
        touched: list[uuid.UUID] = []
        current = self.provider.current_key_id()
        while True:
            async with sessionmaker() as session, session.begin():
                keys = await repo.keys_to_rewrap(session, current, batch_size)
                for key in keys:
                    assert key.master_key_id is not None and key.wrapped_key is not None
                    context = _context(key.workspace_id, key.version)
                    plain = await asyncio.to_thread(self.provider.unwrap, key.master_key_id, key.wrapped_key, context)
                    key.master_key_id, key.wrapped_key = await asyncio.to_thread(self.provider.wrap, plain, context)
                    touched.append(key.workspace_id)
            if len(keys) < batch_size:
                return sorted(set(touched), key=str)

    # Cross-process invalidation

    async def start_listener(self, database_url: str) -> None:
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(database_url), name="keyring-invalidation")

    async def stop_listener(self) -> None:
        if self._listener is not None:
            await cancel_and_wait([self._listener])
            self._listener = None

    async def _listen(self, database_url: str) -> None:
        dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)

        def on_message(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            try:
                self.invalidate(uuid.UUID(payload))
            except ValueError:
                self.invalidate()

        while True:
            connection = None
            try:
                closed = asyncio.Event()
                connection = await asyncpg.connect(dsn)
                connection.add_termination_listener(lambda _conn, closed=closed: closed.set())
                await connection.add_listener(INVALIDATION_CHANNEL, on_message)
                # Anything could have changed while we were not listening.
                self.invalidate()
                self.listening.set()
                await closed.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("key invalidation listener lost its connection (%s); retrying", type(exc).__name__)
            finally:
                self.listening.clear()
                self.invalidate()
                if connection is not None and not connection.is_closed():
                    with contextlib.suppress(Exception):
                        await connection.close()
            await asyncio.sleep(1)
