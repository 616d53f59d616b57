"""Request and response bodies of accounts, workspaces, members, invitations, API keys and the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import email_validator
from pydantic import BaseModel, BeforeValidator, ConfigDict, EmailStr, Field, StringConstraints, field_validator

Role = Literal["owner", "admin", "editor", "viewer"]

# People of a self-hosted instance may have addresses on internal domains (corp.local, lab.internal, *.test).
# An address here names an account and is never checked for delivery, so its syntax is all that is checked:
# email-validator's list of special-use domains, which it refuses by default, is emptied (a documented knob).
email_validator.SPECIAL_USE_DOMAIN_NAMES.clear()


def refuse_nul(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL: refuse it up front (422) in any clear-text field."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if isinstance(value, list) and any(isinstance(v, str) and "\x00" in v for v in value):
        raise ValueError("must not contain NUL characters")
    return value


def json_number(value: Any) -> Any:
    """Before an integer field: JSON's numbers only. Pydantic's lax mode would take `true` as 1 and "12"
    as 12 (a retention of `true` days was one day); a JSON integer such as 5.0 stays fine."""
    if isinstance(value, bool | str):
        raise ValueError("must be a number, not a boolean or a string")
    return value


# Whitespace is part of a password: never stripped (Body strips every other string).
Password = Annotated[str, StringConstraints(strip_whitespace=False)]

JsonInt = Annotated[int, BeforeValidator(json_number)]
# Optional in one Annotated: `JsonInt | None` would lose `minimum`/`maximum` in the JSON Schema.
OptionalJsonInt = Annotated[int | None, BeforeValidator(json_number)]
OptionalJsonFloat = Annotated[float | None, BeforeValidator(json_number)]  # an integer stays fine (1 is 1.0)


class Body(BaseModel):
    """Request bodies refuse unknown fields so that a typo is an error, not a silent no-op."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return refuse_nul(value)


class SignupIn(Body):
    email: EmailStr = Field(max_length=320)
    password: Password = Field(min_length=8, max_length=256)
    name: str = Field(min_length=1, max_length=200)
    invite_token: str | None = Field(default=None, max_length=200)


class LoginIn(Body):
    email: EmailStr = Field(max_length=320)
    password: Password = Field(min_length=1, max_length=256)
    totp_code: str | None = Field(default=None, max_length=12, description="With two-factor authentication on")
    recovery_code: str | None = Field(default=None, max_length=40, description="Instead of totp_code, once each")


class MyWorkspace(BaseModel):
    id: uuid.UUID
    name: str
    slug: str
    role: Role


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    created_at: datetime


class MeOut(UserOut):
    is_instance_admin: bool
    workspaces: list[MyWorkspace]


class AccountDeleted(BaseModel):
    id: uuid.UUID
    status: Literal["deleted"]


class WorkspaceIn(Body):
    name: str = Field(min_length=1, max_length=100)


class WorkspacePatch(Body):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    require_2fa: bool | None = Field(
        default=None, strict=True, description="Members must have two-factor authentication on"
    )
    require_sso: bool | None = Field(default=None, strict=True, description="Members must sign in with single sign-on")


class WorkspaceOut(BaseModel):
    id: uuid.UUID
    name: str
    slug: str
    role: Role
    created_at: datetime
    require_2fa: bool = False
    require_sso: bool = False


class WorkspaceDeleted(BaseModel):
    id: uuid.UUID
    status: Literal["deleting"]


class MemberIn(Body):
    email: EmailStr = Field(max_length=320)
    role: Role = "editor"


class MemberPatch(Body):
    role: Role


class MemberOut(BaseModel):
    user_id: uuid.UUID
    email: str
    name: str
    role: Role
    created_at: datetime


class InvitationOut(BaseModel):
    id: uuid.UUID
    email: str
    role: Role
    invite_token: str | None = Field(default=None, description="Shown once, when the invitation is made.")
    invite_url: str | None = None
    created_at: datetime
    expires_at: datetime


class MemberAdded(BaseModel):
    """POST members answers with the new member, or with an invitation for an unknown address."""

    status: Literal["added", "invited"]
    member: MemberOut | None = None
    invitation: InvitationOut | None = None
    # Flattened for clients that only want the token (API.md names these three fields).
    invite_token: str | None = None
    invite_url: str | None = None
    expires_at: datetime | None = None


class ApiKeyIn(Body):
    name: str = Field(min_length=1, max_length=100)


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    created_by: uuid.UUID
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The full key. Shown once; only a hash is stored.")


class AuditActor(BaseModel):
    user_id: uuid.UUID | None
    email: str | None
    api_key_id: uuid.UUID | None


class AuditTarget(BaseModel):
    type: str
    id: str | None


class AuditEntryOut(BaseModel):
    id: uuid.UUID
    actor: AuditActor
    action: str
    target: AuditTarget
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    client_address: str | None
    created_at: datetime


Provider = Literal["anthropic", "openai"]


class ProviderIn(Body):
    api_key: str = Field(min_length=8, max_length=500)
    base_url: str | None = Field(
        default=None,
        max_length=500,
        description="An OpenAI-compatible or Anthropic-compatible endpoint; public hosts only unless the "
        "operator allows the host in PLAYGROUND_PROVIDER_HOSTS.",
    )

    @field_validator("api_key", mode="before")
    @classmethod
    def _strip_key(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value


class ProviderOut(BaseModel):
    provider: Provider
    key_last4: str
    base_url: str | None
    updated_by: uuid.UUID | None
    updated_at: datetime
