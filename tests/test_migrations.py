"""The migrations and the models describe the same schema, and the schema is what the app expects."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from backend.models import metadata


async def test_models_match_the_migrated_schema(db_engine):
    def diff(sync_conn):
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return compare_metadata(context, metadata)

    async with db_engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert changes == [], f"models and migrations disagree; write a migration: {changes}"


async def test_database_is_at_head(db_engine):
    from alembic.script import ScriptDirectory

    from backend.core.migrate import alembic_config

    heads = ScriptDirectory.from_config(alembic_config("postgresql+asyncpg://unused/unused")).get_heads()
    async with db_engine.connect() as conn:
        current = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
    assert len(heads) == 1, f"migration history has branched: {heads}"
    assert current == heads
