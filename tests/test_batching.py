"""The Batcher that carries a busy worker's writes: batches, order, one write at a time, errors to each caller."""

from __future__ import annotations

import asyncio

import pytest

from backend.runs.batching import Batcher


class Recorder:
    def __init__(self, *, fail_on: int | None = None, delay: float = 0.0) -> None:
        self.writes: list[list[int]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.fail_on = fail_on
        self.delay = delay

    async def write(self, items: list[int]) -> list[int]:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            self.writes.append(list(items))
            if self.fail_on is not None and self.fail_on in items:
                raise RuntimeError("the backend refused")
            return [item * 10 for item in items]
        finally:
            self.in_flight -= 1


async def test_items_submitted_together_travel_in_one_write_in_order():
    recorder = Recorder()
    batcher = Batcher(recorder.write)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(20)))
    assert results == [i * 10 for i in range(20)]
    assert recorder.writes == [list(range(20))]


async def test_a_busy_batcher_gathers_what_arrives_during_a_write_and_never_overlaps_writes():
    recorder = Recorder(delay=0.05)
    batcher = Batcher(recorder.write)
    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0.01)  # the first write is in flight
    later = [asyncio.create_task(batcher.submit(i)) for i in range(1, 6)]
    assert await first == 0
    assert [await task for task in later] == [10, 20, 30, 40, 50]
    assert recorder.writes == [[0], [1, 2, 3, 4, 5]]
    assert recorder.max_in_flight == 1


async def test_batches_are_capped_and_keep_their_order():
    recorder = Recorder()
    batcher = Batcher(recorder.write, max_items=3)
    assert await batcher.submit_many(list(range(7))) == [i * 10 for i in range(7)]
    assert recorder.writes == [[0, 1, 2], [3, 4, 5], [6]]


async def test_a_failed_write_fails_each_of_its_callers_and_the_next_batch_still_goes():
    recorder = Recorder(delay=0.02)
    batcher = Batcher(recorder.write)
    doomed = [asyncio.create_task(batcher.submit(i)) for i in (1, 2)]
    await asyncio.sleep(0.005)
    survivor = asyncio.create_task(batcher.submit(3))
    recorder.fail_on = 2
    for task in doomed:
        with pytest.raises(RuntimeError, match="refused"):
            await task
    assert await survivor == 30
    results = await batcher.submit_many([4, 2])
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_no_task_lingers_once_everything_is_written():
    recorder = Recorder()
    batcher = Batcher(recorder.write)
    await batcher.submit(1)
    await asyncio.sleep(0)
    assert batcher._task is not None and batcher._task.done()
