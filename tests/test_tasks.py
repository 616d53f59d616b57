"""Background tasks end when they are stopped, even when a cancellation is swallowed on the way."""

import asyncio
import gc
from collections.abc import AsyncIterator
from dataclasses import replace

from backend.core.tasks import cancel_and_wait
from backend.runs.worker import Worker


async def _deaf(times: int, woken: list[int]) -> None:
    """Swallows the first `times` cancellations, as Python 3.11's wait_for does when a read completes as the
    cancellation lands, and goes back to waiting."""
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            woken.append(1)
            if len(woken) > times:
                raise


async def test_a_task_that_swallows_cancellations_is_cancelled_until_it_ends():
    woken: list[int] = []
    stubborn = asyncio.create_task(_deaf(2, woken))
    plain = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait([stubborn, plain]), 10)
    assert stubborn.cancelled() and plain.cancelled()
    assert len(woken) == 3


async def test_what_the_tasks_raised_is_retrieved(caplog):
    async def boom() -> None:
        raise RuntimeError("broken helper")

    failed = asyncio.create_task(boom())
    finished = asyncio.create_task(asyncio.sleep(0))
    await asyncio.sleep(0.01)
    await cancel_and_wait([failed, finished])
    del failed, finished
    gc.collect()
    assert "exception was never retrieved" not in caplog.text


class _DeafCancels:
    """The cancel signals of the app, with a listener that swallows its first cancellation (the race seen in
    CI: a worker stopped 0.3 s after it started waited for ever on its Pub/Sub subscription)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.swallowed = 0

    async def send(self, run_id: str) -> None:
        await self.inner.send(run_id)

    async def listen(self) -> AsyncIterator[str]:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.swallowed += 1
                if self.swallowed > 1:
                    raise
        yield ""  # pragma: no cover - makes this an async generator


async def test_a_worker_stops_although_its_cancel_listener_swallowed_a_cancellation(app):
    cancels = _DeafCancels(app.state.run_backends.cancels)
    worker = Worker(
        sessionmaker=app.state.sessionmaker,
        keyring=app.state.keyring,
        backends=replace(app.state.run_backends, cancels=cancels),
        settings=app.state.settings,
    )
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.3)
    worker.stop()
    await asyncio.wait_for(task, 10)  # before the fix: never (the listener went back to waiting)
    assert cancels.swallowed == 2
