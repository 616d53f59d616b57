"""The three narrow interfaces the runs domain needs from its transport, each with two backends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class QueueEntry:
    entry_id: str  # backend-specific; pass it back to ack()
    run_id: str
    trace: str | None = None  # the W3C traceparent of the request that accepted the run, if traced


class RunQueue(Protocol):
    """Dispatch of runs that may start now. At-least-once: a run can be delivered twice; claiming in the
    database makes the second delivery a no-op. Entries are acked when the run is claimed."""

    async def publish(self, run_id: str, trace: str | None = None) -> None: ...

    async def consume(self, consumer: str, *, count: int, block_ms: int) -> list[QueueEntry]:
        """New entries for this consumer; waits up to block_ms when there are none."""
        ...

    async def ack(self, entry: QueueEntry) -> None: ...

    async def ack_many(self, entries: Sequence[QueueEntry]) -> None:
        """ack() of several entries in one round trip."""
        ...

    async def depth(self) -> int:
        """Entries published and not yet acked (for metrics and autoscaling)."""
        ...


@dataclass(frozen=True)
class StoredEvent:
    seq: int  # 1, 2, 3 … per run, assigned by the writer (the worker); orders the events
    name: str  # run.started, run.delta, ...
    data: bytes  # opaque to the backend (sealed with the workspace key by the runs domain)


class EventStream(Protocol):
    """A bounded, expiring log of one run's events, plus a way for one reader per process to follow many."""

    async def append(self, run_id: str, event: StoredEvent) -> None: ...

    async def append_many(
        self,
        events: Sequence[tuple[str, StoredEvent]],
        closes: Mapping[str, int] | None = None,
        *,
        must_exist: Collection[str] = (),
    ) -> set[str]:
        """append() of events of several runs in one round trip (in order), then close() of the runs in `closes`
        (run id → ttl seconds) once their events are in.

        The logs of the runs in `must_exist` are not created: if one is gone (Redis restarted empty, or it
        expired), none of that run's events are written and its id is in the answer. The writer can then make
        what it already sent durable elsewhere before it starts the log again."""
        ...

    async def read(self, run_id: str, after_seq: int) -> list[StoredEvent]:
        """Every stored event with seq > after_seq, in order (may be empty, e.g. after expiry)."""
        ...

    async def close(self, run_id: str, *, ttl_seconds: int) -> None:
        """The run has ended: keep its log ttl_seconds more, then drop it."""
        ...

    def follow(self, run_id: str, after_seq: int) -> AsyncIterator[StoredEvent]:
        """Events after after_seq as they arrive, without end (the caller stops at a terminal event).

        All followers in a process share one reader of the backend (fan-out in memory)."""
        ...


class CancelSignals(Protocol):
    """Best-effort, fast cancellation. The durable truth is the run row's cancel flag (a signal sent while a
    worker reconnects is lost), so workers also poll the flag."""

    async def send(self, run_id: str) -> None: ...

    def listen(self) -> AsyncIterator[str]:
        """Run ids whose cancellation was requested, from now on, for as long as the iterator is open."""
        ...
