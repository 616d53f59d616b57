"""Every query of accounts and workspaces. Reads of workspace data go through `visible_workspaces`."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ARRAY, Select, Text, and_, cast, delete, func, literal, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import mark_sanctioned
from backend.workspaces.models import (
    ApiKey,
    AuditEntry,
    AuthSession,
    Invitation,
    Membership,
    ProviderCredential,
    User,
    Workspace,
)

if TYPE_CHECKING:
    from backend.workspaces.service import Principal


def visible_workspaces(principal: Principal) -> Select[tuple[Workspace, Membership]]:
    """The one place that decides which workspaces a subject may see, and with which role.

    A user sees the live workspaces they are a member of; an API key narrows that to its own workspace.
    """
    stmt = (
        select(Workspace, Membership)
        .join(Membership, Membership.workspace_id == Workspace.id)
        .where(Membership.user_id == principal.user.id, Workspace.deleted_at.is_(None))
    )
    if principal.api_key is not None:
        stmt = stmt.where(Workspace.id == principal.api_key.workspace_id)
    return stmt


async def get_visible_workspace(
    session: AsyncSession, principal: Principal, workspace_id: uuid.UUID
) -> tuple[Workspace, Membership] | None:
    row = (await session.execute(visible_workspaces(principal).where(Workspace.id == workspace_id))).first()
    return (row[0], row[1]) if row else None


async def list_visible_workspaces(session: AsyncSession, principal: Principal) -> list[tuple[Workspace, Membership]]:
    rows = await session.execute(visible_workspaces(principal).order_by(Workspace.created_at, Workspace.id))
    return [(w, m) for w, m in rows.all()]


# Users


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    return (await session.execute(select(User).where(User.email == email.lower()))).scalar_one_or_none()


async def count_users(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(User))).scalar_one()


async def lock_signups(session: AsyncSession) -> None:
    """Serialises signups for the transaction, so 'the first account' is decided exactly once."""
    await session.execute(select(func.pg_advisory_xact_lock(0x5349474E5550)))  # "SIGNUP"


async def lock_name(session: AsyncSession, *parts: object) -> None:
    """A transaction-scoped lock on a name (e.g. workspace + email): check-then-insert becomes safe."""
    name = "/".join(str(p) for p in parts)
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(name, 0))))


_EMAIL_PATH = cast(literal("{email}"), ARRAY(Text))


async def scrub_email_from_audit(session: AsyncSession, email: str, replacement: str) -> None:
    """A deleted account's address must not live on in the audit log's before/after snapshots."""
    for column in (AuditEntry.before, AuditEntry.after):
        await session.execute(
            update(AuditEntry)
            .where(column["email"].astext == email)
            .values({column.key: func.jsonb_set(column, _EMAIL_PATH, func.to_jsonb(replacement))})
        )


async def scrub_email_from_invitations(session: AsyncSession, email: str, replacement: str) -> None:
    await session.execute(
        update(Invitation)
        .where(Invitation.email == email)
        .values(email=replacement, revoked_at=func.coalesce(Invitation.revoked_at, func.now()))
    )


# Sessions


async def get_auth_session(
    session: AsyncSession, token_hash: bytes, idle: timedelta
) -> tuple[AuthSession, User, bool] | None:
    """A live session and its user, and whether last_seen_at is old enough to be worth a write."""
    stale = (AuthSession.last_seen_at < func.now() - timedelta(minutes=1)).label("stale")
    stmt = (
        select(AuthSession, User, stale)
        .join(User, User.id == AuthSession.user_id)
        .where(
            AuthSession.token_hash == token_hash,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > func.now(),
            AuthSession.last_seen_at > func.now() - idle,
            User.disabled_at.is_(None),
        )
    )
    row = (await session.execute(stmt)).first()
    return (row[0], row[1], bool(row[2])) if row else None


async def touch_auth_session(session: AsyncSession, auth_session_id: uuid.UUID) -> None:
    await session.execute(
        update(AuthSession).where(AuthSession.id == auth_session_id).values(last_seen_at=func.now())
    )


async def revoke_auth_session(session: AsyncSession, auth_session_id: uuid.UUID) -> None:
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id == auth_session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


async def revoke_user_credentials(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Every session and API key of a user stops working in this transaction."""
    await session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    await session.execute(
        update(ApiKey).where(ApiKey.created_by == user_id, ApiKey.revoked_at.is_(None)).values(revoked_at=func.now())
    )


async def revoke_api_keys_of(session: AsyncSession, workspace_id: uuid.UUID, user_id: uuid.UUID) -> None:
    await session.execute(
        update(ApiKey)
        .where(ApiKey.workspace_id == workspace_id, ApiKey.created_by == user_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


async def delete_sessions_of(session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.execute(delete(AuthSession).where(AuthSession.user_id == user_id))


# Workspaces and members


async def get_live_workspace(session: AsyncSession, workspace_id: uuid.UUID) -> Workspace | None:
    stmt = select(Workspace).where(Workspace.id == workspace_id, Workspace.deleted_at.is_(None))
    return (await session.execute(stmt)).scalar_one_or_none()


async def deleted_workspace_ids(session: AsyncSession, limit: int) -> list[uuid.UUID]:
    stmt = select(Workspace.id).where(Workspace.deleted_at.is_not(None)).order_by(Workspace.deleted_at).limit(limit)
    return list((await session.execute(stmt)).scalars())


_DELETE_RUNS = text(
    "DELETE FROM run WHERE id IN (SELECT id FROM run WHERE workspace_id = :ws LIMIT :batch FOR UPDATE SKIP LOCKED)"
)


async def delete_runs_of(session: AsyncSession, workspace_id: uuid.UUID, batch: int) -> int:
    """A batch of a deleted workspace's runs (the workspace's own row goes later, with the rest)."""
    return (await session.execute(_DELETE_RUNS, {"ws": workspace_id, "batch": batch})).rowcount or 0


async def delete_deleted_workspaces(session: AsyncSession, limit: int) -> int:
    doomed = (
        select(Workspace.id)
        .where(Workspace.deleted_at.is_not(None))
        .order_by(Workspace.deleted_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    await mark_sanctioned(session, "delete")  # cascades into immutable prompt versions
    result = await session.execute(delete(Workspace).where(Workspace.id.in_(doomed)))
    return result.rowcount or 0


async def slug_taken(session: AsyncSession, slug: str) -> bool:
    return (await session.execute(select(Workspace.id).where(Workspace.slug == slug))).first() is not None


async def list_members(session: AsyncSession, workspace_id: uuid.UUID) -> list[tuple[Membership, User]]:
    stmt = (
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.workspace_id == workspace_id)
        .order_by(Membership.created_at, User.email)
    )
    return [(m, u) for m, u in (await session.execute(stmt)).all()]


async def get_member(
    session: AsyncSession, workspace_id: uuid.UUID, user_id: uuid.UUID, *, for_update: bool = False
) -> tuple[Membership, User] | None:
    stmt = (
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.workspace_id == workspace_id, Membership.user_id == user_id)
    )
    if for_update:
        stmt = stmt.with_for_update(of=Membership)
    row = (await session.execute(stmt)).first()
    return (row[0], row[1]) if row else None


async def lock_owners(session: AsyncSession, workspace_id: uuid.UUID) -> list[uuid.UUID]:
    """Locks every owner row, so two concurrent demotions cannot both see 'another owner remains'."""
    stmt = (
        select(Membership.user_id)
        .where(Membership.workspace_id == workspace_id, Membership.role == "owner")
        .order_by(Membership.user_id)
        .with_for_update()
    )
    return list((await session.execute(stmt)).scalars())


async def delete_member(session: AsyncSession, membership: Membership) -> None:
    await session.delete(membership)


# Invitations


async def revoke_open_invitations(session: AsyncSession, workspace_id: uuid.UUID, email: str) -> None:
    await session.execute(
        update(Invitation)
        .where(
            Invitation.workspace_id == workspace_id,
            Invitation.email == email,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=func.now())
    )


async def get_usable_invitation(session: AsyncSession, token_hash: bytes) -> Invitation | None:
    stmt = (
        select(Invitation)
        .join(Workspace, Workspace.id == Invitation.workspace_id)
        .where(
            Invitation.token_hash == token_hash,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > func.now(),
            Workspace.deleted_at.is_(None),
        )
        .with_for_update(of=Invitation)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_open_invitations(session: AsyncSession, workspace_id: uuid.UUID) -> list[Invitation]:
    stmt = (
        select(Invitation)
        .where(
            Invitation.workspace_id == workspace_id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > func.now(),
        )
        .order_by(Invitation.created_at.desc())
    )
    return list((await session.execute(stmt)).scalars())


async def get_invitation(session: AsyncSession, workspace_id: uuid.UUID, invitation_id: uuid.UUID) -> Invitation | None:
    stmt = select(Invitation).where(Invitation.workspace_id == workspace_id, Invitation.id == invitation_id)
    return (await session.execute(stmt)).scalar_one_or_none()


# API keys


async def get_api_key_by_prefix(session: AsyncSession, prefix: str) -> tuple[ApiKey, User] | None:
    stmt = (
        select(ApiKey, User)
        .join(User, User.id == ApiKey.created_by)
        .join(Workspace, Workspace.id == ApiKey.workspace_id)
        .where(
            ApiKey.prefix == prefix,
            ApiKey.revoked_at.is_(None),
            User.disabled_at.is_(None),
            Workspace.deleted_at.is_(None),
        )
    )
    row = (await session.execute(stmt)).first()
    return (row[0], row[1]) if row else None


async def touch_api_key(session: AsyncSession, api_key_id: uuid.UUID) -> None:
    # At most one write a minute per key: last_used_at is for humans, not an access log.
    await session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == api_key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < func.now() - timedelta(minutes=1)),
        )
        .values(last_used_at=func.now())
    )


async def list_api_keys(
    session: AsyncSession, workspace_id: uuid.UUID, *, created_by: uuid.UUID | None = None
) -> list[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.workspace_id == workspace_id)
    if created_by is not None:
        stmt = stmt.where(ApiKey.created_by == created_by)
    return list((await session.execute(stmt.order_by(ApiKey.created_at.desc(), ApiKey.id))).scalars())


async def get_api_key(session: AsyncSession, workspace_id: uuid.UUID, api_key_id: uuid.UUID) -> ApiKey | None:
    stmt = select(ApiKey).where(ApiKey.workspace_id == workspace_id, ApiKey.id == api_key_id)
    return (await session.execute(stmt)).scalar_one_or_none()


# Audit log


async def list_audit_entries(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[tuple[AuditEntry, str | None]]:
    stmt = (
        select(AuditEntry, User.email)
        .outerjoin(User, User.id == AuditEntry.actor_user_id)
        .where(AuditEntry.workspace_id == workspace_id)
    )
    if after is not None:
        created_at, entry_id = after
        stmt = stmt.where(
            or_(
                AuditEntry.created_at < created_at,
                and_(AuditEntry.created_at == created_at, AuditEntry.id < entry_id),
            )
        )
    stmt = stmt.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc()).limit(limit)
    return [(e, email) for e, email in (await session.execute(stmt)).all()]


# Provider credentials


async def get_provider_credential(
    session: AsyncSession, workspace_id: uuid.UUID, provider: str, *, for_update: bool = False
) -> ProviderCredential | None:
    stmt = select(ProviderCredential).where(
        ProviderCredential.workspace_id == workspace_id, ProviderCredential.provider == provider
    )
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_provider_credentials(session: AsyncSession, workspace_id: uuid.UUID) -> list[ProviderCredential]:
    stmt = (
        select(ProviderCredential)
        .where(ProviderCredential.workspace_id == workspace_id)
        .order_by(ProviderCredential.provider)
    )
    return list((await session.execute(stmt)).scalars())
