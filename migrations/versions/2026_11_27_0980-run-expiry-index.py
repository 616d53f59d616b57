"""Runs whose contents the retention job may still empty, per workspace and oldest first: the job's batches
walk this index, for the workspaces that have a policy only, instead of scanning the whole run table (see
docs/decisions/storage-at-scale.md).

Revision ID: 20261127_run_expiry_index
Revises: 20261127_exports
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "20261127_run_expiry_index"
down_revision: str | None = "20261127_exports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREDICATE = "contents_expired_at IS NULL AND status IN ('succeeded', 'failed', 'cancelled')"


def upgrade() -> None:
    # A plain build holds off new runs while it lasts (seconds per million runs). On an instance that already
    # holds many runs, build it beforehand without blocking, and this step then does nothing:
    #   CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_run_contents_due ON run (workspace_id, created_at) WHERE <PREDICATE>;
    # (migrations run in one transaction here, where CONCURRENTLY is not allowed).
    op.create_index(
        "ix_run_contents_due", "run", ["workspace_id", "created_at"], postgresql_where=text(PREDICATE), if_not_exists=True
    )


def downgrade() -> None:
    op.drop_index("ix_run_contents_due", table_name="run", if_exists=True)
