"""Picks the run transport: in-process backends for the embedded `up` (no Redis configured), Redis otherwise."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis

from backend.runs.backends.base import CancelSignals, EventStream, RunQueue
from backend.runs.backends.memory import MemoryCancelSignals, MemoryEventStream, MemoryRunQueue
from backend.runs.backends.redis import RedisCancelSignals, RedisEventStream, RedisRunQueue


@dataclass
class RunBackends:
    queue: RunQueue
    events: EventStream
    cancels: CancelSignals
    # What must stop with the process (the event stream's reader, pending expiries); not the Redis client,
    # which belongs to the app.
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list, repr=False)

    async def aclose(self) -> None:
        for close in self._closers:
            await close()


def build_backends(redis: Redis | None, prefix: str) -> RunBackends:
    if redis is None:
        memory_events = MemoryEventStream()
        return RunBackends(MemoryRunQueue(), memory_events, MemoryCancelSignals(), [memory_events.aclose])
    redis_events = RedisEventStream(redis, prefix)
    return RunBackends(
        RedisRunQueue(redis, prefix), redis_events, RedisCancelSignals(redis, prefix), [redis_events.aclose]
    )
