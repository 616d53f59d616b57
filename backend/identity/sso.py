"""Single sign-on with OpenID Connect (authorization code flow with PKCE), configured by the environment.

The identity provider's ID token is checked in full (signature against its published keys, issuer,
audience, expiry, nonce); an account is found by the identity (issuer + subject), else linked by a verified
email address, else created when signup allows it.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.errors import Conflict, ProblemError
from backend.core.settings import OidcRoleGrant, Settings
from backend.identity.models import SsoLogin, UserIdentity
from backend.identity.service import set_workspace_requirement
from backend.workspaces.models import Membership, User, Workspace
from backend.workspaces.service import (
    ROLE_RANK,
    Actor,
    Principal,
    WorkspaceAccess,
    hash_password,
    record_audit,
    token_hash,
)

logger = logging.getLogger(__name__)

LOGIN_LIFETIME = timedelta(minutes=10)
_METADATA_SECONDS = 300.0
_cache: dict[str, tuple[float, dict[str, Any], KeySet | None]] = {}


class SsoNotConfigured(ProblemError):
    status, type, title = 404, "sso-not-configured", "Single sign-on is not configured"


class SsoFailed(ProblemError):
    status, type, title = 401, "sso-failed", "Single sign-on failed"


class SsoRequired(ProblemError):
    status, type, title = 403, "sso-required", "This workspace requires single sign-on"


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str | None
    allowed_domains: frozenset[str]
    name: str


def oidc_config(settings: Settings) -> OidcConfig | None:
    if not settings.oidc_issuer or not settings.oidc_client_id:
        return None
    domains = frozenset(d.strip().lower().lstrip("@") for d in settings.oidc_allowed_domains.split(",") if d.strip())
    return OidcConfig(
        settings.oidc_issuer.rstrip("/"),
        settings.oidc_client_id,
        settings.oidc_client_secret,
        domains,
        settings.oidc_name,
    )


def require(settings: Settings) -> OidcConfig:
    config = oidc_config(settings)
    if config is None:
        raise SsoNotConfigured("Single sign-on is not configured on this instance")
    return config


async def _metadata(config: OidcConfig, *, refresh_keys: bool = False) -> tuple[dict[str, Any], KeySet]:
    """The provider's discovery document and signing keys, cached for a few minutes (keys refetched when a
    token names a key we do not have: the provider rotated them)."""
    cached = _cache.get(config.issuer)
    if cached and cached[0] > time.monotonic() and cached[2] is not None and not refresh_keys:
        return cached[1], cached[2]
    async with httpx.AsyncClient(timeout=10.0, follow_redirects=False) as http:
        if cached and cached[0] > time.monotonic():
            document = cached[1]
        else:
            response = await http.get(f"{config.issuer}/.well-known/openid-configuration")
            response.raise_for_status()
            document = response.json()
            if document.get("issuer", "").rstrip("/") != config.issuer:
                raise SsoFailed("The identity provider's discovery document names another issuer")
        keys = await http.get(document["jwks_uri"])
        keys.raise_for_status()
        key_set = KeySet.import_key_set(keys.json())
    _cache[config.issuer] = (time.monotonic() + _METADATA_SECONDS, document, key_set)
    return document, key_set


def _safe_next(next_path: str | None) -> str:
    """Only a path on this site: an open redirect would hand the session to whoever crafted the link."""
    if not next_path or not next_path.startswith("/") or next_path.startswith("//") or "\\" in next_path:
        return "/"
    return next_path[:2000]


async def start(session: AsyncSession, settings: Settings, redirect_uri: str, next_path: str | None) -> str:
    """Records a sign-in in progress and answers the provider's authorization URL to send the browser to."""
    config = require(settings)
    document, _ = await _metadata(config)
    state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    await session.execute(delete(SsoLogin).where(SsoLogin.expires_at < func.now()))
    session.add(
        SsoLogin(
            state_hash=token_hash(state),
            nonce=nonce,
            code_verifier=verifier,
            next_path=_safe_next(next_path),
            expires_at=func.now() + LOGIN_LIFETIME,
        )
    )
    query = {
        "response_type": "code",
        "client_id": config.client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid email profile",
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return f"{document['authorization_endpoint']}?{urlencode(query)}"


async def finish(
    session: AsyncSession,
    settings: Settings,
    redirect_uri: str,
    code: str,
    state: str,
    *,
    signup_open: bool,
    client_address: str | None,
) -> tuple[User, str]:
    """The callback: checks everything the provider sent and answers the account to sign in, and where to."""
    config = require(settings)
    result = await session.execute(
        delete(SsoLogin)
        .where(SsoLogin.state_hash == token_hash(state), SsoLogin.expires_at > func.now())
        .returning(SsoLogin.nonce, SsoLogin.code_verifier, SsoLogin.next_path)
    )
    pending = result.first()
    if pending is None:
        raise SsoFailed("This sign-in is unknown or has expired; start again")
    nonce, verifier, next_path = pending
    claims = await _exchange(config, redirect_uri, code, verifier, nonce)
    email = str(claims.get("email") or "").lower()
    if not email or claims.get("email_verified") is not True:
        raise SsoFailed("The identity provider did not vouch for an email address (email_verified)")
    if config.allowed_domains and email.rpartition("@")[2] not in config.allowed_domains:
        raise SsoFailed("This email domain may not sign in here")
    user = await _account_for(session, config, str(claims["sub"]), email, claims, signup_open, client_address)
    if user.disabled_at is not None:
        raise SsoFailed("This account is disabled")
    await apply_role_map(session, settings, user, claims, client_address)
    return user, next_path


async def _exchange(config: OidcConfig, redirect_uri: str, code: str, verifier: str, nonce: str) -> dict[str, Any]:
    document, key_set = await _metadata(config)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
    auth = None
    if config.client_secret:
        auth = (config.client_id, config.client_secret)  # client_secret_basic
    else:
        form["client_id"] = config.client_id
    async with httpx.AsyncClient(timeout=10.0, follow_redirects=False) as http:
        response = await http.post(document["token_endpoint"], data=form, auth=auth)
    if response.status_code != 200:
        logger.warning("sso: token endpoint answered %s", response.status_code)
        raise SsoFailed("The identity provider refused the sign-in code")
    raw = response.json().get("id_token")
    if not isinstance(raw, str):
        raise SsoFailed("The identity provider sent no ID token")
    try:
        try:
            token = jwt.decode(raw, key_set, algorithms=["RS256", "ES256", "PS256", "EdDSA"])
        except JoseError:
            _, key_set = await _metadata(config, refresh_keys=True)  # keys rotated since we fetched them
            token = jwt.decode(raw, key_set, algorithms=["RS256", "ES256", "PS256", "EdDSA"])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": config.issuer},
            aud={"essential": True, "value": config.client_id},
            sub={"essential": True},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(token.claims)
    except (JoseError, ValueError) as exc:
        logger.warning("sso: ID token rejected (%s)", type(exc).__name__)
        raise SsoFailed("The identity provider's ID token did not check out") from None
    return token.claims


async def _account_for(
    session: AsyncSession,
    config: OidcConfig,
    subject: str,
    email: str,
    claims: dict[str, Any],
    signup_open: bool,
    client_address: str | None,
) -> User:
    linked = await session.get(UserIdentity, (config.issuer, subject))
    if linked is not None:
        user = await session.get(User, linked.user_id)
        assert user is not None
        return user
    user = (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()
    action = "sso.linked"
    if user is None:
        if not signup_open:
            raise SsoFailed("There is no account for this email, and signup is closed on this instance")
        name = str(claims.get("name") or email.partition("@")[0])[:200]
        # No password of its own: a random one nobody knows (a reset by an instance admin can set one).
        user = User(email=email, name=name, password_hash=await hash_password(secrets.token_urlsafe(32)))
        session.add(user)
        await session.flush()
        action = "sso.account_created"
    session.add(UserIdentity(issuer=config.issuer, subject=subject, user_id=user.id))
    await record_audit(
        session,
        workspace_id=None,
        actor=Actor(user.id, None, client_address),
        action=action,
        target_type="user",
        target_id=user.id,
        after={"issuer": config.issuer},
    )
    await session.flush()
    return user


def _claim_values(claims: dict[str, Any], name: str) -> list[str]:
    value = claims.get(name)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def wanted_roles(settings: Settings, claims: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Workspace (as the map names it) → (role, the group that grants it); several groups granting roles in
    one workspace: the highest role wins."""
    wanted: dict[str, tuple[str, str]] = {}
    for group in _claim_values(claims, settings.oidc_role_claim):
        entry = settings.oidc_role_map.get(group)
        grants: list[OidcRoleGrant] = [] if entry is None else entry if isinstance(entry, list) else [entry]
        for grant in grants:
            held = wanted.get(grant.workspace)
            if held is None or ROLE_RANK[grant.role] > ROLE_RANK[held[0]]:
                wanted[grant.workspace] = (grant.role, group)
    return wanted


async def _mapped_workspace(session: AsyncSession, reference: str) -> Workspace | None:
    """By id, else by slug, else by name when exactly one live workspace has it."""
    try:
        match = Workspace.id == uuid.UUID(reference)
    except ValueError:
        match = or_(Workspace.slug == reference, Workspace.name == reference)
    rows = (await session.execute(select(Workspace).where(match, Workspace.deleted_at.is_(None)).limit(3))).scalars()
    found = list(rows)
    by_slug = [w for w in found if w.slug == reference]
    if by_slug:
        return by_slug[0]
    return found[0] if len(found) == 1 else None


async def apply_role_map(
    session: AsyncSession, settings: Settings, user: User, claims: dict[str, Any], client_address: str | None
) -> None:
    """The identity provider's groups decide the roles in the workspaces the map names, at every sign-in: a
    missing membership is added, a different role is changed (up or down). Owners are left alone, and
    nobody is removed when a group goes away: that stays an admin's decision."""
    actor = Actor(None, None, client_address)  # no person acted: the audit entry says "via": "sso"
    for reference, (role, group) in wanted_roles(settings, claims).items():
        workspace = await _mapped_workspace(session, reference)
        if workspace is None:
            logger.warning("sso: the role map names workspace %r, which is unknown or ambiguous", reference)
            continue
        added = await session.execute(
            insert(Membership)
            .values(workspace_id=workspace.id, user_id=user.id, role=role)
            .on_conflict_do_nothing()
            .returning(Membership.user_id)
        )
        if added.first() is not None:
            await record_audit(
                session,
                workspace_id=workspace.id,
                actor=actor,
                action="member.added",
                target_type="user",
                target_id=user.id,
                after={"email": user.email, "role": role, "via": "sso", "group": group},
            )
            continue
        key = (workspace.id, user.id)
        membership = await session.get(Membership, key, with_for_update=True, populate_existing=True)
        if membership is None or membership.role in (role, "owner"):
            continue
        before = membership.role
        membership.role, membership.updated_at = role, func.now()
        await record_audit(
            session,
            workspace_id=workspace.id,
            actor=actor,
            action="member.role_changed",
            target_type="user",
            target_id=user.id,
            before={"role": before},
            after={"role": role, "via": "sso", "group": group},
        )
    await session.flush()


def require_sso_for(principal: Principal, workspace: Any) -> None:
    if not workspace.require_sso or principal.api_key is not None:
        return  # API keys were created by members; the requirement is about how people sign in
    if principal.auth_session is None or principal.auth_session.method != "sso":
        raise SsoRequired("This workspace requires single sign-on: sign in with SSO to reach it")


async def set_require_sso(session: AsyncSession, access: WorkspaceAccess, value: bool, actor: Actor) -> None:
    workspace = access.workspace
    if value == workspace.require_sso:
        return
    session_method = access.principal.auth_session.method if access.principal.auth_session else None
    if value and session_method != "sso":
        raise Conflict("Sign in with single sign-on yourself before requiring it of members")
    await set_workspace_requirement(session, access, "require_sso", value, actor)
