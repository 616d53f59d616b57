"""Shared fixtures: a fresh PostgreSQL database per test session (migrated once), tables emptied after
each test, a private Redis keyspace per test, and an httpx client over the real ASGI app."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from httpx import ASGITransport, AsyncClient
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from backend.app import create_app
from backend.core.migrate import upgrade_to_head_async
from backend.core.settings import Settings
from backend.crypto.master import generate_master_key
from backend.models import metadata

ADMIN_DSN = os.environ.get("PLAYGROUND_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("PLAYGROUND_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _async_url(dsn: str, database: str) -> str:
    base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{database}"


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    name = f"pp_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = _async_url(ADMIN_DSN, name)
    try:
        await upgrade_to_head_async(url)
        yield url
    finally:
        admin = await asyncpg.connect(ADMIN_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="session")
async def db_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture(autouse=True)
async def _empty_tables(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    yield
    if "db_engine" not in request.fixturenames:
        return
    engine: AsyncEngine = request.getfixturevalue("db_engine")
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} CASCADE"))


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"pp-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = Redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


MASTER_KEY = generate_master_key()


@pytest.fixture
def settings(database_url: str, redis_prefix: str) -> Settings:
    return Settings(database_url=database_url, redis_url=REDIS_URL, redis_prefix=redis_prefix, master_key=MASTER_KEY)


@pytest.fixture
async def app(settings: Settings, db_engine: AsyncEngine):
    application = create_app(settings)
    yield application
    await application.state.exports.aclose()  # exports the test started and did not wait for
    if application.state.redis is not None:
        await application.state.redis.aclose()
    await application.state.engine.dispose()


class Client(AsyncClient):
    """An httpx client that behaves like the SPA: it echoes the csrf_token cookie on writes."""

    async def request(self, method: str, url, **kwargs):
        csrf = self.cookies.get("csrf_token")
        if csrf and method.upper() in {"POST", "PUT", "PATCH", "DELETE"}:
            headers = dict(kwargs.pop("headers", None) or {})
            headers.setdefault("X-CSRF-Token", csrf)
            kwargs["headers"] = headers
        return await super().request(method, url, **kwargs)


@pytest.fixture
def make_client(app):
    """Factory of independent clients (separate cookie jars) on the same app."""
    clients: list[AsyncClient] = []

    def factory(*, csrf: bool = True) -> AsyncClient:
        cls = Client if csrf else AsyncClient
        client = cls(transport=ASGITransport(app=app), base_url="http://testserver/api/v1")
        clients.append(client)
        return client

    yield factory


@pytest.fixture
def client(make_client) -> AsyncClient:
    return make_client()
