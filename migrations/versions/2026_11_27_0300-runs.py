"""Runs: pinned snapshots, sealed output, leases, idempotency keys.

Revision ID: 20261127_runs
Revises: 20261127_prompts
Create Date: 2026-11-27 00:56:29.146761
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '20261127_runs'
down_revision: str | None = '20261127_prompts'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('run',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('workspace_id', sa.UUID(), nullable=False),
    sa.Column('prompt_id', sa.UUID(), nullable=False),
    sa.Column('version_id', sa.UUID(), nullable=False),
    sa.Column('version_number', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='queued', nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('snapshot', sa.LargeBinary(), nullable=False),
    sa.Column('output', sa.LargeBinary(), nullable=True),
    sa.Column('output_chars', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('stop_reason', sa.String(length=40), nullable=True),
    sa.Column('input_tokens', sa.Integer(), nullable=True),
    sa.Column('output_tokens', sa.Integer(), nullable=True),
    sa.Column('usage_estimated', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('cost_micros', sa.BigInteger(), nullable=True),
    sa.Column('ttft_ms', sa.Integer(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.Column('error', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('flags', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('created_by', sa.UUID(), nullable=True),
    sa.Column('rerun_of', sa.UUID(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.Column('request_hash', sa.LargeBinary(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_owner', sa.String(length=100), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('cancel_requested_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_seq', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name=op.f('ck_run_status')),
    sa.ForeignKeyConstraint(['created_by'], ['user_account.id'], name=op.f('fk_run_created_by_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['prompt_id'], ['prompt.id'], name=op.f('fk_run_prompt_id_prompt'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['version_id'], ['prompt_version.id'], name=op.f('fk_run_version_id_prompt_version'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], name=op.f('fk_run_workspace_id_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_run'))
    )
    op.create_index('ix_run_prompt_created', 'run', ['prompt_id', sa.literal_column('created_at DESC')], unique=False)
    op.create_index('ix_run_queued', 'run', ['created_at'], unique=False, postgresql_where=sa.text("status = 'queued'"))
    op.create_index('ix_run_running_lease', 'run', ['lease_expires_at'], unique=False, postgresql_where=sa.text("status = 'running'"))
    op.create_index('ix_run_workspace_created', 'run', ['workspace_id', sa.literal_column('created_at DESC'), sa.literal_column('id DESC')], unique=False)
    op.create_index('uq_run_idempotency', 'run', ['workspace_id', 'created_by', 'idempotency_key'], unique=True, postgresql_where=sa.text('idempotency_key IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('uq_run_idempotency', table_name='run', postgresql_where=sa.text('idempotency_key IS NOT NULL'))
    op.drop_index('ix_run_workspace_created', table_name='run')
    op.drop_index('ix_run_running_lease', table_name='run', postgresql_where=sa.text("status = 'running'"))
    op.drop_index('ix_run_queued', table_name='run', postgresql_where=sa.text("status = 'queued'"))
    op.drop_index('ix_run_prompt_created', table_name='run')
    op.drop_table('run')
