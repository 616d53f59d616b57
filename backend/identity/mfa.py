"""Two-factor authentication (TOTP with recovery codes), one-time password resets, instance settings."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from datetime import timedelta
from typing import Any

import pyotp
import segno
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.core.database import after_commit
from backend.core.errors import Conflict, Forbidden, Invalid, ProblemError, TooManyRequests
from backend.core.settings import Settings
from backend.crypto.master import KeyProvider
from backend.identity import mail
from backend.identity.models import InstanceSettings, PasswordReset, UserTotp
from backend.identity.service import (
    UserNotFound,
    WrongPassword,
    _revoke_all,
    require_instance_admin,
    require_session,
    set_workspace_requirement,
)
from backend.ratelimit.limiter import Limiter
from backend.usage.models import DEFAULTS, WorkspaceLimits
from backend.workspaces.models import User
from backend.workspaces.service import (
    Actor,
    Principal,
    WorkspaceAccess,
    hash_password,
    record_audit,
    token_hash,
    verify_password,
)

ISSUER = "Prompt Playground"
RECOVERY_CODES = 10
RESET_LIFETIME = timedelta(hours=24)


class TotpRequired(ProblemError):
    """401 at login: the password was right, and the account needs its second factor too."""

    status, type, title = 401, "totp-required", "Two-factor code required"


class TotpInvalid(ProblemError):
    status, type, title = 401, "totp-invalid", "Wrong two-factor code"


class TwoFactorRequired(ProblemError):
    status, type, title = 403, "two-factor-required", "This workspace requires two-factor authentication"


class ResetTokenInvalid(ProblemError):
    status, type, title = 400, "reset-token-invalid", "Reset token unknown, used or expired"


def _context(user_id: uuid.UUID) -> bytes:
    return f"user:{user_id}:totp".encode()


def _secret_of(provider: KeyProvider, row: UserTotp) -> str:
    raw = provider.unwrap(row.master_key_id, row.wrapped_secret, _context(row.user_id))
    return base64.b32encode(raw[:20]).decode()  # 160 bits, what every authenticator app expects


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").strip().lower().encode()).hexdigest()


async def setup_totp(session: AsyncSession, provider: KeyProvider, principal: Principal) -> dict[str, str]:
    """A new secret, not yet in force: shown once (as text and as an otpauth:// URI for a QR code)."""
    require_session(principal, "Setting up two-factor authentication")
    row = await session.get(UserTotp, principal.user.id, with_for_update=True)
    if row is not None and row.enabled_at is not None:
        raise Conflict("Two-factor authentication is already on; turn it off first to change the secret")
    key_id, wrapped = provider.wrap(secrets.token_bytes(32), _context(principal.user.id))
    if row is None:
        row = UserTotp(user_id=principal.user.id, master_key_id=key_id, wrapped_secret=wrapped)
        session.add(row)
    else:
        row.master_key_id, row.wrapped_secret, row.last_step = key_id, wrapped, None
    await session.flush()
    secret = _secret_of(provider, row)
    uri = pyotp.TOTP(secret).provisioning_uri(name=principal.user.email, issuer_name=ISSUER)
    qr = segno.make(uri, error="m").svg_data_uri(scale=5, border=2)  # drawn here: no script needed to show it
    return {"secret": secret, "otpauth_uri": uri, "qr_svg": qr}


def _accept(provider: KeyProvider, row: UserTotp, code: str) -> bool:
    """The code of the current 30-second step or one either side (clock drift), never one used before."""
    if not code.isdigit() or len(code) != 6:
        return False
    totp = pyotp.TOTP(_secret_of(provider, row))
    now = int(time.time())
    for drift in (0, -1, 1):
        step = now // 30 + drift
        if (row.last_step is None or step > row.last_step) and hmac.compare_digest(totp.at(step * 30), code):
            row.last_step = step
            return True
    return False


async def enable_totp(
    session: AsyncSession, provider: KeyProvider, principal: Principal, code: str, actor: Actor
) -> list[str]:
    """Turns 2FA on once a code from the authenticator is right; answers the recovery codes (shown once)."""
    require_session(principal, "Turning on two-factor authentication")
    row = await session.get(UserTotp, principal.user.id, with_for_update=True)
    if row is None:
        raise Conflict("Set up two-factor authentication first (POST /me/2fa/totp/setup)")
    if row.enabled_at is not None:
        raise Conflict("Two-factor authentication is already on")
    if not _accept(provider, row, code):
        raise TotpInvalid("That code is not right; check the authenticator app's clock and try the next one")
    codes = ["-".join(secrets.token_hex(3) for _ in range(2)) for _ in range(RECOVERY_CODES)]
    row.recovery_hashes = [_code_hash(c) for c in codes]
    row.enabled_at = func.now()
    await record_audit(
        session, workspace_id=None, actor=actor, action="2fa.enabled", target_type="user", target_id=row.user_id
    )
    await session.flush()
    return codes


async def disable_totp(session: AsyncSession, principal: Principal, password: str, actor: Actor) -> None:
    require_session(principal, "Turning off two-factor authentication")
    user = await session.get(User, principal.user.id)
    assert user is not None
    if not await verify_password(user.password_hash, password):
        raise WrongPassword("The password is wrong; two-factor authentication stays on")
    row = await session.get(UserTotp, principal.user.id, with_for_update=True)
    if row is None or row.enabled_at is None:
        raise Conflict("Two-factor authentication is not on")
    await session.delete(row)
    await record_audit(
        session, workspace_id=None, actor=actor, action="2fa.disabled", target_type="user", target_id=user.id
    )
    await session.flush()


async def totp_enabled(session: AsyncSession, user_id: uuid.UUID) -> bool:
    stmt = select(UserTotp.user_id).where(UserTotp.user_id == user_id, UserTotp.enabled_at.is_not(None))
    return (await session.execute(stmt)).first() is not None


async def check_second_factor(
    session: AsyncSession, provider: KeyProvider, user: User, totp_code: str | None, recovery_code: str | None
) -> None:
    """At login, after the password was right: nothing to do without 2FA; else a code or a recovery code."""
    row = await session.get(UserTotp, user.id, with_for_update=True)
    if row is None or row.enabled_at is None:
        return
    if recovery_code:
        wanted = _code_hash(recovery_code)
        if wanted in row.recovery_hashes:
            row.recovery_hashes = [h for h in row.recovery_hashes if h != wanted]  # each works once
            return
        raise TotpInvalid("That recovery code is not right, or was used already")
    if not totp_code:
        raise TotpRequired("This account has two-factor authentication: send totp_code (or a recovery_code)")
    if not _accept(provider, row, totp_code):
        raise TotpInvalid("That two-factor code is not right")


async def require_2fa_for(session: AsyncSession, principal: Principal, workspace: Any) -> None:
    if workspace.require_2fa and not await totp_enabled(session, principal.user.id):
        raise TwoFactorRequired(
            "This workspace requires two-factor authentication: turn it on for your account to reach it"
        )


async def rewrap_totp_secrets(sessionmaker: async_sessionmaker[AsyncSession], provider: KeyProvider) -> int:
    """After a master key rotation: every TOTP secret re-wrapped under the current master key."""
    current = provider.current_key_id()
    done = 0
    async with sessionmaker() as session, session.begin():
        rows = (await session.execute(select(UserTotp).where(UserTotp.master_key_id != current))).scalars().all()
        for row in rows:
            raw = provider.unwrap(row.master_key_id, row.wrapped_secret, _context(row.user_id))
            row.master_key_id, row.wrapped_secret = provider.wrap(raw, _context(row.user_id))
            done += 1
    return done


# Password reset by a one-time token


async def _new_reset(session: AsyncSession, user: User, created_by: uuid.UUID | None) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        PasswordReset(
            token_hash=token_hash(token), user_id=user.id, created_by=created_by, expires_at=func.now() + RESET_LIFETIME
        )
    )
    return token


async def create_reset(session: AsyncSession, principal: Principal, user_id: uuid.UUID, actor: Actor) -> dict[str, Any]:
    """An instance admin makes a one-time reset token for a user, to hand over; it works once, within 24
    hours."""
    require_instance_admin(principal)
    user = await session.get(User, user_id)
    if user is None or user.email.endswith("@deleted.invalid"):
        raise UserNotFound(f"User {user_id} not found")
    token = await _new_reset(session, user, principal.user.id)
    await record_audit(
        session, workspace_id=None, actor=actor, action="password.reset_created", target_type="user", target_id=user.id
    )
    await session.flush()
    return {"token": token, "expires_in_seconds": int(RESET_LIFETIME.total_seconds())}


RESET_EMAILS_PER_ACCOUNT = 3  # per hour: more would let anyone flood someone's inbox
RESET_REQUESTS_PER_ADDRESS = 20
RESET_REQUEST_WINDOW_SECONDS = 3600


async def request_reset_email(
    session: AsyncSession,
    settings: Settings,
    limiter: Limiter,
    email: str,
    base_url: str,
    client_address: str | None,
) -> str:
    """ "Forgot password": emails a one-time link when SMTP is configured and the account exists. Answers how
    resets reach people on this instance ("email", or "admin" without SMTP), the same whether or not the
    address has an account."""
    if not mail.smtp_configured(settings):
        return "admin"
    if client_address:
        key = f"reset:address:{client_address}"
        wait = await limiter.hit(key, RESET_REQUESTS_PER_ADDRESS, RESET_REQUEST_WINDOW_SECONDS)
        if wait is not None:
            raise TooManyRequests(
                "Too many password reset requests from this address; try again later", retry_after=wait
            )
    user = (await session.execute(select(User).where(User.email == email.lower()))).scalar_one_or_none()
    if user is None or user.disabled_at is not None or user.email.endswith("@deleted.invalid"):
        return "email"
    if await limiter.hit(f"reset:user:{user.id}", RESET_EMAILS_PER_ACCOUNT, RESET_REQUEST_WINDOW_SECONDS) is not None:
        return "email"  # quietly: saying so would tell that the account exists
    token = await _new_reset(session, user, None)
    await record_audit(
        session,
        workspace_id=None,
        actor=Actor(None, None, client_address),
        action="password.reset_emailed",
        target_type="user",
        target_id=user.id,
    )
    await session.flush()
    link = f"{(settings.public_url or base_url).rstrip('/')}/reset-password?token={token}"
    message = mail.reset_message(settings, user.email, user.name, link, int(RESET_LIFETIME.total_seconds() // 3600))

    async def send() -> None:  # once the token is committed, so the link works when it arrives
        mail.send_in_background(settings, message)

    after_commit(session, send)
    return "email"


async def use_reset(session: AsyncSession, token: str, new_password: str, client_address: str | None) -> None:
    """Sets the new password, uses the token up and signs the account out everywhere."""
    password_hash = await hash_password(new_password)
    result = await session.execute(
        update(PasswordReset)
        .where(
            PasswordReset.token_hash == token_hash(token),
            PasswordReset.used_at.is_(None),
            PasswordReset.expires_at > func.now(),
        )
        .values(used_at=func.now())
        .returning(PasswordReset.user_id)
    )
    user_id = result.scalar_one_or_none()
    if user_id is None:
        raise ResetTokenInvalid("This reset token is unknown, was used already or has expired")
    user = await session.get(User, user_id, with_for_update=True)
    assert user is not None
    user.password_hash = password_hash
    await _revoke_all(session, user.id)
    await record_audit(
        session,
        workspace_id=None,
        actor=Actor(user.id, None, client_address),
        action="password.reset",
        target_type="user",
        target_id=user.id,
    )


# Instance settings


async def instance_settings(session: AsyncSession, settings: Settings) -> dict[str, Any]:
    row = await session.get(InstanceSettings, 1)
    if row is None:
        return {"signup": settings.signup, "allowed_domains": [], "default_limits": {}}
    return {"signup": row.signup, "allowed_domains": row.allowed_domains, "default_limits": row.default_limits}


async def update_instance_settings(
    session: AsyncSession, settings: Settings, principal: Principal, changes: dict[str, Any], actor: Actor
) -> dict[str, Any]:
    require_instance_admin(principal)
    before = await instance_settings(session, settings)
    after = {**before, **changes}
    if "allowed_domains" in changes:
        after["allowed_domains"] = sorted({d.lower().lstrip("@") for d in changes["allowed_domains"]})
        for index, domain in enumerate(after["allowed_domains"]):
            if "." not in domain or " " in domain:
                raise Invalid(["body", "allowed_domains", index], "not a domain name")
    row = await session.get(InstanceSettings, 1, with_for_update=True)
    if row is None:
        row = InstanceSettings(id=1, **after)
        session.add(row)
    else:
        row.signup, row.allowed_domains, row.default_limits = (
            after["signup"],
            after["allowed_domains"],
            after["default_limits"],
        )
        row.updated_at = func.now()
    if after != before:
        await record_audit(
            session,
            workspace_id=None,
            actor=actor,
            action="instance.updated",
            target_type="instance",
            target_id="settings",
            before=before,
            after=after,
        )
    await session.flush()
    return after


def forbid_api_keys(principal: Principal, what: str) -> None:
    if principal.api_key is not None:
        raise Forbidden(f"{what} is not for API keys")


TOTP_FAILURES = 5  # wrong second factors per account and window, after which login answers 429
TOTP_WINDOW_SECONDS = 300


async def second_factor_at_login(
    session: AsyncSession,
    provider: KeyProvider,
    limiter: Limiter,
    user: User,
    totp_code: str | None,
    recovery_code: str | None,
) -> None:
    """The password was right: a six-digit code has a million values, so wrong ones are rate-limited too."""
    if not await totp_enabled(session, user.id):
        return
    key = f"login:totp:{user.id}"
    if totp_code or recovery_code:
        wait = await limiter.hit(key, TOTP_FAILURES, TOTP_WINDOW_SECONDS)
        if wait is not None:
            raise TooManyRequests("Too many wrong two-factor codes for this account; try again later", retry_after=wait)
    await check_second_factor(session, provider, user, totp_code, recovery_code)
    await limiter.reset(key)


async def set_require_2fa(session: AsyncSession, access: WorkspaceAccess, value: bool, actor: Actor) -> None:
    """An admin who turns the requirement on must have 2FA on already, or they would lock themselves out."""
    workspace = access.workspace
    if value == workspace.require_2fa:
        return
    if value and not await totp_enabled(session, access.principal.user.id):
        raise Conflict("Turn on two-factor authentication for your own account before requiring it of members")
    await set_workspace_requirement(session, access, "require_2fa", value, actor)


async def apply_default_limits(session: AsyncSession, settings: Settings, workspace_id: uuid.UUID) -> None:
    """A new workspace starts with the instance's default limits, where an instance admin set some."""
    defaults = (await instance_settings(session, settings))["default_limits"]
    if defaults:
        session.add(WorkspaceLimits(workspace_id=workspace_id, **{**DEFAULTS, **defaults}))
        await session.flush()
