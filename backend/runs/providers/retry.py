"""Retries and deadlines around any provider stream: retry only before the first token, never after text."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping

from backend.runs.providers.base import (
    Finished,
    Provider,
    ProviderError,
    ProviderRequest,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolUse,
)

RetryCallback = Callable[[int, ProviderError, float], None]

# After Finished a provider may still read the end of its response (so the connection can be reused);
# it gets this long before the stream is simply closed.
_DRAIN_GRACE = 1.0


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms` (OpenAI), or `retry-after` as seconds or an HTTP date."""
    if millis := headers.get("retry-after-ms"):
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


class _Deadline:
    """A deadline for awaiting the next event that moves with a float assignment per event.

    asyncio.timeout() around every `anext()` creates and cancels a timer per token, a sixth of a busy
    worker's CPU. This keeps one timer per stream that, when it fires early, re-arms itself for the current
    deadline; it cancels the task only while the stream is being awaited, and says so (as asyncio.timeout
    does, with uncancel) so that a cancellation from elsewhere is never mistaken for a timeout.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._task = asyncio.current_task()
        self._when = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self.waiting = False
        self.fired = False

    def arm(self, when: float) -> None:
        self._when = when
        if self._handle is not None and when < self._handle.when():
            self.disarm()  # sooner than the timer (the first token came; silence is timed from now on)
        if self._handle is None:
            self._handle = self._loop.call_at(when, self._check)

    def _check(self) -> None:
        self._handle = None
        if self._loop.time() < self._when:  # moved later since the timer was set: wait the rest
            self._handle = self._loop.call_at(self._when, self._check)
        elif self.waiting and self._task is not None:
            self.fired = True
            self._task.cancel()
        # Otherwise the consumer is busy with an event: the next arm() starts the clock again.

    def took_effect(self) -> bool:
        """After a CancelledError: whether it was this deadline's own (and only) cancellation."""
        if not self.fired:
            return False
        self.fired = False
        return self._task is not None and self._task.uncancel() == 0

    def disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def backoff_delay(attempt: int, error: ProviderError, *, base_delay: float, max_delay: float) -> float:
    """Exponential backoff with full jitter (spreads a thundering herd), but never sooner than retry-after."""
    ceiling = min(max_delay, base_delay * 2 ** (attempt - 1))
    delay = random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret
    if error.retry_after is not None:
        delay = max(delay, error.retry_after)
    return delay


async def stream_with_retries(
    provider: Provider,
    request: ProviderRequest,
    *,
    max_attempts: int = 4,
    base_delay: float = 0.5,
    max_delay: float = 8.0,
    max_retry_after: float = 30.0,
    first_token_timeout: float = 60.0,
    silence_timeout: float = 60.0,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    on_retry: RetryCallback | None = None,
) -> AsyncIterator[StreamEvent]:
    """The provider's events, retried on a retryable error until the first TextDelta or Finished.

    Once text has been yielded an error propagates: retrying would show the user a second, different
    answer after part of the first. UsageUpdates that come before the first text pass straight through
    (a run cancelled while waiting still learns its input tokens); a retried attempt yields its own, and
    since usage is cumulative per attempt its figures replace the failed attempt's.

    first_token_timeout bounds the time from the start of an attempt to its first TextDelta or Finished
    (retryable); silence_timeout bounds each gap between events after that (not retryable). A retry-after
    longer than max_retry_after is not waited for: the error propagates at once. `on_retry(attempt, error,
    delay)` is called with the number of the attempt that failed, before sleeping `delay` seconds.
    Closing this generator closes the provider's stream.
    """
    loop = asyncio.get_running_loop()
    attempt = 0
    while True:
        attempt += 1
        events = provider.stream(request)
        started = False  # a TextDelta or Finished has been yielded from this attempt
        finished = False
        first_token_deadline = loop.time() + first_token_timeout
        deadline = _Deadline(loop)
        try:
            while True:
                if finished:
                    deadline.arm(loop.time() + min(silence_timeout, _DRAIN_GRACE))
                elif started:
                    deadline.arm(loop.time() + silence_timeout)
                else:
                    deadline.arm(first_token_deadline)
                deadline.waiting = True
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    if not deadline.took_effect():
                        raise
                    if finished:
                        return  # the answer is complete; the provider was only tidying up
                    if started:
                        raise ProviderError(
                            "timeout", f"no event from the provider for {silence_timeout:g}s", retryable=False,
                        ) from None
                    raise ProviderError(
                        "timeout", f"no first token within {first_token_timeout:g}s", retryable=True,
                    ) from None
                finally:
                    deadline.waiting = False
                if finished:
                    continue  # a provider must not yield after Finished; ignore rather than duplicate
                if isinstance(event, TextDelta | ThinkingDelta | ToolUse | Finished):
                    started = True
                    finished = isinstance(event, Finished)
                yield event
        except ProviderError as error:
            if finished:
                return  # a failure while the provider drains its connection changes nothing
            if started or not error.retryable or attempt >= max_attempts:
                raise
            if error.retry_after is not None and error.retry_after > max_retry_after:
                raise
            delay = backoff_delay(attempt, error, base_delay=base_delay, max_delay=max_delay)
            if on_retry is not None:
                on_retry(attempt, error, delay)
        finally:
            deadline.disarm()
            if isinstance(events, AsyncGenerator):  # what every provider returns; the Protocol says iterator
                await events.aclose()
        await sleep(delay)
