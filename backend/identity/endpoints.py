"""Routes of identity: my sessions and password; instance administration of accounts."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import RedirectResponse

from backend.core.database import DbSession
from backend.core.pagination import Page, decode_cursor, encode_cursor
from backend.identity import mfa, schemas, service, sso
from backend.workspaces import service as accounts
from backend.workspaces.dependencies import (
    AppKeyring,
    AppLimiter,
    AppSettings,
    CurrentActor,
    CurrentPrincipal,
    client_address,
)
from backend.workspaces.endpoints import set_session_cookies

me_router = APIRouter(prefix="/me", tags=["identity"])
admin_router = APIRouter(prefix="/admin", tags=["instance admin"])
reset_router = APIRouter(prefix="/auth", tags=["identity"])


@me_router.patch("", response_model=schemas.ProfileOut)
async def update_profile(
    body: schemas.ProfilePatch, principal: CurrentPrincipal, actor: CurrentActor, session: DbSession
) -> schemas.ProfileOut:
    """Change my name (what teammates see beside my comments and runs)."""
    user = await service.update_profile(session, principal, body.name, actor)
    return schemas.ProfileOut(id=user.id, email=user.email, name=user.name, created_at=user.created_at)


@me_router.get("/sessions", response_model=list[schemas.SessionOut])
async def my_sessions(
    principal: CurrentPrincipal, session: DbSession, settings: AppSettings
) -> list[schemas.SessionOut]:
    """My signed-in browser sessions, most recently used first; `current` marks this one."""
    return [schemas.SessionOut.model_validate(s) for s in await service.my_sessions(session, settings, principal)]


@me_router.delete("/sessions/{session_id:uuid}", status_code=status.HTTP_204_NO_CONTENT)
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


@me_router.get("/2fa", response_model=schemas.TwoFactorOut)
async def two_factor(principal: CurrentPrincipal, session: DbSession) -> schemas.TwoFactorOut:
    """Whether two-factor authentication is on for my account (a signed-in session; not for API keys)."""
    service.require_session(principal, "Reading the two-factor settings")
    return schemas.TwoFactorOut(totp=await mfa.totp_enabled(session, principal.user.id))


@me_router.post("/2fa/totp/setup", response_model=schemas.TotpSetupOut)
async def setup_totp(principal: CurrentPrincipal, session: DbSession, keyring: AppKeyring) -> schemas.TotpSetupOut:
    """A new TOTP secret for an authenticator app (shown once); not in force until a code confirms it."""
    return schemas.TotpSetupOut(**await mfa.setup_totp(session, keyring.provider, principal))


@me_router.post("/2fa/totp/enable", response_model=schemas.TotpEnabledOut)
async def enable_totp(
    body: schemas.TotpCode, principal: CurrentPrincipal, actor: CurrentActor, session: DbSession, keyring: AppKeyring
) -> schemas.TotpEnabledOut:
    """Confirm with a code from the app: two-factor authentication is on; answers the recovery codes."""
    codes = await mfa.enable_totp(session, keyring.provider, principal, body.code, actor)
    return schemas.TotpEnabledOut(recovery_codes=codes)


@me_router.post("/2fa/totp/disable", status_code=status.HTTP_204_NO_CONTENT)
async def disable_totp(
    body: schemas.PasswordConfirm, principal: CurrentPrincipal, actor: CurrentActor, session: DbSession
) -> Response:
    """Turn two-factor authentication off (the password is required)."""
    await mfa.disable_totp(session, principal, body.password, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@admin_router.post(
    "/users/{user_id}/password-reset", status_code=status.HTTP_201_CREATED, response_model=schemas.ResetCreatedOut
)
async def create_password_reset(
    user_id: uuid.UUID, principal: CurrentPrincipal, actor: CurrentActor, session: DbSession
) -> schemas.ResetCreatedOut:
    """A one-time password reset token for a user, to hand over (no email is sent without SMTP)."""
    return schemas.ResetCreatedOut(**await mfa.create_reset(session, principal, user_id, actor))


@reset_router.post("/password-reset", status_code=status.HTTP_204_NO_CONTENT)
async def use_password_reset(body: schemas.ResetIn, request: Request, session: DbSession) -> Response:
    """Set a new password with a one-time token; every session of the account is signed out."""
    await mfa.use_reset(session, body.token, body.new_password, client_address(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@reset_router.post("/forgot-password", status_code=status.HTTP_202_ACCEPTED, response_model=schemas.ForgotPasswordOut)
async def forgot_password(
    body: schemas.ForgotPasswordIn, request: Request, session: DbSession, settings: AppSettings, limiter: AppLimiter
) -> schemas.ForgotPasswordOut:
    """Forgot my password: with SMTP configured, a one-time link to /reset-password is emailed if the address
    has an account. 202 whether it has one or not (429 only for too many requests from one address)."""
    delivery = await mfa.request_reset_email(
        session, settings, limiter, body.email, str(request.base_url), client_address(request)
    )
    return schemas.ForgotPasswordOut(delivery=delivery)  # type: ignore[arg-type]


@admin_router.get("/settings", response_model=schemas.InstanceSettingsOut)
async def get_instance_settings(
    principal: CurrentPrincipal, session: DbSession, settings: AppSettings
) -> schemas.InstanceSettingsOut:
    """Signup mode, allowed email domains and the limits new workspaces start with (instance admins)."""
    service.require_instance_admin(principal)
    return schemas.InstanceSettingsOut(**await mfa.instance_settings(session, settings))


@admin_router.put("/settings", response_model=schemas.InstanceSettingsOut)
async def put_instance_settings(
    body: schemas.InstanceSettingsIn,
    principal: CurrentPrincipal,
    actor: CurrentActor,
    session: DbSession,
    settings: AppSettings,
) -> schemas.InstanceSettingsOut:
    """Change any of them (instance admins); audited as instance.updated."""
    changes = body.model_dump(exclude_none=True)
    if "default_limits" in changes:
        changes["default_limits"] = {k: v for k, v in changes["default_limits"].items() if v is not None}
    return schemas.InstanceSettingsOut(
        **await mfa.update_instance_settings(session, settings, principal, changes, actor)
    )


def _callback_url(request: Request, settings) -> str:
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    return f"{base}/api/v1/auth/sso/callback"


@reset_router.get("/sso", response_model=schemas.SsoInfo)
async def sso_info(settings: AppSettings) -> schemas.SsoInfo:
    """Whether single sign-on is available (for the login page) and what its button says."""
    config = sso.oidc_config(settings)
    return schemas.SsoInfo(enabled=config is not None, name=config.name if config else None)


@reset_router.get("/sso/start", status_code=status.HTTP_302_FOUND, response_class=RedirectResponse)
async def sso_start(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    next_path: Annotated[str | None, Query(alias="next", max_length=2000)] = None,
) -> RedirectResponse:
    """Off to the identity provider (authorization code flow with PKCE); back at /auth/sso/callback."""
    url = await sso.start(session, settings, _callback_url(request, settings), next_path)
    return RedirectResponse(url, status_code=status.HTTP_302_FOUND)


@reset_router.get("/sso/callback", status_code=status.HTTP_302_FOUND, response_class=RedirectResponse)
async def sso_callback(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    code: Annotated[str, Query(max_length=2000)],
    state: Annotated[str, Query(max_length=200)],
) -> RedirectResponse:
    """Back from the identity provider: signed in (session and CSRF cookies) and sent where the sign-in
    started; a failure goes back to the login page with the reason's type in `sso_error`."""
    instance = await mfa.instance_settings(session, settings)
    address = client_address(request)
    try:
        user, next_path = await sso.finish(
            session,
            settings,
            _callback_url(request, settings),
            code,
            state,
            signup_open=instance["signup"] == "open",
            client_address=address,
        )
    except sso.SsoFailed as failure:
        await session.commit()  # the used-up sign-in stays used up
        return RedirectResponse(f"/login?sso_error={failure.type}", status_code=status.HTTP_302_FOUND)
    token, csrf = await accounts.start_session(
        session, settings, user, user_agent=request.headers.get("user-agent"), client_address=address, method="sso"
    )
    response = RedirectResponse(next_path, status_code=status.HTTP_302_FOUND)
    set_session_cookies(request, response, settings, token, csrf)
    return response
