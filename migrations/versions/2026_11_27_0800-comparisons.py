"""Datasets of test cases (rows sealed), comparisons (a grid of runs), their ratings and assertions.

Revision ID: 20261127_comparisons
Revises: 20261127_safety
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261127_comparisons"
down_revision: str | None = "20261127_safety"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = postgresql.UUID(as_uuid=True)
JSONB = postgresql.JSONB()


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"], ["workspace.id"], name=op.f(f"fk_{table}_workspace_id_workspace"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "dataset",
        sa.Column("id", UUID, nullable=False),
        sa.Column("workspace_id", UUID, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("variables", JSONB, server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("row_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("expected_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("size_bytes", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_by", UUID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        _workspace_fk("dataset"),
        sa.ForeignKeyConstraint(
            ["created_by"], ["user_account.id"], name=op.f("fk_dataset_created_by_user_account"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset")),
        sa.UniqueConstraint("workspace_id", "name", name="uq_dataset_workspace_name"),
    )
    op.create_index(
        "ix_dataset_workspace_created",
        "dataset",
        ["workspace_id", sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
    )
    op.create_table(
        "dataset_row",
        sa.Column("id", UUID, nullable=False),
        sa.Column("workspace_id", UUID, nullable=False),
        sa.Column("dataset_id", UUID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("variables", sa.LargeBinary(), nullable=False),
        sa.Column("expected", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        _workspace_fk("dataset_row"),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["dataset.id"], name=op.f("fk_dataset_row_dataset_id_dataset"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_row")),
        sa.UniqueConstraint("dataset_id", "position", name="uq_dataset_row_dataset_position"),
    )
    op.create_table(
        "comparison",
        sa.Column("id", UUID, nullable=False),
        sa.Column("workspace_id", UUID, nullable=False),
        sa.Column("prompt_id", UUID, nullable=False),
        sa.Column("dataset_id", UUID, nullable=True),
        sa.Column("name", sa.String(200), server_default="", nullable=False),
        sa.Column("versions", JSONB, nullable=False),
        sa.Column("models", JSONB, nullable=True),
        sa.Column("cases", sa.LargeBinary(), nullable=False),
        sa.Column("cell_count", sa.Integer(), nullable=False),
        sa.Column("created_by", UUID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        _workspace_fk("comparison"),
        sa.ForeignKeyConstraint(
            ["prompt_id"], ["prompt.id"], name=op.f("fk_comparison_prompt_id_prompt"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["dataset.id"], name=op.f("fk_comparison_dataset_id_dataset"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["user_account.id"], name=op.f("fk_comparison_created_by_user_account"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comparison")),
    )
    op.create_index(
        "ix_comparison_workspace_created",
        "comparison",
        ["workspace_id", sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
    )
    op.create_table(
        "comparison_cell",
        sa.Column("id", UUID, nullable=False),
        sa.Column("workspace_id", UUID, nullable=False),
        sa.Column("comparison_id", UUID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("row_index", sa.Integer(), nullable=False),
        sa.Column("run_id", UUID, nullable=True),
        sa.Column("earlier_run_ids", JSONB, server_default=sa.text("'[]'::jsonb"), nullable=False),
        _workspace_fk("comparison_cell"),
        sa.ForeignKeyConstraint(
            ["comparison_id"],
            ["comparison.id"],
            name=op.f("fk_comparison_cell_comparison_id_comparison"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_comparison_cell_run_id_run"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comparison_cell")),
        sa.UniqueConstraint("comparison_id", "position", name="uq_comparison_cell_comparison_position"),
    )
    op.create_index("ix_comparison_cell_run", "comparison_cell", ["run_id"])
    op.create_table(
        "comparison_rating",
        sa.Column("id", UUID, nullable=False),
        sa.Column("workspace_id", UUID, nullable=False),
        sa.Column("comparison_id", UUID, nullable=False),
        sa.Column("run_id", UUID, nullable=False),
        sa.Column("user_id", UUID, nullable=False),
        sa.Column("thumbs", sa.SmallInteger(), nullable=True),
        sa.Column("score", sa.SmallInteger(), nullable=True),
        sa.Column("note", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("thumbs IN (-1, 1)", name=op.f("ck_comparison_rating_thumbs")),
        sa.CheckConstraint("score BETWEEN 1 AND 5", name=op.f("ck_comparison_rating_score")),
        sa.CheckConstraint("thumbs IS NOT NULL OR score IS NOT NULL", name=op.f("ck_comparison_rating_something")),
        _workspace_fk("comparison_rating"),
        sa.ForeignKeyConstraint(
            ["comparison_id"],
            ["comparison.id"],
            name=op.f("fk_comparison_rating_comparison_id_comparison"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_comparison_rating_run_id_run"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_comparison_rating_user_id_user_account"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comparison_rating")),
        sa.UniqueConstraint("run_id", "user_id", name="uq_comparison_rating_run_user"),
    )
    op.create_index("ix_comparison_rating_comparison", "comparison_rating", ["comparison_id"])
    op.create_table(
        "comparison_assertion",
        sa.Column("id", UUID, nullable=False),
        sa.Column("workspace_id", UUID, nullable=False),
        sa.Column("comparison_id", UUID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("argument", sa.LargeBinary(), nullable=True),
        sa.Column("grader_prompt_id", UUID, nullable=True),
        sa.Column("grader_version", sa.Integer(), nullable=True),
        sa.Column("created_by", UUID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('contains', 'not_contains', 'regex', 'is_json', 'equals_expected', 'model_graded')",
            name=op.f("ck_comparison_assertion_kind"),
        ),
        _workspace_fk("comparison_assertion"),
        sa.ForeignKeyConstraint(
            ["comparison_id"],
            ["comparison.id"],
            name=op.f("fk_comparison_assertion_comparison_id_comparison"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["grader_prompt_id"],
            ["prompt.id"],
            name=op.f("fk_comparison_assertion_grader_prompt_id_prompt"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["user_account.id"],
            name=op.f("fk_comparison_assertion_created_by_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comparison_assertion")),
    )
    op.create_index("ix_comparison_assertion_comparison", "comparison_assertion", ["comparison_id"])
    op.create_table(
        "comparison_grading",
        sa.Column("id", UUID, nullable=False),
        sa.Column("workspace_id", UUID, nullable=False),
        sa.Column("comparison_id", UUID, nullable=False),
        sa.Column("assertion_id", UUID, nullable=False),
        sa.Column("run_id", UUID, nullable=False),
        sa.Column("grader_run_id", UUID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        _workspace_fk("comparison_grading"),
        sa.ForeignKeyConstraint(
            ["comparison_id"],
            ["comparison.id"],
            name=op.f("fk_comparison_grading_comparison_id_comparison"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["assertion_id"],
            ["comparison_assertion.id"],
            name=op.f("fk_comparison_grading_assertion_id_comparison_assertion"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_comparison_grading_run_id_run"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["grader_run_id"], ["run.id"], name=op.f("fk_comparison_grading_grader_run_id_run"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comparison_grading")),
        sa.UniqueConstraint("assertion_id", "run_id", name="uq_comparison_grading_assertion_run"),
    )
    op.create_index("ix_comparison_grading_comparison", "comparison_grading", ["comparison_id"])


def downgrade() -> None:
    op.drop_table("comparison_grading")
    op.drop_table("comparison_assertion")
    op.drop_table("comparison_rating")
    op.drop_table("comparison_cell")
    op.drop_table("comparison")
    op.drop_table("dataset_row")
    op.drop_table("dataset")
