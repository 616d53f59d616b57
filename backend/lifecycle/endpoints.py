"""Routes of the data lifecycle: the retention policy."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from backend.core.database import DbSession
from backend.lifecycle import service
from backend.workspaces.dependencies import CurrentActor, WorkspaceAdmin, WorkspaceViewer
from backend.workspaces.schemas import Body

router = APIRouter(prefix="/workspaces/{ws}", tags=["data lifecycle"])


class RetentionOut(BaseModel):
    runs_days: int | None = Field(description="Run contents older than this many days are removed; null: kept")


class RetentionIn(Body):
    runs_days: int | None = Field(ge=1, le=36_500)


@router.get("/retention", response_model=RetentionOut)
async def get_retention(access: WorkspaceViewer, session: DbSession) -> RetentionOut:
    """How long run contents are kept (null: for ever)."""
    return RetentionOut(**await service.retention_of(session, access))


@router.put("/retention", response_model=RetentionOut)
async def put_retention(
    body: RetentionIn, access: WorkspaceAdmin, actor: CurrentActor, session: DbSession
) -> RetentionOut:
    """Set it (admin+); audited as retention.updated. Contents past it are removed in the background: the
    snapshot, output, thinking and tool calls of finished runs, and their flags' excerpts. Costs, token
    counts and timings stay, as do usage totals."""
    return RetentionOut(**await service.set_retention(session, access, body.runs_days, actor))
