"""Authentication, CSRF and workspace access as FastAPI dependencies."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import DbSession
from backend.core.errors import Unauthenticated
from backend.core.settings import Settings
from backend.crypto.service import Keyring
from backend.identity import mfa, sso
from backend.observability import logs
from backend.ratelimit.limiter import Limiter
from backend.workspaces import service
from backend.workspaces.errors import CsrfFailed
from backend.workspaces.service import Actor, Principal, WorkspaceAccess

SESSION_COOKIE = "pp_session"
CSRF_COOKIE = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# auto_error=False: we answer 401 as problem+json ourselves; these objects only document the schemes.
_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer ppk_…`")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="Browser session cookie")


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_limiter(request: Request) -> Limiter:
    return request.app.state.limiter


def get_keyring(request: Request) -> Keyring:
    return request.app.state.keyring


AppSettings = Annotated[Settings, Depends(get_settings_dep)]
AppKeyring = Annotated[Keyring, Depends(get_keyring)]
AppLimiter = Annotated[Limiter, Depends(get_limiter)]


def client_address(request: Request) -> str | None:
    """The peer's IP address, or None when the server gives something else (a unix socket path, a test
    client's name): the columns that keep it are `inet`, and a non-address there must not fail the request."""
    host = request.client.host if request.client else None
    if not host:
        return None
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


async def resolve_principal(request: Request, session: AsyncSession, settings: Settings) -> Principal:
    """401 without valid credentials; 403 for a cookie-authenticated write without CSRF proof."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise Unauthenticated("Use 'Authorization: Bearer <api key>'")
        principal = await service.authenticate_api_key(session, credentials.strip())
        if principal is None:
            raise Unauthenticated("The API key is invalid or revoked")
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise Unauthenticated("Sign in, or send an API key as 'Authorization: Bearer <key>'")
    principal = await service.authenticate_session(session, settings, cookie)
    if principal is None:
        raise Unauthenticated("Your session has expired; sign in again")
    if request.method in UNSAFE_METHODS and not service.csrf_matches(
        principal, request.headers.get(CSRF_HEADER), request.cookies.get(CSRF_COOKIE)
    ):
        raise CsrfFailed(f"Send the {CSRF_HEADER} header with the value of the {CSRF_COOKIE} cookie")
    return principal


async def current_principal(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    _bearer_doc: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    _cookie_doc: Annotated[str | None, Depends(_cookie)],
) -> Principal:
    """Authenticates first, before anything else about the request is looked at."""
    # The two security dependencies only document the schemes in OpenAPI; resolve_principal reads the raw
    # request so the same check can run outside FastAPI's dependency system (see app.py).
    return await resolve_principal(request, session, settings)


async def authenticate_before_body(request: Request) -> None:
    """For a request whose body could not even be parsed: decide 401 first, as for any other request."""
    async with request.app.state.sessionmaker() as session:
        await resolve_principal(request, session, request.app.state.settings)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def current_actor(request: Request, principal: CurrentPrincipal) -> Actor:
    return Actor.of(principal, client_address(request))


CurrentActor = Annotated[Actor, Depends(current_actor)]


def require_role(role: str):
    """A dependency: the caller's access to the workspace in the path, at least `role`.

    Order matters and is the contract: 401 (no credentials) is decided first by current_principal,
    then 404 for a workspace the caller cannot see, then 403 for a role that is too low.
    """

    async def dependency(
        principal: CurrentPrincipal,
        session: DbSession,
        ws: Annotated[uuid.UUID, Path(description="Workspace id")],
    ) -> WorkspaceAccess:
        access = await service.workspace_access(session, principal, ws)
        logs.workspace_id.set(str(ws))
        await mfa.require_2fa_for(session, principal, access.workspace)
        sso.require_sso_for(principal, access.workspace)
        service.require_at_least(access, role, "This action")
        return access

    return dependency


WorkspaceViewer = Annotated[WorkspaceAccess, Depends(require_role("viewer"))]
WorkspaceEditor = Annotated[WorkspaceAccess, Depends(require_role("editor"))]
WorkspaceAdmin = Annotated[WorkspaceAccess, Depends(require_role("admin"))]
WorkspaceOwner = Annotated[WorkspaceAccess, Depends(require_role("owner"))]
