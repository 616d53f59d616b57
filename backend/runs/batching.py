"""Many coroutines, one round trip: what a worker streaming hundreds of runs writes to Redis and PostgreSQL
goes out in batches instead of one command (and one pooled connection) per run."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batcher(Generic[Item, Result]):
    """Gathers the items submitted while a write is in flight and writes them together next: an idle batcher
    writes at once (no added latency), a busy one writes as fast as its backend answers, in submission order.

    `write` gets a list of items and answers one result per item; each submitter gets its item's result, or
    the write's exception. Writes never overlap, so a later write never lands before an earlier one. No task
    lingers when there is nothing to write.
    """

    def __init__(self, write: Callable[[list[Item]], Awaitable[Sequence[Result]]], *, max_items: int = 1000) -> None:
        self._write = write
        self._max_items = max_items
        self._items: list[tuple[Item, asyncio.Future[Result]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._items.append((item, future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())
        return await future

    async def submit_many(self, items: list[Item]) -> list[Result | BaseException]:
        """submit() of several items at once, without a task each: their results, or each one's exception."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Result]] = [loop.create_future() for _ in items]
        self._items.extend(zip(items, futures, strict=True))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())
        return await asyncio.gather(*futures, return_exceptions=True)

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let the other submitters of this tick join the first write
        while self._items:
            batch = self._items[: self._max_items]
            del self._items[: self._max_items]
            try:
                results = await self._write([item for item, _ in batch])
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("write cancelled"))
                if not isinstance(exc, Exception):
                    self._fail_rest()
                    raise
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    def _fail_rest(self) -> None:
        items, self._items = self._items, []
        for _, future in items:
            if not future.done():
                future.set_exception(RuntimeError("write cancelled"))
