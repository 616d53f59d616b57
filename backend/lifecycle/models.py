"""Tables of the data lifecycle: a workspace's retention policy, and its exports."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.database import Base, created_at_column, uuid_pk
from backend.crypto.models import encrypted_column


class RetentionPolicy(Base):
    """How long run contents are kept; no row (or NULL) keeps them for ever."""

    __tablename__ = "retention_policy"
    __table_args__ = (CheckConstraint("runs_days IS NULL OR runs_days >= 1", name="runs_days_positive"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    runs_days: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = created_at_column()


class WorkspaceExport(Base):
    """A workspace export an admin asked for: its state and progress. The archive is in its chunks."""

    __tablename__ = "workspace_export"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed', 'expired')", name="status_known"),
        Index("ix_workspace_export_workspace_created", "workspace_id", text("created_at DESC")),
        # At most one export of a workspace in progress at a time.
        Index(
            "uq_workspace_export_active",
            "workspace_id",
            unique=True,
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspace.id", ondelete="CASCADE"), nullable=False
    )
    requested_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("user_account.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="queued")
    done: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    total: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    lines: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = created_at_column()
    # Whoever generates it touches this; a generator silent for long has died and another takes over.
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ExportChunk(Base):
    """A piece of an archive: a gzip member of JSON lines, sealed with the workspace key."""

    __tablename__ = "workspace_export_chunk"
    __table_args__ = (UniqueConstraint("export_id", "seq", name="uq_workspace_export_chunk_export_seq"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspace.id", ondelete="CASCADE"), nullable=False
    )
    export_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspace_export.id", ondelete="CASCADE"), nullable=False
    )
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    data: Mapped[bytes] = encrypted_column()
