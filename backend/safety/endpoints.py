"""Routes of safety: the workspace policy, the flags raised on runs, and the dashboard summary."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from backend.core.database import DbSession
from backend.core.pagination import Page, decode_cursor, encode_cursor
from backend.safety import schemas, service
from backend.workspaces.dependencies import AppKeyring, CurrentActor, WorkspaceAdmin, WorkspaceViewer

router = APIRouter(prefix="/workspaces/{ws}/safety", tags=["safety"])


@router.get("/policy", response_model=schemas.PolicyOut)
async def get_policy(access: WorkspaceViewer, session: DbSession) -> schemas.PolicyOut:
    """What each kind of finding does: off, flag (the default) or block."""
    return schemas.PolicyOut(**(await service.policy_of(session, access.workspace.id)).as_api())


@router.put("/policy", response_model=schemas.PolicyOut)
async def put_policy(
    body: schemas.PolicyIn, access: WorkspaceAdmin, actor: CurrentActor, session: DbSession
) -> schemas.PolicyOut:
    """Change any of the three (admin+); audited as policy.updated."""
    changes = {kind: action for kind, action in body.model_dump(exclude_none=True).items()}
    return schemas.PolicyOut(**(await service.update_policy(session, access, changes, actor)).as_api())


@router.get("/flags", response_model=Page[schemas.FlagOut])
async def list_flags(
    access: WorkspaceViewer,
    session: DbSession,
    keyring: AppKeyring,
    flag_status: Annotated[Literal["open", "resolved"] | None, Query(alias="status")] = None,
    kind: Literal["pii", "secret", "injection", "refusal"] | None = None,
    run_id: uuid.UUID | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[schemas.FlagOut]:
    """Flags, newest first, by status, kind or run; excerpts are masked."""
    after = decode_cursor(cursor) if cursor else None
    rows = await service.list_flags(
        session, keyring, access, status=flag_status, kind=kind, run_id=run_id, after=after, limit=limit + 1
    )
    items = [schemas.FlagOut.model_validate(row) for row in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    return Page[schemas.FlagOut](
        items=items, next_cursor=encode_cursor(last["created_at"], last["id"]) if last else None
    )


@router.patch("/flags/{flag_id}", response_model=schemas.FlagOut)
async def patch_flag(
    flag_id: uuid.UUID,
    body: schemas.FlagPatch,
    access: WorkspaceAdmin,
    actor: CurrentActor,
    session: DbSession,
    keyring: AppKeyring,
) -> schemas.FlagOut:
    """Resolve a flag with a note, or reopen it (admin+); resolving is audited as flag.resolved."""
    row = await service.resolve_flag(session, keyring, access, flag_id, body.status, body.note, actor)
    return schemas.FlagOut.model_validate(row)


@router.get("/summary", response_model=schemas.SummaryOut)
async def get_summary(
    access: WorkspaceViewer, session: DbSession, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> schemas.SummaryOut:
    """For the dashboard: flags by kind and day, open flags by kind, refusal rate per model."""
    return schemas.SummaryOut.model_validate(await service.summary(session, access, days))
