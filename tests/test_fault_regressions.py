"""Regression tests for what the fault-injection run (tests/test_fault_injection.py) found, reproduced
deterministically in one process (the reconciler called directly, as in test_runs.py)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

from redis.asyncio import Redis
from sqlalchemy import text

from backend.runs import repository as repo
from backend.runs.backends.redis import RedisEventStream
from backend.runs.events import open_event
from backend.runs.models import Run
from backend.runs.worker import InFlight, Worker
from tests.runs_helpers import RunningWorker
from tests.test_runs import (  # noqa: F401 - fixtures
    delta_text,
    events_of,
    get_run,
    new_prompt,
    owner,
    reconciler,
    settings,
    start,
    use_mock_timing,
    wait_for,
    ws,
)


async def held_by_a_dead_worker(client, app, ws: str, pid: str, words: str, saved: list[str]):  # noqa: F811
    """A run claimed by a worker that then died: its saved output is `saved`; its lease (50 ms) soon expires.
    Returns the run's id, the dead worker (to write as it would have) and its flight."""
    run_id = await start(client, ws, pid, {"words": words})
    async with app.state.sessionmaker() as session, session.begin():
        claimed = await repo.claim(session, uuid.UUID(run_id), "dead-worker", timedelta(seconds=30))
    dead = reconciler(app, worker_id="dead-worker", lease_seconds=0.05)
    flight = InFlight(run=claimed, output=list(saved))
    await dead._persist(flight)
    return run_id, dead, flight


async def test_a_run_cancelled_while_its_dead_worker_held_it_ends_cancelled_not_queued_for_ever(
    client,
    app,
    ws,  # noqa: F811 - the fixture imported above
    db_engine,
):
    """Found by the chaos run: cancel asked for while running, then the worker is killed before its first token.
    The reconciler used to requeue it (nothing streamed), but a claim skips a run whose cancel was asked for,
    so it stayed `queued` for ever (its reservation held, its readers waiting)."""
    pid = await new_prompt(client, ws, "{{words}}")
    run_id = await start(client, ws, pid, {"words": "never to be streamed"})
    async with app.state.sessionmaker() as session, session.begin():
        assert await repo.claim(session, uuid.UUID(run_id), "dead-worker", timedelta(milliseconds=300)) is not None
    cancel = await client.post(f"/workspaces/{ws}/runs/{run_id}/cancel")
    assert cancel.status_code == 202, cancel.text
    await asyncio.sleep(0.4)  # the lease expires; the dead worker never saw the cancel

    assert await reconciler(app).reconcile_once() == {"retried": 0, "failed": 1, "republished": 0}
    run = await get_run(client, ws, run_id)
    assert run["status"] == "cancelled", run
    assert run["stop_reason"] == "cancelled" and run["error"] is None
    assert run["output"] == "" and run["usage"]["estimated"] is True
    events = await events_of(client, ws, run_id)
    assert delta_text(events) == "" and events[-1]["event"] == "run.cancelled" and events[-1]["data"] == run
    async with db_engine.connect() as conn:
        reserved = (await conn.execute(text("SELECT sum(reserved_micros) FROM budget_month"))).scalar_one()
        spent = (await conn.execute(text("SELECT sum(spent_micros) FROM budget_month"))).scalar_one()
        cost = (await conn.execute(text("SELECT sum(cost_micros) FROM run"))).scalar_one()
    assert reserved == 0 and spent == cost
    # It stays cancelled: a worker arriving later does not run it.
    async with RunningWorker(app):
        await asyncio.sleep(0.3)
    assert (await get_run(client, ws, run_id))["status"] == "cancelled"


async def test_worker_lost_after_redis_lost_the_streams_beginning_keeps_what_readers_saw(client, app, ws):  # noqa: F811
    """Found by the chaos run (seed 7, 400 runs): Redis restarted empty while a run streamed, then its worker lost
    the lease. The live stream held only the deltas sent after the restart, which the reconciler ignored (it
    only followed deltas from offset 0), so it stored the last saved copy: 190 characters, where a reader had
    been sent 316. The deltas that continue the saved copy are now added to it."""
    pid = await new_prompt(client, ws, "{{words}}")
    # Saved: "alpha beta "; what Redis had of it is gone (restarted empty).
    saved = ["alpha ", "beta "]
    run_id, dead, flight = await held_by_a_dead_worker(client, app, ws, pid, "alpha beta gamma delta", saved)
    await dead._emit(flight, "run.delta", {"text": "beta gamma ", "offset": 17})  # overlaps the saved copy
    await dead._emit(flight, "run.delta", {"text": "delta ", "offset": 23})  # streamed, never saved
    await asyncio.sleep(0.1)

    assert (await reconciler(app).reconcile_once())["failed"] == 1
    run = await get_run(client, ws, run_id)
    assert run["status"] == "failed" and run["error"]["kind"] == "worker_lost"
    assert run["output"] == "alpha beta gamma delta "
    events = await events_of(client, ws, run_id)
    assert delta_text(events) == run["output"] and events[-1]["event"] == "run.failed"


async def test_settling_a_run_and_cancelling_it_take_their_locks_in_one_order(client, app, ws, db_engine):  # noqa: F811
    """Found by the soak (35 runs failed as worker_lost with no worker lost; POST /runs, cancels and comparisons
    answered 500 "deadlock detected"): a cancel takes the workspace's dispatch lock, then updates the run's row;
    a worker ending the run updated its row, then took the dispatch lock. Here the other transaction holds the
    dispatch lock and then updates the row, as cancel_run does, while the reconciler ends the run: the row must
    be free (the run's end waits for the dispatch lock before touching its row) instead of a deadlock."""
    pid = await new_prompt(client, ws, "{{words}}")
    run_id, _, _ = await held_by_a_dead_worker(client, app, ws, pid, "alpha beta gamma", ["alpha "])
    await asyncio.sleep(0.1)  # its lease expires

    async with db_engine.connect() as other:
        await other.begin()
        await other.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"), {"name": f"dispatch/{ws}"}
        )
        ending = asyncio.create_task(reconciler(app).reconcile_once())
        await asyncio.sleep(0.5)  # the reconciler is now waiting for the dispatch lock
        await other.execute(text("SET LOCAL lock_timeout = '5s'"))
        await other.execute(text("UPDATE run SET cancel_requested_at = now() WHERE id = :id"), {"id": run_id})
        assert not ending.done()
        await other.rollback()
    assert (await asyncio.wait_for(ending, 10))["failed"] == 1
    run = await get_run(client, ws, run_id)
    assert run["status"] == "failed" and run["error"]["kind"] == "worker_lost" and run["output"] == "alpha "
    async with db_engine.connect() as conn:
        reserved = (await conn.execute(text("SELECT sum(reserved_micros) FROM budget_month"))).scalar_one()
    assert reserved == 0


async def test_saving_a_version_does_not_wait_for_runs_being_accepted(client, app, ws, db_engine):  # noqa: F811
    """Found by the soak: prompt-version saves took 22 s (p50) and one got no answer within 60 s while runs of the
    prompt were being accepted under load. A save locked the prompt's row FOR UPDATE, which waits for every
    transaction holding FOR KEY SHARE on it: each POST /runs inserting a run of the prompt (the foreign key)
    holds one until its commit, which queues on the workspace's dispatch lock. New runs then queued behind the
    save. A save now takes FOR NO KEY UPDATE, which still orders saves but lets runs reference the prompt."""
    pid = await new_prompt(client, ws, "{{words}}")
    body = {
        "messages": [{"role": "user", "content": "v2 {{words}}"}],
        "model_config": {"provider": "mock", "model": "mock-1", "max_tokens": 50},
        "message": "v2",
    }
    async with db_engine.connect() as other:
        await other.begin()
        # What an uncommitted run insert holds on its prompt's row (the foreign key's check).
        await other.execute(text("SELECT 1 FROM prompt WHERE id = :id FOR KEY SHARE"), {"id": pid})
        saved = await asyncio.wait_for(client.post(f"/workspaces/{ws}/prompts/{pid}/versions", json=body), 5)
        await other.rollback()
    assert saved.status_code == 201, saved.text
    assert saved.json()["number"] == 2


async def test_a_live_stream_lost_mid_run_starts_again_only_after_the_output_is_saved(client, app, ws):  # noqa: F811
    """Found by the chaos run: Redis restarted empty mid-run, the worker went on sending deltas into a new
    stream, then was killed before its next save (every second): a reader had been sent 204 characters, the
    database held 106, and the deltas in between were nowhere. The worker now saves the output before it
    starts a lost stream again, so the saved copy always reaches the new stream's first delta."""
    use_mock_timing(app, ttft_ms=5, token_ms=40)
    words = " ".join(f"w{i}" for i in range(80))
    pid = await new_prompt(client, ws, "{{words}}")
    events = app.state.run_backends.events
    # The heartbeat's save every flush_seconds would hide the fault: it does not come round in this test.
    async with RunningWorker(app, flush_seconds=60, lease_seconds=600):
        run_id = await start(client, ws, pid, {"words": words})
        while sum(1 for e in await events.read(run_id, 0) if e.name == "run.delta") < 5:
            await asyncio.sleep(0.005)
        await events._redis.delete(events._key(run_id))  # what a restart of Redis does to it
        while not (after := await events.read(run_id, 0)):
            await asyncio.sleep(0.005)
        async with app.state.sessionmaker() as session:
            run = await session.get(Run, uuid.UUID(run_id))
            saved = await app.state.keyring.open_text(session, run, "output")
            first = None
            for item in after:
                event = await open_event(session, app.state.keyring, run.workspace_id, run.id, item)
                if event.name == "run.delta":
                    first = event.data
                    break
        assert first is not None
        assert len(saved) >= first["offset"] - len(first["text"]), (len(saved), first)
        final = await wait_for(client, ws, run_id)
    assert final["status"] == "succeeded" and final["output"].startswith(saved)
    assert final["output"].split() == words.split()


@contextlib.asynccontextmanager
async def blind_reconciler(app) -> AsyncIterator[Worker]:
    """A reconciler whose Redis is not there (nothing listens on port 1): every read of a live stream fails."""
    unreachable = Redis(host="127.0.0.1", port=1, retry=None)
    try:
        backends = replace(app.state.run_backends, events=RedisEventStream(unreachable, "unused:"))
        state = app.state
        yield Worker(sessionmaker=state.sessionmaker, keyring=state.keyring, backends=backends, settings=state.settings)
    finally:
        await unreachable.aclose()


async def test_a_lost_run_is_not_ended_while_its_live_stream_cannot_be_read(client, app, ws, db_engine):  # noqa: F811
    """Found by the chaos run (seeds 3 and 42): a worker died, and the reconciler's read of the run's live
    stream fell in the second Redis took to restart; it went on with the saved copy (the first token) and
    stored 15 characters where a reader had been sent 166. It now leaves the run for a later pass while the
    stream cannot be read (here: a Redis client whose server is not there), for up to 30 s after the lease
    expired; after that the saved copy is all there is."""
    pid = await new_prompt(client, ws, "{{words}}")
    runs = []
    for words in ("alpha beta gamma", "one two three"):
        first, rest = words.split(" ", 1)
        run_id, dead, flight = await held_by_a_dead_worker(client, app, ws, pid, words, [f"{first} "])
        await dead._emit(flight, "run.delta", {"text": f"{first} ", "offset": len(first) + 1})
        await dead._emit(flight, "run.delta", {"text": f"{rest} ", "offset": len(words) + 1})  # never saved
        runs.append(run_id)
    await asyncio.sleep(0.1)  # their leases expire

    async with blind_reconciler(app) as blind:
        assert await blind.reconcile_once() == {"retried": 0, "failed": 2, "republished": 0}
        assert [(await get_run(client, ws, r))["status"] for r in runs] == ["running", "running"]

    # Once the stream can be read, the runs end with all their readers saw.
    assert (await reconciler(app).reconcile_once())["failed"] == 2
    for run_id, words in zip(runs, ("alpha beta gamma", "one two three"), strict=True):
        done = await get_run(client, ws, run_id)
        assert done["status"] == "failed" and done["output"] == f"{words} "


async def test_a_lost_run_whose_stream_stays_unreadable_ends_with_its_saved_output(client, app, ws, db_engine):  # noqa: F811
    pid = await new_prompt(client, ws, "{{words}}")
    run_id, _, _ = await held_by_a_dead_worker(client, app, ws, pid, "alpha beta", ["alpha "])
    async with db_engine.begin() as conn:  # its lease expired longer ago than the reconciler waits
        await conn.execute(
            text("UPDATE run SET lease_expires_at = now() - interval '31 seconds' WHERE id = :id"), {"id": run_id}
        )
    async with blind_reconciler(app) as blind:
        await blind.reconcile_once()
    run = await get_run(client, ws, run_id)
    assert run["status"] == "failed" and run["error"]["kind"] == "worker_lost" and run["output"] == "alpha "


async def test_text_the_live_stream_carried_is_saved_as_soon_as_redis_is_unreachable(client, app, ws):  # noqa: F811
    """Found by the chaos run (seed 12): Redis restarted empty, and 0.2 s later the worker was killed, before
    it had sent (or saved) anything more. Readers had been sent 162 characters over the old stream; 120 were
    saved. Now the first write that finds Redis unreachable saves every run whose stream carried unsaved text."""
    use_mock_timing(app, ttft_ms=5, token_ms=40)
    words = " ".join(f"w{i}" for i in range(60))
    pid = await new_prompt(client, ws, "{{words}}")
    events = app.state.run_backends.events
    async with RunningWorker(app, flush_seconds=60, lease_seconds=600) as worker:
        run_id = await start(client, ws, pid, {"words": words})
        while sum(1 for e in await events.read(run_id, 0) if e.name == "run.delta") < 5:
            await asyncio.sleep(0.005)
        async with blind_reconciler(app) as blind:
            real = worker.backends
            worker.backends = blind.backends  # Redis goes away under the worker
            seen = await streamed_text(app, run_id)  # what readers had
            await asyncio.sleep(0.3)  # a few deltas fail to go out
            async with app.state.sessionmaker() as session:
                run = await session.get(Run, uuid.UUID(run_id))
                saved = await app.state.keyring.open_text(session, run, "output")
            worker.backends = real
        assert len(saved) >= len(seen) and saved.startswith(seen), (saved, seen)
        final = await wait_for(client, ws, run_id)
    assert final["status"] == "succeeded" and final["output"].split() == words.split()


async def streamed_text(app, run_id: str) -> str:
    """The text of the run's deltas in its live stream."""
    async with app.state.sessionmaker() as session:
        run = await session.get(Run, uuid.UUID(run_id))
        parts = []
        for item in await app.state.run_backends.events.read(run_id, 0):
            event = await open_event(session, app.state.keyring, run.workspace_id, run.id, item)
            if event.name == "run.delta":
                parts.append(event.data["text"])
    return "".join(parts)
