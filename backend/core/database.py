"""The database engine, the declarative base and the per-request unit of work."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, func, literal, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

logger = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # Fetch server-side defaults (timestamps) with RETURNING: no hidden lazy load after an insert.
    __mapper_args__ = {"eager_defaults": True}


def is_transient_db_error(exc: BaseException) -> bool:
    """A failure of the database connection rather than of the statement (no connection to be had, the
    server went away, the pool timed out): worth retrying, and never the caller's fault."""
    if isinstance(exc, sa_exc.TimeoutError | ConnectionError):
        return True
    if isinstance(exc, sa_exc.IntegrityError | sa_exc.ProgrammingError | sa_exc.DataError):
        return False
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(exc.orig, OSError) or _is_connection_refusal(exc)
    return isinstance(exc, OSError)


def _is_connection_refusal(exc: sa_exc.DBAPIError) -> bool:
    cause = exc.orig.__cause__ if exc.orig is not None else None
    return isinstance(
        cause,
        asyncpg.exceptions.TooManyConnectionsError
        | asyncpg.exceptions.CannotConnectNowError
        | asyncpg.exceptions.ConnectionDoesNotExistError
        | asyncpg.exceptions.AdminShutdownError,
    ) or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)


def uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)


def created_at_column() -> Mapped[datetime]:
    # Timestamps come from the database clock so that every process agrees on them.
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def create_engine(url: str, *, pool_size: int = 10, max_overflow: int | None = None) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size * 2 if max_overflow is None else max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
        hide_parameters=True,  # a failed statement's error (and so a log line) never carries a value
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: committed when the handler returns, rolled back when it raises."""
    maker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with maker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
            # Work that must only happen after the commit (queue hand-off, cache invalidation).
            for callback in session.info.pop("after_commit", []):
                try:
                    await callback()
                except Exception:
                    # The work is committed: the answer must say so. What the callback would have done (a
                    # queue hand-off) is redone by the reconciler from the database.
                    logger.warning("after-commit step failed; the reconciler will redo it", exc_info=True)


# A transaction on one of the sanctioned paths (re-encryption, the audited deletion path) says so, and
# the triggers that guard immutable rows let exactly that transaction through.
SANCTIONED_SETTING = "playground.sanctioned"


async def mark_sanctioned(session: AsyncSession, reason: str) -> None:
    await session.execute(select(func.set_config(SANCTIONED_SETTING, reason, literal(True))))


def after_commit(session: AsyncSession, callback) -> None:
    """Run `callback` once the request's transaction has committed; never if it rolls back."""
    session.info.setdefault("after_commit", []).append(callback)


# Exit code runs when the handler returns, before the response is sent, so a 2xx means "committed".
DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]
