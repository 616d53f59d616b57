"""Tables of the safety checks: a workspace's policy, and the flags raised on runs."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.database import Base, created_at_column, uuid_pk
from backend.crypto.models import encrypted_column

POLICY_KINDS = ("pii", "secret", "injection")
ACTIONS = ("off", "flag", "block")


class SafetyPolicy(Base):
    """What each kind of finding does to a run; no row means `flag` for all three."""

    __tablename__ = "safety_policy"
    __table_args__ = tuple(
        CheckConstraint(f"{kind} IN ('off', 'flag', 'block')", name=f"{kind}_action") for kind in POLICY_KINDS
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    pii: Mapped[str] = mapped_column(String(8), nullable=False, server_default="flag")
    secret: Mapped[str] = mapped_column(String(8), nullable=False, server_default="flag")
    injection: Mapped[str] = mapped_column(String(8), nullable=False, server_default="flag")
    updated_at: Mapped[datetime] = created_at_column()


class SafetyFlag(Base):
    """One finding on a run: where it is, what kind, and a masked excerpt (sealed; never the match itself)."""

    __tablename__ = "safety_flag"
    __table_args__ = (
        Index("ix_safety_flag_workspace_created", "workspace_id", text("created_at DESC"), text("id DESC")),
        Index("ix_safety_flag_run", "run_id"),
        CheckConstraint("location IN ('input', 'output')", name="location"),
        CheckConstraint("status IN ('open', 'resolved')", name="status"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspace.id", ondelete="CASCADE"), nullable=False
    )
    run_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("run.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    detector: Mapped[str] = mapped_column(String(32), nullable=False)
    location: Mapped[str] = mapped_column(String(8), nullable=False)  # input | output
    field: Mapped[str | None] = mapped_column(String(200))  # input: "system", "messages.0", "variables.name"
    start: Mapped[int | None] = mapped_column(Integer)
    end: Mapped[int | None] = mapped_column(Integer)
    excerpt: Mapped[bytes | None] = encrypted_column(nullable=True)
    status: Mapped[str] = mapped_column(String(8), nullable=False, server_default="open")
    note: Mapped[bytes | None] = encrypted_column(nullable=True)
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("user_account.id", ondelete="SET NULL")
    )
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
