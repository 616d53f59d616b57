"""Money and limits: reserve a run's worst case against the budget at acceptance, settle it to the real
cost when the run ends, keep the ledger and rollups; workspace limits; the model list with prices."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from backend.catalogue.service import catalogue, micros_to_usd, price_for
from backend.core.errors import ProblemError, TooManyRequests
from backend.ratelimit.limiter import Limiter
from backend.usage import repository as repo
from backend.usage.models import DEFAULTS, LATENCY_BUCKETS_MS, PriceOverride, WorkspaceLimits
from backend.workspaces.service import Actor, WorkspaceAccess, record_audit


class BudgetExhausted(ProblemError):
    status, type, title = 402, "budget-exhausted", "Monthly budget exhausted"


@dataclass(frozen=True)
class Limits:
    monthly_budget_micros: int | None
    max_concurrent_runs: int
    max_queued_runs: int
    runs_per_minute: int
    member_runs_per_minute: int

    def as_api(self) -> dict[str, Any]:
        budget = self.monthly_budget_micros
        return {
            "monthly_budget_usd": None if budget is None else _usd(budget),
            "max_concurrent_runs": self.max_concurrent_runs,
            "max_queued_runs": self.max_queued_runs,
            "runs_per_minute": self.runs_per_minute,
            "member_runs_per_minute": self.member_runs_per_minute,
        }


def _usd(micros: int) -> str:
    """Budgets read back as entered: "50", "12.5", "0.000001"."""
    value = Decimal(micros) / Decimal(1_000_000)
    text = format(value.normalize(), "f")
    return text


async def limits_of(session: AsyncSession, workspace_id: uuid.UUID) -> Limits:
    row = await repo.get_limits(session, workspace_id)
    if row is None:
        return Limits(**DEFAULTS)
    return Limits(
        monthly_budget_micros=row.monthly_budget_micros,
        max_concurrent_runs=row.max_concurrent_runs,
        max_queued_runs=row.max_queued_runs,
        runs_per_minute=row.runs_per_minute,
        member_runs_per_minute=row.member_runs_per_minute,
    )


async def update_limits(
    session: AsyncSession, access: WorkspaceAccess, changes: dict[str, Any], actor: Actor
) -> Limits:
    before = await limits_of(session, access.workspace.id)
    row = await repo.get_limits(session, access.workspace.id)
    if row is None:
        row = WorkspaceLimits(workspace_id=access.workspace.id, **DEFAULTS)
        session.add(row)
    for field, value in changes.items():
        setattr(row, field, value)
    row.updated_by = access.principal.user.id
    row.updated_at = func.now()
    await session.flush()
    after = await limits_of(session, access.workspace.id)
    await record_audit(
        session,
        workspace_id=access.workspace.id,
        actor=actor,
        action="limits.updated",
        target_type="workspace",
        target_id=access.workspace.id,
        before=before.as_api(),
        after=after.as_api(),
    )
    return after


# Rate limits, checked at acceptance after validation


async def check_rates(limiter: Limiter, limits: Limits, workspace_id: uuid.UUID, user_id: uuid.UUID) -> None:
    wait = await limiter.hit(f"runs:ws:{workspace_id}", limits.runs_per_minute, 60)
    if wait is not None:
        raise TooManyRequests(f"This workspace may start {limits.runs_per_minute} runs a minute", retry_after=wait)
    wait = await limiter.hit(f"runs:member:{workspace_id}:{user_id}", limits.member_runs_per_minute, 60)
    if wait is not None:
        await limiter.forget_one(f"runs:ws:{workspace_id}")
        raise TooManyRequests(f"You may start {limits.member_runs_per_minute} runs a minute here", retry_after=wait)


async def give_back_rates(limiter: Limiter, workspace_id: uuid.UUID, user_id: uuid.UUID) -> None:
    await limiter.forget_one(f"runs:ws:{workspace_id}")
    await limiter.forget_one(f"runs:member:{workspace_id}:{user_id}")


# Budget


async def reserve(
    session: AsyncSession, limits: Limits, workspace_id: uuid.UUID, run_id: uuid.UUID, micros: int
) -> date:
    """Reserves a run's worst-case cost; 402 with what is left when it does not fit. Returns the month."""
    reserved_in = await repo.reserve_now(session, workspace_id, micros, limits.monthly_budget_micros)
    if reserved_in is None:
        month = await repo.current_month(session)
        spent, reserved = await repo.month_totals(session, workspace_id, month)
        budget = limits.monthly_budget_micros or 0
        remaining = max(budget - spent - reserved, 0)
        raise BudgetExhausted(
            f"This run could cost up to ${micros_to_usd(micros)}; ${micros_to_usd(remaining)} of this month's "
            f"${_usd(budget)} budget is left",
            remaining_usd=micros_to_usd(remaining),
            required_usd=micros_to_usd(micros),
            budget_usd=_usd(budget),
        )
    repo.add_ledger(session, workspace_id, run_id, "reserve", reserved_in, micros)
    return reserved_in


def _bucket(ms: int | None) -> str | None:
    if ms is None:
        return None
    for bound in LATENCY_BUCKETS_MS:
        if ms <= bound:
            return str(bound)
    return "inf"


async def settle(session: AsyncSession, run: Any) -> None:
    """In the transaction that ends the run: the reservation becomes the real cost, the ledger and the
    rollups get their entries, so totals always equal the sum of the runs' costs."""
    month, reserved = run.budget_month, run.reserved_micros or 0
    actual = run.cost_micros or 0
    if month is not None:
        await repo.settle(session, run.workspace_id, month, reserved, actual)
        repo.add_ledger(session, run.workspace_id, run.id, "release", month, reserved)
        repo.add_ledger(session, run.workspace_id, run.id, "settle", month, actual)
    day = run.created_at.date() if run.created_at else await repo.current_day(session)
    await repo.add_rollup(
        session,
        {
            "workspace_id": run.workspace_id,
            "day": day,
            "provider": run.provider,
            "model": run.model,
            "user_id": run.created_by or uuid.UUID(int=0),
            "prompt_id": run.prompt_id,
        },
        {"input_tokens": run.input_tokens or 0, "output_tokens": run.output_tokens or 0, "cost_micros": actual},
        _bucket(run.ttft_ms),
        _bucket(run.duration_ms),
    )


# Reading usage


async def usage(
    session: AsyncSession, access: WorkspaceAccess, start: date | None, end: date | None, group_by: str
) -> dict[str, Any]:
    if start is None or end is None:
        month = await repo.current_month(session)
        start = start or month
        end = end or (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    rows = await repo.usage_rows(session, access.workspace.id, start, end, group_by)
    total = {"runs": 0, "input_tokens": 0, "output_tokens": 0, "cost_micros": 0}
    out = []
    for key, runs, input_tokens, output_tokens, cost in rows:
        total["runs"] += runs
        total["input_tokens"] += input_tokens
        total["output_tokens"] += output_tokens
        total["cost_micros"] += cost
        out.append(
            {
                "key": str(key),
                "runs": runs,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cost_usd": micros_to_usd(cost),
            }
        )
    month = await repo.current_month(session)
    spent, reserved = await repo.month_totals(session, access.workspace.id, month)
    limits = await limits_of(session, access.workspace.id)
    return {
        "from": start,
        "to": end,
        "group_by": group_by,
        "rows": out,
        "total": {
            **{k: v for k, v in total.items() if k != "cost_micros"},
            "cost_usd": micros_to_usd(total["cost_micros"]),
        },
        "budget": {
            "month": month,
            "monthly_budget_usd": None if limits.monthly_budget_micros is None else _usd(limits.monthly_budget_micros),
            "spent_usd": micros_to_usd(spent),
            "reserved_usd": micros_to_usd(reserved),
        },
    }


def _percentile(histogram: dict[str, int], q: float) -> int | None:
    total = sum(histogram.values())
    if total == 0:
        return None
    ordered = sorted(histogram.items(), key=lambda kv: float(kv[0]) if kv[0] != "inf" else float("inf"))
    threshold, seen = q * total, 0
    for bound, count in ordered:
        seen += count
        if seen >= threshold:
            return None if bound == "inf" else int(bound)
    return None


async def latency(
    session: AsyncSession, access: WorkspaceAccess, start: date | None, end: date | None, group_by: str
) -> list[dict[str, Any]]:
    """TTFT and duration p50/p95 per model or prompt, from the rollups' histograms (bucket upper bounds)."""
    if start is None or end is None:
        month = await repo.current_month(session)
        start = start or month
        end = end or (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    merged: dict[str, tuple[dict[str, int], dict[str, int]]] = {}
    for key, kind, bucket, count in await repo.latency_histograms(session, access.workspace.id, start, end, group_by):
        t, d = merged.setdefault(str(key), ({}, {}))
        (t if kind == "ttft" else d)[bucket] = count
    return [
        {
            "key": key,
            "ttft_ms": {"p50": _percentile(t, 0.5), "p95": _percentile(t, 0.95)},
            "duration_ms": {"p50": _percentile(d, 0.5), "p95": _percentile(d, 0.95)},
        }
        for key, (t, d) in sorted(merged.items())
    ]


# Prices and the model list


async def effective_price(
    session: AsyncSession, workspace_id: uuid.UUID, provider: str, model: str
) -> dict[str, str] | None:
    override = await repo.get_price_override(session, workspace_id, provider, model)
    if override is not None:
        return dict(override.price)
    return price_for(provider, model)


def model_catalogue() -> list[dict[str, Any]]:
    models = []
    for provider, entry in catalogue()["providers"].items():
        for model, info in entry["models"].items():
            models.append(
                {
                    "provider": provider,
                    "model": model,
                    "label": info["label"],
                    "max_output_tokens": info["max_output_tokens"],
                    "context_window": info.get("context_window"),
                    "price": info.get("price"),
                }
            )
    return models


async def workspace_models(
    session: AsyncSession, access: WorkspaceAccess, configured_providers: set[str]
) -> list[dict[str, Any]]:
    overrides = {(o.provider, o.model): o for o in await repo.list_price_overrides(session, access.workspace.id)}
    models = []
    for item in model_catalogue():
        key = (item["provider"], item["model"])
        override = overrides.pop(key, None)
        models.append(
            {
                **item,
                "price": dict(override.price) if override else item["price"],
                "price_overridden": override is not None,
                "available": item["provider"] == "mock" or item["provider"] in configured_providers,
            }
        )
    for (provider, model), override in overrides.items():
        models.append(
            {
                "provider": provider,
                "model": model,
                "label": model,
                "max_output_tokens": None,
                "context_window": None,
                "price": dict(override.price),
                "price_overridden": True,
                "available": provider in configured_providers,
            }
        )
    return models


async def set_price_override(
    session: AsyncSession, access: WorkspaceAccess, provider: str, model: str, price: dict[str, str], actor: Actor
) -> PriceOverride:
    override = await repo.get_price_override(session, access.workspace.id, provider, model)
    before = dict(override.price) if override else None
    if override is None:
        override = PriceOverride(workspace_id=access.workspace.id, provider=provider, model=model, price=price)
        session.add(override)
    else:
        override.price = price
        override.updated_at = func.now()
    override.updated_by = access.principal.user.id
    await session.flush()
    await record_audit(
        session,
        workspace_id=access.workspace.id,
        actor=actor,
        action="limits.updated",
        target_type="price_override",
        target_id=f"{provider}/{model}",
        before=before,
        after=price,
    )
    return override
