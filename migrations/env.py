"""Alembic environment: async engine, one advisory lock so concurrent `migrate` calls never race."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from backend.core.settings import get_settings
from backend.models import metadata

# Any constant works; it only has to be the same for every process migrating this database.
MIGRATION_LOCK_ID = 0x50_4C_41_59_47_52_4E_44  # "PLAYGRND"

config = context.config


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    if not url:
        raise SystemExit("PLAYGROUND_DATABASE_URL is not set")
    return url


def _run(connection: Connection) -> None:
    # Session-level lock taken before Alembic reads the current revision: a second process waits,
    # then finds the schema already at head and does nothing.
    connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    try:
        context.configure(connection=connection, target_metadata=metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
        connection.commit()


async def _run_online() -> None:
    engine = create_async_engine(_url(), pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
