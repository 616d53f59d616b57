"""Runs, worker side: claim from the queue, call the provider, stream events, persist, settle; and the
reconciler that makes sure no accepted run is lost when a worker or the queue is."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from jsonschema import Draft202012Validator
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.catalogue.service import cost_micros
from backend.core.database import is_transient_db_error
from backend.core.settings import Settings
from backend.core.tasks import cancel_and_wait
from backend.crypto.service import Keyring
from backend.observability import logs, metrics, tracing
from backend.runs import repository as repo
from backend.runs.backends.base import QueueEntry, StoredEvent
from backend.runs.backends.factory import RunBackends
from backend.runs.batching import Batcher
from backend.runs.events import TERMINAL_EVENT_FOR, RunEvent, open_event, seal_event
from backend.runs.models import Run
from backend.runs.providers.base import (
    Finished,
    ProviderError,
    ProviderRequest,
    TextDelta,
    ThinkingDelta,
    ToolUse,
    UsageUpdate,
)
from backend.runs.providers.registry import provider_for
from backend.runs.providers.retry import stream_with_retries
from backend.runs.schemas import RunOut
from backend.runs.service import EVENT_TTL_SECONDS, admit, first_worker_seq, run_view
from backend.safety import service as safety
from backend.safety.detectors import Finding, StreamScanner, mask
from backend.safety.service import Policy
from backend.usage import service as usage
from backend.workspaces.egress import allowed_hosts, check_base_url
from backend.workspaces.service import provider_access

logger = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_CONCURRENCY = 100
MAX_ATTEMPTS = 3  # a run whose worker vanished before its first token is retried this many times in all
COALESCE_SECONDS = 0.025  # deltas closer together than this travel as one event
# With many runs streaming, the window widens so that the whole worker sends about this many delta events a
# second (1,000 streams: one event per run every 250 ms); the text and its order are the same either way.
DELTA_EVENTS_PER_SECOND = 4_000
CLAIM_BATCH = 50  # queue entries read and claimed in one round trip
# A run's own database writes (first token, settlement) ride out a busy or restarting database this long.
DB_RETRY_SECONDS = 20.0
# How long after a lost run's lease expired the reconciler waits for its live stream to be readable again
# before it ends the run with the saved output only.
STREAM_WAIT = timedelta(seconds=30)


class StreamUnreadable(Exception):
    """The live stream of a lost run could not be read: it is ended on a later pass."""


@dataclass
class InFlight:
    run: Run
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    output: list[str] = field(default_factory=list)
    chars: int = 0
    text_events: int = 0
    seq: int = 2
    persisted_chars: int = 0  # output characters the database holds
    sent_chars: int = 0  # output characters the live stream has carried (readers may have them)
    streaming: bool = False  # between the provider call and the end: its lease is renewed by the heartbeat
    lease_lost: bool = False
    stream_started: bool = False  # an event of this attempt is in the live stream: it must still be there
    settled: bool = False  # its end is stored: what is sent of it from now on is all in the database
    usage: dict[str, int] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    last_emit: float = 0.0
    flush_handle: asyncio.TimerHandle | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    started: float = field(default_factory=time.monotonic)
    ttft_ms: int | None = None
    shutdown: bool = False  # stopped by SIGTERM after the grace period: hand the run back
    thinking: list[str] = field(default_factory=list)
    tool_uses: list[dict[str, Any]] = field(default_factory=list)
    scanner: StreamScanner = field(default_factory=StreamScanner)  # the safety checks of the output
    policy: Policy = field(default_factory=Policy)
    output_flags: list[tuple[Finding, str | None, str]] = field(default_factory=list)


class Worker:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        keyring: Keyring,
        backends: RunBackends,
        settings: Settings,
        concurrency: int = DEFAULT_CONCURRENCY,
        worker_id: str | None = None,
        lease_seconds: float | None = None,
        flush_seconds: float = 1.0,
        reconcile_seconds: float | None = None,
        lost_dispatch_seconds: float | None = None,
        grace_seconds: float | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.keyring = keyring
        self.backends = backends
        self.settings = settings
        self.concurrency = concurrency
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease = timedelta(seconds=lease_seconds or settings.worker_lease_seconds)
        self.flush_seconds = min(flush_seconds, self.lease.total_seconds() / 3)
        self.reconcile_seconds = reconcile_seconds or settings.reconcile_seconds
        self.lost_dispatch = timedelta(seconds=lost_dispatch_seconds or settings.lost_dispatch_seconds)
        self.grace_seconds = settings.worker_grace_seconds if grace_seconds is None else grace_seconds
        self.in_flight: dict[str, InFlight] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(concurrency)
        self._stopping = asyncio.Event()
        # Everything the runs write while streaming goes out in batches: one pipelined round trip to Redis for
        # the events of all runs, one UPDATE for the progress of all runs.
        self._events_out: Batcher[tuple[str, StoredEvent | int], None] = Batcher(self._write_events)
        self._progress: Batcher[InFlight, datetime | bool | str | None] = Batcher(self._save_progress, max_items=500)

    # Lifecycle

    async def run(self) -> None:
        """Runs until stop() is called; then stops claiming and lets in-flight runs finish (grace period)."""
        helpers = [
            asyncio.create_task(self._consume_loop(), name="worker-consume"),
            asyncio.create_task(self._cancel_listener(), name="worker-cancels"),
            asyncio.create_task(self._reconcile_loop(), name="worker-reconcile"),
            asyncio.create_task(self._heartbeat_loop(), name="worker-heartbeat"),
        ]
        try:
            await self._stopping.wait()
        finally:
            await cancel_and_wait(helpers[:1])
            if self._tasks:
                _, pending = await asyncio.wait(self._tasks, timeout=self.grace_seconds)
                if pending:
                    # Out of time: hand the rest back rather than leave them to the lease expiring.
                    for flight in self.in_flight.values():
                        flight.shutdown = True
                        flight.cancel.set()
                    _, pending = await asyncio.wait(pending, timeout=10)
                await cancel_and_wait(pending)
            await cancel_and_wait(helpers[1:])

    def stop(self) -> None:
        self._stopping.set()

    async def _consume_loop(self) -> None:
        while not self._stopping.is_set():
            await self._slots.acquire()
            free = 1
            while free < CLAIM_BATCH and not self._slots.locked():
                await self._slots.acquire()  # immediate: the semaphore is not locked
                free += 1
            try:
                entries = await self.backends.queue.consume(self.worker_id, count=free, block_ms=1000)
                runs = await self._claim(entries) if entries else []
            except asyncio.CancelledError:
                self._release(free)
                raise
            except Exception:
                self._release(free)
                logger.warning("queue or database unreachable; retrying", exc_info=True)
                await asyncio.sleep(1)
                continue
            self._release(free - len(runs))
            traces = {entry.run_id: entry.trace for entry in entries}
            for run in runs:
                task = asyncio.create_task(self.execute(run, traces.get(str(run.id))))
                self._tasks.add(task)
                task.add_done_callback(self._done)

    async def _claim(self, entries: list[QueueEntry]) -> list[Run]:
        run_ids = [uuid.UUID(entry.run_id) for entry in entries]
        async with self.sessionmaker() as session, session.begin():
            runs = await repo.claim_many(session, run_ids, self.worker_id, self.lease)
        # Acked once claimed (or found not claimable): from here the database lease is the truth.
        with contextlib.suppress(Exception):
            await self.backends.queue.ack_many(entries)
        return runs

    def _release(self, slots: int) -> None:
        for _ in range(slots):
            self._slots.release()

    async def _retrying(self, what: str, step: Callable[[], Awaitable[T]]) -> T:
        """Runs a database step (its own transaction, so it can be re-run whole) until it gets through a
        transient failure, such as no connection to be had; a run is not failed for the worker's own trouble."""
        deadline = time.monotonic() + min(DB_RETRY_SECONDS, self.lease.total_seconds() * 2 / 3)
        delay = 0.05
        while True:
            try:
                return await step()
            except Exception as exc:
                if not is_transient_db_error(exc) or time.monotonic() + delay > deadline:
                    raise
                logger.warning("%s: database unavailable (%s); retrying", what, type(exc).__name__)
            await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter, not security
            delay = min(delay * 2, 2.0)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            logger.error("run task failed", exc_info=task.exception())

    async def _cancel_listener(self) -> None:
        while True:
            try:
                async for run_id in self.backends.cancels.listen():
                    flight = self.in_flight.get(run_id)
                    if flight is not None:
                        flight.cancel.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("cancel signals unreachable; the durable flag still works", exc_info=True)
                await asyncio.sleep(1)

    # One run

    async def execute(self, run: Run, trace: str | None = None) -> None:
        flight = InFlight(run=run, seq=first_worker_seq(run.flags))
        run_id = str(run.id)
        self.in_flight[run_id] = flight
        metrics.IN_FLIGHT.inc()
        logs.run_id.set(run_id)  # this task's context: every line of this run carries its id
        logs.workspace_id.set(str(run.workspace_id))
        attributes = {"run.id": run_id, "provider": run.provider, "model": run.model, "attempt": run.attempts}
        try:
            with tracing.tracer.start_as_current_span(
                "run.execute", context=tracing.context_from(trace), attributes=attributes
            ):
                await self._execute(flight)
        finally:
            metrics.IN_FLIGHT.dec()
            self.in_flight.pop(run_id, None)

    async def _execute(self, flight: InFlight) -> None:
        run = flight.run

        async def prepare() -> tuple[dict[str, Any], ProviderRequest | ProviderError]:
            async with self.sessionmaker() as session:
                snapshot = json.loads(await self.keyring.open_text(session, run, "snapshot"))
                flight.policy = await safety.policy_of(session, run.workspace_id)
                return snapshot, await self._request(session, run, snapshot)

        snapshot, request_or_error = await self._retrying(f"run {run.id}", prepare)
        await self._emit(flight, "run.started", {"run_id": str(run.id), "attempt": run.attempts})
        if isinstance(request_or_error, ProviderError):
            await self._settle(flight, snapshot, status="failed", error=request_or_error)
            return
        provider = provider_for(snapshot["provider"], self.settings)
        stream = stream_with_retries(provider, request_or_error)
        finished: Finished | None = None
        error: ProviderError | None = None

        async def consume() -> None:
            nonlocal finished
            with tracing.tracer.start_as_current_span("provider.stream", attributes={"provider": run.provider}):
                await consume_events()

        async def consume_events() -> None:
            nonlocal finished
            async for event in stream:
                if isinstance(event, TextDelta):
                    await self._on_text(flight, event.text)
                elif isinstance(event, ThinkingDelta):
                    await self._on_block(flight, "run.thinking", {"text": event.text})
                    flight.thinking.append(event.text)
                elif isinstance(event, ToolUse):
                    call = {"id": event.id, "name": event.name, "input": event.input}
                    await self._on_block(flight, "run.tool_use", call)
                    flight.tool_uses.append(call)
                elif isinstance(event, UsageUpdate):
                    _merge_usage(flight.usage, event)
                elif isinstance(event, Finished):
                    if event.usage is not None:
                        _merge_usage(flight.usage, event.usage)
                    finished = event

        flight.streaming = True
        consumer = asyncio.create_task(consume())
        cancelled = asyncio.create_task(flight.cancel.wait())
        try:
            await asyncio.wait({consumer, cancelled}, return_when=asyncio.FIRST_COMPLETED)
            if not consumer.done():
                consumer.cancel()  # closes the provider stream at once: nothing more is billed
            try:
                await consumer
            except asyncio.CancelledError:
                if not flight.cancel.is_set():
                    raise
            except ProviderError as exc:
                error = exc
            except Exception as exc:
                logger.exception("run %s: unexpected provider failure", run.id)
                error = ProviderError("server_error", f"unexpected failure: {type(exc).__name__}", retryable=False)
        finally:
            flight.streaming = False
            cancelled.cancel()
            with contextlib.suppress(Exception):
                await stream.aclose()
            await asyncio.gather(cancelled, return_exceptions=True)
        if flight.lease_lost:
            logger.warning("run %s: lease lost to the reconciler; leaving it", run.id)
            return
        await self._flush_pending(flight)
        if flight.shutdown and finished is None and error is None:
            await self._hand_back(flight, snapshot)
            return
        if finished is not None and error is None:
            await self._settle(flight, snapshot, status="succeeded", finished=finished)
        elif flight.cancel.is_set() and error is None:
            await self._settle(flight, snapshot, status="cancelled")
        else:
            await self._settle(flight, snapshot, status="failed", error=error)

    async def _hand_back(self, flight: InFlight, snapshot: dict[str, Any]) -> None:
        """Shutting down: a run with no token out yet goes back to the queue; one that streamed cannot be
        repeated without repeating text, so it ends failed with what it had."""
        if flight.text_events == 0:
            async with self.sessionmaker() as session, session.begin():
                await repo.requeue(session, flight.run.id)
            with contextlib.suppress(Exception):
                await self.backends.queue.publish(str(flight.run.id))
            return
        error = ProviderError("worker_shutdown", "the worker stopped mid-stream", retryable=False)  # type: ignore[arg-type]
        await self._settle(flight, snapshot, status="failed", error=error)

    async def _settle_money(self, session: AsyncSession, done: Run | None) -> list[uuid.UUID]:
        """In the transaction that ends the run: settle its reservation, and let the next waiting runs of
        its workspace into the queue now that a slot is free."""
        if done is None:
            return []
        # Lock order everywhere: the workspace's dispatch lock, then the run's row and its budget row (as at
        # acceptance and cancel). The callers took it before finishing the run; taking it again is a no-op.
        await repo.lock_dispatch(session, done.workspace_id)
        await usage.settle(session, done)
        return await admit(session, done.workspace_id)

    async def _publish(self, run_ids: list[uuid.UUID]) -> None:
        for run_id in run_ids:
            with contextlib.suppress(Exception):
                await self.backends.queue.publish(str(run_id))

    async def _request(
        self, session: AsyncSession, run: Run, snapshot: dict[str, Any]
    ) -> ProviderRequest | ProviderError:
        config = snapshot["model_config"]
        api_key = base_url = None
        if snapshot["provider"] != "mock":
            access = await provider_access(session, self.keyring, self.settings, run.workspace_id, snapshot["provider"])
            if access is None:
                return ProviderError("auth", f"the workspace has no {snapshot['provider']} key", retryable=False)
            api_key, base_url = access.api_key, access.base_url
            if base_url:
                try:  # again at call time: the host's DNS answer may have changed since it was saved
                    await check_base_url(base_url, allowed_hosts(self.settings.provider_hosts))
                except Exception:
                    return ProviderError("refused_target", "the provider base_url is not allowed", retryable=False)
        return ProviderRequest(
            provider=snapshot["provider"],
            model=snapshot["model"],
            system=snapshot["system"],
            messages=snapshot["messages"],
            max_tokens=config["max_tokens"],
            temperature=config.get("temperature"),
            top_p=config.get("top_p"),
            top_k=config.get("top_k"),
            stop_sequences=config.get("stop_sequences") or [],
            api_key=api_key,
            base_url=base_url,
            tools=snapshot.get("tools") or [],
            tool_choice=snapshot.get("tool_choice"),
            output_schema=snapshot.get("output_schema"),
            thinking_budget=config.get("thinking_budget"),
        )

    async def _on_block(self, flight: InFlight, name: str, data: dict[str, Any]) -> None:
        """Thinking and tool calls: sent as they come, after any text waiting to go (their order is kept)."""
        if flight.ttft_ms is None:
            flight.ttft_ms = int((time.monotonic() - flight.started) * 1000)
            # As for text: once anyone may have seen something, the run must not be retried.
            await self._retrying(f"run {flight.run.id}", lambda: self._save_now(flight))
        await self._flush_pending(flight)
        await self._emit(flight, name, data)

    async def _on_text(self, flight: InFlight, text: str) -> None:
        if not text:
            return
        first = flight.text_events == 0
        flight.output.append(text)
        flight.chars += len(text)
        flight.text_events += 1
        if first and flight.ttft_ms is not None:
            first = False  # thinking or a tool call came first and was saved then; this text just follows
        if first:
            flight.ttft_ms = int((time.monotonic() - flight.started) * 1000)
            # Persisted before anyone can see it: from now on the reconciler knows tokens have streamed and
            # must not retry this run (a retry would stream different text).
            await self._retrying(f"run {flight.run.id}", lambda: self._save_now(flight))
        flight.pending.append(text)
        now = time.monotonic()
        window = max(COALESCE_SECONDS, len(self.in_flight) / DELTA_EVENTS_PER_SECOND)
        if first or now - flight.last_emit >= window:
            await self._flush_pending(flight)
        elif flight.flush_handle is None:
            delay = window - (now - flight.last_emit)
            flight.flush_handle = asyncio.get_running_loop().call_later(
                delay, lambda: asyncio.create_task(self._flush_pending(flight))
            )
        if findings := flight.scanner.feed(text):
            await self._on_findings(flight, findings)

    async def _on_findings(self, flight: InFlight, findings: list[Finding]) -> None:
        """Output the safety checks caught: flagged now (after the text it is in), stored when the run ends."""
        output = "".join(flight.output)
        for finding in findings:
            if flight.policy.action(finding.kind) == "off":
                continue
            flight.output_flags.append((finding, None, mask(output, finding) if finding.end else ""))
            await self._flush_pending(flight)
            flag = {"kind": finding.kind, "detector": finding.detector, "where": "output"}
            await self._emit(flight, "run.flagged", flag)

    async def _flush_pending(self, flight: InFlight) -> None:
        async with flight.lock:
            if flight.flush_handle is not None:
                flight.flush_handle.cancel()
                flight.flush_handle = None
            if not flight.pending:
                return
            text = "".join(flight.pending)
            flight.pending.clear()
            offset = flight.chars  # everything up to and including the pending text
            await self._emit_locked(flight, "run.delta", {"text": text, "offset": offset})
            flight.last_emit = time.monotonic()

    async def _emit(self, flight: InFlight, name: str, data: dict[str, Any]) -> None:
        async with flight.lock:
            await self._emit_locked(flight, name, data)

    async def _emit_locked(self, flight: InFlight, name: str, data: dict[str, Any], seq: int | None = None) -> None:
        if seq is None:
            seq = flight.seq
            flight.seq += 1
        run = flight.run
        try:
            event = RunEvent(seq, name, data)
            stored = await seal_event(self.sessionmaker, self.keyring, run.workspace_id, run.id, event)
            await self._events_out.submit((str(run.id), stored))
        except Exception:
            # The live copy is best effort: readers that see a gap resume from the database copy.
            logger.warning("run %s: could not append %s to the live stream", run.id, name, exc_info=True)

    async def _write_events(self, items: list[tuple[str, StoredEvent | int]]) -> list[None]:
        """One batch for the live stream: events in order, then the closes (run id → ttl) that follow them.

        A run whose live stream has started must find it there: if Redis lost it (restarted empty), readers may
        have been sent text that only this process holds, so its output is saved before the stream starts
        again. Otherwise a kill of this worker right after would leave the stored output shorter than what
        readers saw, with nothing left anywhere to complete it."""
        appends = [(run_id, item) for run_id, item in items if isinstance(item, StoredEvent)]
        closes = {run_id: item for run_id, item in items if isinstance(item, int)}
        started = {run_id for run_id, _ in appends if (flight := self.in_flight.get(run_id)) and flight.stream_started}
        try:
            lost = await self.backends.events.append_many(appends, closes, must_exist=started)
        except Exception:
            # Redis unreachable: it may be restarting empty, and the text sent since the last save is then held
            # by this process alone. Saved now, it outlives this worker being killed before Redis is back.
            await self._save_sent_text()
            raise
        if lost:
            saved = {run_id for run_id in lost if await self._saved_before_restarting_stream(run_id)}
            await self.backends.events.append_many(
                [(run_id, event) for run_id, event in appends if run_id in saved],
                {run_id: ttl for run_id, ttl in closes.items() if run_id in saved},
            )
            if lost - saved:
                logger.warning("%d runs lost their live stream and could not be saved; not sent", len(lost - saved))
            lost -= saved
        for run_id, _ in appends:
            if run_id not in lost and (flight := self.in_flight.get(run_id)) is not None:
                flight.stream_started = True
                flight.sent_chars = flight.chars  # at least what went out (an over-estimate costs a save at most)
        return [None] * len(items)

    async def _save_sent_text(self) -> None:
        """Saves every run whose live stream carried text that is not saved yet: once per outage, as nothing is
        sent while Redis stays unreachable."""
        flights = [f for f in self.in_flight.values() if not f.settled and f.sent_chars > f.persisted_chars]
        if not flights:
            return
        results = await self._progress.submit_many(flights)
        for flight, result in zip(flights, results, strict=True):
            if isinstance(result, BaseException):
                logger.warning("run %s: could not save the text its stream carried", flight.run.id, exc_info=result)
            else:
                self._took(flight, result)

    async def _saved_before_restarting_stream(self, run_id: str) -> bool:
        flight = self.in_flight.get(run_id)
        if flight is None or flight.settled:
            return True  # the run's final output is stored
        try:
            await self._retrying(f"run {run_id}", lambda: self._save_now(flight))
        except Exception:
            logger.warning("run %s: output not saved, so its live stream stays stopped", run_id, exc_info=True)
            return False
        return not flight.lease_lost

    async def _close_events(self, run: Run) -> None:
        with contextlib.suppress(Exception):
            await self._events_out.submit((str(run.id), EVENT_TTL_SECONDS))

    async def _persist(self, flight: InFlight) -> bool:
        """Saves the partial output and renews the lease (batched with the other runs'); picks up the cancel flag.
        Answers False when nothing was decided: a row another transaction holds is skipped (the next tick saves
        it)."""
        return self._took(flight, await self._progress.submit(flight))

    @staticmethod
    def _took(flight: InFlight, outcome: datetime | bool | str | None) -> bool:
        if outcome == repo.SKIPPED:
            return False  # the row was busy: not saved this time
        if outcome is False:
            flight.lease_lost = True
            flight.cancel.set()
        elif outcome is not None:
            flight.cancel.set()  # cancel requested through the durable flag
        return True

    async def _save_now(self, flight: InFlight) -> None:
        while True:
            if await self._persist(flight):
                return
            await asyncio.sleep(0.01)  # its row was busy (say, a cancel request being written): once it is free

    async def _save_progress(self, flights: list[InFlight]) -> list[datetime | bool | str | None]:
        """One UPDATE for the progress of many runs. Per flight: False when its lease is no longer ours, else
        its cancel_requested_at."""
        latest = {flight.run.id: flight for flight in flights}
        rows = []
        for run_id, flight in latest.items():
            text = "".join(flight.output)
            sealed = await self.keyring.seal(
                self.sessionmaker, flight.run.workspace_id, Run.__tablename__, "output", run_id, text.encode()
            )
            rows.append(
                repo.Progress(run_id, sealed, len(text), flight.seq, flight.ttft_ms, flight.usage.get("input_tokens"))
            )
        async with self.sessionmaker() as session, session.begin():
            answer = await repo.save_progress(session, self.worker_id, self.lease, rows)
        for row in rows:
            outcome = answer.get(row.run_id, False)
            if outcome is not False and outcome != repo.SKIPPED:  # saved
                flight = latest[row.run_id]
                flight.persisted_chars = max(flight.persisted_chars, row.output_chars)
        return [answer.get(flight.run.id, False) for flight in flights]

    async def _heartbeat_loop(self) -> None:
        """About every flush interval: renews the leases of all streaming runs and saves their partial output."""
        while True:
            await asyncio.sleep(self.flush_seconds)
            streaming = [flight for flight in self.in_flight.values() if flight.streaming]
            if not streaming:
                continue
            results = await self._progress.submit_many(streaming)
            failures = [result for result in results if isinstance(result, BaseException)]
            for flight, result in zip(streaming, results, strict=True):
                if not isinstance(result, BaseException):
                    self._took(flight, result)
            if failures:
                logger.warning("could not persist the progress of %d runs", len(failures), exc_info=failures[0])

    async def _settle(
        self,
        flight: InFlight,
        snapshot: dict[str, Any],
        *,
        status: str,
        finished: Finished | None = None,
        error: ProviderError | None = None,
    ) -> None:
        run = flight.run
        output = "".join(flight.output)
        usage = flight.usage
        estimated = finished is None or "output_tokens" not in usage
        input_tokens = usage.get("input_tokens", 0)
        output_tokens = usage.get("output_tokens", 0)
        if estimated:
            # No final figures (cancelled, failed mid-stream): count what streamed, and say it is an estimate.
            streamed = flight.text_events + len(flight.thinking)
            output_tokens = max(output_tokens, streamed, math.ceil(len(output) / 4) if output else 0)
        cost = cost_micros(
            snapshot["price"],
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_write_tokens=usage.get("cache_creation_input_tokens", 0),
            cache_read_tokens=usage.get("cache_read_input_tokens", 0),
        )
        final = flight.scanner.finish()
        if finished is not None and finished.stop_reason == "refusal":
            final.append(Finding("refusal", "refusal", 0, 0))
        await self._on_findings(flight, final)
        usage_seq, terminal_seq = flight.seq, flight.seq + 1
        schema = snapshot.get("output_schema")
        values: dict[str, Any] = {
            "output_valid": _conforms(output, schema) if schema is not None and status == "succeeded" else None,
            "thinking_tokens": usage.get("thinking_tokens"),
            "status": status,
            "output_chars": len(output),
            "stop_reason": finished.stop_reason if finished else ("cancelled" if status == "cancelled" else None),
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "usage_estimated": estimated,
            "cost_micros": cost,
            "ttft_ms": flight.ttft_ms,
            "duration_ms": int((time.monotonic() - flight.started) * 1000),
            "error": {"kind": error.kind, "message": error.message, "retryable": error.retryable} if error else None,
            "last_seq": terminal_seq,
        }

        async def finish() -> tuple[Run | None, dict[str, Any] | None, list[uuid.UUID]]:
            async with self.sessionmaker() as session, session.begin():
                await self.keyring.seal_field(session, run, "output", output)
                values["output"] = run.output
                extras = _extras(flight)
                if extras:
                    await self.keyring.seal_field(session, run, "extras", json.dumps(extras, ensure_ascii=False))
                    values["extras"] = run.extras
                flags = await safety.add_flags(session, self.keyring, run, "output", flight.output_flags)
                values["flags"] = [*(run.flags or []), *flags]
                # The dispatch lock before the run's row, as a cancel takes them: the other order deadlocked.
                await repo.lock_dispatch(session, run.workspace_id)
                done = await repo.finish(session, run.id, self.worker_id, values)
                view = await run_view(session, self.keyring, done) if done is not None else None
                return done, view, await self._settle_money(session, done)

        done, view, admitted = await self._retrying(f"run {run.id}", finish)
        if done is None:
            logger.warning("run %s: lease lost before it could be settled", run.id)
            return
        flight.settled = True
        _observe(done, error)
        logger.info(
            "run finished",
            extra={"status": done.status, "ttft_ms": done.ttft_ms, "duration_ms": done.duration_ms,
                   "output_tokens": done.output_tokens, "error_kind": error.kind if error else None},
        )
        await self._publish(admitted)
        async with flight.lock:
            await self._emit_locked(
                flight, "run.usage", {"input_tokens": input_tokens, "output_tokens": output_tokens}, seq=usage_seq
            )
            payload = {"run": RunOut.model_validate(view).model_dump(mode="json"), "offset": len(output)}
            await self._emit_locked(flight, TERMINAL_EVENT_FOR[status], payload, seq=terminal_seq)
        await self._close_events(run)

    # Reconciler

    async def _reconcile_loop(self) -> None:
        while True:
            try:
                await self.reconcile_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("reconciler pass failed", exc_info=True)
            await asyncio.sleep(self.reconcile_seconds)

    async def reconcile_once(self) -> dict[str, int]:
        """Safe in every worker at once (SKIP LOCKED): expired leases are retried (no token yet) or failed
        (`worker_lost`, partial output kept); runs the queue lost are published again."""
        retried: list[uuid.UUID] = []
        failed: list[Run] = []
        async with self.sessionmaker() as session, session.begin():
            for run in await repo.expired_leases(session, limit=100):
                # Nothing streamed yet (no text, thinking or tool call was saved): safe to run again, unless its
                # cancel was asked for: a claim skips such a run, so requeued it would stay queued for ever.
                if (run.output_chars == 0 and run.ttft_ms is None and run.attempts < MAX_ATTEMPTS
                        and run.cancel_requested_at is None):
                    await repo.requeue(session, run.id)
                    retried.append(run.id)
                else:
                    failed.append(run)
            republish = await repo.lost_dispatches(session, self.lost_dispatch, limit=500)
        # Waiting runs whose admission was missed (e.g. a worker died between settling and publishing).
        async with self.sessionmaker() as session, session.begin():
            for workspace_id in await repo.workspaces_with_waiting(session, limit=100):
                republish.extend(await admit(session, workspace_id))
        for run in failed:
            try:
                await self._fail_lost(run)
            except StreamUnreadable:
                logger.warning("run %s: its live stream cannot be read yet; ending it on a later pass", run.id)
        for run_id in [*retried, *republish]:
            with contextlib.suppress(Exception):
                await self.backends.queue.publish(str(run_id))
        return {"retried": len(retried), "failed": len(failed), "republished": len(republish)}

    async def _fail_lost(self, run: Run) -> None:
        """Ends a run whose worker vanished mid-stream, with the most output anyone saw: `cancelled` when its
        cancel had been asked for (the worker died before honouring it), else `failed` as worker_lost."""
        cancelled = run.cancel_requested_at is not None
        async with self.sessionmaker() as session:
            persisted = await self.keyring.open_text(session, run, "output") if run.output is not None else ""
            try:
                streamed, last_seq = await self._streamed_text(session, run, persisted)
            except Exception as exc:
                # Readers may have been sent more than was saved, and only the live stream says how much:
                # wait for it (Redis restarting, say) rather than store less than they saw, within reason.
                waited = datetime.now(UTC) - run.lease_expires_at if run.lease_expires_at else timedelta(0)
                if waited < STREAM_WAIT:
                    raise StreamUnreadable from exc
                streamed, last_seq = "", 0
            snapshot = json.loads(await self.keyring.open_text(session, run, "snapshot"))
        output = streamed if len(streamed) > len(persisted) and streamed.startswith(persisted) else persisted
        input_tokens = run.input_tokens if run.input_tokens is not None else _estimate_input(snapshot)
        flight = InFlight(run=run, output=[output] if output else [], chars=len(output))
        flight.text_events = 0
        flight.seq = max(last_seq, run.last_seq) + 1
        flight.ttft_ms = run.ttft_ms
        error = ProviderError("stream_error", "worker_lost: the worker running this run stopped", retryable=False)
        async with self.sessionmaker() as session, session.begin():
            await self.keyring.seal_field(session, run, "output", output)
            output_tokens = _estimate_output(snapshot, output)
            snapshot_price = snapshot["price"]
            values = {
                "status": "cancelled" if cancelled else "failed",
                "output": run.output,
                "output_chars": len(output),
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "usage_estimated": True,
                "cost_micros": cost_micros(snapshot_price, input_tokens=input_tokens, output_tokens=output_tokens),
                "error": None if cancelled else {"kind": "worker_lost", "message": error.message, "retryable": False},
                "last_seq": flight.seq + 1,
            }
            if cancelled:
                values["stop_reason"] = "cancelled"
            await repo.lock_dispatch(session, run.workspace_id)  # before the run's row, as everywhere
            done = await repo.finish(session, run.id, None, values)
            view = await run_view(session, self.keyring, done) if done is not None else None
            admitted = await self._settle_money(session, done)
        if done is None:
            return
        metrics.RUNS_FINISHED.labels(done.status, done.provider, done.model).inc()
        await self._publish(admitted)
        async with flight.lock:
            await self._emit_locked(
                flight,
                "run.usage",
                {"input_tokens": values["input_tokens"], "output_tokens": output_tokens},
                seq=flight.seq,
            )
            payload = {"run": RunOut.model_validate(view).model_dump(mode="json"), "offset": len(output)}
            terminal = "run.cancelled" if cancelled else "run.failed"
            await self._emit_locked(flight, terminal, payload, seq=flight.seq + 1)
        await self._close_events(run)

    async def _streamed_text(self, session: AsyncSession, run: Run, persisted: str = "") -> tuple[str, int]:
        """The output as the live stream carried it (it may be ahead of the last persisted copy).

        Starts from the persisted copy and adds each delta that continues it: after Redis lost the stream's
        beginning (restarted empty), its later deltas still extend what was saved, and readers saw them."""
        text, last_seq = persisted, 0
        for item in await self.backends.events.read(str(run.id), 0):
            event = await open_event(session, self.keyring, run.workspace_id, run.id, item)
            last_seq = max(last_seq, event.seq)
            if event.name == "run.delta":
                end = event.data["offset"]
                start = end - len(event.data["text"])
                if start <= len(text) < end:
                    text += event.data["text"][len(text) - start :]
        return text, last_seq


def _estimate_input(snapshot: dict[str, Any]) -> int:
    """Input tokens when the provider never said: exact for the mock, about 4 characters a token otherwise."""
    texts = [snapshot["system"], *(m["content"] for m in snapshot["messages"] if isinstance(m["content"], str))]
    if snapshot["provider"] == "mock":
        return sum(len(t.split()) for t in texts)
    return sum(math.ceil(len(t) / 4) for t in texts)


def _estimate_output(snapshot: dict[str, Any], output: str) -> int:
    if snapshot["provider"] == "mock":
        return len(output.split())
    return math.ceil(len(output) / 4) if output else 0


def _observe(done: Run, error: ProviderError | None) -> None:
    provider, model = done.provider, done.model
    metrics.RUNS_FINISHED.labels(done.status, provider, model).inc()
    if done.ttft_ms is not None:
        metrics.TTFT.labels(provider, model).observe(done.ttft_ms / 1000)
    if done.duration_ms is not None:
        metrics.DURATION.labels(provider, model).observe(done.duration_ms / 1000)
    if error is not None:
        metrics.PROVIDER_ERRORS.labels(provider, error.kind).inc()


def _conforms(output: str, schema: dict[str, Any]) -> bool:
    """Structured output: the whole answer is one JSON document that the version's schema accepts."""
    try:
        document = json.loads(output)
    except ValueError:
        return False
    return Draft202012Validator(schema).is_valid(document)


def _extras(flight: InFlight) -> dict[str, Any]:
    extras: dict[str, Any] = {}
    if flight.thinking:
        extras["thinking"] = "".join(flight.thinking)
    if flight.tool_uses:
        extras["tool_uses"] = flight.tool_uses
    return extras


def _merge_usage(usage: dict[str, int], update: UsageUpdate) -> None:
    names = (
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "thinking_tokens",
    )
    for name in names:
        value = getattr(update, name)
        if value is not None:
            usage[name] = value
