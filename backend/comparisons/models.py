"""Comparisons: a grid of version x model x test case, each cell one ordinary run; ratings and assertions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, SmallInteger, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.database import Base, created_at_column, uuid_pk
from backend.crypto.models import encrypted_column

MAX_CELLS = 500
ASSERTION_KINDS = ("contains", "not_contains", "regex", "is_json", "equals_expected", "model_graded")


class Comparison(Base):
    __tablename__ = "comparison"
    __table_args__ = (
        Index("ix_comparison_workspace_created", "workspace_id", text("created_at DESC"), text("id DESC")),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspace.id", ondelete="CASCADE"), nullable=False
    )
    prompt_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("prompt.id", ondelete="CASCADE"), nullable=False
    )
    dataset_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("dataset.id", ondelete="SET NULL")
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False, server_default="")
    versions: Mapped[list[int]] = mapped_column(JSONB, nullable=False)
    # [{provider, model}] as asked, or null: each version's own model.
    models: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    # The test cases as they were when the grid was made (sealed JSON [{variables, expected}]): a dataset
    # may change or go later, and assertions compare against these.
    cases: Mapped[bytes] = encrypted_column()
    cell_count: Mapped[int] = mapped_column(Integer, nullable=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("user_account.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = created_at_column()


class ComparisonCell(Base):
    """One version x model x case: its current run, and the runs it had before a rerun (oldest first)."""

    __tablename__ = "comparison_cell"
    __table_args__ = (
        UniqueConstraint("comparison_id", "position", name="uq_comparison_cell_comparison_position"),
        Index("ix_comparison_cell_run", "run_id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspace.id", ondelete="CASCADE"), nullable=False
    )
    comparison_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("comparison.id", ondelete="CASCADE"), nullable=False
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    row_index: Mapped[int] = mapped_column(Integer, nullable=False)
    # SET NULL: a run deleted on its own (DELETE /runs/{id}) leaves its cell empty, not the grid broken.
    run_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("run.id", ondelete="SET NULL"))
    earlier_run_ids: Mapped[list[str]] = mapped_column(JSONB, nullable=False, server_default=text("'[]'::jsonb"))


class ComparisonRating(Base):
    """A person's judgement of one run of a cell: thumbs (+1/-1) or a score 1-5, and a note (sealed)."""

    __tablename__ = "comparison_rating"
    __table_args__ = (
        UniqueConstraint("run_id", "user_id", name="uq_comparison_rating_run_user"),
        Index("ix_comparison_rating_comparison", "comparison_id"),
        CheckConstraint("thumbs IN (-1, 1)", name="thumbs"),
        CheckConstraint("score BETWEEN 1 AND 5", name="score"),
        CheckConstraint("thumbs IS NOT NULL OR score IS NOT NULL", name="something"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspace.id", ondelete="CASCADE"), nullable=False
    )
    comparison_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("comparison.id", ondelete="CASCADE"), nullable=False
    )
    run_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("run.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False
    )
    thumbs: Mapped[int | None] = mapped_column(SmallInteger)
    score: Mapped[int | None] = mapped_column(SmallInteger)
    note: Mapped[bytes | None] = encrypted_column(nullable=True)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class ComparisonAssertion(Base):
    """A check every cell's output is held to; its argument (text or pattern) is content, so sealed."""

    __tablename__ = "comparison_assertion"
    __table_args__ = (
        Index("ix_comparison_assertion_comparison", "comparison_id"),
        CheckConstraint(f"kind IN {ASSERTION_KINDS!r}", name="kind"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspace.id", ondelete="CASCADE"), nullable=False
    )
    comparison_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("comparison.id", ondelete="CASCADE"), nullable=False
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)  # order of addition within the comparison
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    argument: Mapped[bytes | None] = encrypted_column(nullable=True)
    # model_graded: the rubric prompt (and version; null: its latest when grading) each output is run through.
    grader_prompt_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("prompt.id", ondelete="CASCADE")
    )
    grader_version: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("user_account.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = created_at_column()


class ComparisonGrading(Base):
    """A model-graded assertion applied to one cell's run: the grading run (an ordinary run of the rubric)."""

    __tablename__ = "comparison_grading"
    __table_args__ = (
        UniqueConstraint("assertion_id", "run_id", name="uq_comparison_grading_assertion_run"),
        Index("ix_comparison_grading_comparison", "comparison_id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspace.id", ondelete="CASCADE"), nullable=False
    )
    comparison_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("comparison.id", ondelete="CASCADE"), nullable=False
    )
    assertion_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("comparison_assertion.id", ondelete="CASCADE"), nullable=False
    )
    run_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("run.id", ondelete="CASCADE"), nullable=False
    )
    grader_run_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("run.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = created_at_column()
