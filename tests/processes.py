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
