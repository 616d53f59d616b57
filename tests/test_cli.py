"""The `playground` command as a newcomer and an operator use it: real processes, real sockets."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import ADMIN_DSN, MASTER_KEY, REDIS_URL, _async_url
from tests.processes import postgres_pids_under

pytestmark = pytest.mark.slow
PLAYGROUND = [sys.executable, "-m", "backend.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYGROUND_")}
    env.update(extra)
    return env


def _wait_healthy(proc: subprocess.Popen, port: int, timeout: float = 60) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"process exited early with {proc.returncode}: {proc.stderr.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("server did not become healthy")


def _stop(proc: subprocess.Popen, timeout: float = 30) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=timeout)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # The embedded server runs as an unprivileged user when we are root: its parents must be traversable.
    parent = Path(tempfile.mkdtemp(prefix="pp-up-"))
    parent.chmod(0o755)
    yield parent / "data"
    shutil.rmtree(parent, ignore_errors=True)


def _start_up(data_dir: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [*PLAYGROUND, "up", "--port", str(port), "--data-dir", str(data_dir)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _curl_journey(base: str) -> None:
    """What the README promises curl can do: sign up, make a workspace, add and invite, key and revoke."""
    with httpx.Client(base_url=f"{base}/api/v1") as c:
        c.post("/auth/signup", json={"email": "owner@example.com", "password": "long enough 1", "name": "O"})
        csrf = {"X-CSRF-Token": c.cookies["csrf_token"]}
        ws = c.post("/workspaces", json={"name": "Acme"}, headers=csrf).json()["id"]
        with httpx.Client(base_url=f"{base}/api/v1") as other:
            assert (
                other.post(
                    "/auth/signup", json={"email": "member@example.com", "password": "long enough 2", "name": "M"}
                ).status_code
                == 201
            )
        member = {"email": "member@example.com", "role": "editor"}
        added = c.post(f"/workspaces/{ws}/members", json=member, headers=csrf)
        assert added.json()["status"] == "added"
        invited = c.post(f"/workspaces/{ws}/members", json={"email": "new@example.com", "role": "viewer"}, headers=csrf)
        assert invited.json()["status"] == "invited" and invited.json()["invite_token"]
        key = c.post(f"/workspaces/{ws}/api-keys", json={"name": "ci"}, headers=csrf).json()
        bearer = {"Authorization": f"Bearer {key['key']}"}
        assert httpx.get(f"{base}/api/v1/workspaces/{ws}", headers=bearer).status_code == 200
        assert c.delete(f"/workspaces/{ws}/api-keys/{key['id']}", headers=csrf).status_code == 204
        assert httpx.get(f"{base}/api/v1/workspaces/{ws}", headers=bearer).status_code == 401


def test_up_starts_serves_stops_and_keeps_data(data_dir):
    port = _free_port()
    proc = _start_up(data_dir, port)
    try:
        cold = _wait_healthy(proc, port)
        base = f"http://127.0.0.1:{port}"
        _curl_journey(base)
        assert httpx.get(f"{base}/readyz").json()["checks"]["database"] == "ok"

        # A second `up` on the same data dir refuses clearly instead of corrupting it.
        second = subprocess.run(
            [*PLAYGROUND, "up", "--port", str(_free_port()), "--data-dir", str(data_dir)],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0
        assert "in use" in second.stderr and str(data_dir) in second.stderr
    finally:
        code = _stop(proc)
    assert code == 0, proc.stderr.read()
    assert postgres_pids_under(data_dir) == []

    proc = _start_up(data_dir, port)
    try:
        warm = _wait_healthy(proc, port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1") as c:
            login = c.post("/auth/login", json={"email": "owner@example.com", "password": "long enough 1"})
            assert login.status_code == 200
            assert [w["name"] for w in c.get("/me").json()["workspaces"]] == ["Acme"]
    finally:
        assert _stop(proc) == 0
    assert postgres_pids_under(data_dir) == []
    print(f"\nplayground up: cold start {cold:.2f}s, warm start {warm:.2f}s (to /healthz answering)")


def test_keys_commands_rotate_online_next_to_a_running_up(data_dir):
    port = _free_port()
    proc = _start_up(data_dir, port)
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        _wait_healthy(proc, port)
        assert (data_dir / "master.key").stat().st_mode & 0o777 == 0o600
        with httpx.Client(base_url=base) as c:
            c.post("/auth/signup", json={"email": "o@example.com", "password": "long enough 1", "name": "O"})
            csrf = {"X-CSRF-Token": c.cookies["csrf_token"]}
            ws = c.post("/workspaces", json={"name": "Acme"}, headers=csrf).json()["id"]
            put = c.put(f"/workspaces/{ws}/providers/anthropic", json={"api_key": "sk-ant-1234567890"}, headers=csrf)
            assert put.status_code == 200

            rotated = subprocess.run(
                [*PLAYGROUND, "keys", "rotate-workspace", ws, "--data-dir", str(data_dir), "--settle-seconds", "0"],
                env=_env(),
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert rotated.returncode == 0, rotated.stderr
            assert "data key v2 active; 1 values re-encrypted" in rotated.stderr

            master = subprocess.run(
                [*PLAYGROUND, "keys", "rotate-master", "--data-dir", str(data_dir)],
                env=_env(),
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert master.returncode == 0, master.stderr
            assert "re-wrapped the data keys of 1 workspaces" in master.stderr

            # The running product keeps working under the new master key: new workspaces, new secrets.
            ws2 = c.post("/workspaces", json={"name": "Beta"}, headers=csrf).json()["id"]
            for target in (ws, ws2):
                put = c.put(f"/workspaces/{target}/providers/openai", json={"api_key": "sk-oai-abcdefgh"}, headers=csrf)
                assert put.status_code == 200, put.text
            actions = [e["action"] for e in c.get(f"/workspaces/{ws}/audit-log").json()["items"]]
            assert actions.count("key.rotated") == 2
    finally:
        assert _stop(proc) == 0


def test_up_after_a_crash_recovers_the_stale_server(data_dir):
    port = _free_port()
    proc = _start_up(data_dir, port)
    _wait_healthy(proc, port)
    proc.kill()  # no chance to stop PostgreSQL: it is left running, as after a crash
    proc.wait(timeout=10)
    assert postgres_pids_under(data_dir), "the embedded server should have outlived the kill"

    proc = _start_up(data_dir, port)
    try:
        _wait_healthy(proc, port)
    finally:
        assert _stop(proc) == 0
    assert postgres_pids_under(data_dir) == []


@pytest.fixture
def fresh_database() -> Iterator[str]:
    name = f"pp_cli_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(ADMIN_DSN)
        await conn.execute(sql)
        await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield _async_url(ADMIN_DSN, name)
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_concurrent_migrate_calls_do_not_race(fresh_database):
    env = _env(PLAYGROUND_DATABASE_URL=fresh_database)
    procs = [
        subprocess.Popen([*PLAYGROUND, "migrate"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert all(code == 0 for code, _ in results), results
    ran = sum("Running upgrade" in err for _, err in results)
    assert ran == 1, f"exactly one process should have applied the migrations, saw {ran}"


def test_production_mode_migrate_then_api(fresh_database):
    env = _env(
        PLAYGROUND_DATABASE_URL=fresh_database,
        PLAYGROUND_REDIS_URL=REDIS_URL,
        PLAYGROUND_REDIS_PREFIX=f"pp-test:{uuid.uuid4().hex[:8]}:",
        PLAYGROUND_MASTER_KEY=MASTER_KEY,
    )
    assert subprocess.run([*PLAYGROUND, "migrate"], env=env, timeout=120).returncode == 0
    port = _free_port()
    proc = subprocess.Popen(
        [*PLAYGROUND, "api", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_healthy(proc, port)
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "redis": "ok"}
        _curl_journey(f"http://127.0.0.1:{port}")
    finally:
        code = _stop(proc)
    assert code == 0
    assert "Shutting down" in proc.stderr.read()


def test_api_without_master_key_says_what_is_missing(fresh_database, tmp_path):
    env = _env(
        PLAYGROUND_DATABASE_URL=fresh_database, PLAYGROUND_DATA_DIR=str(tmp_path), PLAYGROUND_REDIS_URL=REDIS_URL
    )
    result = subprocess.run(
        [*PLAYGROUND, "api", "--port", str(_free_port())], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "PLAYGROUND_MASTER_KEY" in result.stderr
    assert not (tmp_path / "master.key").exists(), "only `up` may create a key file"


def test_api_without_database_url_says_what_is_missing():
    result = subprocess.run([*PLAYGROUND, "api"], env=_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "PLAYGROUND_DATABASE_URL" in result.stderr


def test_admin_create_makes_an_instance_admin_who_can_sign_in(fresh_database):
    env = _env(PLAYGROUND_DATABASE_URL=fresh_database, PLAYGROUND_ADMIN_PASSWORD="a long admin password")
    assert subprocess.run([*PLAYGROUND, "migrate"], env=env, timeout=120).returncode == 0
    created = subprocess.run(
        [*PLAYGROUND, "admin", "create", "Boss@Example.com", "--name", "Boss"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert created.returncode == 0, created.stderr
    assert "boss@example.com: created as instance admin" in created.stderr
    again = subprocess.run([*PLAYGROUND, "admin", "create", "boss@example.com"], env=env, capture_output=True,
                           text=True, timeout=60)
    assert again.returncode == 0 and "promoted" in again.stderr

    async def check() -> tuple[bool, int]:
        conn = await asyncpg.connect(fresh_database.replace("+asyncpg", ""))
        try:
            row = await conn.fetchrow("SELECT is_instance_admin, password_hash FROM user_account")
            audits = await conn.fetchval("SELECT count(*) FROM audit_entry WHERE action = 'user.updated'")
        finally:
            await conn.close()
        assert "a long admin password" not in row["password_hash"]
        return row["is_instance_admin"], audits

    assert asyncio.run(check()) == (True, 2)
    short = subprocess.run([*PLAYGROUND, "admin", "create", "x@example.com"], env={**env,
                           "PLAYGROUND_ADMIN_PASSWORD": "short"}, capture_output=True, text=True, timeout=60)
    assert short.returncode != 0 and "at least 8 characters" in short.stderr
