"""One event stream for a whole grid: every cell's run stream (runs.streaming.run_events, unchanged) merged
onto one connection, each event tagged with its run and cell, ending with `comparison.completed`.

An event id is "<position>:<generation>:<seq>-<offset>": the cell's position in the grid, how many reruns
the cell had when the run began (so an id of an earlier run of the cell never applies to its new run), and
the run stream's own id. Last-Event-ID resumes the one cell it names; `positions` carries the last id of
every cell the client has heard from, so a reconnect resumes each of them exactly (see
docs/decisions/comparisons.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from backend.core.errors import Invalid
from backend.core.tasks import cancel_and_wait
from backend.crypto.service import Keyring
from backend.runs.backends.factory import RunBackends
from backend.runs.events import Position, parse_event_id
from backend.runs.streaming import run_events

logger = logging.getLogger(__name__)

COMPLETED_ID = "completed"
CELL_CHECK_SECONDS = 2.0  # how often an open stream looks for cells that were rerun meanwhile
STARTING_AT_ONCE = 8  # cells whose stream opens (a database read) at the same moment
MAX_POSITIONS = 500


@dataclass(frozen=True)
class CellRun:
    position: int
    generation: int
    run_id: uuid.UUID


def parse_positions(last_event_id: str | None, positions: str | None) -> tuple[dict[int, tuple[int, Position]], bool]:
    """Where the client is per cell; True when it has already had `comparison.completed`."""
    if last_event_id == COMPLETED_ID:
        return {}, True
    found: dict[int, tuple[int, Position]] = {}
    items = [p for p in (positions or "").split(",") if p]
    if len(items) > MAX_POSITIONS:
        raise Invalid(["query", "positions"], f"at most {MAX_POSITIONS} cells")
    for where, value in [
        *(("positions", p) for p in items),
        *([("Last-Event-ID", last_event_id)] if last_event_id else []),
    ]:
        parts = value.split(":")
        try:
            if len(parts) != 3:
                raise ValueError(value)
            position, generation = int(parts[0]), int(parts[1])
            if position < 0 or generation < 0:
                raise ValueError(value)
            run_position = parse_event_id(parts[2])
        except (ValueError, Invalid):
            loc = ["query", "positions"] if where == "positions" else ["header", "Last-Event-ID"]
            raise Invalid(loc, "not an event id of this stream") from None
        known = found.get(position)
        if known is None or (known[0], known[1].seq) < (generation, run_position.seq):
            found[position] = (generation, run_position)
    return found, False


def _tagged(cell: CellRun, item: dict[str, str]) -> dict[str, str]:
    data: dict[str, Any] = json.loads(item["data"])
    seq_offset = item["id"]
    data = {**data, "run_id": str(cell.run_id), "cell": cell.position}
    if item["event"] == "run.delta":
        data["offset"] = int(seq_offset.split("-")[1])  # characters of this run's output after this text
    return {
        "event": item["event"],
        "id": f"{cell.position}:{cell.generation}:{seq_offset}",
        "data": json.dumps(data, ensure_ascii=False),
    }


async def comparison_events(
    sessionmaker: Any,
    keyring: Keyring,
    backends: RunBackends,
    workspace_id: uuid.UUID,
    current_cells: Callable[[], Awaitable[list[CellRun]]],
    completed_data: Callable[[], Awaitable[dict[str, Any]]],
    cells: list[CellRun],
    start: dict[int, tuple[int, Position]],
) -> AsyncIterator[dict[str, str]]:
    queue: asyncio.Queue[tuple[CellRun, dict[str, str] | Exception | None]] = asyncio.Queue(maxsize=1000)
    opening = asyncio.Semaphore(STARTING_AT_ONCE)

    async def pump(cell: CellRun, begin: Position) -> None:
        events = run_events(sessionmaker, keyring, backends, workspace_id, cell.run_id, begin)
        try:
            async with opening:
                item = await anext(events, None)
            while item is not None:
                await queue.put((cell, item))
                item = await anext(events, None)
            await queue.put((cell, None))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the reader gives up; the client reconnects with its positions
            logger.warning("comparison stream: cell %s failed (%s)", cell.position, type(exc).__name__)
            await queue.put((cell, exc))
        finally:
            with contextlib.suppress(Exception):
                await events.aclose()

    tasks: dict[tuple[int, int], asyncio.Task[None]] = {}

    def follow(cell: CellRun) -> None:
        known = start.get(cell.position)
        begin = known[1] if known is not None and known[0] == cell.generation else Position()
        tasks[(cell.position, cell.generation)] = asyncio.create_task(pump(cell, begin))

    for cell in cells:
        follow(cell)
    running = len(tasks)
    try:
        while True:
            if running == 0:
                # Cells rerun while we streamed have a new generation: follow those too before ending.
                fresh = [c for c in await current_cells() if (c.position, c.generation) not in tasks]
                if not fresh:
                    break
                for cell in fresh:
                    follow(cell)
                running += len(fresh)
            try:
                cell, item = await asyncio.wait_for(queue.get(), CELL_CHECK_SECONDS)
            except TimeoutError:
                fresh = [c for c in await current_cells() if (c.position, c.generation) not in tasks]
                for cell in fresh:
                    follow(cell)
                running += len(fresh)
                continue
            if item is None:
                running -= 1
                continue
            if isinstance(item, Exception):
                return  # no comparison.completed: the client resumes from its positions
            yield _tagged(cell, item)
        yield {"event": "comparison.completed", "id": COMPLETED_ID, "data": json.dumps(await completed_data())}
    finally:
        await cancel_and_wait(tasks.values())
