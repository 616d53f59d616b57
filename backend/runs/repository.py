"""Every query of runs, including the one-statement claim and the lease and reconciler updates."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.runs.models import Run


async def get_run(session: AsyncSession, workspace_id: uuid.UUID, run_id: uuid.UUID) -> Run | None:
    stmt = select(Run).where(Run.workspace_id == workspace_id, Run.id == run_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_run_any(session: AsyncSession, run_id: uuid.UUID, *, for_update: bool = False) -> Run | None:
    """For workers, which act on run ids from the queue rather than on behalf of a caller."""
    stmt = select(Run).where(Run.id == run_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def statuses(session: AsyncSession, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = await session.execute(select(Run.id, Run.status).where(Run.id.in_(set(run_ids))))
    return {run_id: status for run_id, status in rows}


async def get_by_idempotency_key(
    session: AsyncSession, workspace_id: uuid.UUID, user_id: uuid.UUID, key: str
) -> Run | None:
    stmt = select(Run).where(Run.workspace_id == workspace_id, Run.created_by == user_id, Run.idempotency_key == key)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_runs(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    filters: dict[str, Any],
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Run]:
    stmt = select(Run).where(Run.workspace_id == workspace_id)
    if filters.get("prompt_id"):
        stmt = stmt.where(Run.prompt_id == filters["prompt_id"])
    if filters.get("version"):
        stmt = stmt.where(Run.version_number == filters["version"])
    if filters.get("status"):
        stmt = stmt.where(Run.status == filters["status"])
    if filters.get("created_by"):
        stmt = stmt.where(Run.created_by == filters["created_by"])
    if filters.get("created_from"):
        stmt = stmt.where(Run.created_at >= filters["created_from"])
    if filters.get("created_to"):
        stmt = stmt.where(Run.created_at < filters["created_to"])
    if after is not None:
        at, last_id = after
        # `created_at <= at` bounds the ordered scan of ix_run_workspace_created, which starts at the cursor and stops
        # after `limit` rows; with the OR alone PostgreSQL read every run past the cursor and sorted them (a deep
        # page took ~1 s at 200,000 runs: docs/decisions/storage-at-scale.md).
        stmt = stmt.where(Run.created_at <= at, or_(Run.created_at < at, Run.id < last_id))
    stmt = stmt.order_by(Run.created_at.desc(), Run.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def delete_run(session: AsyncSession, run: Run) -> None:
    await session.execute(delete(Run).where(Run.id == run.id))


async def claim(session: AsyncSession, run_id: uuid.UUID, worker: str, lease: timedelta) -> Run | None:
    """queued → running with a lease, in one statement: a second delivery of the same run claims nothing."""
    stmt = (
        update(Run)
        .where(Run.id == run_id, Run.status == "queued", Run.cancel_requested_at.is_(None))
        .values(
            status="running",
            lease_owner=worker,
            lease_expires_at=func.now() + lease,
            started_at=func.coalesce(Run.started_at, func.now()),
            attempts=Run.attempts + 1,
        )
        .returning(Run)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def claim_many(session: AsyncSession, run_ids: list[uuid.UUID], worker: str, lease: timedelta) -> list[Run]:
    """claim() of several runs in one statement (what one read of the queue delivered)."""
    stmt = (
        update(Run)
        .where(Run.id.in_(run_ids), Run.status == "queued", Run.cancel_requested_at.is_(None))
        .values(
            status="running",
            lease_owner=worker,
            lease_expires_at=func.now() + lease,
            started_at=func.coalesce(Run.started_at, func.now()),
            attempts=Run.attempts + 1,
        )
        .returning(Run)
        .execution_options(synchronize_session=False)
    )
    return list((await session.execute(stmt)).scalars())


_SAVE_PROGRESS = text(
    """
    WITH v AS (
        SELECT * FROM unnest(
            CAST(:ids AS uuid[]), CAST(:outputs AS bytea[]), CAST(:output_chars AS integer[]),
            CAST(:last_seqs AS integer[]), CAST(:ttfts AS integer[]), CAST(:input_tokens AS integer[])
        ) AS v(id, output, output_chars, last_seq, ttft_ms, input_tokens)
    ),
    mine AS (
        SELECT r.id FROM run AS r JOIN v ON v.id = r.id
        WHERE r.status = 'running' AND r.lease_owner = :worker
        ORDER BY r.id
        FOR UPDATE OF r SKIP LOCKED
    )
    UPDATE run AS r
    SET lease_expires_at = now() + make_interval(secs => :lease_seconds),
        output = v.output,
        output_chars = v.output_chars,
        last_seq = v.last_seq,
        ttft_ms = coalesce(v.ttft_ms, r.ttft_ms),
        input_tokens = coalesce(v.input_tokens, r.input_tokens)
    FROM v
    WHERE r.id = v.id AND r.id IN (SELECT id FROM mine)
    RETURNING r.id, r.cancel_requested_at
    """
)
# Rows the save skipped because another transaction held them (a settlement, a cancel request): still ours?
_STILL_LEASED = text(
    "SELECT id FROM run WHERE id = ANY(CAST(:ids AS uuid[])) AND status = 'running' AND lease_owner = :worker"
)


@dataclass(frozen=True)
class Progress:
    run_id: uuid.UUID
    output: bytes
    output_chars: int
    last_seq: int
    ttft_ms: int | None
    input_tokens: int | None


async def save_progress(
    session: AsyncSession, worker: str, lease: timedelta, progress: list[Progress]
) -> dict[uuid.UUID, datetime | bool | str | None]:
    """renew() of many runs in one statement, never waiting on a row another transaction holds (one run's
    settlement must not hold up the lease renewal of all the others). Answers per run: its
    cancel_requested_at when saved; SKIPPED when the row was busy and is still ours; False when it is not."""
    rows = sorted(progress, key=lambda p: p.run_id)  # one lock order for every batch
    result = await session.execute(
        _SAVE_PROGRESS,
        {
            "lease_seconds": lease.total_seconds(),
            "worker": worker,
            "ids": [p.run_id for p in rows],
            "outputs": [p.output for p in rows],
            "output_chars": [p.output_chars for p in rows],
            "last_seqs": [p.last_seq for p in rows],
            "ttfts": [p.ttft_ms for p in rows],
            "input_tokens": [p.input_tokens for p in rows],
        },
    )
    answer: dict[uuid.UUID, datetime | bool | str | None] = {row[0]: row[1] for row in result}
    skipped = [p.run_id for p in rows if p.run_id not in answer]
    if skipped:
        still = set((await session.execute(_STILL_LEASED, {"ids": skipped, "worker": worker})).scalars())
        for run_id in skipped:
            answer[run_id] = SKIPPED if run_id in still else False
    return answer


SKIPPED = "skipped"  # save_progress: the row was busy this time; the lease is still ours


async def renew(
    session: AsyncSession, run_id: uuid.UUID, worker: str, lease: timedelta, values: dict[str, Any]
) -> datetime | bool | None:
    """Extends the lease and stores progress; False when the lease is no longer ours, else cancel_requested_at."""
    stmt = (
        update(Run)
        .where(Run.id == run_id, Run.status == "running", Run.lease_owner == worker)
        .values(lease_expires_at=func.now() + lease, **values)
        .returning(Run.cancel_requested_at)
    )
    row = (await session.execute(stmt)).first()
    return False if row is None else row[0]


async def finish(session: AsyncSession, run_id: uuid.UUID, worker: str | None, values: dict[str, Any]) -> Run | None:
    """running → terminal, only by the lease holder (or by the reconciler when worker is None)."""
    conditions = [Run.id == run_id, Run.status == "running"]
    if worker is not None:
        conditions.append(Run.lease_owner == worker)
    stmt = (
        update(Run)
        .where(*conditions)
        .values(finished_at=func.now(), lease_owner=None, lease_expires_at=None, **values)
        .returning(Run)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def cancel_queued(session: AsyncSession, run_id: uuid.UUID, last_seq: int) -> Run | None:
    stmt = (
        update(Run)
        .where(Run.id == run_id, Run.status == "queued")
        .values(
            status="cancelled",
            cancel_requested_at=func.now(),
            finished_at=func.now(),
            stop_reason="cancelled",
            last_seq=last_seq,
            input_tokens=0,
            output_tokens=0,
            cost_micros=0,
        )
        .returning(Run)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def request_cancel(session: AsyncSession, run_id: uuid.UUID) -> bool:
    stmt = (
        update(Run)
        .where(Run.id == run_id, Run.status == "running")
        .values(cancel_requested_at=func.coalesce(Run.cancel_requested_at, func.now()))
        .returning(Run.id)
    )
    return (await session.execute(stmt)).first() is not None


async def expired_leases(session: AsyncSession, limit: int) -> list[Run]:
    stmt = (
        select(Run)
        .where(Run.status == "running", Run.lease_expires_at < func.now())
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).scalars())


async def requeue(session: AsyncSession, run_id: uuid.UUID) -> None:
    await session.execute(
        update(Run)
        .where(Run.id == run_id)
        .values(status="queued", lease_owner=None, lease_expires_at=None, dispatched_at=func.now())
    )


async def lost_dispatches(session: AsyncSession, older_than: timedelta, limit: int) -> list[uuid.UUID]:
    """Queued runs handed to the queue long ago and never claimed: the queue lost them (e.g. Redis restarted)."""
    stmt = (
        select(Run.id)
        .where(Run.status == "queued", Run.dispatched_at.is_not(None), Run.dispatched_at < func.now() - older_than)
        .order_by(Run.dispatched_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await session.execute(stmt)).scalars())
    if ids:
        await session.execute(update(Run).where(Run.id.in_(ids)).values(dispatched_at=func.now()))
    return ids


async def lock_dispatch(session: AsyncSession, workspace_id: uuid.UUID) -> None:
    """Serialises admission decisions of one workspace: its concurrency cap is never overshot."""
    name = f"dispatch/{workspace_id}"
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(name, 0))))


async def count_active(session: AsyncSession, workspace_id: uuid.UUID) -> int:
    """Runs running or handed to the queue: what counts against max_concurrent_runs."""
    stmt = select(func.count()).where(
        Run.workspace_id == workspace_id,
        or_(Run.status == "running", and_(Run.status == "queued", Run.dispatched_at.is_not(None))),
    )
    return (await session.execute(stmt)).scalar_one()


async def count_queued_and_active(session: AsyncSession, workspace_id: uuid.UUID) -> tuple[int, int]:
    """Queued runs (waiting or dispatched), and active ones: running or handed to the queue, which is what
    counts against max_concurrent_runs. One scan of the workspace's unfinished runs."""
    active = or_(Run.status == "running", Run.dispatched_at.is_not(None))
    stmt = select(
        func.count().filter(Run.status == "queued"),
        func.count().filter(active),
    ).where(Run.workspace_id == workspace_id, Run.status.in_(("queued", "running")))
    queued, running_or_dispatched = (await session.execute(stmt)).one()
    return queued, running_or_dispatched


async def count_queued(session: AsyncSession, workspace_id: uuid.UUID) -> int:
    stmt = select(func.count()).where(Run.workspace_id == workspace_id, Run.status == "queued")
    return (await session.execute(stmt)).scalar_one()


async def admit_waiting(session: AsyncSession, workspace_id: uuid.UUID, limit: int) -> list[uuid.UUID]:
    """The oldest runs waiting their turn, handed to the queue now."""
    stmt = (
        select(Run.id)
        .where(Run.workspace_id == workspace_id, Run.status == "queued", Run.dispatched_at.is_(None))
        .order_by(Run.created_at, Run.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await session.execute(stmt)).scalars())
    if ids:
        await session.execute(update(Run).where(Run.id.in_(ids)).values(dispatched_at=func.now()))
    return ids


async def count_waiting(session: AsyncSession) -> int:
    """Queued runs not yet handed to the queue (waiting for a slot under their workspace's cap), instance-wide."""
    stmt = select(func.count()).where(Run.status == "queued", Run.dispatched_at.is_(None))
    return (await session.execute(stmt)).scalar_one()


async def workspaces_with_waiting(session: AsyncSession, limit: int) -> list[uuid.UUID]:
    stmt = (
        select(Run.workspace_id)
        .where(Run.status == "queued", Run.dispatched_at.is_(None))
        .group_by(Run.workspace_id)
        .order_by(func.min(Run.created_at))
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def count_unfinished(session: AsyncSession, workspace_id: uuid.UUID, prompt_id: uuid.UUID) -> int:
    stmt = select(func.count()).where(
        Run.workspace_id == workspace_id, Run.prompt_id == prompt_id, Run.status.in_(("queued", "running"))
    )
    return (await session.execute(stmt)).scalar_one()
