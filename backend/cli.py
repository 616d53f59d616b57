"""The `playground` command: up (all-in-one), api, worker, migrate."""

from __future__ import annotations

import logging
import os
import resource
import signal
import sys
import time
from pathlib import Path

import click

logger = logging.getLogger("playground")


def _configure_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("PLAYGROUND_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


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
        app = create_app(settings, keyring=build_keyring(settings, create_key_file=True))
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

    _serve(create_app(), host, port)


@main.command()
@click.option("--concurrency", default=50, show_default=True, type=int)
def worker(concurrency: int) -> None:
    """The worker process for production. Runs arrive with the runs issue; until then it idles."""
    _require_database_url()
    _exit_on_sigterm()
    logger.info("worker started (concurrency %d); the run queue is not wired yet, idling", concurrency)
    try:
        signal.pause()
    except (KeyboardInterrupt, SystemExit):
        logger.info("worker stopping")


@main.command()
def migrate() -> None:
    """Apply migrations to PLAYGROUND_DATABASE_URL; safe to run from several processes at once."""
    from backend.core.migrate import upgrade_to_head

    upgrade_to_head(_require_database_url())
    click.echo("database is at the latest migration", err=True)


if __name__ == "__main__":
    main()
