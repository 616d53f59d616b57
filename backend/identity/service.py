"""Identity: a user's own sessions and password, and what an instance admin may do to accounts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.errors import Conflict, Forbidden, Invalid, NotFound, ProblemError
from backend.core.settings import Settings
from backend.workspaces.models import AuthSession, Membership, User
from backend.workspaces.service import Actor, Principal, hash_password, record_audit, verify_password


class SessionNotFound(NotFound):
    type, title = "session-not-found", "Session not found"


class UserNotFound(NotFound):
    type, title = "user-not-found", "User not found"


class WrongPassword(ProblemError):
    status, type, title = 403, "wrong-password", "The current password is wrong"


def _live(settings: Settings) -> Any:
    return and_(
        AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > func.now(),
        AuthSession.last_seen_at > func.now() - func.make_interval(0, 0, 0, settings.session_idle_days),
    )


def require_session(principal: Principal, what: str) -> None:
    if principal.api_key is not None or principal.auth_session is None:
        raise Forbidden(f"{what} needs a signed-in browser session, not an API key")


async def my_sessions(session: AsyncSession, settings: Settings, principal: Principal) -> list[dict[str, Any]]:
    require_session(principal, "Listing sessions")
    rows = await session.execute(
        select(AuthSession)
        .where(AuthSession.user_id == principal.user.id, _live(settings))
        .order_by(AuthSession.last_seen_at.desc())
    )
    current = principal.auth_session.id if principal.auth_session else None
    return [
        {
            "id": s.id,
            "created_at": s.created_at,
            "last_seen_at": s.last_seen_at,
            "expires_at": s.expires_at,
            "user_agent": s.user_agent,
            "client_address": str(s.client_address) if s.client_address else None,
            "current": s.id == current,
        }
        for s in rows.scalars()
    ]


async def revoke_session(session: AsyncSession, principal: Principal, session_id: uuid.UUID) -> None:
    require_session(principal, "Revoking sessions")
    result = await session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.user_id == principal.user.id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=func.now())
        .returning(AuthSession.id)
    )
    if result.first() is None:
        raise SessionNotFound(f"Session {session_id} not found")


async def revoke_other_sessions(session: AsyncSession, principal: Principal) -> int:
    require_session(principal, "Revoking sessions")
    assert principal.auth_session is not None
    return await _revoke_all(session, principal.user.id, keep=principal.auth_session.id)


async def _revoke_all(session: AsyncSession, user_id: uuid.UUID, keep: uuid.UUID | None = None) -> int:
    conditions = [AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)]
    if keep is not None:
        conditions.append(AuthSession.id != keep)
    result = await session.execute(
        update(AuthSession).where(*conditions).values(revoked_at=func.now()).returning(AuthSession.id)
    )
    return len(result.all())


async def change_password(
    session: AsyncSession, principal: Principal, current_password: str, new_password: str, actor: Actor
) -> int:
    """Checks the current password, sets the new one and signs out every other session; answers how many."""
    require_session(principal, "Changing the password")
    user = await session.get(User, principal.user.id, with_for_update=True)
    assert user is not None
    if not await verify_password(user.password_hash, current_password):
        raise WrongPassword("The current password is wrong; nothing was changed")
    if current_password == new_password:
        raise Conflict("The new password is the same as the current one")
    user.password_hash = await hash_password(new_password)
    revoked = await revoke_other_sessions(session, principal)
    await record_audit(
        session,
        workspace_id=None,
        actor=actor,
        action="password.changed",
        target_type="user",
        target_id=user.id,
        after={"other_sessions_revoked": revoked},
    )
    return revoked


async def update_profile(session: AsyncSession, principal: Principal, name: str, actor: Actor) -> User:
    require_session(principal, "Changing the profile")
    user = await session.get(User, principal.user.id, with_for_update=True)
    assert user is not None
    name = name.strip()
    if not name:
        raise Invalid(["body", "name"], "the name cannot be blank")
    if name != user.name:
        before = user.name
        user.name = name
        await record_audit(
            session,
            workspace_id=None,
            actor=actor,
            action="profile.updated",
            target_type="user",
            target_id=user.id,
            before={"name": before},
            after={"name": name},
        )
        await session.flush()
    return user


async def set_workspace_requirement(session: AsyncSession, access: Any, name: str, value: bool, actor: Actor) -> None:
    """Turns `require_2fa` or `require_sso` of a workspace on or off, audited as workspace.updated."""
    workspace = access.workspace
    setattr(workspace, name, value)
    workspace.updated_at = func.now()
    await record_audit(
        session,
        workspace_id=workspace.id,
        actor=actor,
        action="workspace.updated",
        target_type="workspace",
        target_id=workspace.id,
        before={name: not value},
        after={name: value},
    )
    await session.flush()
    await session.refresh(workspace)


# Instance administration


def require_instance_admin(principal: Principal) -> None:
    if not principal.user.is_instance_admin or principal.api_key is not None:
        raise Forbidden("Only an instance admin, signed in, may administer accounts")


async def list_users(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    *,
    query: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[dict[str, Any]]:
    require_instance_admin(principal)
    workspaces = select(func.count()).where(Membership.user_id == User.id).correlate(User).scalar_subquery()
    sessions = (
        select(func.count()).where(AuthSession.user_id == User.id, _live(settings)).correlate(User).scalar_subquery()
    )
    stmt = select(User, workspaces, sessions)
    if query:
        pattern = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(or_(User.email.like(pattern, escape="\\"), func.lower(User.name).like(pattern, escape="\\")))
    if after is not None:
        at, last_id = after
        stmt = stmt.where(or_(User.created_at > at, and_(User.created_at == at, User.id > last_id)))
    stmt = stmt.order_by(User.created_at, User.id).limit(limit)
    return [_admin_view(user, ws_count, live) for user, ws_count, live in await session.execute(stmt)]


def _admin_view(user: User, workspaces: int, live_sessions: int) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "is_instance_admin": user.is_instance_admin,
        "disabled": user.disabled_at is not None,
        "created_at": user.created_at,
        "workspaces": workspaces,
        "live_sessions": live_sessions,
    }


async def update_user(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    user_id: uuid.UUID,
    changes: dict[str, bool],
    actor: Actor,
) -> dict[str, Any]:
    """Disable or enable an account (disabling signs it out everywhere), grant or withdraw instance admin."""
    require_instance_admin(principal)
    user = await session.get(User, user_id, with_for_update=True)
    if user is None or user.email.endswith("@deleted.invalid"):
        raise UserNotFound(f"User {user_id} not found")
    if user.id == principal.user.id and (changes.get("disabled") or changes.get("is_instance_admin") is False):
        raise Conflict("You cannot disable yourself or withdraw your own instance admin role")
    before = {"disabled": user.disabled_at is not None, "is_instance_admin": user.is_instance_admin}
    if "disabled" in changes:
        user.disabled_at = func.now() if changes["disabled"] else None
        if changes["disabled"]:
            await _revoke_all(session, user.id)
    if "is_instance_admin" in changes:
        user.is_instance_admin = changes["is_instance_admin"]
    after = {**before, **changes}
    if after != before:
        await record_audit(
            session,
            workspace_id=None,
            actor=actor,
            action="user.updated",
            target_type="user",
            target_id=user.id,
            before=before,
            after=after,
        )
    await session.flush()
    await session.refresh(user)
    return await _view_of(session, settings, user)


async def reset_user_sessions(
    session: AsyncSession, settings: Settings, principal: Principal, user_id: uuid.UUID, actor: Actor
) -> dict[str, Any]:
    require_instance_admin(principal)
    user = await session.get(User, user_id)
    if user is None:
        raise UserNotFound(f"User {user_id} not found")
    revoked = await _revoke_all(session, user.id)
    await record_audit(
        session,
        workspace_id=None,
        actor=actor,
        action="user.sessions_revoked",
        target_type="user",
        target_id=user.id,
        after={"revoked": revoked},
    )
    return await _view_of(session, settings, user)


async def _view_of(session: AsyncSession, settings: Settings, user: User) -> dict[str, Any]:
    workspaces = await session.scalar(select(func.count()).where(Membership.user_id == user.id))
    live = await session.scalar(select(func.count()).where(AuthSession.user_id == user.id, _live(settings)))
    return _admin_view(user, workspaces or 0, live or 0)
