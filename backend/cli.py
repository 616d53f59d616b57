"""The `playground` command: up (all-in-one), api, worker, migrate."""

from __future__ import annotations

import logging
import os
import resource
import signal
import time
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click

logger = logging.getLogger("playground")
DEFAULT_UP_WORKERS = 100  # concurrent runs of the in-process worker of `playground up`


def _configure_logging() -> None:
    """JSON lines by default (PLAYGROUND_LOG_FORMAT=text for people reading a terminal)."""
    from backend.observability.logs import configure

    configure(os.environ.get("PLAYGROUND_LOG_LEVEL", "INFO"), os.environ.get("PLAYGROUND_LOG_FORMAT", "json"))
    from backend.observability.tracing import configure as configure_tracing

    configure_tracing(os.environ.get("OTEL_SERVICE_NAME", "prompt-playground"))


def _raise_open_file_limit() -> None:
    # Every live event stream is a socket; 1,000 of them need more than the usual 1,024 descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            logger.warning("could not raise the open-file limit from %s", soft)


def _exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so `finally` blocks (stopping PostgreSQL) always run."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, handler)


def _serve(app, host: str, port: int) -> None:
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        log_config=None,  # our handler and format (observability/logs.py), not uvicorn's own
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
        server_header=False,
    )
    uvicorn.Server(config).run()


def _require_database_url() -> str:
    from backend.core.settings import get_settings

    url = get_settings().database_url
    if not url:
        raise click.UsageError("PLAYGROUND_DATABASE_URL is not set (postgresql+asyncpg://user:pass@host/db)")
    return url


@click.group()
def main() -> None:
    """Prompt Playground."""
    _configure_logging()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--data-dir", default="./data", show_default=True, type=click.Path(path_type=Path))
def up(host: str, port: int, data_dir: Path) -> None:
    """Everything in one process: private PostgreSQL (unless configured), API, workers, SPA."""
    from backend.core.migrate import upgrade_to_head
    from backend.core.settings import Settings

    started = time.monotonic()
    _raise_open_file_limit()
    _exit_on_sigterm()
    data_dir = data_dir.resolve()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.environ["PLAYGROUND_DATA_DIR"] = str(data_dir)

    embedded = None
    try:
        database_url = os.environ.get("PLAYGROUND_DATABASE_URL")
        if not database_url:
            from backend.embedded.postgres import DataDirInUse, EmbeddedPostgres

            embedded = EmbeddedPostgres(data_dir)
            try:
                database_url = embedded.start()
            except DataDirInUse as exc:
                embedded = None
                click.echo(f"error: {exc}", err=True)
                raise SystemExit(1) from exc
            os.environ["PLAYGROUND_DATABASE_URL"] = database_url
        upgrade_to_head(database_url)

        from backend.app import build_keyring, create_app

        settings = Settings(database_url=database_url, data_dir=data_dir)
        app = create_app(
            settings,
            keyring=build_keyring(settings, create_key_file=True),
            background_jobs=True,
            workers=DEFAULT_UP_WORKERS,
        )
        mode = "external PostgreSQL" if embedded is None else f"private PostgreSQL in {data_dir}"
        queue = "Redis" if settings.redis_url else "in-process queue"
        click.echo(
            f"Prompt Playground is running at http://{host}:{port}  "
            f"({mode}, {queue}; ready in {time.monotonic() - started:.2f}s)",
            err=True,
        )
        _serve(app, host, port)
    finally:
        if embedded is not None:
            embedded.stop()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def api(host: str, port: int) -> None:
    """The API process for production (PostgreSQL and Redis from the environment)."""
    _raise_open_file_limit()
    _exit_on_sigterm()
    _require_database_url()
    from backend.app import create_app
    from backend.core.settings import get_settings

    if not get_settings().redis_url:
        # Without Redis the api's runs could only reach a worker in its own process, and it has none:
        # accepted runs would never start. `playground up` is the all-in-one mode.
        raise click.UsageError("PLAYGROUND_REDIS_URL is not set: the api hands runs to workers through Redis")
    _serve(create_app(), host, port)


@main.command()
@click.option("--concurrency", default=100, show_default=True, type=int, help="Runs streamed at once.")
def worker(concurrency: int) -> None:
    """The worker process for production: claims runs, streams them, reconciles, housekeeps."""
    import asyncio

    from backend.app import build_keyring, redis_client
    from backend.core.database import create_engine, create_sessionmaker
    from backend.core.settings import get_settings
    from backend.core.tasks import cancel_and_wait
    from backend.maintenance import maintenance_loop
    from backend.runs.backends.factory import build_backends
    from backend.runs.providers.registry import close_providers
    from backend.runs.worker import Worker

    _raise_open_file_limit()
    url = _require_database_url()
    settings = get_settings()
    if not settings.redis_url:
        raise click.UsageError("PLAYGROUND_REDIS_URL is not set: a separate worker needs Redis to reach the api")
    keyring = build_keyring(settings)

    async def run() -> None:
        import signal as signals

        # Every in-flight run saves progress about once a second: the pool grows with the concurrency.
        pool = settings.db_pool_size or min(max(10, concurrency // 5), 20)
        engine = create_engine(url, pool_size=pool, max_overflow=settings.db_max_overflow)
        sessionmaker = create_sessionmaker(engine)
        redis = redis_client(settings.redis_url)
        backends = build_backends(redis, settings.redis_prefix)
        runner = Worker(
            sessionmaker=sessionmaker, keyring=keyring, backends=backends, settings=settings, concurrency=concurrency
        )
        loop = asyncio.get_running_loop()
        for sig in (signals.SIGTERM, signals.SIGINT):
            loop.add_signal_handler(sig, runner.stop)
        await keyring.start_listener(url)
        housekeeping = asyncio.create_task(maintenance_loop(sessionmaker, keyring))
        metrics_server = None
        if settings.worker_metrics_port:
            from backend.observability.server import MetricsServer

            metrics_server = MetricsServer(
                settings.worker_metrics_host, settings.worker_metrics_port, settings.metrics_token
            )
            metrics_server.start()
        logger.info("worker %s started (concurrency %d)", runner.worker_id, concurrency)
        try:
            await runner.run()
        finally:
            if metrics_server is not None:
                await metrics_server.stop()
            await cancel_and_wait([housekeeping])
            await backends.aclose()
            await close_providers()
            await keyring.stop_listener()
            await redis.aclose()
            await engine.dispose()
            logger.info("worker stopped")

    _run_fast(run())


def _run_fast(main_coroutine: Coroutine[Any, Any, None]) -> None:
    """asyncio.run on uvloop when it is installed (it comes with uvicorn[standard]): a worker spends much of
    its time in the event loop itself."""
    import asyncio

    try:
        import uvloop
    except ImportError:
        asyncio.run(main_coroutine)
        return
    uvloop.run(main_coroutine)


@main.command()
def migrate() -> None:
    """Apply migrations to PLAYGROUND_DATABASE_URL; safe to run from several processes at once."""
    from backend.core.migrate import upgrade_to_head

    upgrade_to_head(_require_database_url())
    click.echo("database is at the latest migration", err=True)


def _side_command_database(data_dir: Path) -> tuple[str, Path]:
    """PLAYGROUND_DATABASE_URL, else the embedded server of a `playground up` running on data_dir."""
    from backend.embedded.postgres import EmbeddedPostgres

    url = os.environ.get("PLAYGROUND_DATABASE_URL")
    data_dir = data_dir.resolve()
    os.environ.setdefault("PLAYGROUND_DATA_DIR", str(data_dir))
    if url:
        return url, data_dir
    return EmbeddedPostgres(data_dir).attach_url(), data_dir


@main.group()
def keys() -> None:
    """Key management, online: the product keeps serving while keys rotate."""


@keys.command("rotate-workspace")
@click.argument("workspace_id", type=click.UUID)
@click.option("--data-dir", default="./data", show_default=True, type=click.Path(path_type=Path))
@click.option("--settle-seconds", type=float, default=None, help="Wait before the last pass (default: cache TTL).")
def rotate_workspace(workspace_id: uuid.UUID, data_dir: Path, settle_seconds: float | None) -> None:
    """New data key for one workspace; re-encrypts its content in batches."""
    import asyncio

    from backend.app import build_keyring
    from backend.core.database import create_engine, create_sessionmaker
    from backend.core.settings import Settings
    from backend.workspaces import service

    url, data_dir = _side_command_database(data_dir)
    settings = Settings(database_url=url, data_dir=data_dir)
    keyring = build_keyring(settings)

    async def run() -> tuple[int, int]:
        engine = create_engine(url, pool_size=2)
        try:
            return await service.rotate_workspace_key(
                create_sessionmaker(engine), keyring, workspace_id, settle_seconds=settle_seconds,
                progress=lambda n: click.echo(f"re-encrypted {n} values", err=True),
            )
        finally:
            await engine.dispose()

    version, rows = asyncio.run(run())
    click.echo(f"workspace {workspace_id}: data key v{version} active; {rows} values re-encrypted", err=True)


@keys.command("rotate-master")
@click.option("--data-dir", default="./data", show_default=True, type=click.Path(path_type=Path))
def rotate_master(data_dir: Path) -> None:
    """Re-wraps every data key under the current master key (key file: generates the new key first)."""
    import asyncio

    from backend.app import build_keyring
    from backend.core.database import create_engine, create_sessionmaker
    from backend.core.settings import Settings
    from backend.workspaces import service

    url, data_dir = _side_command_database(data_dir)
    settings = Settings(database_url=url, data_dir=data_dir)
    keyring = build_keyring(settings)
    provider = keyring.provider
    file_mode = settings.master_key is None
    if file_mode:
        new_id = provider.rotate_file_key()
        click.echo(f"new master key {new_id} written to {data_dir / 'master.key'}; back up this file", err=True)

    async def run() -> list:
        engine = create_engine(url, pool_size=2)
        try:
            return await service.rotate_master_key(create_sessionmaker(engine), keyring)
        finally:
            await engine.dispose()

    touched = asyncio.run(run())
    if file_mode:
        provider.forget_keys_except_current()
    click.echo(f"re-wrapped the data keys of {len(touched)} workspaces under {provider.current_key_id()}", err=True)


@main.group()
def admin() -> None:
    """Instance administration from the command line."""


@admin.command("create")
@click.argument("email")
@click.option("--name", default="Administrator", show_default=True)
@click.option("--data-dir", default="./data", show_default=True, type=click.Path(path_type=Path))
@click.password_option(envvar="PLAYGROUND_ADMIN_PASSWORD", help="Asked for when not given (or from the environment).")
def admin_create(email: str, name: str, data_dir: Path, password: str) -> None:
    """Create an instance admin account, or make an existing account one (its password is then left alone)."""
    import asyncio

    from sqlalchemy import select

    from backend.core.database import create_engine, create_sessionmaker
    from backend.workspaces.models import User
    from backend.workspaces.service import Actor, hash_password, record_audit

    if len(password) < 8:
        raise click.BadParameter("at least 8 characters", param_hint="password")
    url, _data_dir = _side_command_database(data_dir)

    async def run() -> str:
        engine = create_engine(url, pool_size=1)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                user = (await session.execute(select(User).where(User.email == email.lower()))).scalar_one_or_none()
                if user is None:
                    user = User(email=email.lower(), name=name, password_hash=await hash_password(password))
                    outcome = "created"
                    session.add(user)
                else:
                    outcome = "promoted"
                user.is_instance_admin = True
                user.disabled_at = None
                await session.flush()
                await record_audit(
                    session, workspace_id=None, actor=Actor(None), action="user.updated", target_type="user",
                    target_id=user.id, after={"is_instance_admin": True, "by": "command line"},
                )
                return outcome
        finally:
            await engine.dispose()

    click.echo(f"{email.lower()}: {asyncio.run(run())} as instance admin", err=True)


if __name__ == "__main__":
    main()
