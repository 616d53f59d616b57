"""Every query of comparisons, their cells, ratings and assertions."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.comparisons.models import (
    Comparison,
    ComparisonAssertion,
    ComparisonCell,
    ComparisonGrading,
    ComparisonRating,
)
from backend.runs.models import Run


async def get_comparison(session: AsyncSession, workspace_id: uuid.UUID, comparison_id: uuid.UUID) -> Comparison | None:
    stmt = select(Comparison).where(Comparison.workspace_id == workspace_id, Comparison.id == comparison_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_comparisons(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    prompt_id: uuid.UUID | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Comparison]:
    stmt = select(Comparison).where(Comparison.workspace_id == workspace_id)
    if prompt_id is not None:
        stmt = stmt.where(Comparison.prompt_id == prompt_id)
    if after is not None:
        at, last_id = after
        stmt = stmt.where(or_(Comparison.created_at < at, and_(Comparison.created_at == at, Comparison.id < last_id)))
    stmt = stmt.order_by(Comparison.created_at.desc(), Comparison.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def run_statuses_and_costs(
    session: AsyncSession, run_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, int | None]]:
    """Status and cost (micro-dollars) of runs the caller knows are its workspace's: two columns, not the runs."""
    if not run_ids:
        return {}
    rows = await session.execute(select(Run.id, Run.status, Run.cost_micros).where(Run.id.in_(set(run_ids))))
    return {run_id: (status, cost) for run_id, status, cost in rows}


async def cells_of(session: AsyncSession, comparison: Comparison, *, for_update: bool = False) -> list[ComparisonCell]:
    stmt = (
        select(ComparisonCell)
        .where(ComparisonCell.workspace_id == comparison.workspace_id, ComparisonCell.comparison_id == comparison.id)
        .order_by(ComparisonCell.position)
    )
    if for_update:
        stmt = stmt.with_for_update()
    return list((await session.execute(stmt)).scalars())


async def cells_of_many(session: AsyncSession, workspace_id: uuid.UUID, ids: list[uuid.UUID]) -> list[ComparisonCell]:
    if not ids:
        return []
    stmt = select(ComparisonCell).where(
        ComparisonCell.workspace_id == workspace_id, ComparisonCell.comparison_id.in_(ids)
    )
    return list((await session.execute(stmt)).scalars())


async def assertions_of(session: AsyncSession, comparison: Comparison) -> list[ComparisonAssertion]:
    stmt = (
        select(ComparisonAssertion)
        .where(
            ComparisonAssertion.workspace_id == comparison.workspace_id,
            ComparisonAssertion.comparison_id == comparison.id,
        )
        .order_by(ComparisonAssertion.position)
    )
    return list((await session.execute(stmt)).scalars())


async def delete_assertion(session: AsyncSession, comparison: Comparison, assertion_id: uuid.UUID) -> bool:
    result = await session.execute(
        delete(ComparisonAssertion).where(
            ComparisonAssertion.workspace_id == comparison.workspace_id,
            ComparisonAssertion.comparison_id == comparison.id,
            ComparisonAssertion.id == assertion_id,
        )
    )
    return bool(result.rowcount)


async def ratings_of(session: AsyncSession, comparison: Comparison) -> list[ComparisonRating]:
    stmt = (
        select(ComparisonRating)
        .where(
            ComparisonRating.workspace_id == comparison.workspace_id,
            ComparisonRating.comparison_id == comparison.id,
        )
        .order_by(ComparisonRating.created_at, ComparisonRating.id)
    )
    return list((await session.execute(stmt)).scalars())


async def get_rating(
    session: AsyncSession, comparison: Comparison, run_id: uuid.UUID, user_id: uuid.UUID
) -> ComparisonRating | None:
    stmt = select(ComparisonRating).where(
        ComparisonRating.workspace_id == comparison.workspace_id,
        ComparisonRating.comparison_id == comparison.id,
        ComparisonRating.run_id == run_id,
        ComparisonRating.user_id == user_id,
    )
    return (await session.execute(stmt.with_for_update())).scalar_one_or_none()


async def delete_rating(session: AsyncSession, comparison: Comparison, run_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    result = await session.execute(
        delete(ComparisonRating).where(
            ComparisonRating.workspace_id == comparison.workspace_id,
            ComparisonRating.comparison_id == comparison.id,
            ComparisonRating.run_id == run_id,
            ComparisonRating.user_id == user_id,
        )
    )
    return bool(result.rowcount)


async def gradings_of(session: AsyncSession, comparison: Comparison) -> list[ComparisonGrading]:
    stmt = select(ComparisonGrading).where(
        ComparisonGrading.workspace_id == comparison.workspace_id,
        ComparisonGrading.comparison_id == comparison.id,
    )
    return list((await session.execute(stmt)).scalars())
