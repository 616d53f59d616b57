"""Rich prompts: a version's tools, tool choice and output schema (sealed); a run's thinking, tool calls and
structured-output verdict.

Revision ID: 20261127_rich_prompts
Revises: 20261127_usage_rollups
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261127_rich_prompts"
down_revision: str | None = "20261127_usage_rollups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: adding them rewrites no rows, and existing versions read as having none.
    op.add_column("prompt_version", sa.Column("extras", sa.LargeBinary(), nullable=True))
    op.add_column("run", sa.Column("extras", sa.LargeBinary(), nullable=True))
    op.add_column("run", sa.Column("output_valid", sa.Boolean(), nullable=True))
    op.add_column("run", sa.Column("thinking_tokens", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("run", "thinking_tokens")
    op.drop_column("run", "output_valid")
    op.drop_column("run", "extras")
    op.drop_column("prompt_version", "extras")
