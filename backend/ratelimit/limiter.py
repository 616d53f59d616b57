"""Sliding-window limiters behind one narrow interface: in-process for `up`, Redis for production.

`hit` records an event and answers None when it fits in the window, else the seconds until it would;
`peek` answers the same without recording. A refused hit is not recorded, so a client that keeps
hammering does not push its own window further out.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from typing import Protocol

from redis.asyncio import Redis


class Limiter(Protocol):
    async def hit(self, key: str, limit: int, window: float) -> float | None: ...
    async def peek(self, key: str, limit: int, window: float) -> float | None: ...
    async def reset(self, key: str) -> None: ...
    async def forget_one(self, key: str) -> None: ...


class MemoryLimiter:
    SWEEP_EVERY = 4096  # checks between sweeps of keys nobody has used for longer than any window

    def __init__(self) -> None:
        self._events: dict[str, deque[float]] = {}
        self._lock = asyncio.Lock()
        self._longest_window = 0.0
        self._checks = 0

    def _window(self, key: str, window: float, now: float) -> deque[float]:
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - window:
            events.popleft()
        return events

    def _sweep(self, now: float) -> None:
        """Forgets keys whose newest event has left even the longest window: otherwise every key ever seen (one
        per client address that failed a login, say) would stay in a long-running `up` forever."""
        horizon = now - self._longest_window
        for key in [k for k, events in self._events.items() if not events or events[-1] <= horizon]:
            del self._events[key]

    async def _check(self, key: str, limit: int, window: float, record: bool) -> float | None:
        async with self._lock:
            now = time.monotonic()
            self._longest_window = max(self._longest_window, window)
            self._checks += 1
            if self._checks % self.SWEEP_EVERY == 0:
                self._sweep(now)
            events = self._window(key, window, now)
            if len(events) >= limit:
                # Room for one more once all but limit - 1 have left the window (more than `limit` are held
                # when the limit was lowered): the (len - limit)-th oldest decides, not always the oldest.
                return max(events[len(events) - limit] + window - now, 0.001)
            if record:
                events.append(now)
            elif not events:
                self._events.pop(key, None)
            return None

    async def hit(self, key: str, limit: int, window: float) -> float | None:
        return await self._check(key, limit, window, record=True)

    async def peek(self, key: str, limit: int, window: float) -> float | None:
        return await self._check(key, limit, window, record=False)

    async def reset(self, key: str) -> None:
        async with self._lock:
            self._events.pop(key, None)

    async def forget_one(self, key: str) -> None:
        """Takes back the newest recorded event (an attempt that turned out not to count)."""
        async with self._lock:
            events = self._events.get(key)
            if events:
                events.pop()


# KEYS[1] = the window's sorted set; ARGV = limit, window (ms), record (0/1), member.
# Uses the server clock so that every api process shares one notion of "now".
_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
  -- room for one more once all but limit - 1 have left the window (more are held if the limit was lowered)
  local deciding = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
  local wait = tonumber(deciding[2]) + window - now
  if wait < 1 then wait = 1 end
  return wait
end
if ARGV[3] == '1' then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
end
return -1
"""


class RedisLimiter:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix + "limit:"
        self._script = redis.register_script(_SLIDING_WINDOW)

    async def _check(self, key: str, limit: int, window: float, record: bool) -> float | None:
        wait_ms = await self._script(
            keys=[self._prefix + key],
            args=[limit, int(window * 1000), "1" if record else "0", uuid.uuid4().hex],
        )
        return None if int(wait_ms) < 0 else int(wait_ms) / 1000

    async def hit(self, key: str, limit: int, window: float) -> float | None:
        return await self._check(key, limit, window, record=True)

    async def peek(self, key: str, limit: int, window: float) -> float | None:
        return await self._check(key, limit, window, record=False)

    async def reset(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)

    async def forget_one(self, key: str) -> None:
        await self._redis.zpopmax(self._prefix + key)
