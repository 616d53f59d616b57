"""Runs: one row per request to a model, with its pinned snapshot and (partial, then final) output sealed."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.database import Base, created_at_column, uuid_pk
from backend.crypto.models import encrypted_column

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


class Run(Base):
    __tablename__ = "run"

    id: Mapped[uuid.UUID] = uuid_pk()
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspace.id", ondelete="CASCADE"), nullable=False
    )
    prompt_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("prompt.id", ondelete="CASCADE"), nullable=False
    )
    version_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("prompt_version.id", ondelete="CASCADE"), nullable=False
    )
    version_number: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="queued")
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    # Everything needed to re-issue the request: rendered messages, variables, effective config, price.
    snapshot: Mapped[bytes | None] = encrypted_column(nullable=True)  # NULL once retention removed it
    output: Mapped[bytes | None] = encrypted_column(nullable=True)
    # Sealed JSON {thinking?, tool_uses?}: what the model thought and the tools it called, beside its text.
    extras: Mapped[bytes | None] = encrypted_column(nullable=True)
    output_valid: Mapped[bool | None] = mapped_column(Boolean)  # conforms to the output schema (None: no schema)
    thinking_tokens: Mapped[int | None] = mapped_column(Integer)
    # Set when the retention policy removed the run's contents (snapshot, output, thinking, tool calls).
    contents_expired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Characters of output persisted so far: the database half of every event id (see events.py).
    output_chars: Mapped[int] = mapped_column(Integer, nullable=False, server_default=sql("0"))
    stop_reason: Mapped[str | None] = mapped_column(String(40))
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    usage_estimated: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=sql("false"))
    cost_micros: Mapped[int | None] = mapped_column(BigInteger)
    # The worst case reserved against the budget at acceptance, and the budget month it was reserved in.
    reserved_micros: Mapped[int | None] = mapped_column(BigInteger)
    budget_month: Mapped[date | None] = mapped_column(Date)
    ttft_ms: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    flags: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False, server_default=sql("'[]'::jsonb"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("user_account.id", ondelete="SET NULL")
    )
    rerun_of: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = created_at_column()
    # Handed to the queue (None: waiting its turn in PostgreSQL). The reconciler re-publishes runs that were
    # dispatched long ago and never claimed, never runs that are waiting.
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=sql("0"))
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The seq of the run's last event (its terminal one once finished).
    last_seq: Mapped[int] = mapped_column(Integer, nullable=False, server_default=sql("0"))

    __table_args__ = (
        CheckConstraint(f"status IN {STATUSES!r}", name="status"),
        Index("ix_run_workspace_created", "workspace_id", sql("created_at DESC"), sql("id DESC")),
        Index("ix_run_prompt_created", "prompt_id", sql("created_at DESC")),
        Index("ix_run_running_lease", "lease_expires_at", postgresql_where=sql("status = 'running'")),
        Index("ix_run_queued", "created_at", postgresql_where=sql("status = 'queued'")),
        # Finished runs whose contents are still there, per workspace, oldest first: the retention job walks it
        # for the workspaces with a policy (so the runs of workspaces that keep everything are never visited).
        Index(
            "ix_run_contents_due",
            "workspace_id",
            "created_at",
            postgresql_where=sql("contents_expired_at IS NULL AND status IN ('succeeded', 'failed', 'cancelled')"),
        ),
        # Runs waiting their turn behind their workspace's concurrency cap, oldest first.
        Index(
            "ix_run_waiting",
            "workspace_id",
            "created_at",
            postgresql_where=sql("status = 'queued' AND dispatched_at IS NULL"),
        ),
        Index(
            "ix_run_active",
            "workspace_id",
            postgresql_where=sql("status = 'running' OR (status = 'queued' AND dispatched_at IS NOT NULL)"),
        ),
        Index(
            "uq_run_idempotency",
            "workspace_id",
            "created_by",
            "idempotency_key",
            unique=True,
            postgresql_where=sql("idempotency_key IS NOT NULL"),
        ),
    )
