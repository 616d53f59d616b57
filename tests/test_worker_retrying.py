"""Worker._retrying: a database step cut off by a real connection failure is run again; a statement's own
error is not; and the retries stop within two thirds of the lease."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from tests.test_runs import reconciler


def step_killing_its_own_connection(app, times: int):
    """A database step whose first `times` runs lose their connection (PostgreSQL terminates the backend)."""
    calls: list[int] = []

    async def step() -> int:
        calls.append(1)
        async with app.state.sessionmaker() as session, session.begin():
            if len(calls) <= times:
                await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
            return (await session.execute(text("SELECT 41 + 1"))).scalar_one()

    return step, calls


async def test_a_step_whose_connection_is_cut_is_run_again(app):
    worker = reconciler(app, lease_seconds=30)
    step, calls = step_killing_its_own_connection(app, times=2)
    assert await worker._retrying("test step", step) == 42
    assert len(calls) == 3


async def test_a_statement_error_is_not_retried(app):
    worker = reconciler(app, lease_seconds=30)
    calls: list[int] = []

    async def step() -> None:
        calls.append(1)
        async with app.state.sessionmaker() as session, session.begin():
            await session.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(sa_exc.ProgrammingError):
        await worker._retrying("test step", step)
    assert len(calls) == 1


async def test_retries_stop_within_two_thirds_of_the_lease(app):
    worker = reconciler(app, lease_seconds=0.6)
    step, calls = step_killing_its_own_connection(app, times=10_000)
    started = time.monotonic()
    with pytest.raises(sa_exc.DBAPIError):
        await worker._retrying("test step", step)
    assert len(calls) >= 2  # it did retry
    assert time.monotonic() - started < 0.4 + 2.0  # the 0.4 s deadline, plus one last step's own time
