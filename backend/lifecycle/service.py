"""The data lifecycle: retention of run contents (a background job, in batches that never block the product)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.lifecycle.models import ExportChunk, RetentionPolicy, WorkspaceExport
from backend.workspaces.service import Actor, WorkspaceAccess, record_audit, require_at_least

EXPIRY_BATCH = 500

# The runs past their workspace's policy, oldest first within each workspace that has one (a walk of
# ix_run_contents_due per policy: the runs of workspaces that keep everything are never visited), that nobody
# else is touching right now (SKIP LOCKED: a run being read or deleted is simply taken in a later batch).
# Their contents go; counts, costs, timings and flags' kinds stay, and so do usage rollups and the ledger
# (they never held content).
_EXPIRE = text(
    """
    WITH due AS (
        SELECT r.id FROM run AS r
        WHERE r.contents_expired_at IS NULL
          AND r.id IN (
            SELECT d.id FROM retention_policy AS p
            CROSS JOIN LATERAL (
                SELECT x.id FROM run AS x
                WHERE x.workspace_id = p.workspace_id
                  AND x.contents_expired_at IS NULL
                  AND x.status IN ('succeeded', 'failed', 'cancelled')
                  AND x.created_at < now() - make_interval(days => p.runs_days)
                ORDER BY x.created_at
                LIMIT :batch
            ) AS d
            WHERE p.runs_days IS NOT NULL
            LIMIT :batch
          )
        FOR UPDATE OF r SKIP LOCKED
    )
    UPDATE run SET snapshot = NULL, output = NULL, extras = NULL, contents_expired_at = now()
    FROM due WHERE run.id = due.id
    RETURNING run.id
    """
)
_EXPIRE_FLAGS = text("UPDATE safety_flag SET excerpt = NULL, note = NULL WHERE run_id = ANY(:ids)")


async def retention_of(session: AsyncSession, access: WorkspaceAccess) -> dict[str, Any]:
    row = await session.get(RetentionPolicy, access.workspace.id)
    return {"runs_days": row.runs_days if row else None}


async def set_retention(
    session: AsyncSession, access: WorkspaceAccess, runs_days: int | None, actor: Actor
) -> dict[str, Any]:
    require_at_least(access, "admin", "Changing the retention policy")
    before = await retention_of(session, access)
    row = await session.get(RetentionPolicy, access.workspace.id, with_for_update=True)
    if row is None:
        row = RetentionPolicy(workspace_id=access.workspace.id)
        session.add(row)
    row.runs_days = runs_days
    row.updated_at = func.now()
    after = {"runs_days": runs_days}
    if after != before:
        await record_audit(
            session,
            workspace_id=access.workspace.id,
            actor=actor,
            action="retention.updated",
            target_type="retention_policy",
            target_id=access.workspace.id,
            before=before,
            after=after,
        )
    await session.flush()
    return after


async def expire_run_contents(sessionmaker: async_sessionmaker[AsyncSession], *, batch: int = EXPIRY_BATCH) -> int:
    """One batch of expiry, in its own short transaction; answers how many runs it emptied."""
    async with sessionmaker() as session, session.begin():
        ids = list((await session.execute(_EXPIRE, {"batch": batch})).scalars())
        if ids:
            await session.execute(_EXPIRE_FLAGS, {"ids": ids})
    return len(ids)


async def discard_archives(session: AsyncSession, workspace_id: uuid.UUID) -> None:
    """Deleted content must not live on in an archive: finished exports of the workspace are expired now, and
    one being made starts again (from a snapshot taken after this deletion) once this commits."""
    await session.execute(
        update(WorkspaceExport)
        .where(WorkspaceExport.workspace_id == workspace_id, WorkspaceExport.status == "running")
        .values(status="queued", heartbeat_at=None)
    )
    expired = (
        update(WorkspaceExport)
        .where(WorkspaceExport.workspace_id == workspace_id, WorkspaceExport.status == "succeeded")
        .values(status="expired", expires_at=func.now())
        .returning(WorkspaceExport.id)
    )
    ids = list((await session.execute(expired)).scalars())
    if ids:
        await session.execute(delete(ExportChunk).where(ExportChunk.export_id.in_(ids)))
