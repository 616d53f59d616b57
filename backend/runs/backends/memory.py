"""In-process queue, event stream and cancel signals for the embedded `playground up` (api and workers share one
event loop). Nothing here survives the process, which is fine: PostgreSQL holds the truth."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator, Collection, Mapping, Sequence

from backend.runs.backends.base import QueueEntry, StoredEvent

logger = logging.getLogger(__name__)

DEFAULT_MAX_EVENTS = 10_000


class LiveStreamLost(Exception):
    """A follower can no longer be served live without a gap (it fell behind the cap, or the backend closed).

    Raised by `EventStream.follow()` of both backends; the SSE layer resumes from the database copy and then
    follows again from there."""


class MemoryRunQueue:
    """A FIFO with an explicit ack. Delivered entries wait in `_pending` until acked and are never redelivered:
    the database lease decides who runs what, and the reconciler re-publishes runs whose worker vanished."""

    def __init__(self) -> None:
        self._ready: deque[QueueEntry] = deque()
        self._pending: dict[str, QueueEntry] = {}
        self._ids = itertools.count(1)
        self._published = asyncio.Condition()

    async def publish(self, run_id: str, trace: str | None = None) -> None:
        async with self._published:
            self._ready.append(QueueEntry(entry_id=str(next(self._ids)), run_id=run_id, trace=trace))
            self._published.notify(1)

    async def consume(self, consumer: str, *, count: int, block_ms: int) -> list[QueueEntry]:
        async with self._published:
            if not self._ready and block_ms > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(block_ms / 1000):
                        await self._published.wait_for(lambda: bool(self._ready))
            taken = [self._ready.popleft() for _ in range(min(count, len(self._ready)))]
            for entry in taken:
                self._pending[entry.entry_id] = entry
            if self._ready:
                # notify(1) per publish may have woken only us for several entries: pass the baton on.
                self._published.notify(1)
            return taken

    async def ack(self, entry: QueueEntry) -> None:
        self._pending.pop(entry.entry_id, None)

    async def ack_many(self, entries: Sequence[QueueEntry]) -> None:
        for entry in entries:
            self._pending.pop(entry.entry_id, None)

    async def depth(self) -> int:
        return len(self._ready) + len(self._pending)


class _RunLog:
    """One run's events, oldest first, capped; `changed` is replaced on every append so that waiters that
    captured the old one are woken exactly once, with no polling."""

    def __init__(self) -> None:
        self.events: list[StoredEvent] = []
        self.seqs: list[int] = []
        self.start = 0  # index of the oldest kept event; the prefix is compacted away in chunks
        self.dropped_through = 0  # highest seq removed by the cap
        self.changed = asyncio.Event()
        self.followers = 0
        self.expiry: asyncio.TimerHandle | None = None

    @property
    def last_seq(self) -> int:
        return self.seqs[-1] if len(self.seqs) > self.start else self.dropped_through

    def append(self, event: StoredEvent, max_events: int) -> None:
        self.events.append(event)
        self.seqs.append(event.seq)
        if len(self.events) - self.start > max_events:
            self.dropped_through = self.seqs[self.start]
            self.start += 1
            if self.start >= max_events:  # amortised O(1): compact once per max_events drops
                del self.events[: self.start], self.seqs[: self.start]
                self.start = 0
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()

    def after(self, seq: int) -> list[StoredEvent]:
        return self.events[bisect.bisect_right(self.seqs, seq, lo=self.start) :]

    @property
    def unused(self) -> bool:
        return not self.followers and self.expiry is None and len(self.events) == self.start


class MemoryEventStream:
    """Per-run event logs held in memory, capped at max_events per run (the oldest are dropped; a follower that
    falls behind the cap gets LiveStreamLost and resumes from the database copy)."""

    def __init__(self, max_events: int = DEFAULT_MAX_EVENTS) -> None:
        self._max_events = max_events
        self._logs: dict[str, _RunLog] = {}

    async def append(self, run_id: str, event: StoredEvent) -> None:
        if event.seq < 1:
            raise ValueError("event seq must be >= 1")
        log = self._logs.get(run_id)
        if log is None:
            log = self._logs[run_id] = _RunLog()
        if event.seq <= log.last_seq:
            return  # a retried append of an event we already hold (same rule as Redis stream ids)
        log.append(event, self._max_events)

    async def append_many(
        self,
        events: Sequence[tuple[str, StoredEvent]],
        closes: Mapping[str, int] | None = None,
        *,
        must_exist: Collection[str] = (),
    ) -> set[str]:
        # A log that never held an event counts as absent (a follower waiting for the first one makes it).
        missing = {run_id for run_id in must_exist if (log := self._logs.get(run_id)) is None or log.last_seq == 0}
        for run_id, event in events:
            if run_id not in missing:
                await self.append(run_id, event)
        for run_id, ttl_seconds in (closes or {}).items():
            if run_id not in missing:
                await self.close(run_id, ttl_seconds=ttl_seconds)
        return missing & {run_id for run_id, _ in events}

    async def read(self, run_id: str, after_seq: int) -> list[StoredEvent]:
        log = self._logs.get(run_id)
        return log.after(after_seq) if log is not None else []

    async def close(self, run_id: str, *, ttl_seconds: int) -> None:
        log = self._logs.get(run_id)
        if log is None:
            return
        if log.expiry is not None:
            log.expiry.cancel()
        if ttl_seconds <= 0:
            self._drop(run_id, log)
            return
        log.expiry = asyncio.get_running_loop().call_later(ttl_seconds, self._drop, run_id, log)

    def _drop(self, run_id: str, log: _RunLog) -> None:
        # Followers still holding the log simply see nothing new, as with an expired Redis stream.
        if log.expiry is not None:
            log.expiry.cancel()
            log.expiry = None
        if self._logs.get(run_id) is log:
            del self._logs[run_id]

    def follow(self, run_id: str, after_seq: int) -> _MemoryFollow:
        return _MemoryFollow(self, run_id, after_seq)

    def _attach(self, run_id: str) -> _RunLog:
        log = self._logs.get(run_id)
        if log is None:
            log = self._logs[run_id] = _RunLog()  # so that the first append lands where the follower waits
        log.followers += 1
        return log

    def _detach(self, run_id: str, log: _RunLog) -> None:
        log.followers -= 1
        if log.unused and self._logs.get(run_id) is log:
            del self._logs[run_id]

    async def aclose(self) -> None:
        for log in self._logs.values():
            if log.expiry is not None:
                log.expiry.cancel()
        self._logs.clear()


class _MemoryFollow:
    """What follow() returns. Unlike an async generator's, its __anext__ may be cancelled (say by a timeout that
    checks on the run) without losing an event or ending the iteration. Close it (aclose) when done."""

    def __init__(self, stream: MemoryEventStream, run_id: str, after_seq: int) -> None:
        self._stream = stream
        self._run_id = run_id
        self._last = after_seq
        self._log: _RunLog | None = None  # attached at the first __anext__, so an unused iterator holds nothing
        self._batch: deque[StoredEvent] = deque()
        self._done = False

    def __aiter__(self) -> _MemoryFollow:
        return self

    async def __anext__(self) -> StoredEvent:
        if self._done:
            raise StopAsyncIteration
        if self._log is None:
            self._log = self._stream._attach(self._run_id)
        log = self._log
        while not self._batch:
            changed = log.changed  # captured before reading, so no append can slip between the two
            if self._last < log.dropped_through:
                await self.aclose()
                raise LiveStreamLost(f"run {self._run_id}: events after seq {self._last} were dropped by the cap")
            self._batch.extend(log.after(self._last))
            if not self._batch:
                await changed.wait()
        event = self._batch.popleft()
        self._last = event.seq
        return event

    async def aclose(self) -> None:
        if not self._done:
            self._done = True
            if self._log is not None:
                self._stream._detach(self._run_id, self._log)


class MemoryCancelSignals:
    """Every listener gets its own queue; a send reaches each listener registered at that moment."""

    def __init__(self, listener_buffer: int = 10_000) -> None:
        self._listeners: set[asyncio.Queue[str]] = set()
        self._listener_buffer = listener_buffer

    async def send(self, run_id: str) -> None:
        for queue in self._listeners:
            try:
                queue.put_nowait(run_id)
            except asyncio.QueueFull:
                # Best effort by contract: the worker also polls the run's durable cancel flag.
                logger.warning("cancel listener is not keeping up; dropped the signal for run %s", run_id)

    async def listen(self) -> AsyncIterator[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(self._listener_buffer)
        self._listeners.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._listeners.discard(queue)
