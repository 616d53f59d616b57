"""Every query of limits, budget accounts, the ledger and rollups."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import and_, func, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.usage.models import (
    BudgetMonth,
    PriceOverride,
    UsageLedger,
    UsageModelDay,
    UsagePromptDay,
    UsageRollup,
    UsageUserDay,
    WorkspaceLimits,
)


async def get_limits(session: AsyncSession, workspace_id: uuid.UUID) -> WorkspaceLimits | None:
    return await session.get(WorkspaceLimits, workspace_id)


async def current_month(session: AsyncSession) -> date:
    """The calendar month (UTC) by the database clock, which every process shares."""
    return (await session.execute(text("SELECT date_trunc('month', now() AT TIME ZONE 'utc')::date"))).scalar_one()


async def current_day(session: AsyncSession) -> date:
    return (await session.execute(text("SELECT (now() AT TIME ZONE 'utc')::date"))).scalar_one()


_RESERVE = text(
    """
    INSERT INTO budget_month AS b (workspace_id, month, reserved_micros, spent_micros)
    SELECT :workspace_id, date_trunc('month', now() AT TIME ZONE 'utc')::date, :micros, 0
    WHERE CAST(:budget AS bigint) IS NULL OR :micros <= CAST(:budget AS bigint)
    ON CONFLICT (workspace_id, month) DO UPDATE
    SET reserved_micros = b.reserved_micros + EXCLUDED.reserved_micros
    WHERE CAST(:budget AS bigint) IS NULL
       OR b.spent_micros + b.reserved_micros + EXCLUDED.reserved_micros <= CAST(:budget AS bigint)
    RETURNING b.month
    """
)


async def reserve_now(session: AsyncSession, workspace_id: uuid.UUID, micros: int, budget: int | None) -> date | None:
    """Adds a reservation for this month (by the database clock) only if spent + reserved + it stays within the
    budget, in one statement: the month's row is created with it or has it added. Concurrent requests
    serialise on the row and each re-checks the condition against the latest totals. Answers the month, or
    None when it does not fit."""
    params = {"workspace_id": workspace_id, "micros": micros, "budget": budget}
    return (await session.execute(_RESERVE, params)).scalar_one_or_none()


async def settle(session: AsyncSession, workspace_id: uuid.UUID, month: date, reserved: int, actual: int) -> None:
    await session.execute(
        update(BudgetMonth)
        .where(BudgetMonth.workspace_id == workspace_id, BudgetMonth.month == month)
        .values(
            reserved_micros=func.greatest(BudgetMonth.reserved_micros - reserved, 0),
            spent_micros=BudgetMonth.spent_micros + actual,
        )
    )


async def month_totals(session: AsyncSession, workspace_id: uuid.UUID, month: date) -> tuple[int, int]:
    row = await session.get(BudgetMonth, (workspace_id, month))
    return (row.spent_micros, row.reserved_micros) if row else (0, 0)


def add_ledger(
    session: AsyncSession, workspace_id: uuid.UUID, run_id: uuid.UUID, kind: str, month: date, micros: int
) -> None:
    session.add(UsageLedger(workspace_id=workspace_id, run_id=run_id, kind=kind, month=month, micros=micros))


async def add_rollup(
    session: AsyncSession,
    key: dict[str, Any],
    values: dict[str, int],
    ttft_bucket: str | None,
    duration_bucket: str | None,
) -> None:
    """Adds one settled run to the fine rollup. Its trigger (migration 20261127_usage_rollups) adds the same
    to the day rollups per model, user and prompt within this statement, so every dashboard grouping agrees
    whoever writes the fine rollup."""

    def bump(column: Any, bucket: str | None) -> Any:
        if bucket is None:
            return column
        current = func.coalesce(column[bucket].as_integer(), 0)
        return column.op("||")(func.jsonb_build_object(bucket, current + 1))

    initial = {
        **key,
        **values,
        "runs": 1,
        "ttft_histogram": {ttft_bucket: 1} if ttft_bucket else {},
        "duration_histogram": {duration_bucket: 1} if duration_bucket else {},
    }
    stmt = insert(UsageRollup).values(**initial)
    excluded = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=[
            UsageRollup.workspace_id,
            UsageRollup.day,
            UsageRollup.provider,
            UsageRollup.model,
            UsageRollup.user_id,
            UsageRollup.prompt_id,
        ],
        set_={
            "runs": UsageRollup.runs + 1,
            "input_tokens": UsageRollup.input_tokens + excluded.input_tokens,
            "output_tokens": UsageRollup.output_tokens + excluded.output_tokens,
            "cost_micros": UsageRollup.cost_micros + excluded.cost_micros,
            "ttft_histogram": bump(UsageRollup.ttft_histogram, ttft_bucket),
            "duration_histogram": bump(UsageRollup.duration_histogram, duration_bucket),
        },
    )
    await session.execute(stmt)


# Each grouping reads the narrowest rollup that answers it: a workspace's day rollups hold a few rows per
# day and key however its runs spread over users and prompts, where the fine rollup can hold one row per
# run (bench_dashboard.py: 750,000 rows for 1,000,000 runs).
_USAGE_SOURCE: dict[str, tuple[Any, Any]] = {
    "day": (UsageModelDay, UsageModelDay.day),
    "model": (UsageModelDay, func.concat(UsageModelDay.provider, literal_column("'/'"), UsageModelDay.model)),
    "user": (UsageUserDay, UsageUserDay.user_id),
    "prompt": (UsagePromptDay, UsagePromptDay.prompt_id),
}


async def usage_rows(
    session: AsyncSession, workspace_id: uuid.UUID, start: date, end: date, group_by: str
) -> list[tuple[Any, int, int, int, int]]:
    table, key = _USAGE_SOURCE[group_by]
    stmt = (
        select(
            key.label("key"),
            func.sum(table.runs),
            func.sum(table.input_tokens),
            func.sum(table.output_tokens),
            func.sum(table.cost_micros),
        )
        .where(and_(table.workspace_id == workspace_id, table.day >= start, table.day < end))
        .group_by(key)
        .order_by(key)
    )
    # Prepared statements drift to a generic plan that walks the whole primary key; the custom plan uses
    # the workspace and date range.
    await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    return [(r[0], int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in (await session.execute(stmt)).all()]


async def latency_histograms(
    session: AsyncSession, workspace_id: uuid.UUID, start: date, end: date, group_by: str
) -> list[tuple[str, str, str, int]]:
    """(key, "ttft"|"duration", bucket, count), summed in the database from the day rollup of the grouping."""
    if group_by == "model":
        table, key = "usage_model_day", "provider || '/' || model"
    else:
        table, key = "usage_prompt_day", "prompt_id::text"
    sql = text(
        f"""
        SELECT {key} AS key, 'ttft' AS kind, b.key AS bucket, sum(b.value::bigint) AS n
          FROM {table}, jsonb_each_text(ttft_histogram) AS b
         WHERE workspace_id = :ws AND day >= :start AND day < :end
         GROUP BY 1, 3
        UNION ALL
        SELECT {key}, 'duration', b.key, sum(b.value::bigint)
          FROM {table}, jsonb_each_text(duration_histogram) AS b
         WHERE workspace_id = :ws AND day >= :start AND day < :end
         GROUP BY 1, 3
        """  # noqa: S608 - table and key are one of two fixed pairs, never input
    )
    await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    rows = await session.execute(sql, {"ws": workspace_id, "start": start, "end": end})
    return [(r[0], r[1], r[2], int(r[3])) for r in rows.all()]


async def get_price_override(
    session: AsyncSession, workspace_id: uuid.UUID, provider: str, model: str
) -> PriceOverride | None:
    stmt = select(PriceOverride).where(
        PriceOverride.workspace_id == workspace_id, PriceOverride.provider == provider, PriceOverride.model == model
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_price_overrides(session: AsyncSession, workspace_id: uuid.UUID) -> list[PriceOverride]:
    stmt = (
        select(PriceOverride)
        .where(PriceOverride.workspace_id == workspace_id)
        .order_by(PriceOverride.provider, PriceOverride.model)
    )
    return list((await session.execute(stmt)).scalars())
