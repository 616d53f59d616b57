"""A run's events for one reader, resumable from any event id: from the live stream while it has what the
reader needs, else from the database copy (persisted output at the id's offset), never a character twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
import weakref
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.crypto.service import Keyring
from backend.runs import repository as repo
from backend.runs.backends.factory import RunBackends
from backend.runs.batching import Batcher
from backend.runs.events import TERMINAL_EVENT_FOR, TERMINAL_EVENTS, Position, RunEvent, event_id, open_event
from backend.runs.models import TERMINAL
from backend.runs.schemas import RunOut
from backend.runs.service import run_view

logger = logging.getLogger(__name__)

DB_POLL_SECONDS = 0.3
# With no live event for this long, the database is asked whether the run ended without its event reaching us.
LIVE_SILENCE_SECONDS = 2.0


_probes: weakref.WeakKeyDictionary[async_sessionmaker[AsyncSession], Batcher[uuid.UUID, str | None]] = (
    weakref.WeakKeyDictionary()
)


def _status_probe(sessionmaker: async_sessionmaker[AsyncSession]) -> Batcher[uuid.UUID, str | None]:
    """Readers whose live stream went quiet ask whether their run ended; with a thousand readers waiting at
    once, their questions go to the database as one query per round trip, not a thousand."""
    probe = _probes.get(sessionmaker)
    if probe is None:

        async def statuses(run_ids: list[uuid.UUID]) -> list[str | None]:
            async with sessionmaker() as session:
                found = await repo.statuses(session, run_ids)
            return [found.get(run_id) for run_id in run_ids]

        probe = _probes[sessionmaker] = Batcher(statuses)
    return probe


def sse(name: str, seq: int, offset: int, data: dict[str, Any]) -> dict[str, str]:
    return {"event": name, "id": event_id(seq, offset), "data": json.dumps(data, ensure_ascii=False)}


class _Reader:
    """Where one reader is (seq, offset), and what each live event means for it."""

    def __init__(self, start: Position) -> None:
        self.seq, self.offset = start.seq, start.offset
        self.done = False
        self.gap = False

    def take(self, event: RunEvent) -> dict[str, str] | None:
        if event.name == "run.delta":
            end = event.data["offset"]
            begin = end - len(event.data["text"])
            if begin > self.offset:
                self.gap = True  # the live copy lost text this reader has not had
                return None
            if end <= self.offset:
                return None
            text = event.data["text"][self.offset - begin :]
            self.offset = end
            self.seq = max(self.seq, event.seq)
            return sse("run.delta", self.seq, self.offset, {"text": text})
        if event.seq <= self.seq:
            return None
        if event.name in TERMINAL_EVENTS and event.data.get("offset", self.offset) > self.offset:
            self.gap = True  # ending here would skip text this reader never got
            return None
        self.seq = event.seq
        if event.name in TERMINAL_EVENTS:
            self.done = True
            return sse(event.name, self.seq, self.offset, event.data["run"])
        return sse(event.name, self.seq, self.offset, event.data)


async def run_events(
    sessionmaker: async_sessionmaker[AsyncSession],
    keyring: Keyring,
    backends: RunBackends,
    workspace_id: uuid.UUID,
    run_id: uuid.UUID,
    start: Position,
) -> AsyncIterator[dict[str, str]]:
    reader = _Reader(start)
    async with sessionmaker() as session:
        run = await repo.get_run(session, workspace_id, run_id)
        if run is None:
            return
        if run.status in TERMINAL:
            if reader.seq >= run.last_seq:
                return  # resuming after the terminal event: nothing more to say
            # A finished run: its live copy, if it is still complete, else the database.
            try:
                stored = await backends.events.read(str(run_id), reader.seq)
            except Exception:
                stored = []
            for item in stored:
                out = reader.take(await open_event(session, keyring, workspace_id, run_id, item))
                if reader.gap:
                    break
                if out is not None:
                    yield out
                if reader.done:
                    return
        else:
            await session.commit()  # hold no pooled connection for the life of the stream
            async for out in _follow_live(sessionmaker, keyring, backends, run_id, workspace_id, reader):
                yield out
            if reader.done:
                return
    async for out in _from_database(sessionmaker, keyring, workspace_id, run_id, reader.seq, reader.offset):
        yield out


async def _follow_live(
    sessionmaker: async_sessionmaker[AsyncSession],
    keyring: Keyring,
    backends: RunBackends,
    run_id: uuid.UUID,
    workspace_id: uuid.UUID,
    reader: _Reader,
) -> AsyncIterator[dict[str, str]]:
    live = backends.events.follow(str(run_id), reader.seq)
    try:
        while True:
            try:
                stored = await asyncio.wait_for(anext(live), LIVE_SILENCE_SECONDS)
            except TimeoutError:
                try:
                    status = await _status_probe(sessionmaker).submit(run_id)
                except Exception:
                    # The database is busy or away: keep following the live stream meanwhile.
                    logger.debug("run %s: could not check on the run", run_id, exc_info=True)
                    continue
                if status is None or status in TERMINAL:
                    return  # it ended and its terminal event did not reach us: the database has it
                continue
            except Exception:
                return  # the live copy failed us (fell behind, Redis gone): the database has the rest
            # The key is cached while the run streams; a fresh session is opened only on a cache miss.
            out = reader.take(await open_event(sessionmaker, keyring, workspace_id, run_id, stored))
            if reader.gap:
                return
            if out is not None:
                yield out
            if reader.done:
                return
    finally:
        with contextlib.suppress(Exception):
            await live.aclose()


async def _from_database(
    sessionmaker: async_sessionmaker[AsyncSession],
    keyring: Keyring,
    workspace_id: uuid.UUID,
    run_id: uuid.UUID,
    seq: int,
    offset: int,
) -> AsyncIterator[dict[str, str]]:
    """Follows the persisted output (saved about every second while running) until the run ends."""
    while True:
        async with sessionmaker() as session:
            run = await repo.get_run(session, workspace_id, run_id)
            if run is None:
                return
            output = await keyring.open_text(session, run, "output") if run.output is not None else ""
            view = await run_view(session, keyring, run) if run.status in TERMINAL else None
        # A finished run's events end with run.usage at last_seq - 1 and the terminal event at last_seq (a run
        # cancelled while queued has no usage event). Events made up here keep those seqs, so their ids
        # order the stream and a reader resuming from any of them gets exactly what follows.
        if view is None:
            if len(output) > offset:
                text, offset = output[offset:], len(output)
                yield sse("run.delta", seq, offset, {"text": text})
            await asyncio.sleep(DB_POLL_SECONDS)
            continue
        has_usage = not (run.status == "cancelled" and run.started_at is None)  # cancelled before it started
        usage_seq = run.last_seq - 1 if has_usage else None
        if len(output) > offset:
            text, offset = output[offset:], len(output)
            seq = max(seq, run.last_seq - (2 if has_usage else 1))
            yield sse("run.delta", seq, offset, {"text": text})
        if usage_seq is not None and seq < usage_seq:
            seq = usage_seq
            yield sse("run.usage", seq, offset, {"input_tokens": run.input_tokens, "output_tokens": run.output_tokens})
        body = RunOut.model_validate(view).model_dump(mode="json")
        yield sse(TERMINAL_EVENT_FOR[run.status], max(run.last_seq, seq + 1), offset, body)
        return
