"""Datasets: named lists of test cases (variable values, optionally an expected output), sealed per row."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.database import Base, created_at_column, uuid_pk
from backend.crypto.models import encrypted_column


class Dataset(Base):
    __tablename__ = "dataset"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name", name="uq_dataset_workspace_name"),
        Index("ix_dataset_workspace_created", "workspace_id", text("created_at DESC"), text("id DESC")),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspace.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    # Variable names (not values) in order of first appearance: metadata, like a version's variables.
    variables: Mapped[list[str]] = mapped_column(JSONB, nullable=False, server_default=text("'[]'::jsonb"))
    row_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    expected_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))  # rows with one
    size_bytes: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("user_account.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class DatasetRow(Base):
    """One test case: its variable values (sealed JSON object) and optional expected output (sealed)."""

    __tablename__ = "dataset_row"
    __table_args__ = (UniqueConstraint("dataset_id", "position", name="uq_dataset_row_dataset_position"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspace.id", ondelete="CASCADE"), nullable=False
    )
    dataset_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("dataset.id", ondelete="CASCADE"), nullable=False
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    variables: Mapped[bytes] = encrypted_column()
    expected: Mapped[bytes | None] = encrypted_column(nullable=True)
    created_at: Mapped[datetime] = created_at_column()
