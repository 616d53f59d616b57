"""Real-process tests for backend.embedded.postgres (initdb, pg_ctl, locking, stale servers)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from backend.embedded.postgres import DataDirInUse, EmbeddedPostgres, EmbeddedPostgresError, find_binaries
from tests.processes import postgres_pids_under as _postgres_pids_under

REPO_ROOT = Path(__file__).resolve().parents[1]
IS_ROOT = os.geteuid() == 0

pytestmark = pytest.mark.slow


# ----------------------------------------------------------------------------- helpers


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _kill_all_under(root: Path) -> None:
    for pid in _postgres_pids_under(root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while _postgres_pids_under(root) and time.monotonic() < deadline:
        time.sleep(0.05)


def _connect_args(url: str, **override: str) -> dict[str, str]:
    u = make_url(url)
    args = {"user": u.username, "password": u.password, "database": u.database, "host": u.query["host"]}
    args.update(override)
    return args


def _fetch(url: str, sql: str, **override: str) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(**_connect_args(url, **override), timeout=10)
        try:
            return await conn.fetch(sql)
        finally:
            await conn.close()

    return asyncio.run(run())


def _execute(url: str, sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(**_connect_args(url), timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def _postmaster_pid(pg: EmbeddedPostgres) -> int:
    return int((pg.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def base_dir() -> Iterator[Path]:
    # pytest's tmp dirs live under /tmp/pytest-of-root (0700), which the unprivileged server user
    # cannot traverse, so use our own 0755 directory in /tmp.
    root = Path(tempfile.mkdtemp(prefix="pg-embedded-test-", dir="/tmp"))
    os.chmod(root, 0o755)
    try:
        yield root
    finally:
        _kill_all_under(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def make_pg(base_dir: Path) -> Iterator[Callable[..., EmbeddedPostgres]]:
    instances: list[EmbeddedPostgres] = []

    def factory(name: str = "data", **kwargs: str) -> EmbeddedPostgres:
        pg = EmbeddedPostgres(base_dir / name, **kwargs)
        instances.append(pg)
        return pg

    try:
        yield factory
    finally:
        for pg in instances:
            pg.stop()


# ----------------------------------------------------------------------------- tests


def test_find_binaries_prefers_postgres_18() -> None:
    bin_dir = find_binaries()
    assert (bin_dir / "postgres").is_file()
    assert bin_dir.parent.name == "pginstall18"


def test_invalid_database_name_rejected(base_dir: Path) -> None:
    with pytest.raises(ValueError):
        EmbeddedPostgres(base_dir / "data", database='x"; DROP')


def test_start_connects_and_is_private(make_pg: Callable[..., EmbeddedPostgres]) -> None:
    pg = make_pg()
    url = pg.start()
    assert url == pg.url
    assert url.startswith("postgresql+asyncpg://playground:")
    assert url.endswith(f"@/playground?host={pg.data_dir}/postgres-run")

    (row,) = _fetch(url, "SELECT current_user, version()")
    assert row["current_user"] == "playground"
    assert "PostgreSQL 18" in row["version"]

    (row,) = _fetch(url, "SHOW listen_addresses")
    assert row["listen_addresses"] == ""
    (row,) = _fetch(url, "SHOW max_connections")
    assert row["max_connections"] == "200"
    (row,) = _fetch(url, "SHOW fsync")
    assert row["fsync"] == "on"

    with pytest.raises(asyncpg.InvalidPasswordError):
        _fetch(url, "SELECT 1", password="wrong-password")
    with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InterfaceError)):
        _fetch(url, "SELECT 1", password="")

    # The URL is meant for SQLAlchemy's asyncpg dialect, so check it is usable as-is.
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def via_sqlalchemy() -> int:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return (await conn.execute(text("SELECT 42"))).scalar_one()
        finally:
            await engine.dispose()

    assert asyncio.run(via_sqlalchemy()) == 42

    assert stat.S_IMODE(os.stat(pg.socket_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(pg.password_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(pg.data_dir).st_mode) & 0o007 == 0  # nothing for "others"
    assert pg.password_file.read_text().strip() in url
    assert not list(pg.data_dir.glob(".initdb-pw-*"))  # temporary pwfile removed
    if IS_ROOT:
        assert os.stat(pg.pgdata).st_uid != 0
        assert os.stat(pg.socket_dir).st_uid != 0
        assert os.stat(pg.password_file).st_uid == 0
        assert os.stat(pg.data_dir).st_uid == 0
        assert all(Path(f"/proc/{pid}").stat().st_uid != 0 for pid in _postgres_pids_under(pg.pgdata))


def test_stop_leaves_no_process(make_pg: Callable[..., EmbeddedPostgres]) -> None:
    pg = make_pg()
    pg.start()
    assert _postgres_pids_under(pg.pgdata)
    pg.stop()
    assert _postgres_pids_under(pg.pgdata) == []
    assert not (pg.pgdata / "postmaster.pid").exists()
    pg.stop()  # idempotent
    with pytest.raises(EmbeddedPostgresError):
        _ = pg.url


def test_restart_keeps_data(make_pg: Callable[..., EmbeddedPostgres]) -> None:
    with make_pg(database="pp_custom") as pg:
        url = pg.url
        assert url.endswith(f"@/pp_custom?host={pg.socket_dir}")
        _execute(url, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('hello')")
    assert _postgres_pids_under(pg.pgdata) == []

    again = make_pg(database="pp_custom")
    url2 = again.start()
    assert url2 == url  # same password, same socket
    assert [r["v"] for r in _fetch(url2, "SELECT v FROM kept")] == ["hello"]


def test_second_start_from_other_process_raises_data_dir_in_use(
    make_pg: Callable[..., EmbeddedPostgres],
) -> None:
    pg = make_pg()
    url = pg.start()
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from backend.embedded.postgres import DataDirInUse, EmbeddedPostgres\n"
        "pg = EmbeddedPostgres(Path(sys.argv[1]))\n"
        "try:\n"
        "    pg.start()\n"
        "except DataDirInUse as exc:\n"
        "    print(exc, file=sys.stderr)\n"
        "    sys.exit(3)\n"
        "pg.stop()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(pg.data_dir)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3, proc.stderr
    expected = f"data dir {pg.data_dir} is in use by another playground process (pid {os.getpid()})"
    assert expected in proc.stderr

    # Another instance in this process is refused too (flock is per open file description).
    with pytest.raises(DataDirInUse):
        EmbeddedPostgres(pg.data_dir).start()

    # The running server was not disturbed.
    assert _fetch(url, "SELECT 1 AS one")[0]["one"] == 1


def test_stale_server_from_crashed_process_is_replaced(make_pg: Callable[..., EmbeddedPostgres]) -> None:
    pg = make_pg()
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from backend.embedded.postgres import EmbeddedPostgres\n"
        "print(EmbeddedPostgres(Path(sys.argv[1])).start(), flush=True)\n"
        "time.sleep(600)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(pg.data_dir)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        child_url = child.stdout.readline().strip()
        assert child_url.startswith("postgresql+asyncpg://"), "child failed to start the server"
    finally:
        child.kill()  # SIGKILL: no cleanup runs, the lock is released by the kernel
        child.wait(timeout=10)
        if child.stdout:
            child.stdout.close()

    stale_pid = _postmaster_pid(pg)
    assert _alive(stale_pid), "postmaster should survive its parent (own session)"
    assert _fetch(child_url, "SELECT 1 AS one")[0]["one"] == 1

    url = pg.start()
    assert not _alive(stale_pid)
    new_pid = _postmaster_pid(pg)
    assert new_pid != stale_pid
    assert _fetch(url, "SELECT current_user")[0]["current_user"] == "playground"
    assert set(_postgres_pids_under(pg.pgdata)).isdisjoint({stale_pid})

    pg.stop()
    assert _postgres_pids_under(pg.pgdata) == []


def test_start_times(make_pg: Callable[..., EmbeddedPostgres], capsys: pytest.CaptureFixture[str]) -> None:
    pg = make_pg()
    t0 = time.perf_counter()
    pg.start()
    cold = time.perf_counter() - t0
    pg.stop()

    t0 = time.perf_counter()
    pg.start()
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    pg.stop()
    stop = time.perf_counter() - t0
    with capsys.disabled():
        print(f"\nembedded postgres: cold start {cold:.3f}s, warm start {warm:.3f}s, stop {stop:.3f}s")


@pytest.mark.skipif(not IS_ROOT, reason="unprivileged server user only exists when running as root")
def test_unreachable_data_dir_is_refused_as_root(base_dir: Path) -> None:
    private = base_dir / "private"
    private.mkdir(mode=0o700)
    os.chmod(private, 0o700)
    pg = EmbeddedPostgres(private / "data")
    try:
        with pytest.raises(EmbeddedPostgresError, match="cannot reach data dir"):
            pg.start()
    finally:
        pg.stop()
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o700  # we never chmod outside the data dir
    assert pg._lock_fd is None


def test_start_failure_reports_log_tail_and_cleans_up(make_pg: Callable[..., EmbeddedPostgres]) -> None:
    pg = make_pg()
    pg.start()
    pg.stop()
    with (pg.pgdata / "postgresql.conf").open("a") as fh:
        fh.write("shared_buffers = 'not-a-size'\n")
    with pytest.raises(EmbeddedPostgresError, match="shared_buffers") as excinfo:
        pg.start()
    assert "tail of" in str(excinfo.value)
    assert pg.password_file.read_text().strip() not in str(excinfo.value)
    assert pg._lock_fd is None
    assert _postgres_pids_under(pg.pgdata) == []
