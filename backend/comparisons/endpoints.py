"""Routes of comparisons: create a grid of runs, list, read, stream, cancel, rerun a cell, diff two cells,
assertions and ratings."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from sse_starlette.sse import EventSourceResponse

from backend.comparisons import schemas, service
from backend.comparisons.streaming import comparison_events, parse_positions
from backend.core.database import DbSession
from backend.core.pagination import Page, decode_cursor, encode_cursor
from backend.runs.endpoints import KEEPALIVE_SECONDS, AppBackends
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

router = APIRouter(prefix="/workspaces/{ws}/comparisons", tags=["comparisons"])


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=schemas.ComparisonAccepted)
async def create_comparison(
    body: schemas.ComparisonIn,
    request: Request,
    access: WorkspaceEditor,
    session: DbSession,
    keyring: AppKeyring,
    settings: AppSettings,
    backends: AppBackends,
    limiter: AppLimiter,
    actor: CurrentActor,
) -> schemas.ComparisonAccepted:
    """Run every version x model x case as one ordinary run each (editor+). All or nothing: more than 500
    cells or any invalid cell is a 422, a budget that cannot cover the grid's worst case a 402."""
    workspace_id = access.workspace.id
    try:
        comparison, cells = await service.create_comparison(session, keyring, settings, backends, limiter, access, body)
    except SafetyBlocked as blocked:
        await _audit_blocked(request, workspace_id, actor, blocked, body.prompt_id)
        raise
    events = request.url_for("comparison_events", ws=str(workspace_id), comparison_id=str(comparison.id)).path
    return schemas.ComparisonAccepted(
        id=comparison.id, cells=[schemas.CellRef(**service.cell_ref(c)) for c in cells], events_url=events
    )


async def _audit_blocked(
    request: Request, workspace_id: uuid.UUID, actor: Actor, blocked: SafetyBlocked, prompt_id: uuid.UUID
) -> None:
    """As for a single run: the request's transaction is rolled back, and the refusal must be on record."""
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
                "comparison": True,
            },
        )


@router.get("", response_model=Page[schemas.ComparisonSummary])
async def list_comparisons(
    access: WorkspaceViewer,
    session: DbSession,
    prompt_id: uuid.UUID | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page[schemas.ComparisonSummary]:
    """Comparisons, newest first (optionally of one prompt), with their status and progress."""
    after = decode_cursor(cursor) if cursor else None
    rows = await service.list_comparisons(session, access, prompt_id, after, limit + 1)
    items = [schemas.ComparisonSummary.model_validate(r) for r in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    return Page[schemas.ComparisonSummary](
        items=items, next_cursor=encode_cursor(last["created_at"], last["id"]) if last else None
    )


@router.get("/{comparison_id}", response_model=schemas.ComparisonOut)
async def get_comparison(
    comparison_id: uuid.UUID, access: WorkspaceViewer, session: DbSession, keyring: AppKeyring
) -> schemas.ComparisonOut:
    """The grid: every cell's status, output, usage, cost and timings, assertion results and ratings; progress,
    totals, and per version: cost, latency, pass rate and ratings."""
    comparison = await service.get_comparison(session, access, comparison_id)
    return schemas.ComparisonOut.model_validate(await service.comparison_view(session, keyring, access, comparison))


@router.get("/{comparison_id}/events", name="comparison_events", response_class=EventSourceResponse)
async def stream_events(
    comparison_id: uuid.UUID,
    request: Request,
    access: WorkspaceViewer,
    session: DbSession,
    keyring: AppKeyring,
    backends: AppBackends,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID", max_length=100)] = None,
    last_event_id: Annotated[str | None, Query(max_length=100)] = None,
    positions: Annotated[
        str | None,
        Query(
            max_length=20_000,
            description="Comma-separated last event id of each cell the client has heard from, to resume them all.",
        ),
    ] = None,
) -> EventSourceResponse:
    """Every cell's run events on one connection (data carries run_id and cell), then comparison.completed."""
    await service.get_comparison(session, access, comparison_id)
    start, finished = parse_positions(last_event_id_header or last_event_id, positions)
    workspace_id = access.workspace.id
    cells = [] if finished else await service.stream_cells(session, workspace_id, comparison_id)
    await session.commit()  # the stream opens short sessions of its own as it goes
    maker = request.app.state.sessionmaker

    async def current_cells():
        async with maker() as own:
            return await service.stream_cells(own, workspace_id, comparison_id)

    async def completed_data():
        async with maker() as own:
            return await service.completion(own, workspace_id, comparison_id)

    async def nothing():
        return
        yield

    events = (
        nothing()
        if finished
        else comparison_events(maker, keyring, backends, workspace_id, current_cells, completed_data, cells, start)
    )
    return EventSourceResponse(
        events, ping=KEEPALIVE_SECONDS, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


@router.post("/{comparison_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=schemas.CancelOut)
async def cancel_comparison(
    comparison_id: uuid.UUID, access: WorkspaceEditor, session: DbSession, keyring: AppKeyring, backends: AppBackends
) -> schemas.CancelOut:
    """Cancel every unfinished cell, as cancelling each run would (editor+); finished cells keep their result."""
    cancelled = await service.cancel_comparison(session, keyring, backends, access, comparison_id)
    return schemas.CancelOut(id=comparison_id, cancelled=cancelled)


@router.post(
    "/{comparison_id}/cells/{run_id}/rerun", status_code=status.HTTP_202_ACCEPTED, response_model=schemas.CellRef
)
async def rerun_cell(
    comparison_id: uuid.UUID,
    run_id: uuid.UUID,
    request: Request,
    access: WorkspaceEditor,
    session: DbSession,
    keyring: AppKeyring,
    backends: AppBackends,
    limiter: AppLimiter,
    actor: CurrentActor,
) -> schemas.CellRef:
    """Rerun one finished cell from its pinned snapshot (editor+); the cell then shows the new run, and keeps
    the earlier one in earlier_run_ids."""
    workspace_id = access.workspace.id
    try:
        cell = await service.rerun_cell(session, keyring, backends, limiter, access, comparison_id, run_id)
    except SafetyBlocked as blocked:
        comparison = await service.get_comparison(session, access, comparison_id)
        await _audit_blocked(request, workspace_id, actor, blocked, comparison.prompt_id)
        raise
    return schemas.CellRef(**service.cell_ref(cell))


@router.get("/{comparison_id}/diff", response_model=schemas.DiffOut)
async def diff_cells(
    comparison_id: uuid.UUID,
    a: uuid.UUID,
    b: uuid.UUID,
    access: WorkspaceViewer,
    session: DbSession,
    keyring: AppKeyring,
) -> schemas.DiffOut:
    """A unified diff from cell a's output to cell b's (run ids of this comparison's cells)."""
    return schemas.DiffOut(**await service.diff_cells(session, keyring, access, comparison_id, a, b))


@router.post("/{comparison_id}/assertions", status_code=status.HTTP_201_CREATED, response_model=schemas.AssertionOut)
async def add_assertion(
    comparison_id: uuid.UUID,
    body: schemas.AssertionIn,
    access: WorkspaceEditor,
    session: DbSession,
    keyring: AppKeyring,
) -> schemas.AssertionOut:
    """Hold every cell's output to a check: contains, not_contains, regex, is_json, equals_expected (editor+)."""
    return schemas.AssertionOut(**await service.add_assertion(session, keyring, access, comparison_id, body))


@router.post("/{comparison_id}/grade", status_code=status.HTTP_202_ACCEPTED, response_model=schemas.GradeOut)
async def grade(
    comparison_id: uuid.UUID,
    access: WorkspaceEditor,
    session: DbSession,
    keyring: AppKeyring,
    settings: AppSettings,
    backends: AppBackends,
    limiter: AppLimiter,
) -> schemas.GradeOut:
    """Run the model-graded assertions' rubric prompts on every succeeded cell not graded yet (editor+): each an
    ordinary run with its own cost; a cell passes when the rubric's answer begins with PASS."""
    comparison, gradings = await service.grade(session, keyring, settings, backends, limiter, access, comparison_id)
    return schemas.GradeOut(
        id=comparison.id,
        gradings=[
            schemas.Grading(assertion_id=g.assertion_id, run_id=g.run_id, grader_run_id=g.grader_run_id)
            for g in gradings
        ],
    )


@router.delete("/{comparison_id}/assertions/{assertion_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_assertion(
    comparison_id: uuid.UUID, assertion_id: uuid.UUID, access: WorkspaceEditor, session: DbSession
) -> Response:
    """Remove an assertion (editor+)."""
    await service.delete_assertion(session, access, comparison_id, assertion_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/{comparison_id}/cells/{run_id}/rating", response_model=schemas.RatingOut)
async def rate_cell(
    comparison_id: uuid.UUID,
    run_id: uuid.UUID,
    body: schemas.RatingIn,
    access: WorkspaceEditor,
    session: DbSession,
    keyring: AppKeyring,
) -> schemas.RatingOut:
    """Your rating of a cell's run: thumbs up/down and/or a score 1-5, and a note (editor+; one per person)."""
    rating = await service.rate(
        session, keyring, access, comparison_id, run_id, thumbs=body.thumbs, score=body.score, note=body.note
    )
    return schemas.RatingOut(**rating)


@router.delete("/{comparison_id}/cells/{run_id}/rating", status_code=status.HTTP_204_NO_CONTENT)
async def unrate_cell(
    comparison_id: uuid.UUID, run_id: uuid.UUID, access: WorkspaceEditor, session: DbSession
) -> Response:
    """Withdraw your rating of a cell's run (editor+)."""
    await service.unrate(session, access, comparison_id, run_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
