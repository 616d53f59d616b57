"""Prompts, immutable versions (with the trigger that keeps them so), labels and their history, comments.

Revision ID: 20261127_prompts
Revises: 20261127_workspace_keys
Create Date: 2026-11-27 00:51:00.462885
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '20261127_prompts'
down_revision: str | None = '20261127_workspace_keys'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('prompt',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('workspace_id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('archived', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('version_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('created_by', sa.UUID(), nullable=True),
    sa.Column('updated_by', sa.UUID(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['user_account.id'], name=op.f('fk_prompt_created_by_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['updated_by'], ['user_account.id'], name=op.f('fk_prompt_updated_by_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], name=op.f('fk_prompt_workspace_id_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prompt')),
    sa.UniqueConstraint('workspace_id', 'name', name='uq_prompt_workspace_name')
    )
    op.create_table('prompt_label_move',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('workspace_id', sa.UUID(), nullable=False),
    sa.Column('prompt_id', sa.UUID(), nullable=False),
    sa.Column('label', sa.String(length=40), nullable=False),
    sa.Column('from_number', sa.Integer(), nullable=True),
    sa.Column('to_number', sa.Integer(), nullable=False),
    sa.Column('moved_by', sa.UUID(), nullable=True),
    sa.Column('moved_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['moved_by'], ['user_account.id'], name=op.f('fk_prompt_label_move_moved_by_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['prompt_id'], ['prompt.id'], name=op.f('fk_prompt_label_move_prompt_id_prompt'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], name=op.f('fk_prompt_label_move_workspace_id_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prompt_label_move'))
    )
    op.create_index('ix_prompt_label_move_prompt', 'prompt_label_move', ['prompt_id', 'label', sa.literal_column('moved_at DESC')], unique=False)
    op.create_table('prompt_version',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('workspace_id', sa.UUID(), nullable=False),
    sa.Column('prompt_id', sa.UUID(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('system', sa.LargeBinary(), nullable=False),
    sa.Column('messages', sa.LargeBinary(), nullable=False),
    sa.Column('model_config', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('variables', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('message', sa.String(length=500), server_default='', nullable=False),
    sa.Column('parent_id', sa.UUID(), nullable=True),
    sa.Column('created_by', sa.UUID(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['user_account.id'], name=op.f('fk_prompt_version_created_by_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['parent_id'], ['prompt_version.id'], name=op.f('fk_prompt_version_parent_id_prompt_version')),
    sa.ForeignKeyConstraint(['prompt_id'], ['prompt.id'], name=op.f('fk_prompt_version_prompt_id_prompt'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], name=op.f('fk_prompt_version_workspace_id_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prompt_version')),
    sa.UniqueConstraint('prompt_id', 'content_hash', name='uq_prompt_version_prompt_content_hash'),
    sa.UniqueConstraint('prompt_id', 'number', name='uq_prompt_version_prompt_number')
    )
    op.create_index('ix_prompt_version_workspace', 'prompt_version', ['workspace_id'], unique=False)
    op.create_table('prompt_label',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('workspace_id', sa.UUID(), nullable=False),
    sa.Column('prompt_id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('version_id', sa.UUID(), nullable=False),
    sa.Column('updated_by', sa.UUID(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['prompt_id'], ['prompt.id'], name=op.f('fk_prompt_label_prompt_id_prompt'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by'], ['user_account.id'], name=op.f('fk_prompt_label_updated_by_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['version_id'], ['prompt_version.id'], name=op.f('fk_prompt_label_version_id_prompt_version'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], name=op.f('fk_prompt_label_workspace_id_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prompt_label')),
    sa.UniqueConstraint('prompt_id', 'name', name='uq_prompt_label_prompt_name')
    )
    op.create_table('version_comment',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('workspace_id', sa.UUID(), nullable=False),
    sa.Column('version_id', sa.UUID(), nullable=False),
    sa.Column('author_id', sa.UUID(), nullable=True),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('resolved', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('resolved_by', sa.UUID(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('edited_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['author_id'], ['user_account.id'], name=op.f('fk_version_comment_author_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['resolved_by'], ['user_account.id'], name=op.f('fk_version_comment_resolved_by_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['version_id'], ['prompt_version.id'], name=op.f('fk_version_comment_version_id_prompt_version'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], name=op.f('fk_version_comment_workspace_id_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_version_comment'))
    )
    op.create_index(op.f('ix_version_comment_version_id'), 'version_comment', ['version_id'], unique=False)

    # Versions are immutable. Only two transactions may touch them, and they say so first with
    # set_config('playground.sanctioned', ..., true): re-encryption under a rotated key (ciphertext
    # columns only; every other column must stay as it was) and the audited deletion path.
    op.execute("""
        CREATE FUNCTION prompt_version_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            sanctioned text := coalesce(current_setting('playground.sanctioned', true), '');
        BEGIN
            IF TG_OP = 'DELETE' THEN
                IF sanctioned = 'delete' THEN
                    RETURN OLD;
                END IF;
                RAISE EXCEPTION 'prompt versions are immutable: DELETE only through the audited deletion path';
            END IF;
            IF sanctioned = 'reencrypt'
                AND NEW.id = OLD.id AND NEW.workspace_id = OLD.workspace_id AND NEW.prompt_id = OLD.prompt_id
                AND NEW.number = OLD.number AND NEW.content_hash = OLD.content_hash
                AND NEW.model_config = OLD.model_config AND NEW.variables = OLD.variables
                AND NEW.message = OLD.message AND NEW.parent_id IS NOT DISTINCT FROM OLD.parent_id
                AND NEW.created_by IS NOT DISTINCT FROM OLD.created_by AND NEW.created_at = OLD.created_at THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION 'prompt versions are immutable: UPDATE only to re-encrypt under a rotated key';
        END $$;
    """)
    op.execute("""
        CREATE TRIGGER prompt_version_immutable BEFORE UPDATE OR DELETE ON prompt_version
        FOR EACH ROW EXECUTE FUNCTION prompt_version_guard();
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER prompt_version_immutable ON prompt_version")
    op.execute("DROP FUNCTION prompt_version_guard()")
    op.drop_index(op.f('ix_version_comment_version_id'), table_name='version_comment')
    op.drop_table('version_comment')
    op.drop_table('prompt_label')
    op.drop_index('ix_prompt_version_workspace', table_name='prompt_version')
    op.drop_table('prompt_version')
    op.drop_index('ix_prompt_label_move_prompt', table_name='prompt_label_move')
    op.drop_table('prompt_label_move')
    op.drop_table('prompt')
