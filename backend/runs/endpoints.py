"""Routes of runs: create (and estimate), list, read, stream events, cancel, rerun, delete."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from sse_starlette.sse import EventSourceResponse

from backend.core.database import DbSession
from backend.core.errors import ProblemError
from backend.core.pagination import Page, decode_cursor, encode_cursor
from backend.observability import metrics, tracing
from backend.runs import service
from backend.runs.backends.factory import RunBackends
from backend.runs.code import code_for
from backend.runs.events import parse_event_id
from backend.runs.schemas import CodeOut, Estimate, RunAccepted, RunIn, RunOut
from backend.runs.streaming import run_events
from backend.safety.service import SafetyBlocked
from backend.workspaces.dependencies import (
    AppKeyring,
    AppLimiter,
    AppSettings,
    CurrentActor,
    WorkspaceEditor,
    WorkspaceViewer,
)
from backend.workspaces.service import Actor, record_audit

router = APIRouter(prefix="/workspaces/{ws}/runs", tags=["runs"])
KEEPALIVE_SECONDS = 10


def get_backends(request: Request) -> RunBackends:
    return request.app.state.run_backends


AppBackends = Annotated[RunBackends, Depends(get_backends)]


def _accepted(request: Request, ws: uuid.UUID, run) -> RunAccepted:
    events = request.url_for("run_events", ws=str(ws), run_id=str(run.id)).path
    return RunAccepted(id=run.id, status=run.status, events_url=events)


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=RunAccepted)
async def create_run(
    body: RunIn,
    request: Request,
    access: WorkspaceEditor,
    session: DbSession,
    keyring: AppKeyring,
    settings: AppSettings,
    backends: AppBackends,
    limiter: AppLimiter,
    actor: CurrentActor,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> RunAccepted:
    """Start a run of a version (or of a draft, saved as a version) with variable values (editor+).

    The same Idempotency-Key with the same body returns the same run; with another body, 409. An input the
    workspace's safety policy blocks is a 422 naming the detector; nothing is created, and it is audited."""
    workspace_id = access.workspace.id
    try:
        with tracing.tracer.start_as_current_span("run.create", attributes={"workspace.id": str(workspace_id)}):
            run = await service.create_run(
                session, keyring, settings, backends, limiter, access, body, idempotency_key=idempotency_key
            )
    except SafetyBlocked as blocked:
        metrics.REFUSALS.labels("safety").inc()
        await _audit_blocked(request, workspace_id, actor, blocked, body.prompt_id)
        raise
    except ProblemError as refused:
        _count_refusal(refused)
        raise
    metrics.RUNS_CREATED.labels(run.provider, run.model).inc()
    return _accepted(request, workspace_id, run)


def _count_refusal(refused: ProblemError) -> None:
    if refused.status == 402:
        metrics.REFUSALS.labels("budget").inc()
    elif refused.status == 429:
        metrics.REFUSALS.labels("rate_limit").inc()


async def _audit_blocked(
    request: Request, workspace_id: uuid.UUID, actor: Actor, blocked: SafetyBlocked, prompt_id: uuid.UUID
) -> None:
    """In a transaction of its own: the request's is rolled back, and a refusal must still be on record."""
    async with request.app.state.sessionmaker() as audit, audit.begin():
        await record_audit(
            audit,
            workspace_id=workspace_id,
            actor=actor,
            action="run.blocked",
            target_type="prompt",
            target_id=prompt_id,
            after={
                "detectors": sorted({f.finding.detector for f in blocked.findings}),
                "fields": sorted({f.field for f in blocked.findings}),
            },
        )


@router.post("/estimate", response_model=Estimate)
async def estimate_run(
    body: RunIn, access: WorkspaceEditor, session: DbSession, keyring: AppKeyring, settings: AppSettings
) -> Estimate:
    """Input tokens, maximum output tokens and the worst-case cost of a run, without running it."""
    return Estimate(**await service.estimate(session, keyring, settings, access, body))


CodeLanguage = Annotated[Literal["python", "typescript", "curl"], Query()]


def _code(request: Request, ws: uuid.UUID, snapshot: dict, language: str) -> CodeOut:
    origin = str(request.base_url).rstrip("/")
    text = code_for(snapshot, language, playground_url=origin, workspace_id=str(ws))  # type: ignore[arg-type]
    return CodeOut(language=language, provider=snapshot["provider"], code=text)  # type: ignore[arg-type]


@router.post("/code", response_model=CodeOut)
async def code_for_body(
    body: RunIn,
    request: Request,
    access: WorkspaceEditor,
    session: DbSession,
    keyring: AppKeyring,
    settings: AppSettings,
    language: CodeLanguage = "python",
) -> CodeOut:
    """"Get code" before running: the request this body would make, as a program (nothing is run or saved)."""
    workspace_id = access.workspace.id  # read before a draft's rollback expires the loaded rows
    snapshot = await service.preview_snapshot(session, keyring, settings, access, body)
    return _code(request, workspace_id, snapshot, language)


@router.get("/{run_id:uuid}/code", response_model=CodeOut)
async def code_for_run(
    run_id: uuid.UUID,
    request: Request,
    access: WorkspaceViewer,
    session: DbSession,
    keyring: AppKeyring,
    language: CodeLanguage = "python",
) -> CodeOut:
    """"Get code" for a run: its pinned request as a program (python, typescript or curl)."""
    run = await service.get_run(session, access, run_id)
    view = await service.run_view(session, keyring, run)
    if view["snapshot"] is None:
        raise service.ContentsExpired(f"Run {run_id}'s contents were removed by the retention policy")
    return _code(request, access.workspace.id, view["snapshot"], language)


@router.get("", response_model=Page[RunOut])
async def list_runs(
    access: WorkspaceViewer,
    session: DbSession,
    keyring: AppKeyring,
    prompt_id: uuid.UUID | None = None,
    version: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    run_status: Annotated[
        Literal["queued", "running", "succeeded", "failed", "cancelled"] | None, Query(alias="status")
    ] = None,
    created_by: uuid.UUID | None = None,
    created_from: Annotated[datetime | None, Query(alias="from")] = None,
    created_to: Annotated[datetime | None, Query(alias="to")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[RunOut]:
    """Runs, newest first, filtered by prompt, version, status, author and date."""
    filters = {
        "prompt_id": prompt_id,
        "version": version,
        "status": run_status,
        "created_by": created_by,
        "created_from": created_from,
        "created_to": created_to,
    }
    after = decode_cursor(cursor) if cursor else None
    runs = await service.list_runs(session, access, filters=filters, after=after, limit=limit + 1)
    items = [RunOut.model_validate(await service.run_view(session, keyring, r)) for r in runs[:limit]]
    next_cursor = encode_cursor(runs[limit - 1].created_at, runs[limit - 1].id) if len(runs) > limit else None
    return Page[RunOut](items=items, next_cursor=next_cursor)


@router.get("/{run_id:uuid}", response_model=RunOut)
async def get_run(run_id: uuid.UUID, access: WorkspaceViewer, session: DbSession, keyring: AppKeyring) -> RunOut:
    """One run: its snapshot, output, usage, cost and timings."""
    run = await service.get_run(session, access, run_id)
    return RunOut.model_validate(await service.run_view(session, keyring, run))


@router.get("/{run_id:uuid}/events", name="run_events", response_class=EventSourceResponse)
async def stream_events(
    run_id: uuid.UUID,
    request: Request,
    access: WorkspaceViewer,
    session: DbSession,
    keyring: AppKeyring,
    backends: AppBackends,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID", max_length=100)] = None,
    last_event_id: Annotated[str | None, Query(max_length=100)] = None,
) -> EventSourceResponse:
    """Server-sent events of a run, resumable with Last-Event-ID (header or ?last_event_id=); closing the
    connection never cancels the run."""
    await service.get_run(session, access, run_id)
    start = parse_event_id(last_event_id_header or last_event_id)
    events = _counted(
        run_events(request.app.state.sessionmaker, keyring, backends, access.workspace.id, run_id, start)
    )
    # The request's own session is done with; the stream opens short sessions of its own as it goes.
    await session.commit()
    return EventSourceResponse(
        events,
        ping=KEEPALIVE_SECONDS,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _counted(events: AsyncIterator[dict[str, str]]) -> AsyncIterator[dict[str, str]]:
    """The stream, counted in playground_sse_streams while it is open."""
    metrics.SSE_STREAMS.inc()
    try:
        async for event in events:
            yield event
    finally:
        metrics.SSE_STREAMS.dec()


@router.post("/{run_id:uuid}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=RunAccepted)
async def cancel_run(
    run_id: uuid.UUID,
    request: Request,
    access: WorkspaceEditor,
    session: DbSession,
    keyring: AppKeyring,
    backends: AppBackends,
) -> RunAccepted:
    """Cancel a run: the provider stream is closed, partial output and usage are kept (409 when finished)."""
    run = await service.cancel_run(session, keyring, backends, access, run_id)
    return _accepted(request, access.workspace.id, run)


@router.post("/{run_id:uuid}/rerun", status_code=status.HTTP_202_ACCEPTED, response_model=RunAccepted)
async def rerun(
    run_id: uuid.UUID,
    request: Request,
    access: WorkspaceEditor,
    session: DbSession,
    keyring: AppKeyring,
    backends: AppBackends,
    limiter: AppLimiter,
    actor: CurrentActor,
) -> RunAccepted:
    """A new run from the same pinned snapshot (with temperature > 0 the output may differ); the safety policy
    as it is now applies."""
    workspace_id = access.workspace.id
    try:
        run = await service.rerun(session, keyring, backends, limiter, access, run_id)
    except SafetyBlocked as blocked:
        original = await service.get_run(session, access, run_id)
        await _audit_blocked(request, workspace_id, actor, blocked, original.prompt_id)
        raise
    return _accepted(request, workspace_id, run)


@router.delete("/{run_id:uuid}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_run(run_id: uuid.UUID, access: WorkspaceEditor, actor: CurrentActor, session: DbSession) -> Response:
    """Delete a run (its author, or admin+); its cost stays in the usage totals."""
    await service.delete_run(session, access, run_id, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
