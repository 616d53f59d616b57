"""Routes of limits, usage, the model list and price overrides."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from backend.core.database import DbSession
from backend.core.errors import Invalid
from backend.usage import schemas, service
from backend.workspaces import service as workspaces
from backend.workspaces.dependencies import CurrentActor, CurrentPrincipal, WorkspaceAdmin, WorkspaceViewer

router = APIRouter(prefix="/workspaces/{ws}", tags=["usage"])
models_router = APIRouter(tags=["usage"])


@router.get("/limits", response_model=schemas.LimitsOut)
async def get_limits(access: WorkspaceViewer, session: DbSession) -> schemas.LimitsOut:
    """The workspace's budget and limits (defaults where none were set)."""
    return schemas.LimitsOut(**(await service.limits_of(session, access.workspace.id)).as_api())


@router.put("/limits", response_model=schemas.LimitsOut)
async def put_limits(
    body: schemas.LimitsIn, access: WorkspaceAdmin, actor: CurrentActor, session: DbSession
) -> schemas.LimitsOut:
    """Change any subset of the limits (admin+); audited as limits.updated."""
    changes = body.model_dump(exclude_unset=True)
    if "monthly_budget_usd" in changes:
        budget = changes.pop("monthly_budget_usd")
        changes["monthly_budget_micros"] = None if budget is None else int(Decimal(budget) * 1_000_000)
    for field in ("max_concurrent_runs", "max_queued_runs", "runs_per_minute", "member_runs_per_minute"):
        if field in changes and changes[field] is None:
            raise Invalid(["body", field], "must be a number")
    limits = await service.update_limits(session, access, changes, actor)
    return schemas.LimitsOut(**limits.as_api())


@router.get("/usage", response_model=schemas.UsageOut)
async def get_usage(
    access: WorkspaceViewer,
    session: DbSession,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to", description="Exclusive")] = None,
    group_by: Literal["day", "model", "user", "prompt"] = "day",
) -> schemas.UsageOut:
    """Runs, tokens and cost between two dates (the current month by default), grouped; the budget state."""
    if start and end and end <= start:
        raise Invalid(["query", "to"], "must be after from")
    return schemas.UsageOut.model_validate(await service.usage(session, access, start, end, group_by))


@router.get("/usage/latency", response_model=list[schemas.LatencyRow])
async def get_latency(
    access: WorkspaceViewer,
    session: DbSession,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    group_by: Literal["model", "prompt"] = "model",
) -> list[schemas.LatencyRow]:
    """Time to first token and duration, p50 and p95 per model or prompt, as histogram bucket upper bounds."""
    return [
        schemas.LatencyRow.model_validate(row) for row in await service.latency(session, access, start, end, group_by)
    ]


@router.get("/models", response_model=list[schemas.WorkspaceModelOut])
async def workspace_models(access: WorkspaceViewer, session: DbSession) -> list[schemas.WorkspaceModelOut]:
    """What this workspace can use: the catalogue with its price overrides, and which providers have keys."""
    configured = {c.provider for c in await workspaces.list_provider_credentials(session, access)}
    return [schemas.WorkspaceModelOut(**m) for m in await service.workspace_models(session, access, configured)]


@router.put("/price-overrides/{provider}/{model:path}", response_model=schemas.WorkspaceModelOut)
async def put_price_override(
    provider: Literal["mock", "anthropic", "openai"],
    model: str,
    body: schemas.PriceIn,
    access: WorkspaceAdmin,
    actor: CurrentActor,
    session: DbSession,
) -> schemas.WorkspaceModelOut:
    """Set this workspace's price for a model (admin+): lets a model without a catalogue price run."""
    price = {k: v for k, v in body.model_dump().items() if v is not None}
    await service.set_price_override(session, access, provider, model, price, actor)
    configured = {c.provider for c in await workspaces.list_provider_credentials(session, access)}
    models = await service.workspace_models(session, access, configured)
    return schemas.WorkspaceModelOut(**next(m for m in models if m["provider"] == provider and m["model"] == model))


@models_router.get("/models", response_model=list[schemas.ModelOut])
async def list_models(principal: CurrentPrincipal) -> list[schemas.ModelOut]:
    """The catalogue: providers, models, limits and dated prices per million tokens."""
    return [schemas.ModelOut(**m) for m in service.model_catalogue()]
