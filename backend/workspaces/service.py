"""Accounts, sessions, workspaces, members, invitations, API keys and the audit log.

This module is what other domains import from workspaces; they never touch its tables.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.core.database import after_commit
from backend.core.errors import Forbidden, Invalid, NotFound, TooManyRequests
from backend.core.settings import Settings
from backend.crypto.service import Keyring
from backend.ratelimit.limiter import Limiter
from backend.workspaces import repository as repo
from backend.workspaces.egress import allowed_hosts, check_base_url
from backend.workspaces.errors import (
    AlreadyMember,
    BadCredentials,
    EmailTaken,
    LastOwner,
    RoleTooLow,
    SignupClosed,
    WorkspaceNotFound,
)
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

logger = logging.getLogger(__name__)

ROLE_RANK = {"viewer": 0, "editor": 1, "admin": 2, "owner": 3}
API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)  # last_used_at is for humans, not an access log

# OWASP's argon2id recommendation: m=19 MiB, t=2, p=1 (the first of its equivalent settings).
PASSWORDS = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the email is unknown, so a miss costs as much time as a wrong password.
_DUMMY_HASH = PASSWORDS.hash(secrets.token_urlsafe(16))

API_KEY_PREFIX = "ppk_"
_API_KEY_RE = re.compile(r"^ppk_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, through a browser session or an API key bound to one workspace."""

    user: User
    auth_session: AuthSession | None = None
    api_key: ApiKey | None = None


@dataclass(frozen=True)
class WorkspaceAccess:
    """A caller's standing in one workspace, as established by the tenancy helper."""

    principal: Principal
    workspace: Workspace
    role: str

    def at_least(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


@dataclass(frozen=True)
class Actor:
    """What the audit log records about who did something and from where."""

    user_id: uuid.UUID | None
    api_key_id: uuid.UUID | None = None
    client_address: str | None = None

    @classmethod
    def of(cls, principal: Principal, client_address: str | None) -> Actor:
        key_id = principal.api_key.id if principal.api_key else None
        return cls(principal.user.id, key_id, client_address)


def token_hash(token: str) -> bytes:
    """Session, invitation and API key secrets are 256-bit random, so a plain SHA-256 is enough."""
    return hashlib.sha256(token.encode()).digest()


def _verify(password_hash: str, password: str) -> bool:
    try:
        return PASSWORDS.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# argon2 takes tens of milliseconds of CPU by design: off the event loop, so other requests keep flowing.
async def hash_password(password: str) -> str:
    return await asyncio.to_thread(PASSWORDS.hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    return await asyncio.to_thread(_verify, password_hash, password)


async def record_audit(
    session: AsyncSession,
    *,
    workspace_id: uuid.UUID | None,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: Any = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """The one way to write an audit entry; it commits or rolls back with the change it describes."""
    session.add(
        AuditEntry(
            workspace_id=workspace_id,
            actor_user_id=actor.user_id,
            actor_api_key_id=actor.api_key_id,
            action=action,
            target_type=target_type,
            target_id=None if target_id is None else str(target_id),
            before=before,
            after=after,
            client_address=actor.client_address,
        )
    )


# Accounts and sessions


async def signup(
    session: AsyncSession,
    settings: Settings,
    *,
    email: str,
    password: str,
    name: str,
    invite_token: str | None,
    client_address: str | None,
    allowed_domains: list[str] | tuple[str, ...] = (),
) -> User:
    email = email.lower()
    password_hash = await hash_password(password)  # before the lock: it is the slow part
    await repo.lock_signups(session)
    first_account = await repo.count_users(session) == 0
    invitation = None
    if invite_token:
        invitation = await repo.get_usable_invitation(session, token_hash(invite_token))
        if invitation is None:
            raise Invalid(["body", "invite_token"], "invite_token is unknown, expired or already used")
        if invitation.email != email:
            raise Invalid(["body", "invite_token"], "invite_token was issued for another email address")
    elif not first_account and settings.signup == "invite":
        raise SignupClosed("Signup requires an invitation on this instance (invite_token)")
    if not first_account and settings.signup == "closed":
        raise SignupClosed("Signup is closed on this instance; ask an administrator for an account")
    if not first_account and allowed_domains and email.rpartition("@")[2] not in allowed_domains:
        raise SignupClosed("Accounts on this instance need an address in one of its allowed email domains")
    if await repo.get_user_by_email(session, email) is not None:
        raise EmailTaken("An account with this email already exists")

    user = User(
        email=email, name=name, password_hash=password_hash, is_instance_admin=first_account
    )
    session.add(user)
    await session.flush()
    if invitation is not None:
        session.add(Membership(workspace_id=invitation.workspace_id, user_id=user.id, role=invitation.role))
        invitation.accepted_at = func.now()
        invitation.accepted_by = user.id
        await record_audit(
            session,
            workspace_id=invitation.workspace_id,
            actor=Actor(user.id, None, client_address),
            action="member.added",
            target_type="user",
            target_id=user.id,
            after={"email": email, "role": invitation.role, "via": "invitation"},
        )
    await session.flush()
    return user


async def login(
    session: AsyncSession,
    settings: Settings,
    limiter: Limiter,
    *,
    email: str,
    password: str,
    client_address: str | None,
) -> User:
    email = email.lower()
    window = settings.login_window_seconds
    account_key = "login:account:" + hashlib.sha256(email.encode()).hexdigest()
    address_key = f"login:address:{client_address or 'unknown'}"

    # Record the attempt before checking the password (not check-then-record): concurrent guesses
    # each take a slot atomically, so a burst cannot slip past either limit. A refused attempt gives back
    # the slot it took in the other window; a success clears the account's window and gives back its slot
    # in the address's, so an office behind one NAT is limited by its failures, not by its logins.
    wait = await limiter.hit(address_key, settings.login_attempts_per_address, window)
    if wait is not None:
        raise TooManyRequests("Too many login attempts from this address; try again later", retry_after=wait)
    wait = await limiter.hit(account_key, settings.login_failures_per_account, window)
    if wait is not None:
        await limiter.forget_one(address_key)
        raise TooManyRequests("Too many login attempts for this account; try again later", retry_after=wait)

    user = await repo.get_user_by_email(session, email)
    valid = await verify_password(user.password_hash if user else _DUMMY_HASH, password)
    if user is None or not valid or user.disabled_at is not None:
        raise BadCredentials("Wrong email or password")
    await limiter.forget_one(address_key)
    await limiter.reset(account_key)
    if PASSWORDS.check_needs_rehash(user.password_hash):
        user.password_hash = await hash_password(password)
    return user


async def start_session(
    session: AsyncSession,
    settings: Settings,
    user: User,
    *,
    user_agent: str | None,
    client_address: str | None,
    method: str = "password",
) -> tuple[str, str]:
    """Creates a server-side session; returns (session token, CSRF token) for the cookies."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    expires_at = func.now() + timedelta(days=settings.session_absolute_days)
    session.add(
        AuthSession(
            token_hash=token_hash(token),
            csrf_hash=token_hash(csrf),
            user_id=user.id,
            expires_at=expires_at,
            user_agent=(user_agent or "")[:400] or None,
            client_address=client_address,
            method=method,
        )
    )
    await session.flush()
    return token, csrf


async def end_session(session: AsyncSession, principal: Principal) -> None:
    if principal.auth_session is not None:
        await repo.revoke_auth_session(session, principal.auth_session.id)


async def authenticate_session(
    session: AsyncSession, settings: Settings, token: str
) -> Principal | None:
    found = await repo.get_auth_session(session, token_hash(token), timedelta(days=settings.session_idle_days))
    if found is None:
        return None
    auth_session, user, stale = found
    if stale:
        await repo.touch_auth_session(session, auth_session.id)
    return Principal(user=user, auth_session=auth_session)


def csrf_matches(principal: Principal, header_value: str | None, cookie_value: str | None) -> bool:
    """Double submit, bound to the session: header == cookie == the session's own token."""
    if principal.auth_session is None or not header_value or not cookie_value:
        return False
    if not hmac.compare_digest(header_value, cookie_value):
        return False
    return hmac.compare_digest(token_hash(header_value), principal.auth_session.csrf_hash)


async def authenticate_api_key(session: AsyncSession, key: str) -> Principal | None:
    match = _API_KEY_RE.match(key)
    if match is None:
        return None
    found = await repo.get_api_key_by_prefix(session, API_KEY_PREFIX + match.group(1))
    if found is None:
        return None
    api_key, user = found
    if not hmac.compare_digest(token_hash(match.group(2)), api_key.secret_hash):
        return None
    # The key acts as its creator: a creator who left the workspace leaves a dead key.
    if await repo.get_member(session, api_key.workspace_id, user.id) is None:
        return None
    # At most one write a minute per key, decided here from the row already read: a busy key's requests
    # would otherwise all queue on its row lock until their transactions commit.
    if api_key.last_used_at is None or api_key.last_used_at < datetime.now(UTC) - API_KEY_TOUCH_INTERVAL:
        await repo.touch_api_key(session, api_key.id)
    return Principal(user=user, api_key=api_key)


async def delete_account(session: AsyncSession, keyring: Keyring, principal: Principal, actor: Actor) -> None:
    """Removes a user's personal data; what they wrote stays, attributed to an anonymous account.

    Refused (409) while they are the last owner of a workspace that has other members. Workspaces where
    they are the only member go with them.
    """
    if principal.api_key is not None:
        raise Forbidden("An API key cannot delete its creator's account; sign in to do that")
    user = principal.user
    memberships = await repo.list_visible_workspaces(session, Principal(user=user))
    for workspace, membership in memberships:
        if membership.role != "owner":
            continue
        owners = await repo.lock_owners(session, workspace.id)
        members = await repo.list_members(session, workspace.id)
        if owners == [user.id] and len(members) > 1:
            raise LastOwner(
                f"You are the last owner of workspace '{workspace.name}' ({workspace.id}), which has other "
                "members: make someone else owner or delete the workspace first"
            )
    from backend.lifecycle.service import discard_archives  # the lifecycle builds on workspaces

    for workspace, membership in memberships:
        await discard_archives(session, workspace.id)  # they name this user
        if len(await repo.list_members(session, workspace.id)) == 1:
            access = WorkspaceAccess(principal=principal, workspace=workspace, role=membership.role)
            await delete_workspace(session, keyring, access, actor)
        else:
            await record_audit(
                session, workspace_id=workspace.id, actor=actor, action="member.removed",
                target_type="user", target_id=user.id, before={"role": membership.role},
                after={"reason": "account deleted"},
            )
        await repo.delete_member(session, membership)
    await repo.revoke_user_credentials(session, user.id)
    await repo.delete_sessions_of(session, user.id)  # they hold addresses and user agents
    anonymous = f"deleted-{user.id.hex}@deleted.invalid"
    await repo.scrub_email_from_audit(session, user.email, anonymous)
    await repo.scrub_email_from_invitations(session, user.email, anonymous)
    await record_audit(  # instance-level: what happened, never who it was (the address is gone from here on)
        session, workspace_id=None, actor=actor, action="account.deleted", target_type="user", target_id=user.id,
        after={"workspaces_left": len(memberships)},
    )
    # The row stays so that authorship and audit entries still point somewhere, but says nothing.
    user.email = anonymous
    user.name = "Deleted user"
    user.password_hash = "!"  # not a hash: no password verifies against it
    user.disabled_at = func.now()
    await session.flush()


# Workspaces


async def workspace_access(session: AsyncSession, principal: Principal, workspace_id: uuid.UUID) -> WorkspaceAccess:
    """404 for an unknown, deleted or foreign workspace; otherwise the caller's role in it."""
    found = await repo.get_visible_workspace(session, principal, workspace_id)
    if found is None:
        raise WorkspaceNotFound(f"Workspace {workspace_id} not found")
    workspace, membership = found
    return WorkspaceAccess(principal=principal, workspace=workspace, role=membership.role)


def require_at_least(access: WorkspaceAccess, role: str, what: str) -> None:
    if not access.at_least(role):
        raise RoleTooLow(f"{what} needs the {role} role or higher; you are {access.role}")


def require_signed_in(access: WorkspaceAccess, what: str) -> None:
    """Granting access (members, roles, API keys, the sign-in policy) is a person's act: an API key, which can
    leak, could otherwise hand out access that outlives its own revocation."""
    if access.principal.api_key is not None:
        raise Forbidden(f"{what} needs a signed-in member, not an API key")


async def my_workspaces(session: AsyncSession, principal: Principal) -> list[tuple[Workspace, str]]:
    return [(w, m.role) for w, m in await repo.list_visible_workspaces(session, principal)]


def _slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:60] or "workspace"


async def create_workspace(
    session: AsyncSession, keyring: Keyring, principal: Principal, name: str, actor: Actor
) -> Workspace:
    if principal.api_key is not None:
        raise Forbidden("An API key is bound to one workspace and cannot create others")
    base = _slugify(name)
    # Serialised per slug, so two workspaces created at once with one name get distinct slugs.
    await repo.lock_name(session, "workspace-slug", base)
    slug = base
    while await repo.slug_taken(session, slug):
        slug = f"{base}-{secrets.token_hex(3)}"
    workspace = Workspace(name=name, slug=slug, created_by=principal.user.id)
    session.add(workspace)
    await session.flush()
    session.add(Membership(workspace_id=workspace.id, user_id=principal.user.id, role="owner"))
    await keyring.create_workspace_key(session, workspace.id)
    await session.flush()
    return workspace


async def rename_workspace(session: AsyncSession, access: WorkspaceAccess, name: str) -> Workspace:
    access.workspace.name = name
    access.workspace.updated_at = func.now()
    await session.flush()
    await session.refresh(access.workspace)
    return access.workspace


async def delete_workspace(session: AsyncSession, keyring: Keyring, access: WorkspaceAccess, actor: Actor) -> None:
    """Shreds the workspace's keys and hides it at once; its rows are removed in the background."""
    require_signed_in(access, "Deleting the workspace")  # irreversible: like deleting an account, not for keys
    await keyring.shred(session, access.workspace.id)
    workspace_id = access.workspace.id

    async def forget_key() -> None:  # again once committed: a racing lookup may have cached the old key
        keyring.invalidate(workspace_id)

    after_commit(session, forget_key)
    access.workspace.deleted_at = func.now()
    await record_audit(
        session,
        workspace_id=access.workspace.id,
        actor=actor,
        action="workspace.deleted",
        target_type="workspace",
        target_id=access.workspace.id,
        before={"name": access.workspace.name, "slug": access.workspace.slug},
    )
    await session.flush()


# Members and invitations


async def list_members(session: AsyncSession, access: WorkspaceAccess) -> list[tuple[Membership, User]]:
    return await repo.list_members(session, access.workspace.id)


def _check_may_grant(access: WorkspaceAccess, role: str) -> None:
    # Admins manage editors and viewers (and other admins); only owners make or unmake owners.
    if role == "owner" and access.role != "owner":
        raise RoleTooLow("Only an owner can grant the owner role")


async def add_member(
    session: AsyncSession,
    settings: Settings,
    access: WorkspaceAccess,
    *,
    email: str,
    role: str,
    actor: Actor,
    base_url: str,
) -> tuple[Membership | None, User | None, Invitation | None, str | None]:
    """Adds a registered user at once; otherwise makes a one-time invitation and returns its token."""
    require_at_least(access, "admin", "Adding members")
    require_signed_in(access, "Adding members")
    _check_may_grant(access, role)
    email = email.lower()
    ws_id = access.workspace.id
    # Concurrent adds or invitations of one address must not race between the check and the insert.
    await repo.lock_name(session, "membership", ws_id, email)
    user = await repo.get_user_by_email(session, email)
    if user is not None:
        if await repo.get_member(session, ws_id, user.id) is not None:
            raise AlreadyMember(f"{email} is already a member of this workspace")
        membership = Membership(workspace_id=ws_id, user_id=user.id, role=role)
        session.add(membership)
        await repo.revoke_open_invitations(session, ws_id, email)
        await record_audit(
            session, workspace_id=ws_id, actor=actor, action="member.added",
            target_type="user", target_id=user.id, after={"email": email, "role": role},
        )
        await session.flush()
        await session.refresh(membership)
        return membership, user, None, None

    token = secrets.token_urlsafe(32)
    await repo.revoke_open_invitations(session, ws_id, email)
    await session.flush()
    invitation = Invitation(
        workspace_id=ws_id,
        email=email,
        role=role,
        token_hash=token_hash(token),
        invited_by=access.principal.user.id,
        expires_at=func.now() + timedelta(days=settings.invite_days),
    )
    session.add(invitation)
    await session.flush()
    await session.refresh(invitation)
    await record_audit(
        session, workspace_id=ws_id, actor=actor, action="member.invited",
        target_type="invitation", target_id=invitation.id, after={"email": email, "role": role},
    )
    return None, None, invitation, token


def invite_url(settings: Settings, base_url: str, token: str) -> str:
    return f"{(settings.public_url or base_url).rstrip('/')}/signup?invite={token}"


async def list_invitations(session: AsyncSession, access: WorkspaceAccess) -> list[Invitation]:
    return await repo.list_open_invitations(session, access.workspace.id)


async def revoke_invitation(
    session: AsyncSession, access: WorkspaceAccess, invitation_id: uuid.UUID, actor: Actor
) -> None:
    require_at_least(access, "admin", "Revoking invitations")
    invitation = await repo.get_invitation(session, access.workspace.id, invitation_id)
    if invitation is None or invitation.revoked_at is not None or invitation.accepted_at is not None:
        raise NotFound("Invitation not found")
    invitation.revoked_at = func.now()
    await record_audit(
        session, workspace_id=access.workspace.id, actor=actor, action="member.invite_revoked",
        target_type="invitation", target_id=invitation.id, before={"email": invitation.email},
    )
    await session.flush()


async def change_role(
    session: AsyncSession, access: WorkspaceAccess, user_id: uuid.UUID, role: str, actor: Actor
) -> tuple[Membership, User]:
    require_at_least(access, "admin", "Changing roles")
    require_signed_in(access, "Changing roles")
    owners = await repo.lock_owners(session, access.workspace.id)
    found = await repo.get_member(session, access.workspace.id, user_id, for_update=True)
    if found is None:
        raise NotFound(f"User {user_id} is not a member of this workspace")
    membership, user = found
    if membership.role == role:
        return membership, user
    _check_may_grant(access, role)
    _check_may_grant(access, membership.role)  # demoting an owner is an owner's call too
    if membership.role == "owner" and owners == [user_id]:
        raise LastOwner("The last owner cannot be demoted; make someone else owner first")
    before = membership.role
    membership.role = role
    membership.updated_at = func.now()
    await record_audit(
        session, workspace_id=access.workspace.id, actor=actor, action="member.role_changed",
        target_type="user", target_id=user_id, before={"role": before}, after={"role": role},
    )
    await session.flush()
    await session.refresh(membership)
    return membership, user


async def remove_member(
    session: AsyncSession, access: WorkspaceAccess, user_id: uuid.UUID, actor: Actor
) -> None:
    leaving = user_id == access.principal.user.id
    if not leaving:
        require_at_least(access, "admin", "Removing members")
    owners = await repo.lock_owners(session, access.workspace.id)
    found = await repo.get_member(session, access.workspace.id, user_id, for_update=True)
    if found is None:
        raise NotFound(f"User {user_id} is not a member of this workspace")
    membership, user = found
    if not leaving:
        _check_may_grant(access, membership.role)
    if membership.role == "owner" and owners == [user_id]:
        raise LastOwner("The last owner cannot be removed; make someone else owner first")
    await record_audit(
        session, workspace_id=access.workspace.id, actor=actor, action="member.removed",
        target_type="user", target_id=user_id, before={"email": user.email, "role": membership.role},
    )
    # Their keys act as them: they end with the membership rather than waking up if they are re-added.
    await repo.revoke_api_keys_of(session, access.workspace.id, user_id)
    await repo.delete_member(session, membership)
    await session.flush()


# API keys


async def create_api_key(
    session: AsyncSession, access: WorkspaceAccess, name: str, actor: Actor
) -> tuple[ApiKey, str]:
    require_at_least(access, "editor", "Creating API keys")
    require_signed_in(access, "Creating API keys")
    public_id = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789") for _ in range(12))
    secret = secrets.token_urlsafe(32)
    api_key = ApiKey(
        workspace_id=access.workspace.id,
        created_by=access.principal.user.id,
        name=name,
        prefix=API_KEY_PREFIX + public_id,
        secret_hash=token_hash(secret),
    )
    session.add(api_key)
    await session.flush()
    await session.refresh(api_key)
    await record_audit(
        session, workspace_id=access.workspace.id, actor=actor, action="api_key.created",
        target_type="api_key", target_id=api_key.id, after={"name": name, "prefix": api_key.prefix},
    )
    return api_key, f"{api_key.prefix}_{secret}"


async def list_api_keys(session: AsyncSession, access: WorkspaceAccess) -> list[ApiKey]:
    # Admins see every key of the workspace; others see their own.
    created_by = None if access.at_least("admin") else access.principal.user.id
    return await repo.list_api_keys(session, access.workspace.id, created_by=created_by)


async def revoke_api_key(
    session: AsyncSession, access: WorkspaceAccess, api_key_id: uuid.UUID, actor: Actor
) -> None:
    api_key = await repo.get_api_key(session, access.workspace.id, api_key_id)
    own = api_key is not None and api_key.created_by == access.principal.user.id
    if not own and not access.at_least("admin"):
        # Checked before existence for non-admins: a viewer learns nothing about others' keys.
        raise RoleTooLow("Revoking another member's API key needs the admin role or higher")
    if api_key is None or api_key.revoked_at is not None:
        raise NotFound(f"API key {api_key_id} not found")
    api_key.revoked_at = func.now()
    await record_audit(
        session, workspace_id=access.workspace.id, actor=actor, action="api_key.revoked",
        target_type="api_key", target_id=api_key.id, before={"name": api_key.name, "prefix": api_key.prefix},
    )
    await session.flush()


async def audit_log(
    session: AsyncSession, access: WorkspaceAccess, *, after, limit: int
) -> list[tuple[AuditEntry, str | None]]:
    require_at_least(access, "admin", "Reading the audit log")
    return await repo.list_audit_entries(session, access.workspace.id, after=after, limit=limit)


# Provider credentials


async def put_provider_credential(
    session: AsyncSession,
    keyring: Keyring,
    settings: Settings,
    access: WorkspaceAccess,
    *,
    provider: str,
    api_key: str,
    base_url: str | None,
    actor: Actor,
) -> ProviderCredential:
    """Stores (or replaces) the workspace's key for a provider, sealed with the workspace key."""
    if base_url is not None:
        base_url = await check_base_url(base_url, allowed_hosts(settings.provider_hosts))
    credential = await repo.get_provider_credential(session, access.workspace.id, provider, for_update=True)
    before = None
    if credential is None:
        credential = ProviderCredential(workspace_id=access.workspace.id, provider=provider)
        session.add(credential)
    else:
        before = {"key_last4": credential.key_last4, "base_url": credential.base_url}
        credential.updated_at = func.now()
    await keyring.seal_field(session, credential, "api_key", api_key)
    credential.key_last4 = api_key[-4:]
    credential.base_url = base_url
    credential.updated_by = access.principal.user.id
    await session.flush()
    await session.refresh(credential)
    await record_audit(
        session, workspace_id=access.workspace.id, actor=actor, action="provider.updated",
        target_type="provider", target_id=provider, before=before,
        after={"key_last4": credential.key_last4, "base_url": base_url},
    )
    return credential


async def list_provider_credentials(session: AsyncSession, access: WorkspaceAccess) -> list[ProviderCredential]:
    return await repo.list_provider_credentials(session, access.workspace.id)


async def delete_provider_credential(
    session: AsyncSession, access: WorkspaceAccess, provider: str, actor: Actor
) -> None:
    credential = await repo.get_provider_credential(session, access.workspace.id, provider, for_update=True)
    if credential is None:
        raise NotFound(f"No {provider} credentials are set for this workspace")
    await record_audit(
        session, workspace_id=access.workspace.id, actor=actor, action="provider.updated",
        target_type="provider", target_id=provider, before={"key_last4": credential.key_last4}, after=None,
    )
    await session.delete(credential)
    await session.flush()


@dataclass(frozen=True)
class ProviderAccess:
    """What a run may use to call a provider. `source` says whose key it is."""

    api_key: str
    base_url: str | None
    source: str  # "workspace" or "server"


async def provider_access(
    session: AsyncSession, keyring: Keyring, settings: Settings, workspace_id: uuid.UUID, provider: str
) -> ProviderAccess | None:
    """The workspace's own key (and base_url), else the server's key when the operator shares it.

    The server's key only ever goes to the provider's default endpoint, never to a workspace-chosen URL.
    """
    credential = await repo.get_provider_credential(session, workspace_id, provider)
    if credential is not None:
        api_key = await keyring.open_text(session, credential, "api_key")
        return ProviderAccess(api_key=api_key, base_url=credential.base_url, source="workspace")
    server_key = {"anthropic": settings.anthropic_api_key, "openai": settings.openai_api_key}.get(provider)
    if settings.share_server_keys and server_key:
        return ProviderAccess(api_key=server_key, base_url=None, source="server")
    return None


# Key management (the `playground keys` commands) and the removal of deleted workspaces


async def rotate_workspace_key(
    sessionmaker: async_sessionmaker[AsyncSession],
    keyring: Keyring,
    workspace_id: uuid.UUID,
    *,
    settle_seconds: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """New key version for new writes, then every old value re-sealed under it; returns (version, rows)."""
    async with sessionmaker() as session, session.begin():
        workspace = await repo.get_live_workspace(session, workspace_id)
        if workspace is None:
            raise WorkspaceNotFound(f"Workspace {workspace_id} not found")
        version = await keyring.rotate_workspace_key(session, workspace_id)
        await record_audit(
            session, workspace_id=workspace_id, actor=Actor(None), action="key.rotated",
            target_type="workspace_key", target_id=f"{workspace_id}:v{version}", after={"version": version},
        )
    # Again now that it is committed: a lookup racing the rotation may have cached the old answer.
    keyring.invalidate(workspace_id)
    rows = await keyring.reencrypt_workspace(sessionmaker, workspace_id, progress=progress)
    # A process that had the old version cached (its invalidation in flight) may still write under it for
    # at most the cache lifetime; a last pass after that catches those rows.
    await asyncio.sleep(keyring.cache_seconds if settle_seconds is None else settle_seconds)
    rows += await keyring.reencrypt_workspace(sessionmaker, workspace_id, progress=progress)
    return version, rows


async def rotate_master_key(
    sessionmaker: async_sessionmaker[AsyncSession], keyring: Keyring
) -> list[uuid.UUID]:
    """Re-wraps every live data key under the current master key and audits it per workspace."""
    from backend.identity.mfa import rewrap_totp_secrets  # identity builds on this module

    touched = await keyring.rewrap_all(sessionmaker)
    await rewrap_totp_secrets(sessionmaker, keyring.provider)  # user secrets are wrapped by the master key too
    async with sessionmaker() as session, session.begin():
        for workspace_id in touched:
            await record_audit(
                session, workspace_id=workspace_id, actor=Actor(None), action="key.rotated",
                target_type="master_key", target_id=keyring.provider.current_key_id(),
                after={"master_key_id": keyring.provider.current_key_id()},
            )
    return touched


async def purge_deleted_workspaces(
    sessionmaker: async_sessionmaker[AsyncSession], *, limit: int = 10, batch: int = 5000
) -> int:
    """Removes the rows of deleted workspaces (their keys are already destroyed); the audit log stays.

    Their runs (by far the most rows) go first, a batch per short transaction, so a workspace of a million runs
    never becomes one transaction holding a million row locks; the rest then goes in one cascade."""
    async with sessionmaker() as session:
        doomed = await repo.deleted_workspace_ids(session, limit)
    for workspace_id in doomed:
        while True:
            async with sessionmaker() as session, session.begin():
                removed = await repo.delete_runs_of(session, workspace_id, batch)
            if removed < batch:
                break
            await asyncio.sleep(0)
    async with sessionmaker() as session, session.begin():
        return await repo.delete_deleted_workspaces(session, limit)
