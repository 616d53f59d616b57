"""Run events: their ids, and their payloads sealed with the workspace key for the live stream.

An event id is "<seq>-<offset>": seq orders the events of the live stream (1, 2, 3 …), offset is the
number of output characters the reader has after this event. The offset is what makes an id mean
something to the database copy: when the live stream has expired (or Redis lost it), a reader resumes
from the persisted output at that offset, so no character is lost or repeated.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from backend.core.errors import Invalid
from backend.crypto.service import Keyring, SessionSource
from backend.runs.backends.base import StoredEvent

TERMINAL_EVENTS = frozenset({"run.completed", "run.failed", "run.cancelled"})
TERMINAL_EVENT_FOR = {"succeeded": "run.completed", "failed": "run.failed", "cancelled": "run.cancelled"}


@dataclass(frozen=True)
class Position:
    seq: int = 0
    offset: int = 0


def parse_event_id(value: str | None) -> Position:
    if not value:
        return Position()
    try:
        seq, _, offset = value.partition("-")
        position = Position(int(seq), int(offset or 0))
    except ValueError as exc:
        raise Invalid(["header", "Last-Event-ID"], "not an event id of this stream") from exc
    if position.seq < 0 or position.offset < 0:
        raise Invalid(["header", "Last-Event-ID"], "not an event id of this stream")
    return position


def event_id(seq: int, offset: int) -> str:
    return f"{seq}-{offset}"


@dataclass(frozen=True)
class RunEvent:
    seq: int
    name: str
    data: dict[str, Any]  # run.delta carries "text" and "offset" (characters of output after it)


async def seal_event(
    session: SessionSource, keyring: Keyring, workspace_id: uuid.UUID, run_id: uuid.UUID, event: RunEvent
) -> StoredEvent:
    payload = json.dumps(event.data, ensure_ascii=False, separators=(",", ":")).encode()
    sealed = await keyring.seal(session, workspace_id, "run_event", event.name, f"{run_id}:{event.seq}", payload)
    return StoredEvent(seq=event.seq, name=event.name, data=sealed)


async def open_event(
    session: SessionSource, keyring: Keyring, workspace_id: uuid.UUID, run_id: uuid.UUID, stored: StoredEvent
) -> RunEvent:
    payload = await keyring.open(session, workspace_id, "run_event", stored.name, f"{run_id}:{stored.seq}", stored.data)
    return RunEvent(seq=stored.seq, name=stored.name, data=json.loads(payload))
