"""Retention: a workspace's policy, and runs whose contents the policy removed (snapshot may then be NULL).

Revision ID: 20261127_retention
Revises: 20261127_sso
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261127_retention"
down_revision: str | None = "20261127_sso"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retention_policy",
        sa.Column("workspace_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("runs_days", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("runs_days IS NULL OR runs_days >= 1", name=op.f("ck_retention_policy_runs_days_positive")),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_retention_policy_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_retention_policy")),
    )
    op.alter_column("run", "snapshot", nullable=True)
    op.add_column("run", sa.Column("contents_expired_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("run", "contents_expired_at")
    op.execute("DELETE FROM run WHERE snapshot IS NULL")
    op.alter_column("run", "snapshot", nullable=False)
    op.drop_table("retention_policy")
