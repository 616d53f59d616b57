"""Single sign-on: sign-ins in progress, identities linked to accounts, how a session was signed in, and a
workspace's requirement of SSO.

Revision ID: 20261127_sso
Revises: 20261127_identity
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261127_sso"
down_revision: str | None = "20261127_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sso_login",
        sa.Column("state_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("nonce", sa.String(100), nullable=False),
        sa.Column("code_verifier", sa.String(200), nullable=False),
        sa.Column("next_path", sa.String(2000), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_sso_login")),
    )
    op.create_table(
        "user_identity",
        sa.Column("issuer", sa.String(500), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_user_identity_user_id_user_account"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("issuer", "subject", name=op.f("pk_user_identity")),
    )
    op.create_index(op.f("ix_user_identity_user_id"), "user_identity", ["user_id"])
    op.add_column("auth_session", sa.Column("method", sa.String(8), server_default="password", nullable=False))
    op.add_column("workspace", sa.Column("require_sso", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    op.drop_column("workspace", "require_sso")
    op.drop_column("auth_session", "method")
    op.drop_index(op.f("ix_user_identity_user_id"), table_name="user_identity")
    op.drop_table("user_identity")
    op.drop_table("sso_login")
