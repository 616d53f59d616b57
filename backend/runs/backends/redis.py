"""Production queue, event stream and cancel signals on Redis (redis.asyncio); every key starts with `prefix`.
Redis may lose everything at any moment: PostgreSQL stays the truth, these only make runs fast and live."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError, ResponseError

from backend.core.tasks import cancel_and_wait
from backend.runs.backends.base import QueueEntry, StoredEvent
from backend.runs.backends.memory import DEFAULT_MAX_EVENTS, LiveStreamLost

logger = logging.getLogger(__name__)

QUEUE_MAX_LEN = 1_000_000
# The reader's XREAD blocks at most this long; registrations wake it at once (see _register), so this only
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

    async def publish(self, run_id: str, trace: str | None = None) -> None:
        fields = {"run_id": run_id, "trace": trace} if trace else {"run_id": run_id}
        await self._redis.xadd(self._key, fields, maxlen=self._max_len, approximate=True)

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
                    trace = fields.get(b"trace", fields.get("trace"))
                    entries.append(
                        QueueEntry(
                            entry_id=_text(entry_id),
                            run_id=_text(_field(fields, "run_id")),
                            trace=_text(trace) if trace else None,
                        )
                    )
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

    async def ack_many(self, entries: Sequence[QueueEntry]) -> None:
        if not entries:
            return
        ids = [entry.entry_id for entry in entries]
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xack(self._key, self._group, *ids)
            pipe.xdel(self._key, *ids)
            await pipe.execute()

    async def depth(self) -> int:
        # Acked entries are deleted, so what is left is exactly pending + not yet delivered. (XINFO GROUPS' lag
        # turns nil once entries are deleted mid-stream, which is why it is not used.)
        return int(await self._redis.xlen(self._key))


class _RedisFollow:
    """What follow() returns: a bounded queue that the reader fills, behind an async iterator whose __anext__ may
    be cancelled (say by a timeout that checks on the run) without losing an event or ending the iteration,
    unlike an async generator's. Close it (aclose) when done."""

    def __init__(self, stream: RedisEventStream, run_id: str, after_seq: int) -> None:
        self._stream = stream
        self.run_id = run_id
        self.last_seq = after_seq
        self.queue: asyncio.Queue[StoredEvent | None] = asyncio.Queue(stream.follower_buffer)
        self.lost: str | None = None
        self._run: _FollowedRun | None = None  # registered at the first __anext__: an unused iterator holds nothing
        self._wake = False
        self._backlog: deque[StoredEvent] | None = None
        self._done = False

    def __aiter__(self) -> _RedisFollow:
        return self

    async def __anext__(self) -> StoredEvent:
        if self._done:
            raise StopAsyncIteration
        try:
            return await self._next()
        except LiveStreamLost:
            await self.aclose()
            raise

    async def _next(self) -> StoredEvent:
        if self._run is None:
            self._run, self._wake = self._stream._register(self)
        if self._backlog is None:
            # Registered first, then read: whatever the reader fans out from now on is queued, and everything
            # appended before this XRANGE is in it, so the two overlap (skipped by seq) and never leave a gap.
            self._backlog = deque(await self._stream._catch_up(self.run_id, self.last_seq, wake=self._wake))
            self._wake = False
        if self._backlog:
            return self._accept(self._backlog.popleft())
        while True:
            event = await self.queue.get()
            if self.lost is not None or event is None:
                raise LiveStreamLost(f"run {self.run_id}: {self.lost}")
            if event.seq > self.last_seq:
                return self._accept(event)

    def _accept(self, event: StoredEvent) -> StoredEvent:
        if event.seq != self.last_seq + 1:  # trimmed by MAXLEN, or lost when Redis restarted
            raise LiveStreamLost(
                f"run {self.run_id}: events after seq {self.last_seq} are no longer in the live stream"
            )
        self.last_seq = event.seq
        return event

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

    async def aclose(self) -> None:
        if not self._done:
            self._done = True
            if self._run is not None:
                self._stream._unfollow(self._run, self)


def _bulk(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return b"$%d\r\n%s\r\n" % (len(raw), raw)


class _FollowedRun:
    """A run stream in the reader's XREAD: the id it has read up to, and the followers it fans out to.

    Key and cursor are kept ready-packed for the wire: redis-py's generic packing of an XREAD over 1,000 keys
    costs ~1.6 ms of CPU, joining these costs ~0.2 ms, and the reader issues hundreds of XREADs a second."""

    def __init__(self, key: str, cursor: str) -> None:
        self.key = key
        self.packed_key = _bulk(key)
        self.packed_cursor = _bulk(cursor)
        self.followers: set[_RedisFollow] = set()


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
        self.follower_buffer = follower_buffer
        self._runs: dict[str, _FollowedRun] = {}  # by stream key
        self._reader: asyncio.Task[None] | None = None
        self._reader_conn: AbstractConnection | None = None  # taken from the pool for good: the reader's one connection
        self._catch_ups = asyncio.Semaphore(CATCH_UP_CONCURRENCY)
        self._wanted = asyncio.Event()  # set when there is something to follow
        self._wake_key = f"{prefix}runs:events-reader:{uuid.uuid4().hex}"
        self._wake_run = _FollowedRun(self._wake_key, "0-0")  # read with the runs; it has no followers
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

    async def append_many(
        self,
        events: Sequence[tuple[str, StoredEvent]],
        closes: Mapping[str, int] | None = None,
        *,
        must_exist: Collection[str] = (),
    ) -> set[str]:
        if not events and not closes:
            return set()
        if any(event.seq < 1 for _, event in events):
            raise ValueError("event seq must be >= 1")
        # NOMKSTREAM answers nil instead of creating a stream that is gone; this run's later commands in the
        # pipeline then find no stream either (no event written, nothing to close), and the writer sends them again.
        checked = set(must_exist) & {run_id for run_id, _ in events}
        async with self._redis.pipeline(transaction=False) as pipe:
            adds: list[tuple[int, str]] = []  # (index in the pipeline, run id) of the XADDs that may not create
            for run_id, event in events:
                key = self._key(run_id)
                fields = {"seq": event.seq, "name": event.name, "data": event.data}
                if run_id in checked:
                    adds.append((len(pipe), run_id))
                nomkstream = run_id in checked
                pipe.xadd(key, fields, f"0-{event.seq}", self._max_events, True, nomkstream)
                if event.seq % _ORPHAN_TTL_EVERY == 1:
                    pipe.expire(key, ORPHAN_TTL_SECONDS)
            for run_id, ttl_seconds in (closes or {}).items():
                if ttl_seconds <= 0:
                    pipe.delete(self._key(run_id))
                else:
                    pipe.expire(self._key(run_id), ttl_seconds)
            results = await pipe.execute(raise_on_error=False)
        for result in results:
            # As in append(): an id at or below the stream's top is an event already there (a retried append).
            if isinstance(result, Exception) and not (
                isinstance(result, ResponseError) and "equal or smaller" in str(result)
            ):
                raise result
        return {run_id for index, run_id in adds if results[index] is None}

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

    def follow(self, run_id: str, after_seq: int) -> _RedisFollow:
        return _RedisFollow(self, run_id, after_seq)

    def _register(self, follower: _RedisFollow) -> tuple[_FollowedRun, bool]:
        """Adds a follower to the reader's set; answers whether its catch-up must also wake the reader."""
        if self._closed:
            raise LiveStreamLost("the event stream was closed")
        key = self._key(follower.run_id)
        run = self._runs.get(key)
        wake = False
        if run is None:
            # The reader starts where this follower starts; later followers with an earlier start catch up on
            # their own XRANGE, so the cursor never has to move back.
            run = self._runs[key] = _FollowedRun(key, f"0-{follower.last_seq}")
            # A blocked XREAD doesn't know this key yet: one wake per XREAD is enough for every newcomer.
            wake = self._in_flight is not None and self._woken != self._in_flight
            if wake:
                self._woken = self._in_flight
        run.followers.add(follower)
        self._start_reader()
        return run, wake

    async def _catch_up(self, run_id: str, after_seq: int, *, wake: bool) -> list[StoredEvent]:
        try:
            async with self._catch_ups, self._redis.pipeline(transaction=False) as pipe:
                if wake:
                    pipe.xadd(self._wake_key, {"w": 1}, maxlen=1, approximate=False)
                    pipe.expire(self._wake_key, ORPHAN_TTL_SECONDS)
                pipe.xrange(self._key(run_id), min=f"0-{after_seq + 1}")
                replies = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise LiveStreamLost(f"run {run_id}: live stream unavailable ({exc})") from exc
        return [self._event(entry_id, fields) for entry_id, fields in replies[-1]]

    def _unfollow(self, run: _FollowedRun, follower: _RedisFollow) -> None:
        run.followers.discard(follower)
        if not run.followers and self._runs.get(run.key) is run:
            # Left in a blocked XREAD until it returns; its events are then simply not fanned out.
            del self._runs[run.key]

    def _start_reader(self) -> None:
        self._wanted.set()
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_forever(), name=f"run-events-reader:{id(self):x}")

    @property
    def reads(self) -> int:
        """XREADs the reader has issued so far (for metrics and tests)."""
        return self._reads

    def _xread_command(self) -> bytes:
        runs = [*self._runs.values(), self._wake_run]
        head = [b"XREAD", b"COUNT", b"%d" % READER_COUNT, b"BLOCK", b"%d" % self._block_ms, b"STREAMS"]
        return b"".join(
            [
                b"*%d\r\n" % (len(head) + 2 * len(runs)),
                *map(_bulk, head),
                *(run.packed_key for run in runs),
                *(run.packed_cursor for run in runs),
            ]
        )

    async def _read_forever(self) -> None:
        delay = _BACKOFF_MIN
        while not self._closed:
            if not self._runs:
                self._wanted.clear()
                await self._wanted.wait()  # costs nothing while nobody follows anything
                continue
            self._reads += 1
            self._in_flight = self._reads
            try:
                if self._reader_conn is None:
                    self._reader_conn = await self._redis.connection_pool.get_connection()
                # A cancelled or failed read closes the connection; the next send reconnects it.
                await self._reader_conn.send_packed_command(self._xread_command())
                reply = await self._reader_conn.read_response(disable_decoding=True)
            except Exception as exc:  # never let the reader die: followers would hang silently
                logger.warning("run events reader: %s: %s; retrying in %.1fs", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX)
                continue
            finally:
                self._in_flight = None
            delay = _BACKOFF_MIN
            for key, entries in reply.items() if isinstance(reply, dict) else reply or ():
                self._fan_out(key.decode(), entries)

    def _fan_out(self, key: str, entries: list) -> None:
        # Raw replies: entries are [id, [field, value, ...]], undecoded.
        if key == self._wake_key:
            self._wake_run.packed_cursor = _bulk(entries[-1][0])
            return
        run = self._runs.get(key)
        if run is None:
            return  # its last follower left while the XREAD was blocked
        for entry_id, flat in entries:
            try:
                fields = dict(zip(flat[::2], flat[1::2], strict=True))
                event = StoredEvent(
                    seq=int(entry_id.partition(b"-")[2]), name=fields[b"name"].decode(), data=fields[b"data"]
                )
            except (KeyError, ValueError, TypeError) as exc:  # not written by append(): skip it, keep the reader
                logger.warning("run events reader: skipped malformed entry %r in %s: %s", entry_id, key, exc)
                continue
            for follower in tuple(run.followers):
                if not follower.offer(event):
                    self._unfollow(run, follower)
        run.packed_cursor = _bulk(entries[-1][0])

    async def aclose(self) -> None:
        """Stops the reader and ends every follower with LiveStreamLost (the process is shutting down)."""
        self._closed = True
        self._wanted.set()
        if self._reader is not None:
            await cancel_and_wait([self._reader])
            self._reader = None
        if self._reader_conn is not None:
            await self._redis.connection_pool.release(self._reader_conn)
            self._reader_conn = None
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
