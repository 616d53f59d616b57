"""Day rollups per model, per user and per prompt beside the fine usage rollup, filled from it.

The fine rollup (workspace x day x model x user x prompt) can hold about one row per run when a workspace's
runs spread over many users and prompts; a 30-day dashboard then sums hundreds of thousands of rows. These
hold a few rows per day and key: each dashboard grouping reads the narrowest one that answers it. Settlement
writes all four in one statement; existing totals are copied from the fine rollup here (histograms merged
bucket by bucket), so every grouping adds up to the same totals from the first request.

Revision ID: 20261127_usage_rollups
Revises: 20261127_usage
Create Date: 2026-11-27 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '20261127_usage_rollups'
down_revision: str | None = '20261127_usage'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A group's histograms are added bucket by bucket ({"100": 2} + {"100": 1, "200": 1} = {"100": 3, "200": 1}).
BACKFILL_MODEL_DAY = """
INSERT INTO usage_model_day (workspace_id, day, provider, model, runs, input_tokens, output_tokens, cost_micros,
                             ttft_histogram, duration_histogram)
SELECT workspace_id, day, provider, model, sum(runs), sum(input_tokens), sum(output_tokens), sum(cost_micros),
       (SELECT coalesce(jsonb_object_agg(b.key, b.n), '{}'::jsonb)
          FROM (SELECT e.key, sum(e.value::bigint) AS n
                  FROM unnest(array_agg(ttft_histogram)) AS h(histogram), jsonb_each_text(h.histogram) AS e
                 GROUP BY e.key) AS b),
       (SELECT coalesce(jsonb_object_agg(b.key, b.n), '{}'::jsonb)
          FROM (SELECT e.key, sum(e.value::bigint) AS n
                  FROM unnest(array_agg(duration_histogram)) AS h(histogram), jsonb_each_text(h.histogram) AS e
                 GROUP BY e.key) AS b)
  FROM usage_rollup
 GROUP BY workspace_id, day, provider, model
"""

BACKFILL_USER_DAY = """
INSERT INTO usage_user_day (workspace_id, day, user_id, runs, input_tokens, output_tokens, cost_micros)
SELECT workspace_id, day, user_id, sum(runs), sum(input_tokens), sum(output_tokens), sum(cost_micros)
  FROM usage_rollup
 GROUP BY workspace_id, day, user_id
"""

BACKFILL_PROMPT_DAY = """
INSERT INTO usage_prompt_day (workspace_id, day, prompt_id, runs, input_tokens, output_tokens, cost_micros,
                              ttft_histogram, duration_histogram)
SELECT workspace_id, day, prompt_id, sum(runs), sum(input_tokens), sum(output_tokens), sum(cost_micros),
       (SELECT coalesce(jsonb_object_agg(b.key, b.n), '{}'::jsonb)
          FROM (SELECT e.key, sum(e.value::bigint) AS n
                  FROM unnest(array_agg(ttft_histogram)) AS h(histogram), jsonb_each_text(h.histogram) AS e
                 GROUP BY e.key) AS b),
       (SELECT coalesce(jsonb_object_agg(b.key, b.n), '{}'::jsonb)
          FROM (SELECT e.key, sum(e.value::bigint) AS n
                  FROM unnest(array_agg(duration_histogram)) AS h(histogram), jsonb_each_text(h.histogram) AS e
                 GROUP BY e.key) AS b)
  FROM usage_rollup
 GROUP BY workspace_id, day, prompt_id
"""


def counters() -> list[sa.Column]:
    return [
        sa.Column('runs', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
        sa.Column('input_tokens', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
        sa.Column('output_tokens', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
        sa.Column('cost_micros', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    ]


def histograms() -> list[sa.Column]:
    return [
        sa.Column('ttft_histogram', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column('duration_histogram', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    ]


def upgrade() -> None:
    op.create_table('usage_model_day',
    sa.Column('workspace_id', sa.UUID(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    *counters(),
    *histograms(),
    sa.PrimaryKeyConstraint('workspace_id', 'day', 'provider', 'model', name=op.f('pk_usage_model_day'))
    )
    op.create_table('usage_user_day',
    sa.Column('workspace_id', sa.UUID(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=False),
    *counters(),
    sa.PrimaryKeyConstraint('workspace_id', 'day', 'user_id', name=op.f('pk_usage_user_day'))
    )
    op.create_table('usage_prompt_day',
    sa.Column('workspace_id', sa.UUID(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('prompt_id', sa.UUID(), nullable=False),
    *counters(),
    *histograms(),
    sa.PrimaryKeyConstraint('workspace_id', 'day', 'prompt_id', name=op.f('pk_usage_prompt_day'))
    )
    # Runs settled before this revision: the same totals, from the fine rollup.
    op.execute(BACKFILL_MODEL_DAY)
    op.execute(BACKFILL_USER_DAY)
    op.execute(BACKFILL_PROMPT_DAY)


def downgrade() -> None:
    op.drop_table('usage_prompt_day')
    op.drop_table('usage_user_day')
    op.drop_table('usage_model_day')
