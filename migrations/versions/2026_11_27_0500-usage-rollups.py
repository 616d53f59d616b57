"""Day rollups per model, per user and per prompt beside the fine usage rollup, kept by a trigger on it.

The fine rollup (workspace x day x model x user x prompt) can hold about one row per run when a workspace's
runs spread over many users and prompts; a 30-day dashboard then sums hundreds of thousands of rows. These
hold a few rows per day and key: each dashboard grouping reads the narrowest one that answers it.

A trigger on the fine rollup adds every change of a fine row (a new row, new minus old, minus a deleted row) to
the three day rows, in the same statement and transaction as the settlement that wrote it. Whoever writes the fine rollup
(this version's workers, an older one still draining during a rolling deploy, an operator's correction) the
day rollups cannot drift from it. The rows settled before this revision are copied in here, histograms
merged bucket by bucket, under a lock that holds settlements back until the trigger exists.

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

# Adds (or, with sign -1, subtracts) histogram b to a, bucket by bucket; buckets that come to 0 are dropped.
# PL/pgSQL rather than one SQL query: its plan is cached per session, where a SQL function with an aggregate
# is planned again on every call (measured: about +0.5 ms per settlement instead of +1.3 ms).
HISTOGRAM_SUM = """
CREATE FUNCTION usage_histogram_sum(a jsonb, b jsonb, sign integer) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    bucket text;
    added text;
    total jsonb := a;
    n bigint;
BEGIN
    FOR bucket, added IN SELECT key, value FROM jsonb_each_text(b) LOOP
        n := coalesce((total ->> bucket)::bigint, 0) + sign * added::bigint;
        IF n = 0 THEN
            total := total - bucket;
        ELSE
            total := total || jsonb_build_object(bucket, n);
        END IF;
    END LOOP;
    RETURN total;
END
$$
"""

# What a change of a fine row adds (an INSERT the row, an UPDATE new minus old, a DELETE minus the row), added
# to its three day rows; a day row left with no runs goes. Settlement only ever adds to a row under its key;
# a key that changes is refused rather than mis-counted.
ROLLUP_INTO_DAYS = """
CREATE FUNCTION usage_rollup_into_days() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    k usage_rollup%ROWTYPE;
    runs bigint;
    input_tokens bigint;
    output_tokens bigint;
    cost_micros bigint;
    ttft jsonb;
    duration jsonb;
BEGIN
    IF TG_OP = 'INSERT' THEN
        k := NEW;
        runs := NEW.runs;
        input_tokens := NEW.input_tokens;
        output_tokens := NEW.output_tokens;
        cost_micros := NEW.cost_micros;
        ttft := NEW.ttft_histogram;
        duration := NEW.duration_histogram;
    ELSIF TG_OP = 'DELETE' THEN
        k := OLD;
        runs := -OLD.runs;
        input_tokens := -OLD.input_tokens;
        output_tokens := -OLD.output_tokens;
        cost_micros := -OLD.cost_micros;
        ttft := usage_histogram_sum('{}', OLD.ttft_histogram, -1);
        duration := usage_histogram_sum('{}', OLD.duration_histogram, -1);
    ELSE
        IF (NEW.workspace_id, NEW.day, NEW.provider, NEW.model, NEW.user_id, NEW.prompt_id)
           IS DISTINCT FROM (OLD.workspace_id, OLD.day, OLD.provider, OLD.model, OLD.user_id, OLD.prompt_id) THEN
            RAISE EXCEPTION 'the key of a usage_rollup row never changes';
        END IF;
        k := NEW;
        runs := NEW.runs - OLD.runs;
        input_tokens := NEW.input_tokens - OLD.input_tokens;
        output_tokens := NEW.output_tokens - OLD.output_tokens;
        cost_micros := NEW.cost_micros - OLD.cost_micros;
        ttft := usage_histogram_sum(NEW.ttft_histogram, OLD.ttft_histogram, -1);
        duration := usage_histogram_sum(NEW.duration_histogram, OLD.duration_histogram, -1);
    END IF;
    INSERT INTO usage_model_day AS t (workspace_id, day, provider, model, runs, input_tokens, output_tokens,
                                      cost_micros, ttft_histogram, duration_histogram)
    VALUES (k.workspace_id, k.day, k.provider, k.model, runs, input_tokens, output_tokens, cost_micros,
            ttft, duration)
    ON CONFLICT (workspace_id, day, provider, model) DO UPDATE
       SET runs = t.runs + EXCLUDED.runs,
           input_tokens = t.input_tokens + EXCLUDED.input_tokens,
           output_tokens = t.output_tokens + EXCLUDED.output_tokens,
           cost_micros = t.cost_micros + EXCLUDED.cost_micros,
           ttft_histogram = usage_histogram_sum(t.ttft_histogram, EXCLUDED.ttft_histogram, 1),
           duration_histogram = usage_histogram_sum(t.duration_histogram, EXCLUDED.duration_histogram, 1);
    INSERT INTO usage_user_day AS t (workspace_id, day, user_id, runs, input_tokens, output_tokens, cost_micros)
    VALUES (k.workspace_id, k.day, k.user_id, runs, input_tokens, output_tokens, cost_micros)
    ON CONFLICT (workspace_id, day, user_id) DO UPDATE
       SET runs = t.runs + EXCLUDED.runs,
           input_tokens = t.input_tokens + EXCLUDED.input_tokens,
           output_tokens = t.output_tokens + EXCLUDED.output_tokens,
           cost_micros = t.cost_micros + EXCLUDED.cost_micros;
    INSERT INTO usage_prompt_day AS t (workspace_id, day, prompt_id, runs, input_tokens, output_tokens,
                                       cost_micros, ttft_histogram, duration_histogram)
    VALUES (k.workspace_id, k.day, k.prompt_id, runs, input_tokens, output_tokens, cost_micros, ttft, duration)
    ON CONFLICT (workspace_id, day, prompt_id) DO UPDATE
       SET runs = t.runs + EXCLUDED.runs,
           input_tokens = t.input_tokens + EXCLUDED.input_tokens,
           output_tokens = t.output_tokens + EXCLUDED.output_tokens,
           cost_micros = t.cost_micros + EXCLUDED.cost_micros,
           ttft_histogram = usage_histogram_sum(t.ttft_histogram, EXCLUDED.ttft_histogram, 1),
           duration_histogram = usage_histogram_sum(t.duration_histogram, EXCLUDED.duration_histogram, 1);
    IF runs < 0 THEN
        -- Every fine row counts at least one run: a day row back at zero runs has no fine rows left.
        DELETE FROM usage_model_day
         WHERE workspace_id = k.workspace_id AND day = k.day AND provider = k.provider AND model = k.model
           AND usage_model_day.runs = 0;
        DELETE FROM usage_user_day
         WHERE workspace_id = k.workspace_id AND day = k.day AND user_id = k.user_id AND usage_user_day.runs = 0;
        DELETE FROM usage_prompt_day
         WHERE workspace_id = k.workspace_id AND day = k.day AND prompt_id = k.prompt_id
           AND usage_prompt_day.runs = 0;
    END IF;
    RETURN NULL;
END
$$
"""

ROLLUP_INTO_DAYS_TRIGGER = """
CREATE TRIGGER usage_rollup_into_days AFTER INSERT OR UPDATE OR DELETE ON usage_rollup
    FOR EACH ROW EXECUTE FUNCTION usage_rollup_into_days()
"""

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
    # Settlements wait here until the trigger exists, so none is missed between the copy and the trigger.
    op.execute("LOCK TABLE usage_rollup IN SHARE ROW EXCLUSIVE MODE")
    op.execute(HISTOGRAM_SUM)
    op.execute(ROLLUP_INTO_DAYS)
    op.execute(ROLLUP_INTO_DAYS_TRIGGER)
    # Runs settled before this revision: the same totals, from the fine rollup.
    op.execute(BACKFILL_MODEL_DAY)
    op.execute(BACKFILL_USER_DAY)
    op.execute(BACKFILL_PROMPT_DAY)


def downgrade() -> None:
    op.execute("DROP TRIGGER usage_rollup_into_days ON usage_rollup")
    op.execute("DROP FUNCTION usage_rollup_into_days()")
    op.execute("DROP FUNCTION usage_histogram_sum(jsonb, jsonb, integer)")
    op.drop_table('usage_prompt_day')
    op.drop_table('usage_user_day')
    op.drop_table('usage_model_day')
