"""Per-workspace data keys (wrapped by the master key) and encrypted provider credentials.

Revision ID: 20261127_workspace_keys
Revises: 20261127_foundation
Create Date: 2026-11-27 00:37:57.133090
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '20261127_workspace_keys'
down_revision: str | None = '20261127_foundation'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('provider_credential',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('workspace_id', sa.UUID(), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('api_key', sa.LargeBinary(), nullable=False),
    sa.Column('key_last4', sa.String(length=4), nullable=False),
    sa.Column('base_url', sa.String(length=500), nullable=True),
    sa.Column('updated_by', sa.UUID(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['updated_by'], ['user_account.id'], name=op.f('fk_provider_credential_updated_by_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], name=op.f('fk_provider_credential_workspace_id_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_credential')),
    sa.UniqueConstraint('workspace_id', 'provider', name='uq_provider_credential_workspace_provider')
    )
    op.create_table('workspace_key',
    sa.Column('workspace_id', sa.UUID(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('master_key_id', sa.String(length=100), nullable=True),
    sa.Column('wrapped_key', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('destroyed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(state = 'destroyed') = (wrapped_key IS NULL)", name=op.f('ck_workspace_key_destroyed_has_no_key')),
    sa.CheckConstraint("state IN ('active', 'retired', 'destroyed')", name=op.f('ck_workspace_key_state')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], name=op.f('fk_workspace_key_workspace_id_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'version', name=op.f('pk_workspace_key'))
    )
    # At most one active key per workspace: every new write has exactly one key to use.
    op.create_index('uq_workspace_key_active', 'workspace_key', ['workspace_id'], unique=True, postgresql_where=sa.text("state = 'active'"))


def downgrade() -> None:
    op.drop_index('uq_workspace_key_active', table_name='workspace_key', postgresql_where=sa.text("state = 'active'"))
    op.drop_table('workspace_key')
    op.drop_table('provider_credential')
