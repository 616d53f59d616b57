"""Process helpers for tests that start real servers."""

from __future__ import annotations

import os
from pathlib import Path


def postgres_pids_under(root: Path) -> list[int]:
    """Live postgres processes whose cwd or command line points into `root` (independent of the module)."""
    root_s = str(root.resolve())
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat_line = Path(f"/proc/{entry.name}/stat").read_text()
            if stat_line.rsplit(")", 1)[1].split()[0] == "Z":
                continue
            comm = Path(f"/proc/{entry.name}/comm").read_text().strip()
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            try:
                cwd = os.readlink(f"/proc/{entry.name}/cwd")
            except OSError:
                cwd = ""
        except (OSError, IndexError):
            continue
        if "postgres" not in comm and "postgres" not in cmdline:
            continue
        if cwd == root_s or cwd.startswith(root_s + "/") or root_s in cmdline:
            pids.append(int(entry.name))
    return pids


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis_server(port: int, workdir: Path, timeout: float = 10.0):
    """A private, non-persistent redis-server on 127.0.0.1:`port` (never the shared one); answers PING on return.

    `--save "" --appendonly no`: a restart comes back EMPTY, as after losing a Redis host."""
    import socket
    import subprocess
    import time

    workdir.mkdir(parents=True, exist_ok=True)
    log = open(workdir / f"redis-{port}.log", "ab")  # noqa: SIM115 - owned by the process object
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    args += ["--dir", str(workdir), "--protected-mode", "no", "--maxclients", "10000"]
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    proc.log_file = log  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server on port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return proc
        except OSError:
            pass
        time.sleep(0.02)
    proc.kill()
    proc.wait(5)
    raise RuntimeError(f"redis-server on port {port} did not answer PING within {timeout}s")


def stop_process(proc, timeout: float = 10.0, sig: int | None = None) -> int | None:
    """Ends one process we started (SIGCONT first, in case a test left it stopped); SIGKILL after `timeout`."""
    import signal
    import subprocess

    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGCONT)
            os.kill(proc.pid, sig if sig is not None else signal.SIGTERM)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
        except ProcessLookupError:
            pass
    log = getattr(proc, "log_file", None)
    if log is not None:
        log.close()
    return proc.returncode


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used so far (from /proc; no psutil needed)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_kib(pid: int) -> int | None:
    """Resident set size of a live process in KiB (VmRSS), or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def open_fds(pid: int) -> int | None:
    """How many file descriptors a live process holds open (/proc/<pid>/fd), or None when it is gone."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


class PlaygroundCluster:
    """Real `playground api` and `playground worker` processes on loopback for fault and soak tests: a private
    database (created and migrated here, dropped at close), a private redis-server (restarts come back empty),
    N apis and M workers, each restartable on its own (an api comes back on the same port).

    `env` extras apply to every process (timings, pool sizes, mock speed, PLAYGROUND_PROVIDER_HOSTS)."""

    def __init__(
        self,
        tmp: Path,
        admin_dsn: str,
        master_key: str,
        *,
        apis: int = 2,
        workers: int = 2,
        worker_concurrency: int = 50,
        env: dict[str, str] | None = None,
        name_prefix: str = "pp_cluster",
        worker_metrics: bool = False,
    ):
        import uuid

        self.tmp = tmp
        self.admin_dsn = admin_dsn
        self.db_name = f"{name_prefix}_{uuid.uuid4().hex[:10]}"
        base, _, _ = admin_dsn.rpartition("/")
        self.dsn = f"{base}/{self.db_name}"  # postgresql://… for asyncpg
        self.database_url = self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        self.redis_port = free_port()
        self.prefix = f"pp-cluster:{uuid.uuid4().hex[:8]}:"
        self.master_key = master_key
        self.extra_env = dict(env or {})
        self.api_ports = [free_port() for _ in range(apis)]
        self.apis: list = [None] * apis
        self.n_workers = workers
        self.worker_concurrency = worker_concurrency
        self.workers: list = []
        # With worker_metrics, each worker serves /metrics on its own loopback port (else none: port 0).
        self.worker_metrics_ports = [free_port() if worker_metrics else 0 for _ in range(workers)]
        self.redis = None
        self.restarts: dict[str, int] = {"api": 0, "worker": 0, "redis": 0}

    @property
    def bases(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.api_ports]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYGROUND_")}
        env.update(
            PLAYGROUND_DATABASE_URL=self.database_url,
            PLAYGROUND_REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            PLAYGROUND_REDIS_PREFIX=self.prefix,
            PLAYGROUND_MASTER_KEY=self.master_key,
            PLAYGROUND_WORKER_METRICS_PORT="0",
        )
        env.update(self.extra_env)
        return env

    def _admin(self, sql: str) -> None:
        import asyncio

        import asyncpg

        async def run() -> None:
            conn = await asyncpg.connect(self.admin_dsn)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(run())

    def start(self) -> PlaygroundCluster:
        import subprocess
        import sys

        self.tmp.mkdir(parents=True, exist_ok=True)
        self._admin(f'CREATE DATABASE "{self.db_name}"')
        migrate = subprocess.run(
            [sys.executable, "-m", "backend.cli", "migrate"],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=180,
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"migrate failed: {migrate.stderr[-2000:]}")
        self.redis = start_redis_server(self.redis_port, self.tmp)
        for index in range(len(self.api_ports)):
            self.start_api(index)
        for index in range(self.n_workers):
            self.workers.append(self._spawn_worker(index))
        return self

    def _spawn_worker(self, index: int):
        import subprocess
        import sys

        env = self.env() | {"PLAYGROUND_WORKER_METRICS_PORT": str(self.worker_metrics_ports[index])}
        log = open(self.tmp / f"worker-{index}.log", "ab")  # noqa: SIM115 - owned by the process object
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "worker", "--concurrency", str(self.worker_concurrency)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        proc.log_file = log  # type: ignore[attr-defined]
        return proc

    def start_api(self, index: int, timeout: float = 120.0) -> None:
        import subprocess
        import sys
        import time

        import httpx

        port = self.api_ports[index]
        log = open(self.tmp / f"api-{index}.log", "ab")  # noqa: SIM115 - owned by the process object
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "api", "--port", str(port)],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        proc.log_file = log  # type: ignore[attr-defined]
        self.apis[index] = proc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"api {index} exited with {proc.returncode}")
            try:
                # A generous timeout: a restarted api first meets every client that was waiting to reconnect.
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"api {index} did not become healthy in {timeout}s")

    def kill_api(self, index: int) -> None:
        """kill -9 one api process and start it again on the same port."""
        import signal

        proc = self.apis[index]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        stop_process(proc)
        self.restarts["api"] += 1
        self.start_api(index)

    def kill_worker(self, index: int) -> None:
        """kill -9 one worker process and start a new one in its place."""
        import signal

        proc = self.workers[index]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        stop_process(proc)
        self.restarts["worker"] += 1
        self.workers[index] = self._spawn_worker(index)

    def restart_redis_empty(self) -> None:
        self.redis.kill()
        self.redis.wait(10)
        stop_process(self.redis)
        self.restarts["redis"] += 1
        self.redis = start_redis_server(self.redis_port, self.tmp)

    def terminate_db_backends(self) -> int:
        """pg_terminate_backend on every connection to this cluster's own database (never another's)."""
        import asyncio

        import asyncpg

        async def run() -> int:
            conn = await asyncpg.connect(self.admin_dsn)
            try:
                rows = await conn.fetch(
                    "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = $1 "
                    "AND pid <> pg_backend_pid()",
                    self.db_name,
                )
                return sum(1 for r in rows if r["ok"])
            finally:
                await conn.close()

        return asyncio.run(run())

    def pids(self) -> dict[str, int]:
        named = {f"api{i}": p.pid for i, p in enumerate(self.apis) if p is not None}
        named |= {f"worker{i}": p.pid for i, p in enumerate(self.workers)}
        if self.redis is not None:
            named["redis"] = self.redis.pid
        return named

    def close(self, *, keep_logs: bool = False) -> dict[str, int | None]:
        """Stops everything (SIGTERM, then SIGKILL), drops the database; returns each process's exit code."""
        import shutil

        codes: dict[str, int | None] = {}
        for index, proc in enumerate(self.workers):
            codes[f"worker{index}"] = stop_process(proc, timeout=30)
        for index, proc in enumerate(self.apis):
            if proc is not None:
                codes[f"api{index}"] = stop_process(proc, timeout=30)
        if self.redis is not None:
            stop_process(self.redis)
        try:
            self._admin(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        finally:
            if not keep_logs:
                shutil.rmtree(self.tmp, ignore_errors=True)
        return codes
