"""Bodies of the identity routes: my sessions and password, and instance administration of users."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, EmailStr, Field

from backend.workspaces.schemas import Body, OptionalJsonInt, Password

DOMAIN_PATTERN = r"^[^ \x00]*\.[^ \x00]*$"

class SessionOut(BaseModel):
    id: uuid.UUID
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    user_agent: str | None
    client_address: str | None
    current: bool = Field(description="The session this request came with")


class PasswordChange(Body):
    current_password: Password = Field(min_length=1, max_length=256)
    new_password: Password = Field(min_length=8, max_length=256)


class ProfilePatch(Body):
    name: str = Field(min_length=1, max_length=200)


class ProfileOut(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    created_at: datetime


class AdminUserOut(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    is_instance_admin: bool
    disabled: bool
    created_at: datetime
    workspaces: int
    live_sessions: int


class AdminUserPatch(Body):
    disabled: bool | None = Field(default=None, strict=True)
    is_instance_admin: bool | None = Field(default=None, strict=True)


class TotpSetupOut(BaseModel):
    secret: str = Field(description="Base32, for typing into an authenticator app; shown once")
    otpauth_uri: str = Field(description="The same as an otpauth:// URI, for a QR code")
    qr_svg: str = Field(description="That URI as a QR code: an SVG image as a data: URI")


class TotpCode(Body):
    code: str = Field(min_length=6, max_length=6, pattern=r"^\d{6}$")


class TotpEnabledOut(BaseModel):
    recovery_codes: list[str] = Field(description="Each works once instead of a code; shown once, keep them safe")


class PasswordConfirm(Body):
    password: Password = Field(min_length=1, max_length=256)


class TwoFactorOut(BaseModel):
    totp: bool


class ResetCreatedOut(BaseModel):
    token: str = Field(description="Give it to the user; it works once, within expires_in_seconds")
    expires_in_seconds: int


class ResetIn(Body):
    token: str = Field(min_length=10, max_length=200)
    new_password: Password = Field(min_length=8, max_length=256)


class ForgotPasswordIn(Body):
    email: EmailStr = Field(max_length=320)


class ForgotPasswordOut(BaseModel):
    delivery: Literal["email", "admin"] = Field(
        description="email: if the address has an account, a one-time link is on its way; admin: this instance "
        "sends no email, an instance admin makes reset links"
    )


class InstanceSettingsOut(BaseModel):
    signup: Literal["open", "invite", "closed"]
    allowed_domains: list[str]
    default_limits: dict[str, int | None]


class InstanceSettingsIn(Body):
    signup: Literal["open", "invite", "closed"] | None = None
    # The pattern is what update_instance_settings checks (a dot, no space), told to the OpenAPI document too,
    # and no NUL (no text field takes one).
    allowed_domains: list[Annotated[str, Field(pattern=DOMAIN_PATTERN)]] | None = Field(default=None, max_length=100)
    default_limits: DefaultLimits | None = None


class DefaultLimits(Body):
    """Limits every new workspace starts with (it can change them later); unset ones keep the defaults."""

    # strict: `false` is not a budget of 0 nor `true` a limit of 1 (pydantic's lax mode would take them).
    monthly_budget_micros: OptionalJsonInt = Field(default=None, ge=0)
    max_concurrent_runs: OptionalJsonInt = Field(default=None, ge=1, le=10_000)
    max_queued_runs: OptionalJsonInt = Field(default=None, ge=1, le=1_000_000)
    runs_per_minute: OptionalJsonInt = Field(default=None, ge=1, le=1_000_000)
    member_runs_per_minute: OptionalJsonInt = Field(default=None, ge=1, le=1_000_000)


class SsoInfo(BaseModel):
    enabled: bool
    name: str | None
