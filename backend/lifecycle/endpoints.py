"""Routes of the data lifecycle: the retention policy and workspace exports."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from backend.core.database import DbSession, after_commit
from backend.lifecycle import exports, service
from backend.workspaces.dependencies import AppKeyring, CurrentActor, WorkspaceAdmin, WorkspaceViewer
from backend.workspaces.schemas import Body, OptionalJsonInt

router = APIRouter(prefix="/workspaces/{ws}", tags=["data lifecycle"])


class RetentionOut(BaseModel):
    runs_days: int | None = Field(description="Run contents older than this many days are removed; null: kept")


class RetentionIn(Body):
    runs_days: OptionalJsonInt = Field(ge=1, le=36_500)


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


class ExportProgress(BaseModel):
    done: int = Field(description="Records written so far")
    total: int = Field(description="Records in the workspace when the export began")


class ExportOut(BaseModel):
    id: uuid.UUID
    status: Literal["queued", "running", "succeeded", "failed", "expired"]
    progress: ExportProgress
    lines: int = Field(description="Lines written so far (records plus the first and last line once finished)")
    size_bytes: int = Field(description="Uncompressed size of what was written so far")
    error: str | None
    requested_by: uuid.UUID | None
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None = Field(description="When the archive is removed (ask for a new one after)")


@router.post("/exports", status_code=status.HTTP_202_ACCEPTED, response_model=ExportOut)
async def create_export(request: Request, access: WorkspaceAdmin, actor: CurrentActor, session: DbSession) -> ExportOut:
    """Export the whole workspace (admin+) as JSON Lines, made in the background; audited as export.created.
    One export at a time per workspace (409 while one is queued or running). Only the admin who asked can
    download it, for 7 days."""
    export = await exports.request_export(session, access, actor)
    runner: exports.ExportRunner = request.app.state.exports

    async def start() -> None:
        runner.start(export.id)

    after_commit(session, start)
    return ExportOut(**exports.export_view(export))


@router.get("/exports", response_model=list[ExportOut])
async def list_exports(access: WorkspaceAdmin, session: DbSession) -> list[ExportOut]:
    """The workspace's latest 20 exports, newest first (admin+)."""
    return [ExportOut(**exports.export_view(e)) for e in await exports.list_exports(session, access)]


@router.get("/exports/{export_id}", response_model=ExportOut)
async def get_export(export_id: uuid.UUID, access: WorkspaceAdmin, session: DbSession) -> ExportOut:
    """An export's status and progress (admin+)."""
    return ExportOut(**exports.export_view(await exports.get_export(session, access, export_id)))


@router.get(
    "/exports/{export_id}/download",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "The archive, one JSON object a line"}},
)
async def download_export(
    export_id: uuid.UUID,
    request: Request,
    access: WorkspaceAdmin,
    actor: CurrentActor,
    session: DbSession,
    keyring: AppKeyring,
) -> StreamingResponse:
    """The archive as JSON Lines (`application/x-ndjson`), gzip-encoded when the client accepts gzip; only for
    the admin who asked for it (403 for others), once it has succeeded (409 before). Audited as
    export.downloaded. Every line is an object with a `type`: `export` first, `end` last (with the counts)."""
    export = await exports.open_for_download(session, access, export_id, actor)
    members = exports.archive_members(request.app.state.sessionmaker, keyring, export.workspace_id, export.id)
    filename = f"{access.workspace.slug}-export-{export.created_at:%Y%m%d}.jsonl"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"}
    if "gzip" in request.headers.get("accept-encoding", "").lower():
        headers["Content-Encoding"] = "gzip"
        return StreamingResponse(members, media_type="application/x-ndjson", headers=headers)
    return StreamingResponse(exports.inflate(members), media_type="application/x-ndjson", headers=headers)
