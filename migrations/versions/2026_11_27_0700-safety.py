"""Safety: a workspace's policy per kind of finding, and the flags raised on runs (excerpts sealed).

Revision ID: 20261127_safety
Revises: 20261127_rich_prompts
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261127_safety"
down_revision: str | None = "20261127_rich_prompts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "safety_policy",
        sa.Column("workspace_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("pii", sa.String(8), server_default="flag", nullable=False),
        sa.Column("secret", sa.String(8), server_default="flag", nullable=False),
        sa.Column("injection", sa.String(8), server_default="flag", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("pii IN ('off', 'flag', 'block')", name=op.f("ck_safety_policy_pii_action")),
        sa.CheckConstraint("secret IN ('off', 'flag', 'block')", name=op.f("ck_safety_policy_secret_action")),
        sa.CheckConstraint("injection IN ('off', 'flag', 'block')", name=op.f("ck_safety_policy_injection_action")),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_safety_policy_workspace_id_workspace"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_safety_policy")),
    )
    op.create_table(
        "safety_flag",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("workspace_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("run_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("detector", sa.String(32), nullable=False),
        sa.Column("location", sa.String(8), nullable=False),
        sa.Column("field", sa.String(200), nullable=True),
        sa.Column("start", sa.Integer(), nullable=True),
        sa.Column("end", sa.Integer(), nullable=True),
        sa.Column("excerpt", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(8), server_default="open", nullable=False),
        sa.Column("note", sa.LargeBinary(), nullable=True),
        sa.Column("resolved_by", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("location IN ('input', 'output')", name=op.f("ck_safety_flag_location")),
        sa.CheckConstraint("status IN ('open', 'resolved')", name=op.f("ck_safety_flag_status")),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], name=op.f("fk_safety_flag_run_id_run"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_safety_flag_workspace_id_workspace"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by"], ["user_account.id"], name=op.f("fk_safety_flag_resolved_by_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safety_flag")),
    )
    op.create_index(
        "ix_safety_flag_workspace_created",
        "safety_flag",
        ["workspace_id", sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
    )
    op.create_index("ix_safety_flag_run", "safety_flag", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_safety_flag_run", table_name="safety_flag")
    op.drop_index("ix_safety_flag_workspace_created", table_name="safety_flag")
    op.drop_table("safety_flag")
    op.drop_table("safety_policy")
