"""Every query of workspace keys, and the generic scans over encrypted columns used by rotation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from sqlalchemy import Column, Table, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import Base
from backend.crypto.models import ENCRYPTED, WorkspaceKey


def encrypted_columns() -> Iterator[tuple[Table, Column]]:
    """Every column any domain declared with `encrypted_column()`."""
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if column.info.get(ENCRYPTED):
                yield table, column


async def get_key(session: AsyncSession, workspace_id: uuid.UUID, version: int | None) -> WorkspaceKey | None:
    """A given version, or the active one when version is None."""
    stmt = select(WorkspaceKey).where(WorkspaceKey.workspace_id == workspace_id)
    if version is None:
        stmt = stmt.where(WorkspaceKey.state == "active")
    else:
        stmt = stmt.where(WorkspaceKey.version == version)
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock_keys(session: AsyncSession, workspace_id: uuid.UUID) -> list[WorkspaceKey]:
    stmt = (
        select(WorkspaceKey)
        .where(WorkspaceKey.workspace_id == workspace_id)
        .order_by(WorkspaceKey.version)
        .with_for_update()
    )
    return list((await session.execute(stmt)).scalars())


async def destroy_keys(session: AsyncSession, workspace_id: uuid.UUID) -> int:
    result = await session.execute(
        update(WorkspaceKey)
        .where(WorkspaceKey.workspace_id == workspace_id, WorkspaceKey.state != "destroyed")
        .values(state="destroyed", wrapped_key=None, master_key_id=None, destroyed_at=func.now())
    )
    return result.rowcount or 0


async def keys_to_rewrap(session: AsyncSession, current_master_id: str, limit: int) -> list[WorkspaceKey]:
    stmt = (
        select(WorkspaceKey)
        .where(WorkspaceKey.wrapped_key.is_not(None), WorkspaceKey.master_key_id != current_master_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).scalars())


async def notify(session: AsyncSession, channel: str, payload: str) -> None:
    """Delivered to listeners only if and when the transaction commits."""
    await session.execute(select(func.pg_notify(channel, payload)))


async def rows_under_old_keys(
    session: AsyncSession, table: Table, column: Column, workspace_id: uuid.UUID, version: int, limit: int
) -> list[tuple[object, bytes]]:
    """Rows of a workspace whose ciphertext carries another key version (bytes 2-5 of the header)."""
    header_version = func.substring(column, 2, 4)
    stmt = (
        select(table.c.id, column)
        .where(
            and_(
                table.c.workspace_id == workspace_id,
                column.is_not(None),
                header_version != version.to_bytes(4, "big"),
            )
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [(row[0], row[1]) for row in (await session.execute(stmt)).all()]


async def store_ciphertext(session: AsyncSession, table: Table, column: Column, row_id: object, value: bytes) -> None:
    await session.execute(update(table).where(table.c.id == row_id).values({column.name: value}))


async def workspaces_with_keys(session: AsyncSession) -> list[uuid.UUID]:
    stmt = select(WorkspaceKey.workspace_id).where(WorkspaceKey.state == "active")
    return list((await session.execute(stmt)).scalars())

