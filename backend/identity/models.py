"""Tables of identity: two-factor secrets, one-time password reset tokens, the instance's own settings."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Integer, LargeBinary, String, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.database import Base, created_at_column


class UserTotp(Base):
    """A user's TOTP secret, wrapped with the master key (a user belongs to no one workspace), and the
    SHA-256 of each unused recovery code. Enabled once the first code from the authenticator was right."""

    __tablename__ = "user_totp"

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    master_key_id: Mapped[str] = mapped_column(String(100), nullable=False)
    wrapped_secret: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    recovery_hashes: Mapped[list[str]] = mapped_column(JSONB, nullable=False, server_default=text("'[]'::jsonb"))
    last_step: Mapped[int | None] = mapped_column(Integer)  # the last time step accepted: no code is used twice
    enabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()


class PasswordReset(Base):
    """A one-time password reset token (only its hash), made by an instance admin for a user."""

    __tablename__ = "password_reset"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("user_account.id", ondelete="SET NULL")
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()


class InstanceSettings(Base):
    """One row: what an instance admin set in the SPA, over the environment's defaults."""

    __tablename__ = "instance_settings"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint("signup IN ('open', 'invite', 'closed')", name="signup_mode"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    signup: Mapped[str] = mapped_column(String(8), nullable=False)
    allowed_domains: Mapped[list[str]] = mapped_column(JSONB, nullable=False, server_default=text("'[]'::jsonb"))
    default_limits: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    updated_at: Mapped[datetime] = created_at_column()


class SsoLogin(Base):
    """A sign-in through the identity provider in progress: what the callback must match (state, nonce,
    PKCE verifier) and where to go after. Only the state's hash is stored; it expires in ten minutes."""

    __tablename__ = "sso_login"

    state_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(100), nullable=False)
    code_verifier: Mapped[str] = mapped_column(String(200), nullable=False)
    next_path: Mapped[str] = mapped_column(String(2000), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class UserIdentity(Base):
    """An account's identity at the identity provider (issuer + subject), linked on first SSO sign-in."""

    __tablename__ = "user_identity"

    issuer: Mapped[str] = mapped_column(String(500), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_at: Mapped[datetime] = created_at_column()
