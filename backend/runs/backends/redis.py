"""Production queue, event stream and cancel signals on Redis (redis.asyncio); every key starts with `prefix`.
Redis may lose everything at any moment: PostgreSQL stays the truth, these only make runs fast and live."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from backend.runs.backends.base import QueueEntry, StoredEvent
from backend.runs.backends.memory import DEFAULT_MAX_EVENTS, LiveStreamLost

logger = logging.getLogger(__name__)

QUEUE_MAX_LEN = 1_000_000
# The reader's XREAD blocks at most this long; registrations wake it at once (see _FollowedRun), so this only
# bounds how often an idle reader re-issues its XREAD. redis-py's default socket timeout is 5 s.
READER_BLOCK_MS = 2_000
READER_COUNT = 500  # per stream and XREAD: bounds one reply while letting busy streams catch up quickly
FOLLOWER_BUFFER = 1_000  # events queued for one follower before it is dropped as too slow
# Followers' own catch-up reads run at most this many at a time, so that a burst of reconnecting browsers
# (say after an api restart) cannot take every connection of the app's pool.
CATCH_UP_CONCURRENCY = 16
ORPHAN_TTL_SECONDS = 24 * 3600  # a run whose writer died without close() still leaves Redis eventually
_ORPHAN_TTL_EVERY = 100  # refresh that TTL every this many appends rather than on each one
_BACKOFF_MIN, _BACKOFF_MAX = 0.1, 5.0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _field(fields: dict, name: str) -> Any:
    # The client may or may not decode responses; accept either key type.
    return fields[name.encode()] if name.encode() in fields else fields[name]


def _streams_reply(reply: Any) -> list[tuple[Any, list]]:
    """(key, entries) pairs of an XREAD/XREADGROUP reply, in either the RESP2 or the RESP3 shape."""
    if not reply:
        return []
    if not isinstance(reply, dict):
        return list(reply)  # RESP2: [[key, [(id, fields), ...]], ...]
    # RESP3: {key: [[(id, fields), ...]]}
    return [(key, value[0] if value and isinstance(value[0], list) else value) for key, value in reply.items()]


def _block_ms(redis: Redis, wanted_ms: int) -> int:
    """A BLOCK that the client's socket timeout won't cut short (that would look like a dead connection)."""
    timeout = redis.connection_pool.connection_kwargs.get("socket_timeout")
    if timeout:
        return max(1, min(wanted_ms, int(timeout * 1000 / 2)))
    return wanted_ms


def _is_missing_group(exc: ResponseError) -> bool:
    # NOGROUP: the stream or group is gone; "no longer exists": it was deleted while we were blocked on it.
    message = str(exc)
    return message.startswith("NOGROUP") or "no longer exists" in message


class RedisRunQueue:
    """A Redis Stream read through one consumer group. Entries are acked (and deleted) when the run is claimed in
    the database, and pending ones are never reclaimed: the database lease is the truth and the reconciler
    re-publishes a run whose worker vanished, so XAUTOCLAIM would only steal long runs."""

    def __init__(self, redis: Redis, prefix: str, group: str = "workers", *, max_len: int = QUEUE_MAX_LEN) -> None:
        self._redis = redis
        self._key = f"{prefix}runs:queue"
        self._group = group
        self._max_len = max_len
        self._group_ready = False

    async def _create_group(self) -> None:
        # From id 0, not $: runs published before the group existed (or after Redis restarted empty and a
        # publisher re-created the stream) must still be delivered.
        try:
            await self._redis.xgroup_create(self._key, self._group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def publish(self, run_id: str) -> None:
        await self._redis.xadd(self._key, {"run_id": run_id}, maxlen=self._max_len, approximate=True)

    async def consume(self, consumer: str, *, count: int, block_ms: int) -> list[QueueEntry]:
        if not self._group_ready:
            await self._create_group()
        try:
            reply = await self._read(consumer, count, block_ms)
        except ResponseError as exc:
            if not _is_missing_group(exc):
                raise
            logger.warning("run queue: consumer group %r vanished (Redis restarted empty?); recreating it", self._group)
            await self._create_group()
            reply = await self._read(consumer, count, block_ms)
        entries = []
        for _key, items in _streams_reply(reply):
            for entry_id, fields in items:
                if fields:  # a deleted entry still listed in the group's history has no fields
                    entries.append(QueueEntry(entry_id=_text(entry_id), run_id=_text(_field(fields, "run_id"))))
        return entries

    async def _read(self, consumer: str, count: int, block_ms: int) -> Any:
        # BLOCK 0 would mean "forever" to Redis; for us it means "don't wait".
        block = _block_ms(self._redis, block_ms) if block_ms > 0 else None
        return await self._redis.xreadgroup(self._group, consumer, {self._key: ">"}, count=count, block=block)

    async def ack(self, entry: QueueEntry) -> None:
        # Deleting as well keeps the stream as long as the backlog (XLEN == depth) rather than MAXLEN.
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xack(self._key, self._group, entry.entry_id)
            pipe.xdel(self._key, entry.entry_id)
            await pipe.execute()

    async def depth(self) -> int:
        # Acked entries are deleted, so what is left is exactly pending + not yet delivered. (XINFO GROUPS' lag
        # turns nil once entries are deleted mid-stream, which is why it is not used.)
        return int(await self._redis.xlen(self._key))


class _Follower:
    """One caller of follow(): a bounded queue filled by the reader. None in the queue (or `lost`) ends it."""

    def __init__(self, buffer: int) -> None:
        self.queue: asyncio.Queue[StoredEvent | None] = asyncio.Queue(buffer)
        self.lost: str | None = None

    def offer(self, event: StoredEvent) -> bool:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.fail("fell too far behind the live stream")
            return False
        return True

    def fail(self, reason: str) -> None:
        self.lost = reason
        # If the queue is full the follower isn't waiting: its next get() returns at once and sees `lost`.
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)


class _FollowedRun:
    """A run stream in the reader's XREAD: the id it has read up to, and the followers it fans out to."""

    def __init__(self, key: str, cursor: str) -> None:
        self.key = key
        self.cursor = cursor
        self.followers: set[_Follower] = set()


class RedisEventStream:
    """Per run, a Redis Stream whose entry ids are `0-{seq}`, capped at ~max_events and expired after close().

    follow() is served by ONE reader task per instance (one api process): it XREADs every followed run's
    stream at once on one connection and fans events out in memory to per-follower bounded queues. A new run
    joining the set wakes a blocked reader at once through a private wake stream that the reader also XREADs;
    a follower's own catch-up XRANGE covers everything before it registered, so none waits for the reader."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        max_events: int = DEFAULT_MAX_EVENTS,
        *,
        block_ms: int = READER_BLOCK_MS,
        follower_buffer: int = FOLLOWER_BUFFER,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._max_events = max_events
        self._block_ms = _block_ms(redis, block_ms)
        self._follower_buffer = follower_buffer
        self._runs: dict[str, _FollowedRun] = {}  # by stream key
        self._reader: asyncio.Task[None] | None = None
        self._reader_client: Redis | None = None  # holds one connection of the pool for the reader
        self._catch_ups = asyncio.Semaphore(CATCH_UP_CONCURRENCY)
        self._wanted = asyncio.Event()  # set when there is something to follow
        self._wake_key = f"{prefix}runs:events-reader:{uuid.uuid4().hex}"
        self._wake_cursor = "0-0"
        self._reads = 0  # XREADs issued so far
        self._in_flight: int | None = None  # number of the XREAD the reader is blocked in, if any
        self._woken: int | None = None  # number of the XREAD a wake was last sent for
        self._closed = False

    def _key(self, run_id: str) -> str:
        return f"{self._prefix}run:{run_id}:events"

    async def append(self, run_id: str, event: StoredEvent) -> None:
        if event.seq < 1:
            raise ValueError("event seq must be >= 1")
        key = self._key(run_id)
        fields = {"seq": event.seq, "name": event.name, "data": event.data}
        try:
            if event.seq % _ORPHAN_TTL_EVERY == 1:
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.xadd(key, fields, id=f"0-{event.seq}", maxlen=self._max_events, approximate=True)
                    pipe.expire(key, ORPHAN_TTL_SECONDS)
                    await pipe.execute()
            else:
                await self._redis.xadd(key, fields, id=f"0-{event.seq}", maxlen=self._max_events, approximate=True)
        except ResponseError as exc:
            # Redis refuses an id at or below the stream's top: this seq is already there (a retried append).
            if "equal or smaller" not in str(exc):
                raise

    async def read(self, run_id: str, after_seq: int) -> list[StoredEvent]:
        return [
            self._event(entry_id, fields)
            for entry_id, fields in await self._redis.xrange(self._key(run_id), min=f"0-{after_seq + 1}")
        ]

    @staticmethod
    def _event(entry_id: bytes | str, fields: dict) -> StoredEvent:
        data = _field(fields, "data")
        return StoredEvent(
            seq=int(_text(entry_id).partition("-")[2]),
            name=_text(_field(fields, "name")),
            data=data if isinstance(data, bytes) else data.encode(),
        )

    async def close(self, run_id: str, *, ttl_seconds: int) -> None:
        if ttl_seconds <= 0:
            await self._redis.delete(self._key(run_id))
        else:
            await self._redis.expire(self._key(run_id), ttl_seconds)

    async def follow(self, run_id: str, after_seq: int) -> AsyncIterator[StoredEvent]:
        if self._closed:
            raise LiveStreamLost("the event stream was closed")
        key = self._key(run_id)
        follower = _Follower(self._follower_buffer)
        run = self._runs.get(key)
        if run is None:
            # The reader starts where this follower starts; later followers with an earlier start catch up on
            # their own XRANGE, so the cursor never has to move back.
            run = self._runs[key] = _FollowedRun(key, f"0-{after_seq}")
            wake = self._in_flight is not None and self._woken != self._in_flight
            if wake:
                self._woken = self._in_flight
        else:
            wake = False
        run.followers.add(follower)
        self._start_reader()
        try:
            # Registered first, then read: whatever the reader fans out from now on is queued, and everything
            # appended before this XRANGE is in it, so the two overlap (skipped by seq) and never leave a gap.
            try:
                async with self._catch_ups, self._redis.pipeline(transaction=False) as pipe:
                    if wake:
                        pipe.xadd(self._wake_key, {"w": 1}, maxlen=1, approximate=False)
                        pipe.expire(self._wake_key, ORPHAN_TTL_SECONDS)
                    pipe.xrange(key, min=f"0-{after_seq + 1}")
                    replies = await pipe.execute()
            except (RedisError, OSError) as exc:
                raise LiveStreamLost(f"run {run_id}: live stream unavailable ({exc})") from exc
            last = after_seq
            for entry_id, fields in replies[-1]:
                event = self._event(entry_id, fields)
                if event.seq != last + 1:
                    raise LiveStreamLost(f"run {run_id}: events after seq {last} are no longer in the live stream")
                yield event
                last = event.seq
            while True:
                event = await follower.queue.get()
                if follower.lost is not None or event is None:
                    raise LiveStreamLost(f"run {run_id}: {follower.lost}")
                if event.seq <= last:
                    continue
                if event.seq != last + 1:  # trimmed by MAXLEN, or lost when Redis restarted
                    raise LiveStreamLost(f"run {run_id}: events after seq {last} are no longer in the live stream")
                yield event
                last = event.seq
        finally:
            self._unfollow(run, follower)

    def _unfollow(self, run: _FollowedRun, follower: _Follower) -> None:
        run.followers.discard(follower)
        if not run.followers and self._runs.get(run.key) is run:
            # Left in a blocked XREAD until it returns; its events are then simply not fanned out.
            del self._runs[run.key]

    def _start_reader(self) -> None:
        self._wanted.set()
        if self._reader is None or self._reader.done():
            if self._reader_client is None:
                # A connection of its own, so that the reader neither waits for the pool nor holds one per XREAD.
                self._reader_client = self._redis.client()
            self._reader = asyncio.create_task(
                self._read_forever(self._reader_client), name=f"run-events-reader:{id(self):x}"
            )

    @property
    def reads(self) -> int:
        """XREADs the reader has issued so far (for metrics and tests)."""
        return self._reads

    async def _read_forever(self, client: Redis) -> None:
        delay = _BACKOFF_MIN
        while not self._closed:
            if not self._runs:
                self._wanted.clear()
                await self._wanted.wait()  # costs nothing while nobody follows anything
                continue
            streams = {run.key: run.cursor for run in self._runs.values()}
            streams[self._wake_key] = self._wake_cursor
            self._reads += 1
            self._in_flight = self._reads
            try:
                reply = await client.xread(streams, count=READER_COUNT, block=self._block_ms)
            except Exception as exc:  # never let the reader die: followers would hang silently
                logger.warning("run events reader: %s: %s; retrying in %.1fs", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX)
                continue
            finally:
                self._in_flight = None
            delay = _BACKOFF_MIN
            for key, entries in _streams_reply(reply):
                self._fan_out(_text(key), entries)

    def _fan_out(self, key: str, entries: list) -> None:
        if key == self._wake_key:
            self._wake_cursor = _text(entries[-1][0])
            return
        run = self._runs.get(key)
        if run is None:
            return  # its last follower left while the XREAD was blocked
        for entry_id, fields in entries:
            event = self._event(entry_id, fields)
            run.cursor = _text(entry_id)
            for follower in tuple(run.followers):
                if not follower.offer(event):
                    self._unfollow(run, follower)

    async def aclose(self) -> None:
        """Stops the reader and ends every follower with LiveStreamLost (the process is shutting down)."""
        self._closed = True
        self._wanted.set()
        if self._reader is not None:
            # Python 3.11's wait_for (inside redis-py) can swallow a cancellation that lands as a send
            # completes; the flag ends the loop then, and cancelling again cuts a blocked XREAD short.
            while not self._reader.done():
                self._reader.cancel()
                await asyncio.wait({self._reader}, timeout=0.05)
            self._reader = None
        if self._reader_client is not None:
            await self._reader_client.aclose(close_connection_pool=False)
            self._reader_client = None
        for run in list(self._runs.values()):
            for follower in tuple(run.followers):
                follower.fail("the event stream was closed")
        self._runs.clear()
        with contextlib.suppress(RedisError, OSError):
            await self._redis.delete(self._wake_key)


class RedisCancelSignals:
    """Pub/Sub on one channel. Delivery is best effort (a worker that is reconnecting misses signals), which is
    why workers also poll the run's durable cancel flag."""

    # A silent subscription is pinged after this long, and presumed dead if the pong doesn't come back as long.
    PING_AFTER_SECONDS = 30.0

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._channel = f"{prefix}runs:cancel"

    async def send(self, run_id: str) -> None:
        await self._redis.publish(self._channel, run_id)

    async def listen(self) -> AsyncIterator[str]:
        delay = _BACKOFF_MIN
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                delay = _BACKOFF_MIN
                pinged = False
                while True:
                    message = await pubsub.get_message(timeout=self.PING_AFTER_SECONDS)
                    if message is None:
                        if pinged:  # a half-open connection raises nothing: notice it ourselves
                            raise ConnectionError("no pong from Redis on the cancel subscription")
                        await pubsub.ping()
                        pinged = True
                        continue
                    pinged = False
                    if message["type"] == "message":
                        yield _text(message["data"])
            except (RedisError, OSError) as exc:
                logger.warning(
                    "cancel signals: subscription lost (%s: %s); resubscribing in %.1fs", type(exc).__name__, exc, delay
                )
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, _BACKOFF_MAX)
