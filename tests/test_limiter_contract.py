"""One contract for both limiter backends: the in-process one (`up`) and the Redis one (production)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from backend.ratelimit.limiter import MemoryLimiter, RedisLimiter
from tests.conftest import REDIS_URL


@pytest.fixture(params=["memory", "redis"])
async def limiter(request, redis_prefix):
    if request.param == "memory":
        yield MemoryLimiter()
        return
    client = Redis.from_url(REDIS_URL)
    yield RedisLimiter(client, redis_prefix)
    await client.aclose()


def _key() -> str:
    return f"k-{uuid.uuid4().hex}"


async def test_allows_up_to_the_limit_then_refuses(limiter):
    key = _key()
    for _ in range(3):
        assert await limiter.hit(key, 3, 60) is None
    wait = await limiter.hit(key, 3, 60)
    assert wait is not None and 0 < wait <= 60


async def test_peek_does_not_record(limiter):
    key = _key()
    for _ in range(5):
        assert await limiter.peek(key, 1, 60) is None
    assert await limiter.hit(key, 1, 60) is None
    assert await limiter.peek(key, 1, 60) is not None


async def test_refused_hits_are_not_recorded(limiter):
    key = _key()
    assert await limiter.hit(key, 1, 0.4) is None
    for _ in range(5):
        assert await limiter.hit(key, 1, 0.4) is not None
    await asyncio.sleep(0.5)
    # Had the refused hits counted, the window would still be full.
    assert await limiter.hit(key, 1, 0.4) is None


async def test_window_slides(limiter):
    key = _key()
    assert await limiter.hit(key, 2, 0.3) is None
    assert await limiter.hit(key, 2, 0.3) is None
    assert await limiter.hit(key, 2, 0.3) is not None
    await asyncio.sleep(0.35)
    assert await limiter.hit(key, 2, 0.3) is None


async def test_reset_clears_a_key_only(limiter):
    a, b = _key(), _key()
    await limiter.hit(a, 1, 60)
    await limiter.hit(b, 1, 60)
    await limiter.reset(a)
    assert await limiter.hit(a, 1, 60) is None
    assert await limiter.hit(b, 1, 60) is not None


async def test_concurrent_hits_never_exceed_the_limit(limiter):
    key = _key()
    results = await asyncio.gather(*(limiter.hit(key, 10, 60) for _ in range(50)))
    assert sum(r is None for r in results) == 10


async def test_forget_one_gives_back_a_slot(limiter):
    key = _key()
    assert await limiter.hit(key, 2, 60) is None
    assert await limiter.hit(key, 2, 60) is None
    assert await limiter.hit(key, 2, 60) is not None
    await limiter.forget_one(key)
    assert await limiter.hit(key, 2, 60) is None
    assert await limiter.hit(key, 2, 60) is not None
