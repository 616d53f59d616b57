"""Per-workspace data keys, wrapped by the master key, and the one-line declaration of an encrypted column."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.database import Base, created_at_column

ENCRYPTED = "encrypted"


def encrypted_column(*, nullable: bool = False) -> Any:
    """Declares a column that holds ciphertext sealed with its workspace's data key.

    The table must have `id` and `workspace_id`; the associated data binds each value to workspace, table,
    column and row, and rotation finds every such column through this marker.
    """
    return mapped_column(LargeBinary, nullable=nullable, info={ENCRYPTED: True})


class WorkspaceKey(Base):
    """One version of a workspace's data key. Only the wrapped form is stored; shredding nulls it."""

    __tablename__ = "workspace_key"

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    master_key_id: Mapped[str | None] = mapped_column(String(100))
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = created_at_column()
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    destroyed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("state IN ('active', 'retired', 'destroyed')", name="state"),
        CheckConstraint("(state = 'destroyed') = (wrapped_key IS NULL)", name="destroyed_has_no_key"),
        Index("uq_workspace_key_active", "workspace_id", unique=True, postgresql_where=text("state = 'active'")),
    )
