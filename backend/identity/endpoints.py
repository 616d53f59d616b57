"""Routes of identity: my sessions and password; instance administration of accounts."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from backend.core.database import DbSession
from backend.core.pagination import Page, decode_cursor, encode_cursor
from backend.identity import schemas, service
from backend.workspaces.dependencies import AppSettings, CurrentActor, CurrentPrincipal

me_router = APIRouter(prefix="/me", tags=["identity"])
admin_router = APIRouter(prefix="/admin", tags=["instance admin"])


@me_router.get("/sessions", response_model=list[schemas.SessionOut])
async def my_sessions(
    principal: CurrentPrincipal, session: DbSession, settings: AppSettings
) -> list[schemas.SessionOut]:
    """My signed-in browser sessions, most recently used first; `current` marks this one."""
    return [schemas.SessionOut.model_validate(s) for s in await service.my_sessions(session, settings, principal)]


@me_router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_session(session_id: uuid.UUID, principal: CurrentPrincipal, session: DbSession) -> Response:
    """Sign one of my sessions out (this one too, if it is the one named)."""
    await service.revoke_session(session, principal, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@me_router.post("/sessions/revoke-others", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_other_sessions(principal: CurrentPrincipal, session: DbSession) -> Response:
    """Sign out everywhere else."""
    await service.revoke_other_sessions(session, principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@me_router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(
    body: schemas.PasswordChange, principal: CurrentPrincipal, actor: CurrentActor, session: DbSession
) -> Response:
    """Change my password (the current one is required); every other session is signed out."""
    await service.change_password(session, principal, body.current_password, body.new_password, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@admin_router.get("/users", response_model=Page[schemas.AdminUserOut])
async def list_users(
    principal: CurrentPrincipal,
    session: DbSession,
    settings: AppSettings,
    q: Annotated[str | None, Query(max_length=200, description="Part of an email or name")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[schemas.AdminUserOut]:
    """Every account of the instance, oldest first (instance admins only)."""
    after = decode_cursor(cursor) if cursor else None
    rows = await service.list_users(session, settings, principal, query=q, after=after, limit=limit + 1)
    items = [schemas.AdminUserOut.model_validate(row) for row in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    return Page[schemas.AdminUserOut](
        items=items, next_cursor=encode_cursor(last["created_at"], last["id"]) if last else None
    )


@admin_router.patch("/users/{user_id}", response_model=schemas.AdminUserOut)
async def update_user(
    user_id: uuid.UUID,
    body: schemas.AdminUserPatch,
    principal: CurrentPrincipal,
    actor: CurrentActor,
    session: DbSession,
    settings: AppSettings,
) -> schemas.AdminUserOut:
    """Disable (signs out everywhere) or enable an account; grant or withdraw instance admin."""
    changes = body.model_dump(exclude_none=True)
    row = await service.update_user(session, settings, principal, user_id, changes, actor)
    return schemas.AdminUserOut.model_validate(row)


@admin_router.post("/users/{user_id}/revoke-sessions", response_model=schemas.AdminUserOut)
async def reset_user_sessions(
    user_id: uuid.UUID, principal: CurrentPrincipal, actor: CurrentActor, session: DbSession, settings: AppSettings
) -> schemas.AdminUserOut:
    """Sign an account out of every session."""
    return schemas.AdminUserOut.model_validate(
        await service.reset_user_sessions(session, settings, principal, user_id, actor)
    )
