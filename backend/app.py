"""The ASGI application: routers under /api/v1, health probes, problem+json everywhere."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from backend.comparisons.endpoints import router as comparisons_router
from backend.core.database import create_engine, create_sessionmaker, ping
from backend.core.errors import install_problem_handlers, problem_response
from backend.core.middleware import BodySizeLimit, RefuseNul
from backend.core.openapi import install_openapi
from backend.core.settings import Settings, get_settings
from backend.core.tasks import cancel_and_wait
from backend.crypto.master import LocalKeyProvider
from backend.crypto.service import Keyring
from backend.datasets.endpoints import router as datasets_router
from backend.identity.endpoints import admin_router, reset_router
from backend.identity.endpoints import me_router as my_identity_router
from backend.lifecycle.endpoints import router as lifecycle_router
from backend.lifecycle.exports import ExportRunner
from backend.maintenance import maintenance_loop
from backend.observability import metrics as observability
from backend.observability.logs import RequestContext
from backend.prompts.endpoints import router as prompts_router
from backend.ratelimit.limiter import MemoryLimiter, RedisLimiter
from backend.runs.backends.factory import build_backends
from backend.runs.endpoints import router as runs_router
from backend.runs.providers.registry import close_providers
from backend.runs.repository import count_waiting
from backend.runs.worker import Worker
from backend.safety.endpoints import router as safety_router
from backend.usage.endpoints import models_router
from backend.usage.endpoints import router as usage_router
from backend.web.spa import install_spa
from backend.workspaces.dependencies import authenticate_before_body
from backend.workspaces.endpoints import auth_router, me_router, workspaces_router

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
PUBLIC_PATHS = frozenset(
    f"{API_PREFIX}/auth/{path}"
    for path in ("signup", "login", "password-reset", "forgot-password", "sso", "sso/start", "sso/callback")
)


def redis_client(url: str) -> Redis:
    """A client whose pool waits for a free connection instead of failing: a process may follow 1,000
    streams and append to hundreds at once."""
    # After a Redis restart every pooled connection fails its next command once: retry on a fresh one.
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=512,
        timeout=10,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return Redis(connection_pool=pool)


def build_keyring(settings: Settings, *, create_key_file: bool = False) -> Keyring:
    provider = LocalKeyProvider.from_environment(
        settings.master_key, settings.master_keys_previous, settings.data_dir, create_file=create_key_file
    )
    return Keyring(provider, cache_seconds=settings.key_cache_seconds)


def create_app(
    settings: Settings | None = None,
    *,
    keyring: Keyring | None = None,
    background_jobs: bool = False,
    workers: int = 0,
) -> FastAPI:
    """`background_jobs` runs the workers' housekeeping inside this process, and `workers` > 0 runs a run
    worker of that concurrency in it too (both for the all-in-one `up`)."""
    settings = settings or get_settings()
    if not settings.database_url:
        raise RuntimeError("PLAYGROUND_DATABASE_URL is not set")
    keyring = keyring or build_keyring(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await keyring.start_listener(settings.database_url)
        jobs = asyncio.create_task(maintenance_loop(app.state.sessionmaker, keyring)) if background_jobs else None
        worker = None
        if workers > 0:
            worker = Worker(
                sessionmaker=app.state.sessionmaker,
                keyring=keyring,
                backends=app.state.run_backends,
                settings=settings,
                concurrency=workers,
            )
            worker_task = asyncio.create_task(worker.run(), name="in-process-worker")
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
                await worker_task
            if jobs is not None:
                await cancel_and_wait([jobs])
            await app.state.exports.aclose()
            await app.state.run_backends.aclose()
            await close_providers()
            await keyring.stop_listener()
            if app.state.redis is not None:
                await app.state.redis.aclose()
            await app.state.engine.dispose()

    app = FastAPI(
        title="Prompt Playground",
        version="0.1.0",
        description="Author prompts, run them against model providers, compare, review cost and safety.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    # Connections are opened lazily, so building the app needs no running database.
    app.state.settings = settings
    app.state.keyring = keyring
    app.state.engine = create_engine(
        settings.database_url, pool_size=settings.db_pool_size or 10, max_overflow=settings.db_max_overflow
    )
    app.state.sessionmaker = create_sessionmaker(app.state.engine)
    app.state.exports = ExportRunner(app.state.sessionmaker, keyring)  # exports made in this process
    app.state.redis = redis_client(settings.redis_url) if settings.redis_url else None
    app.state.run_backends = build_backends(app.state.redis, settings.redis_prefix)
    app.state.limiter = (
        RedisLimiter(app.state.redis, settings.redis_prefix) if app.state.redis is not None else MemoryLimiter()
    )

    install_problem_handlers(app, authenticate=authenticate_before_body, public_paths=PUBLIC_PATHS)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RefuseNul)
    app.add_middleware(RequestContext)  # outermost: every line of a request carries its id

    routers = (auth_router, me_router, workspaces_router, prompts_router, runs_router, usage_router, models_router)
    for router in (*routers, safety_router, my_identity_router, admin_router, reset_router, lifecycle_router):
        app.include_router(router, prefix=API_PREFIX)
    for router in (datasets_router, comparisons_router):
        app.include_router(router, prefix=API_PREFIX)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        """Prometheus text: this process's counters, plus the queue's depth and the runs waiting for a slot."""
        if not observability.authorized(request.app.state.settings.metrics_token, request.headers.get("authorization")):
            return problem_response(401, "Unauthorized", "Metrics need the metrics bearer token", "unauthorized")
        with contextlib.suppress(Exception):  # the queue or the database away: still serve what we have
            observability.QUEUE_DEPTH.set(await request.app.state.run_backends.queue.depth())
        with contextlib.suppress(Exception):
            async with request.app.state.sessionmaker() as session:
                observability.RUNS_WAITING.set(await count_waiting(session))
        body, content_type = observability.exposition()
        return Response(body, media_type=content_type)

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            await ping(request.app.state.engine)
            checks["database"] = "ok"
        except Exception as exc:
            logger.warning("readiness: database unreachable: %s", type(exc).__name__)
            checks["database"] = "unreachable"
        if request.app.state.redis is not None:
            try:
                await request.app.state.redis.ping()
                checks["redis"] = "ok"
            except Exception as exc:
                logger.warning("readiness: redis unreachable: %s", type(exc).__name__)
                checks["redis"] = "unreachable"
        else:
            checks["redis"] = "in-process"
        if all(v in ("ok", "in-process") for v in checks.values()):
            return JSONResponse({"status": "ready", "checks": checks})
        failing = ", ".join(k for k, v in checks.items() if v == "unreachable")
        response = problem_response(503, "Not ready", f"Unreachable: {failing}", "not-ready", checks=checks)
        return response

    install_openapi(app, public_paths=PUBLIC_PATHS)
    install_spa(app)  # the browser app at / (after the API, which keeps every /api path)
    return app
