"""Routes of accounts, workspaces, members, invitations, API keys and the audit log."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request, Response, status

from backend.core.database import DbSession
from backend.core.errors import Forbidden
from backend.core.pagination import Page, decode_cursor, encode_cursor
from backend.identity import mfa, sso
from backend.workspaces import schemas, service
from backend.workspaces.dependencies import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    AppKeyring,
    AppLimiter,
    AppSettings,
    CurrentActor,
    CurrentPrincipal,
    WorkspaceAdmin,
    WorkspaceEditor,
    WorkspaceOwner,
    WorkspaceViewer,
    client_address,
)
from backend.workspaces.models import ApiKey, Invitation, Membership, User

auth_router = APIRouter(prefix="/auth", tags=["auth"])
me_router = APIRouter(tags=["auth"])
workspaces_router = APIRouter(prefix="/workspaces", tags=["workspaces"])


def _check_origin(request: Request, settings) -> None:
    """Login CSRF defence: a browser that names its Origin must be on this site."""
    origin = request.headers.get("origin")
    if not origin:
        return
    allowed = {f"{request.url.scheme}://{request.url.netloc}"}
    if settings.public_url:
        parts = urlsplit(settings.public_url)
        allowed.add(f"{parts.scheme}://{parts.netloc}")
    if origin not in allowed:
        raise Forbidden(f"Origin {origin} is not allowed to sign in here")


def set_session_cookies(request: Request, response: Response, settings, token: str, csrf: str) -> None:
    secure = settings.secure_cookies or request.url.scheme == "https"
    max_age = settings.session_absolute_days * 86400
    response.set_cookie(
        SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="lax", secure=secure, path="/"
    )
    # Readable by the SPA's JavaScript, which echoes it in X-CSRF-Token.
    response.set_cookie(
        CSRF_COOKIE, csrf, max_age=max_age, httponly=False, samesite="lax", secure=secure, path="/"
    )


def _user_out(user: User) -> schemas.UserOut:
    return schemas.UserOut(id=user.id, email=user.email, name=user.name, created_at=user.created_at)


@auth_router.post("/signup", status_code=status.HTTP_201_CREATED, response_model=schemas.UserOut)
async def signup(
    body: schemas.SignupIn, request: Request, response: Response, session: DbSession, settings: AppSettings
) -> schemas.UserOut:
    """Create an account (and join a workspace when an invite token is given); signs in."""
    _check_origin(request, settings)
    instance = await mfa.instance_settings(session, settings)
    user = await service.signup(
        session,
        settings.model_copy(update={"signup": instance["signup"]}),
        allowed_domains=instance["allowed_domains"],
        email=body.email,
        password=body.password,
        name=body.name,
        invite_token=body.invite_token,
        client_address=client_address(request),
    )
    token, csrf = await service.start_session(
        session, settings, user, user_agent=request.headers.get("user-agent"), client_address=client_address(request)
    )
    set_session_cookies(request, response, settings, token, csrf)
    return _user_out(user)


@auth_router.post("/login", response_model=schemas.UserOut)
async def login(
    body: schemas.LoginIn,
    request: Request,
    response: Response,
    session: DbSession,
    settings: AppSettings,
    limiter: AppLimiter,
) -> schemas.UserOut:
    """Sign in with email and password; sets the session and CSRF cookies."""
    _check_origin(request, settings)
    user = await service.login(
        session, settings, limiter, email=body.email, password=body.password, client_address=client_address(request)
    )
    await mfa.second_factor_at_login(
        session, request.app.state.keyring.provider, limiter, user, body.totp_code, body.recovery_code
    )
    token, csrf = await service.start_session(
        session, settings, user, user_agent=request.headers.get("user-agent"), client_address=client_address(request)
    )
    set_session_cookies(request, response, settings, token, csrf)
    return _user_out(user)


@auth_router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(principal: CurrentPrincipal, session: DbSession) -> Response:
    """End this browser session."""
    await service.end_session(session, principal)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@me_router.get("/me", response_model=schemas.MeOut)
async def me(principal: CurrentPrincipal, session: DbSession) -> schemas.MeOut:
    """The signed-in user and the workspaces they belong to (one, for an API key)."""
    user = principal.user
    workspaces = await service.my_workspaces(session, principal)
    return schemas.MeOut(
        id=user.id,
        email=user.email,
        name=user.name,
        created_at=user.created_at,
        is_instance_admin=user.is_instance_admin,
        workspaces=[schemas.MyWorkspace(id=w.id, name=w.name, slug=w.slug, role=role) for w, role in workspaces],
    )


@me_router.delete("/me", status_code=status.HTTP_202_ACCEPTED, response_model=schemas.AccountDeleted)
async def delete_me(
    principal: CurrentPrincipal, actor: CurrentActor, session: DbSession, keyring: AppKeyring
) -> Response:
    """Delete your account: personal data removed, authorship anonymised; 409 while you are the last
    owner of a workspace with other members."""
    user_id = principal.user.id
    await service.delete_account(session, keyring, principal, actor)
    response = Response(
        schemas.AccountDeleted(id=user_id, status="deleted").model_dump_json(),
        status_code=status.HTTP_202_ACCEPTED,
        media_type="application/json",
    )
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


# Workspaces


def _workspace_out(workspace, role: str) -> schemas.WorkspaceOut:
    return schemas.WorkspaceOut(
        id=workspace.id,
        name=workspace.name,
        slug=workspace.slug,
        role=role,
        created_at=workspace.created_at,
        require_2fa=workspace.require_2fa,
        require_sso=workspace.require_sso,
    )


@workspaces_router.post("", status_code=status.HTTP_201_CREATED, response_model=schemas.WorkspaceOut)
async def create_workspace(
    body: schemas.WorkspaceIn,
    request: Request,
    principal: CurrentPrincipal,
    actor: CurrentActor,
    session: DbSession,
    keyring: AppKeyring,
) -> schemas.WorkspaceOut:
    """Create a workspace with its own data key (and the instance's default limits); the caller owns it."""
    workspace = await service.create_workspace(session, keyring, principal, body.name, actor)
    await mfa.apply_default_limits(session, request.app.state.settings, workspace.id)
    return _workspace_out(workspace, "owner")


@workspaces_router.get("", response_model=list[schemas.WorkspaceOut])
async def list_workspaces(principal: CurrentPrincipal, session: DbSession) -> list[schemas.WorkspaceOut]:
    """The workspaces the caller belongs to."""
    return [_workspace_out(w, role) for w, role in await service.my_workspaces(session, principal)]


@workspaces_router.get("/{ws}", response_model=schemas.WorkspaceOut)
async def get_workspace(access: WorkspaceViewer) -> schemas.WorkspaceOut:
    """One workspace, with the caller's role in it."""
    return _workspace_out(access.workspace, access.role)


@workspaces_router.patch("/{ws}", response_model=schemas.WorkspaceOut)
async def update_workspace(
    body: schemas.WorkspacePatch, access: WorkspaceAdmin, actor: CurrentActor, session: DbSession
) -> schemas.WorkspaceOut:
    """Rename a workspace, or require two-factor authentication or single sign-on of its members (admin+; the
    sign-in policy only signed in, not with an API key)."""
    if body.require_2fa is not None or body.require_sso is not None:
        service.require_signed_in(access, "Changing the sign-in policy")
    if body.name is not None:
        await service.rename_workspace(session, access, body.name)
    if body.require_2fa is not None:
        await mfa.set_require_2fa(session, access, body.require_2fa, actor)
    if body.require_sso is not None:
        await sso.set_require_sso(session, access, body.require_sso, actor)
    return _workspace_out(access.workspace, access.role)


@workspaces_router.delete(
    "/{ws}", status_code=status.HTTP_202_ACCEPTED, response_model=schemas.WorkspaceDeleted
)
async def delete_workspace(
    access: WorkspaceOwner, actor: CurrentActor, session: DbSession, keyring: AppKeyring
) -> schemas.WorkspaceDeleted:
    """Delete a workspace (owner only, signed in: not with an API key): its key is destroyed at once; its rows go
    in the background."""
    await service.delete_workspace(session, keyring, access, actor)
    return schemas.WorkspaceDeleted(id=access.workspace.id, status="deleting")


# Members and invitations


def _member_out(membership: Membership, user: User) -> schemas.MemberOut:
    return schemas.MemberOut(
        user_id=user.id, email=user.email, name=user.name, role=membership.role, created_at=membership.created_at
    )


def _invitation_out(invitation: Invitation, token: str | None = None, url: str | None = None) -> schemas.InvitationOut:
    return schemas.InvitationOut(
        id=invitation.id,
        email=invitation.email,
        role=invitation.role,
        invite_token=token,
        invite_url=url,
        created_at=invitation.created_at,
        expires_at=invitation.expires_at,
    )


@workspaces_router.get("/{ws}/members", response_model=list[schemas.MemberOut])
async def list_members(access: WorkspaceViewer, session: DbSession) -> list[schemas.MemberOut]:
    """Members of the workspace and their roles."""
    return [_member_out(m, u) for m, u in await service.list_members(session, access)]


@workspaces_router.post("/{ws}/members", status_code=status.HTTP_201_CREATED, response_model=schemas.MemberAdded)
async def add_member(
    body: schemas.MemberIn,
    request: Request,
    access: WorkspaceAdmin,
    actor: CurrentActor,
    session: DbSession,
    settings: AppSettings,
) -> schemas.MemberAdded:
    """Add a registered user at once, or invite an unknown address (admin+; owner to grant owner; signed in, not
    with an API key)."""
    base_url = str(request.base_url)
    membership, user, invitation, token = await service.add_member(
        session, settings, access, email=body.email, role=body.role, actor=actor, base_url=base_url
    )
    if membership is not None and user is not None:
        return schemas.MemberAdded(status="added", member=_member_out(membership, user))
    assert invitation is not None and token is not None
    url = service.invite_url(settings, base_url, token)
    return schemas.MemberAdded(
        status="invited",
        invitation=_invitation_out(invitation, token, url),
        invite_token=token,
        invite_url=url,
        expires_at=invitation.expires_at,
    )


@workspaces_router.patch("/{ws}/members/{user_id}", response_model=schemas.MemberOut)
async def change_member_role(
    user_id: uuid.UUID, body: schemas.MemberPatch, access: WorkspaceAdmin, actor: CurrentActor, session: DbSession
) -> schemas.MemberOut:
    """Change a member's role (admin+; owner to grant or take away owner; signed in, not with an API key); the
    last owner stays."""
    membership, user = await service.change_role(session, access, user_id, body.role, actor)
    return _member_out(membership, user)


@workspaces_router.delete("/{ws}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(
    user_id: uuid.UUID, access: WorkspaceViewer, actor: CurrentActor, session: DbSession
) -> Response:
    """Remove a member (admin+), or leave the workspace yourself; the last owner stays."""
    await service.remove_member(session, access, user_id, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@workspaces_router.get("/{ws}/invitations", response_model=list[schemas.InvitationOut])
async def list_invitations(access: WorkspaceAdmin, session: DbSession) -> list[schemas.InvitationOut]:
    """Open invitations (admin+); tokens are never shown again."""
    return [_invitation_out(i) for i in await service.list_invitations(session, access)]


@workspaces_router.delete("/{ws}/invitations/{invitation_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_invitation(
    invitation_id: uuid.UUID, access: WorkspaceAdmin, actor: CurrentActor, session: DbSession
) -> Response:
    """Withdraw an open invitation (admin+)."""
    await service.revoke_invitation(session, access, invitation_id, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# API keys


def _api_key_out(api_key: ApiKey) -> schemas.ApiKeyOut:
    return schemas.ApiKeyOut(
        id=api_key.id,
        name=api_key.name,
        prefix=api_key.prefix,
        created_by=api_key.created_by,
        created_at=api_key.created_at,
        last_used_at=api_key.last_used_at,
        revoked_at=api_key.revoked_at,
    )


@workspaces_router.post("/{ws}/api-keys", status_code=status.HTTP_201_CREATED, response_model=schemas.ApiKeyCreated)
async def create_api_key(
    body: schemas.ApiKeyIn, access: WorkspaceEditor, actor: CurrentActor, session: DbSession
) -> schemas.ApiKeyCreated:
    """Create an API key acting as you in this workspace (editor+, signed in: not with an API key). The key is
    shown once."""
    api_key, key = await service.create_api_key(session, access, body.name, actor)
    return schemas.ApiKeyCreated(**_api_key_out(api_key).model_dump(), key=key)


@workspaces_router.get("/{ws}/api-keys", response_model=list[schemas.ApiKeyOut])
async def list_api_keys(access: WorkspaceViewer, session: DbSession) -> list[schemas.ApiKeyOut]:
    """API keys without their secrets: all of them for admins, your own otherwise."""
    return [_api_key_out(k) for k in await service.list_api_keys(session, access)]


@workspaces_router.delete("/{ws}/api-keys/{api_key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_key(
    api_key_id: uuid.UUID, access: WorkspaceViewer, actor: CurrentActor, session: DbSession
) -> Response:
    """Revoke an API key (your own, or any as admin+); it answers 401 from then on."""
    await service.revoke_api_key(session, access, api_key_id, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# Audit log


@workspaces_router.get("/{ws}/audit-log", response_model=Page[schemas.AuditEntryOut])
async def audit_log(
    access: WorkspaceAdmin,
    session: DbSession,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[schemas.AuditEntryOut]:
    """Who changed what in this workspace, newest first (admin+)."""
    after = decode_cursor(cursor) if cursor else None
    rows = await service.audit_log(session, access, after=after, limit=limit + 1)
    items = [
        schemas.AuditEntryOut(
            id=e.id,
            actor=schemas.AuditActor(user_id=e.actor_user_id, email=email, api_key_id=e.actor_api_key_id),
            action=e.action,
            target=schemas.AuditTarget(type=e.target_type, id=e.target_id),
            before=e.before,
            after=e.after,
            client_address=str(e.client_address) if e.client_address else None,
            created_at=e.created_at,
        )
        for e, email in rows[:limit]
    ]
    next_cursor = encode_cursor(rows[limit - 1][0].created_at, rows[limit - 1][0].id) if len(rows) > limit else None
    return Page[schemas.AuditEntryOut](items=items, next_cursor=next_cursor)


# Provider credentials


def _provider_out(credential) -> schemas.ProviderOut:
    return schemas.ProviderOut(
        provider=credential.provider,
        key_last4=credential.key_last4,
        base_url=credential.base_url,
        updated_by=credential.updated_by,
        updated_at=credential.updated_at,
    )


@workspaces_router.put("/{ws}/providers/{provider}", response_model=schemas.ProviderOut)
async def put_provider(
    provider: schemas.Provider,
    body: schemas.ProviderIn,
    access: WorkspaceAdmin,
    actor: CurrentActor,
    session: DbSession,
    keyring: AppKeyring,
    settings: AppSettings,
) -> schemas.ProviderOut:
    """Set the workspace's own key (and optional base_url) for a provider (admin+); stored encrypted."""
    credential = await service.put_provider_credential(
        session, keyring, settings, access, provider=provider, api_key=body.api_key, base_url=body.base_url, actor=actor
    )
    return _provider_out(credential)


@workspaces_router.get("/{ws}/providers", response_model=list[schemas.ProviderOut])
async def list_providers(access: WorkspaceViewer, session: DbSession) -> list[schemas.ProviderOut]:
    """The providers this workspace has keys for; only the last 4 characters of each key."""
    return [_provider_out(c) for c in await service.list_provider_credentials(session, access)]


@workspaces_router.delete("/{ws}/providers/{provider}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_provider(
    provider: schemas.Provider, access: WorkspaceAdmin, actor: CurrentActor, session: DbSession
) -> Response:
    """Forget the workspace's key for a provider (admin+)."""
    await service.delete_provider_credential(session, access, provider, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
