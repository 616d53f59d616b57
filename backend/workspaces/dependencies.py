"""Authentication, CSRF and workspace access as FastAPI dependencies."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from backend.core.database import DbSession
from backend.core.errors import Unauthenticated
from backend.core.settings import Settings
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


AppSettings = Annotated[Settings, Depends(get_settings_dep)]
AppLimiter = Annotated[Limiter, Depends(get_limiter)]


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


async def current_principal(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> Principal:
    """401 without valid credentials, before anything else; 403 for a cookie write without CSRF proof."""
    if bearer is not None:
        principal = await service.authenticate_api_key(session, bearer.credentials)
        if principal is None:
            raise Unauthenticated("The API key is invalid or revoked")
        return principal
    if request.headers.get("authorization"):
        raise Unauthenticated("Use 'Authorization: Bearer <api key>'")
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
        service.require_at_least(access, role, "This action")
        return access

    return dependency


WorkspaceViewer = Annotated[WorkspaceAccess, Depends(require_role("viewer"))]
WorkspaceEditor = Annotated[WorkspaceAccess, Depends(require_role("editor"))]
WorkspaceAdmin = Annotated[WorkspaceAccess, Depends(require_role("admin"))]
WorkspaceOwner = Annotated[WorkspaceAccess, Depends(require_role("owner"))]
