"""Money and limits: workspace limits, monthly budget accounts, the usage ledger, rollups, price overrides.

Revision ID: 20261127_usage
Revises: 20261127_runs
Create Date: 2026-11-27 01:27:49.075097
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '20261127_usage'
down_revision: str | None = '20261127_runs'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('usage_ledger',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('workspace_id', sa.UUID(), nullable=False),
    sa.Column('run_id', sa.UUID(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('micros', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('reserve', 'settle', 'release')", name=op.f('ck_usage_ledger_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_ledger'))
    )
    op.create_index('ix_usage_ledger_run', 'usage_ledger', ['run_id'], unique=False)
    op.create_index('ix_usage_ledger_workspace_month', 'usage_ledger', ['workspace_id', 'month'], unique=False)
    op.create_table('usage_rollup',
    sa.Column('workspace_id', sa.UUID(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=False),
    sa.Column('prompt_id', sa.UUID(), nullable=False),
    sa.Column('runs', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('input_tokens', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('output_tokens', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('cost_micros', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('ttft_histogram', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('duration_histogram', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.PrimaryKeyConstraint('workspace_id', 'day', 'provider', 'model', 'user_id', 'prompt_id', name=op.f('pk_usage_rollup'))
    )
    op.create_table('budget_month',
    sa.Column('workspace_id', sa.UUID(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('reserved_micros', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('spent_micros', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.CheckConstraint('reserved_micros >= 0', name=op.f('ck_budget_month_reserved_not_negative')),
    sa.CheckConstraint('spent_micros >= 0', name=op.f('ck_budget_month_spent_not_negative')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], name=op.f('fk_budget_month_workspace_id_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'month', name=op.f('pk_budget_month'))
    )
    op.create_table('price_override',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('workspace_id', sa.UUID(), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('price', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('updated_by', sa.UUID(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['updated_by'], ['user_account.id'], name=op.f('fk_price_override_updated_by_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], name=op.f('fk_price_override_workspace_id_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_price_override'))
    )
    op.create_index('uq_price_override_model', 'price_override', ['workspace_id', 'provider', 'model'], unique=True)
    op.create_table('workspace_limits',
    sa.Column('workspace_id', sa.UUID(), nullable=False),
    sa.Column('monthly_budget_micros', sa.BigInteger(), nullable=True),
    sa.Column('max_concurrent_runs', sa.Integer(), nullable=False),
    sa.Column('max_queued_runs', sa.Integer(), nullable=False),
    sa.Column('runs_per_minute', sa.Integer(), nullable=False),
    sa.Column('member_runs_per_minute', sa.Integer(), nullable=False),
    sa.Column('updated_by', sa.UUID(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['updated_by'], ['user_account.id'], name=op.f('fk_workspace_limits_updated_by_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], name=op.f('fk_workspace_limits_workspace_id_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', name=op.f('pk_workspace_limits'))
    )
    op.add_column('run', sa.Column('reserved_micros', sa.BigInteger(), nullable=True))
    op.add_column('run', sa.Column('budget_month', sa.Date(), nullable=True))
    op.create_index('ix_run_active', 'run', ['workspace_id'], unique=False, postgresql_where=sa.text("status = 'running' OR (status = 'queued' AND dispatched_at IS NOT NULL)"))
    op.create_index('ix_run_waiting', 'run', ['workspace_id', 'created_at'], unique=False, postgresql_where=sa.text("status = 'queued' AND dispatched_at IS NULL"))


def downgrade() -> None:
    op.drop_index('ix_run_waiting', table_name='run', postgresql_where=sa.text("status = 'queued' AND dispatched_at IS NULL"))
    op.drop_index('ix_run_active', table_name='run', postgresql_where=sa.text("status = 'running' OR (status = 'queued' AND dispatched_at IS NOT NULL)"))
    op.drop_column('run', 'budget_month')
    op.drop_column('run', 'reserved_micros')
    op.drop_table('workspace_limits')
    op.drop_index('uq_price_override_model', table_name='price_override')
    op.drop_table('price_override')
    op.drop_table('budget_month')
    op.drop_table('usage_rollup')
    op.drop_index('ix_usage_ledger_workspace_month', table_name='usage_ledger')
    op.drop_index('ix_usage_ledger_run', table_name='usage_ledger')
    op.drop_table('usage_ledger')
