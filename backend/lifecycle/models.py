"""Tables of the data lifecycle: a workspace's retention policy."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.database import Base, created_at_column


class RetentionPolicy(Base):
    """How long run contents are kept; no row (or NULL) keeps them for ever."""

    __tablename__ = "retention_policy"
    __table_args__ = (CheckConstraint("runs_days IS NULL OR runs_days >= 1", name="runs_days_positive"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    runs_days: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = created_at_column()
