"""Stopping background tasks for sure."""

import asyncio
from collections.abc import Iterable
from typing import Any

# How long a cancelled task may take to end before it is cancelled again.
RECANCEL_SECONDS = 0.1


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancels the tasks and returns once every one has ended, cancelling again any that is still running.

    One cancel is not always enough on Python 3.11: its `asyncio.wait_for`, which redis-py and asyncpg use
    inside, swallows a cancellation that arrives just as the awaited read completes (a Pub/Sub subscribe
    confirmation, say), and the task carries on waiting for the next message. What the tasks raised is
    retrieved here and dropped: the caller is shutting them down."""
    tasks = list(tasks)
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_SECONDS)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # marks it retrieved
