"""One contract for both run transports (queue, event stream, cancel signals): in-process (`up`) and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from backend.runs.backends.base import CancelSignals, EventStream, StoredEvent
from backend.runs.backends.factory import RunBackends, build_backends
from backend.runs.backends.memory import LiveStreamLost, MemoryEventStream
from backend.runs.backends.redis import RedisCancelSignals, RedisEventStream, RedisRunQueue
from tests.conftest import REDIS_URL


class Transport:
    """The backends under test, plus what a test needs to build variants and observe the Redis reader."""

    def __init__(self, kind: str, redis: Redis | None, prefix: str) -> None:
        self.kind = kind
        self.redis = redis
        self.prefix = prefix
        self.backends: RunBackends = build_backends(redis, prefix)
        self.extra_events: list[MemoryEventStream | RedisEventStream] = []
        self.client_name = f"pp-test-{prefix.split(':')[1]}"

    def events_with(self, **options) -> EventStream:
        events: MemoryEventStream | RedisEventStream
        if self.redis is None:
            events = MemoryEventStream(options["max_events"])
        else:
            events = RedisEventStream(self.redis, self.prefix, **options)
        self.extra_events.append(events)
        return events

    async def xreads_in_flight(self) -> int:
        """Connections of this test's client that Redis sees blocked in XREAD right now."""
        assert self.redis is not None
        clients = await self.redis.client_list()
        return sum(1 for c in clients if c.get("name") == self.client_name and c.get("cmd") == "xread")

    async def aclose(self) -> None:
        await self.backends.aclose()
        for events in self.extra_events:
            await events.aclose()
        if self.redis is not None:
            await self.redis.aclose()


@pytest.fixture(params=["memory", "redis"])
async def transport(request, redis_prefix) -> AsyncIterator[Transport]:
    name = f"pp-test-{redis_prefix.split(':')[1]}"
    redis = Redis.from_url(REDIS_URL, client_name=name) if request.param == "redis" else None
    t = Transport(request.param, redis, redis_prefix)
    yield t
    await t.aclose()


def _run() -> str:
    return f"run-{uuid.uuid4().hex[:12]}"


def _event(seq: int, data: bytes | None = None) -> StoredEvent:
    return StoredEvent(seq=seq, name="run.delta", data=data if data is not None else f"tok{seq}".encode())


async def _collect(stream: AsyncIterator[StoredEvent], n: int, timeout: float = 5.0) -> list[StoredEvent]:
    got: list[StoredEvent] = []
    async with asyncio.timeout(timeout):
        async for event in stream:
            got.append(event)
            if len(got) == n:
                break
    return got


async def _nothing_within(stream: AsyncIterator, seconds: float) -> bool:
    try:
        await asyncio.wait_for(anext(stream), seconds)
    except TimeoutError:
        return True
    return False


# --- queue ------------------------------------------------------------------------------------------------


async def test_queue_delivers_in_order_and_ack_removes(transport):
    queue = transport.backends.queue
    runs = [_run() for _ in range(5)]
    for run_id in runs:
        await queue.publish(run_id)
    assert await queue.depth() == 5
    entries = await queue.consume("w1", count=10, block_ms=100)
    assert [e.run_id for e in entries] == runs
    assert await queue.depth() == 5  # delivered, not yet acked
    for entry in entries:
        await queue.ack(entry)
    assert await queue.depth() == 0
    assert await queue.consume("w1", count=10, block_ms=50) == []


async def test_count_limits_one_consume(transport):
    queue = transport.backends.queue
    runs = [_run() for _ in range(5)]
    for run_id in runs:
        await queue.publish(run_id)
    first = await queue.consume("w1", count=2, block_ms=100)
    rest = await queue.consume("w1", count=10, block_ms=100)
    assert [e.run_id for e in first + rest] == runs and len(first) == 2


async def test_blocking_consume_on_an_empty_queue_returns_within_block_ms(transport):
    queue = transport.backends.queue
    start = time.monotonic()
    assert await queue.consume("w1", count=5, block_ms=200) == []
    assert 0.15 <= time.monotonic() - start < 0.6
    start = time.monotonic()
    assert await queue.consume("w1", count=5, block_ms=0) == []  # 0 means don't wait (not Redis' "forever")
    assert time.monotonic() - start < 0.1


async def test_blocked_consumer_wakes_as_soon_as_a_run_is_published(transport):
    queue = transport.backends.queue
    waiting = asyncio.create_task(queue.consume("w1", count=5, block_ms=3_000))
    await asyncio.sleep(0.05)
    run_id, start = _run(), time.monotonic()
    await queue.publish(run_id)
    entries = await waiting
    assert [e.run_id for e in entries] == [run_id]
    assert time.monotonic() - start < 0.5


async def test_two_consumers_share_the_work_without_duplicates(transport):
    queue = transport.backends.queue
    runs = {_run() for _ in range(120)}
    got: dict[str, list[str]] = {"a": [], "b": []}

    async def worker(name: str) -> None:
        while sum(map(len, got.values())) < len(runs):
            for entry in await queue.consume(name, count=7, block_ms=50):
                got[name].append(entry.run_id)
                await asyncio.sleep(0.001)  # claiming the run in the database
                await queue.ack(entry)

    workers = asyncio.gather(worker("a"), worker("b"))
    for run_id in runs:
        await queue.publish(run_id)
    async with asyncio.timeout(10):
        await workers
    everything = got["a"] + got["b"]
    assert len(everything) == len(set(everything)) == len(runs) and set(everything) == runs
    assert got["a"] and got["b"]
    assert await queue.depth() == 0


async def test_blocked_consumers_each_get_distinct_entries(transport):
    queue = transport.backends.queue
    waiting = [asyncio.create_task(queue.consume(f"w{i}", count=1, block_ms=2_000)) for i in range(4)]
    await asyncio.sleep(0.05)
    runs = [_run() for _ in range(4)]
    for run_id in runs:
        await queue.publish(run_id)
    delivered = [e.run_id for task in waiting for e in await task]
    assert sorted(delivered) == sorted(runs)


async def test_unacked_entries_do_not_block_others(transport):
    queue = transport.backends.queue
    first, second, third = _run(), _run(), _run()
    await queue.publish(first)
    await queue.publish(second)
    [held] = await queue.consume("a", count=1, block_ms=100)  # never acked: its worker "died"
    [taken] = await queue.consume("b", count=1, block_ms=100)
    assert (held.run_id, taken.run_id) == (first, second)
    assert await queue.depth() == 2
    await queue.ack(taken)
    await queue.publish(third)
    assert [e.run_id for e in await queue.consume("b", count=5, block_ms=100)] == [third]
    # Never redelivered (the reconciler owns that), but still counted until acked.
    assert await queue.consume("b", count=5, block_ms=50) == []
    assert await queue.depth() == 2


# --- event stream -----------------------------------------------------------------------------------------


async def test_events_append_and_read_after_seq(transport):
    events, run_id = transport.backends.events, _run()
    for seq in range(1, 6):
        await events.append(run_id, _event(seq))
    assert await events.read(run_id, 0) == [_event(s) for s in range(1, 6)]
    assert [e.seq for e in await events.read(run_id, 3)] == [4, 5]
    assert await events.read(run_id, 5) == []
    assert await events.read(_run(), 0) == []
    with pytest.raises(ValueError):
        await events.append(run_id, _event(0))


async def test_binary_data_round_trips(transport):
    events, run_id = transport.backends.events, _run()
    blob = bytes(range(256)) * 4
    await events.append(run_id, StoredEvent(seq=1, name="run.started", data=blob))
    assert await events.read(run_id, 0) == [StoredEvent(seq=1, name="run.started", data=blob)]


async def test_duplicate_seq_append_is_harmless(transport):
    events, run_id = transport.backends.events, _run()
    await events.append(run_id, _event(1))
    await events.append(run_id, _event(2))
    await events.append(run_id, _event(2, b"retried"))
    await events.append(run_id, _event(1, b"retried"))
    await events.append(run_id, _event(3))
    assert await events.read(run_id, 0) == [_event(1), _event(2), _event(3)]


async def test_append_many_does_not_restart_a_log_that_must_exist(transport):
    """A worker's run whose live log vanished (Redis restarted empty) is told so, and nothing of it is written,
    so that it can store what readers saw before it starts the log again; other runs' events go in."""
    events, kept, lost, fresh = transport.backends.events, _run(), _run(), _run()
    await events.append_many([(kept, _event(1)), (lost, _event(1))])
    await events.close(lost, ttl_seconds=0)  # gone, as after a restart
    answer = await events.append_many(
        [(kept, _event(2)), (lost, _event(2)), (lost, _event(3)), (fresh, _event(1))],
        {lost: 60},
        must_exist={kept, lost},
    )
    assert answer == {lost}
    assert await events.read(kept, 0) == [_event(1), _event(2)]
    assert await events.read(lost, 0) == []
    assert await events.read(fresh, 0) == [_event(1)]  # not required to exist: created
    # Sent again without the requirement, the log starts over from these events.
    assert await events.append_many([(lost, _event(2)), (lost, _event(3))], {lost: 60}) == set()
    assert await events.read(lost, 0) == [_event(2), _event(3)]


async def test_closed_stream_expires_and_followers_then_see_nothing(transport):
    events, run_id = transport.backends.events, _run()
    for seq in (1, 2):
        await events.append(run_id, _event(seq))
    await events.close(run_id, ttl_seconds=1)
    assert len(await events.read(run_id, 0)) == 2  # still there until the ttl passes
    await asyncio.sleep(1.2)
    assert await events.read(run_id, 0) == []
    async with contextlib.aclosing(events.follow(run_id, 0)) as stream:
        assert await _nothing_within(stream, 0.2)


async def test_max_events_keeps_the_newest(transport):
    events, run_id = transport.events_with(max_events=50), _run()
    for seq in range(1, 501):
        await events.append(run_id, _event(seq))
    kept = [e.seq for e in await events.read(run_id, 0)]
    # Redis trims with MAXLEN ~ (whole radix-tree nodes of 100 entries), so it may keep a few more.
    slack = 0 if transport.kind == "memory" else 100
    assert 50 <= len(kept) <= 50 + slack
    assert kept == list(range(501 - len(kept), 501))
    # A follower asking for events that were trimmed away learns it, rather than silently skipping them.
    async with contextlib.aclosing(events.follow(run_id, 0)) as stream:
        with pytest.raises(LiveStreamLost):
            await _collect(stream, 1)
    async with contextlib.aclosing(events.follow(run_id, 495)) as stream:
        assert [e.seq for e in await _collect(stream, 5)] == [496, 497, 498, 499, 500]


async def test_follow_gets_earlier_events_then_live_ones_in_order(transport):
    events, run_id = transport.backends.events, _run()
    for seq in (1, 2, 3):
        await events.append(run_id, _event(seq))
    async with contextlib.aclosing(events.follow(run_id, 1)) as stream:
        follower = asyncio.create_task(_collect(stream, 7))
        for seq in range(4, 9):
            await asyncio.sleep(0.01)
            await events.append(run_id, _event(seq))
        assert await follower == [_event(s) for s in range(2, 9)]


async def test_a_timed_out_wait_for_the_next_event_does_not_end_the_follow(transport):
    # The SSE layer waits for the next event with a timeout (to check on the run in the database meanwhile).
    events, run_id = transport.backends.events, _run()
    await events.append(run_id, _event(1))
    async with contextlib.aclosing(events.follow(run_id, 0)) as stream:
        assert (await anext(stream)).seq == 1
        for _ in range(3):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(anext(stream), 0.05)
        await events.append(run_id, _event(2))
        await events.append(run_id, _event(3))
        assert [e.seq for e in await _collect(stream, 2)] == [2, 3]


async def test_follower_started_after_the_events_were_written_gets_them(transport):
    events, run_id = transport.backends.events, _run()
    for seq in range(1, 11):
        await events.append(run_id, _event(seq))
    async with contextlib.aclosing(events.follow(run_id, 0)) as stream:
        assert [e.seq for e in await _collect(stream, 10, timeout=1)] == list(range(1, 11))
    async with contextlib.aclosing(events.follow(run_id, 7)) as stream:
        assert [e.seq for e in await _collect(stream, 3, timeout=1)] == [8, 9, 10]


async def test_many_followers_of_one_run_all_receive_every_event(transport):
    events, run_id = transport.backends.events, _run()
    await events.append(run_id, _event(1))
    streams = [events.follow(run_id, 0) for _ in range(25)]
    followers = [asyncio.create_task(_collect(s, 60)) for s in streams]
    await asyncio.sleep(0.05)
    for seq in range(2, 61):
        await events.append(run_id, _event(seq))
    for follower in followers:
        assert [e.seq for e in await follower] == list(range(1, 61))
    for stream in streams:
        await stream.aclose()


async def test_a_new_follower_does_not_wait_for_the_reader_block_timeout(transport):
    # The Redis reader blocks up to 2 s on the runs it already follows; a new run must join it at once.
    events, busy, fresh = transport.backends.events, _run(), _run()
    async with contextlib.aclosing(events.follow(busy, 0)) as busy_stream:
        idle = asyncio.create_task(_collect(busy_stream, 1, timeout=10))
        await asyncio.sleep(0.3)  # the reader is now blocked in XREAD on `busy` alone
        async with contextlib.aclosing(events.follow(fresh, 0)) as stream:
            follower = asyncio.create_task(_collect(stream, 1))
            await asyncio.sleep(0.02)  # let it register
            start = time.monotonic()
            await events.append(fresh, _event(1))
            assert [e.seq for e in await follower] == [1]
            assert time.monotonic() - start < 0.5  # typically ~1 ms; far below the 2 s block either way
        idle.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await idle


async def test_200_followed_runs_get_every_event_exactly_and_in_order(transport):
    events, runs = transport.backends.events, [_run() for _ in range(200)]
    streams = [events.follow(run_id, 0) for run_id in runs]
    followers = [asyncio.create_task(_collect(s, 20, timeout=20)) for s in streams]
    await asyncio.sleep(0.05)
    blocked_readers: list[int] = []
    for seq in range(1, 21):  # interleaved across runs, as a worker with 200 runs in flight writes them
        for chunk in range(0, len(runs), 50):  # 50 appends at a time stay well inside redis-py's default pool
            await asyncio.gather(*(events.append(run_id, _event(seq)) for run_id in runs[chunk : chunk + 50]))
        if transport.kind == "redis":
            blocked_readers.append(await transport.xreads_in_flight())
    for run_id, follower in zip(runs, followers, strict=True):
        assert await follower == [_event(s) for s in range(1, 21)], run_id
    for stream in streams:
        await stream.aclose()
    if transport.kind == "redis":
        # Other tests' apps may still be winding down in this event loop: count this stream's readers only.
        readers = [t for t in asyncio.all_tasks() if t.get_name() == f"run-events-reader:{id(events):x}"]
        assert len(readers) == 1  # one reader task for the process ...
        assert max(blocked_readers) <= 1  # ... with one connection in XREAD ...
        assert events.reads < 200 * 20 / 4  # ... reading events in batches


async def test_a_follower_that_falls_too_far_behind_is_told(transport):
    options = {"max_events": 50} if transport.kind == "memory" else {"max_events": 50, "follower_buffer": 50}
    events, run_id = transport.events_with(**options), _run()
    await events.append(run_id, _event(1))
    async with contextlib.aclosing(events.follow(run_id, 0)) as stream:
        assert (await anext(stream)).seq == 1
        for seq in range(2, 202):  # the follower stalls (a slow browser) while the run streams on
            await events.append(run_id, _event(seq))
        await asyncio.sleep(0.2)
        with pytest.raises(LiveStreamLost):
            await _collect(stream, 200)


# --- cancel signals ---------------------------------------------------------------------------------------


async def _listening(cancels: CancelSignals, listener: AsyncIterator[str]) -> None:
    """Starts `listener` and returns once it provably receives what is sent (a warm-up signal came through)."""
    first = asyncio.ensure_future(anext(listener))
    for i in range(200):
        await cancels.send(f"warm-up-{i}")
        done, _ = await asyncio.wait({first}, timeout=0.01)
        if done:
            return
    first.cancel()
    raise AssertionError("the listener never started")


async def _next_signal(listener: AsyncIterator[str]) -> str:
    async with asyncio.timeout(2):
        while (run_id := await anext(listener)).startswith("warm-up-"):
            pass
    return run_id


async def test_a_listener_receives_cancels_sent_after_it_started(transport):
    cancels = transport.backends.cancels
    async with contextlib.aclosing(cancels.listen()) as listener:
        await _listening(cancels, listener)
        first, second = _run(), _run()
        await cancels.send(first)
        await cancels.send(second)
        assert await _next_signal(listener) == first
        assert await _next_signal(listener) == second


async def test_two_listeners_both_receive(transport):
    cancels = transport.backends.cancels
    async with contextlib.aclosing(cancels.listen()) as a, contextlib.aclosing(cancels.listen()) as b:
        await _listening(cancels, a)
        await _listening(cancels, b)
        run_id = _run()
        await cancels.send(run_id)
        assert await _next_signal(a) == run_id
        assert await _next_signal(b) == run_id


# --- Redis only -------------------------------------------------------------------------------------------


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def test_redis_queue_survives_its_consumer_group_vanishing(redis, redis_prefix):
    queue = RedisRunQueue(redis, redis_prefix)
    await queue.publish("before")
    [entry] = await queue.consume("w1", count=5, block_ms=100)
    await queue.ack(entry)
    # Redis restarted empty, as far as our keys go: the stream and its group are gone.
    await redis.delete(f"{redis_prefix}runs:queue")
    await queue.publish("after-restart")
    assert [e.run_id for e in await queue.consume("w1", count=5, block_ms=100)] == ["after-restart"]
    await redis.delete(f"{redis_prefix}runs:queue")
    assert await queue.consume("w1", count=5, block_ms=50) == []
    await queue.publish("later")
    assert [e.run_id for e in await queue.consume("w1", count=5, block_ms=100)] == ["later"]
    assert await queue.depth() == 1


async def test_redis_queue_delivers_runs_published_before_any_consumer(redis, redis_prefix):
    await RedisRunQueue(redis, redis_prefix).publish("early")
    assert [e.run_id for e in await RedisRunQueue(redis, redis_prefix).consume("w1", count=5, block_ms=100)] == [
        "early"
    ]


async def test_redis_reader_survives_losing_its_connection(redis_prefix):
    name = f"pp-test-reader-{uuid.uuid4().hex[:8]}"
    client, admin = Redis.from_url(REDIS_URL, client_name=name), Redis.from_url(REDIS_URL)
    events, run_id = RedisEventStream(client, redis_prefix), _run()
    try:
        async with contextlib.aclosing(events.follow(run_id, 0)) as stream:
            follower = asyncio.create_task(_collect(stream, 2, timeout=10))
            await events.append(run_id, _event(1))
            await asyncio.sleep(0.2)
            readers = [c for c in await admin.client_list() if c.get("name") == name and c.get("cmd") == "xread"]
            assert len(readers) == 1
            await admin.client_kill_filter(_id=readers[0]["id"])
            await asyncio.sleep(0.3)
            await events.append(run_id, _event(2))
            assert [e.seq for e in await follower] == [1, 2]
    finally:
        await events.aclose()
        await client.aclose()
        await admin.aclose()


async def test_redis_backends_speak_resp3(redis_prefix):
    client = Redis.from_url(REDIS_URL, protocol=3)
    backends = build_backends(client, redis_prefix)
    try:
        await backends.queue.publish("r1")
        [entry] = await backends.queue.consume("w1", count=5, block_ms=100)
        assert entry.run_id == "r1"
        await backends.queue.ack(entry)
        await backends.events.append("r1", _event(1))
        assert await backends.events.read("r1", 0) == [_event(1)]
        async with contextlib.aclosing(backends.events.follow("r1", 0)) as stream:
            follower = asyncio.create_task(_collect(stream, 2))
            await asyncio.sleep(0.05)
            await backends.events.append("r1", _event(2))
            assert await follower == [_event(1), _event(2)]
    finally:
        await backends.aclose()
        await client.aclose()


async def test_redis_cancel_listener_resubscribes_after_losing_its_connection(redis_prefix):
    name = f"pp-test-cancels-{uuid.uuid4().hex[:8]}"
    client, admin = Redis.from_url(REDIS_URL, client_name=name), Redis.from_url(REDIS_URL)
    cancels = RedisCancelSignals(client, redis_prefix)
    try:
        async with contextlib.aclosing(cancels.listen()) as listener:
            await _listening(cancels, listener)
            [subscriber] = [c for c in await admin.client_list() if c.get("name") == name and c.get("sub") == "1"]
            await admin.client_kill_filter(_id=subscriber["id"])
            await _listening(cancels, listener)  # signals sent while it reconnects are lost, by contract
            run_id = _run()
            await cancels.send(run_id)
            assert await _next_signal(listener) == run_id
    finally:
        await client.aclose()
        await admin.aclose()
