"""Workspace exports: the whole workspace as JSON Lines, made in the background, sealed at rest, opened only
for the admin who asked.

An export reads one consistent snapshot of the workspace (a REPEATABLE READ, read-only transaction) and
writes its archive as gzip members of at most CHUNK_LINES lines, each sealed with the workspace key in its
own short transaction, with the progress beside it. Concatenated, the members are one valid gzip file, so a
download either passes them through (Content-Encoding: gzip) or inflates them one by one: the archive is
never whole in memory. Shredding the workspace key makes every stored archive unreadable at once; deleting a
run or a prompt discards the archives that may hold it. The format is in docs/decisions/exports.md.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.core.errors import Conflict, Forbidden, NotFound
from backend.core.tasks import cancel_and_wait
from backend.crypto.service import Keyring
from backend.datasets import service as datasets
from backend.datasets.models import Dataset
from backend.datasets.schemas import DatasetDetail
from backend.lifecycle.models import ExportChunk, WorkspaceExport
from backend.prompts.endpoints import comment_out, version_out
from backend.prompts.models import Prompt, PromptLabel, PromptVersion, VersionComment
from backend.prompts.schemas import PromptOut
from backend.runs import service as runs
from backend.runs.models import Run
from backend.runs.schemas import RunOut
from backend.safety import service as safety
from backend.safety.models import SafetyFlag
from backend.safety.schemas import FlagOut
from backend.workspaces.models import Membership, User, Workspace
from backend.workspaces.service import Actor, WorkspaceAccess, record_audit, require_at_least

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
CHUNK_LINES = 500
PAGE = 500
KEEP = timedelta(days=7)  # a finished archive is removed after this; ask for a new one
STALE = timedelta(minutes=2)  # a generator silent this long has died: another process takes over
ACTIVE = ("queued", "running")


class ExportNotFound(NotFound):
    type = "export-not-found"
    title = "Export not found"


class ExportInProgress(Conflict):
    type = "export-in-progress"
    title = "An export is already in progress"


class ExportNotReady(Conflict):
    type = "export-not-ready"
    title = "Export not ready"


class NotTheRequester(Forbidden):
    type = "export-not-yours"
    title = "Only the requester can download this export"


# Requests, status and download


async def request_export(session: AsyncSession, access: WorkspaceAccess, actor: Actor) -> WorkspaceExport:
    """Queues an export (admin+); one at a time per workspace. Audited as export.created."""
    require_at_least(access, "admin", "Exporting the workspace")
    export = WorkspaceExport(id=uuid.uuid4(), workspace_id=access.workspace.id, requested_by=access.principal.user.id)
    try:
        async with session.begin_nested():
            session.add(export)
            await session.flush()
    except IntegrityError as exc:  # the partial unique index: one queued or running export per workspace
        active = await session.scalar(
            select(WorkspaceExport.id).where(
                WorkspaceExport.workspace_id == access.workspace.id, WorkspaceExport.status.in_(ACTIVE)
            )
        )
        raise ExportInProgress(
            f"Export {active} of this workspace is still in progress; wait for it to finish", export_id=str(active)
        ) from exc
    await record_audit(
        session,
        workspace_id=access.workspace.id,
        actor=actor,
        action="export.created",
        target_type="export",
        target_id=export.id,
    )
    await session.refresh(export)
    return export


async def get_export(session: AsyncSession, access: WorkspaceAccess, export_id: uuid.UUID) -> WorkspaceExport:
    require_at_least(access, "admin", "Reading an export")
    export = await session.get(WorkspaceExport, export_id)
    if export is None or export.workspace_id != access.workspace.id:
        raise ExportNotFound(f"Export {export_id} not found")
    return export


async def list_exports(session: AsyncSession, access: WorkspaceAccess, limit: int = 20) -> list[WorkspaceExport]:
    require_at_least(access, "admin", "Listing exports")
    stmt = (
        select(WorkspaceExport)
        .where(WorkspaceExport.workspace_id == access.workspace.id)
        .order_by(WorkspaceExport.created_at.desc(), WorkspaceExport.id.desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


def export_view(export: WorkspaceExport) -> dict[str, Any]:
    return {
        "id": export.id,
        "status": export.status,
        "progress": {"done": export.done, "total": export.total},
        "lines": export.lines,
        "size_bytes": export.size_bytes,
        "error": export.error,
        "requested_by": export.requested_by,
        "created_at": export.created_at,
        "finished_at": export.finished_at,
        "expires_at": export.expires_at,
    }


async def open_for_download(
    session: AsyncSession, access: WorkspaceAccess, export_id: uuid.UUID, actor: Actor
) -> WorkspaceExport:
    """The export, if it is finished and the caller asked for it; audited as export.downloaded."""
    export = await get_export(session, access, export_id)
    if export.requested_by != access.principal.user.id:
        raise NotTheRequester("Only the admin who asked for this export can download it; ask for your own")
    if export.status != "succeeded":
        raise ExportNotReady(f"Export {export_id} is {export.status}; download it once it has succeeded")
    await record_audit(
        session,
        workspace_id=access.workspace.id,
        actor=actor,
        action="export.downloaded",
        target_type="export",
        target_id=export.id,
    )
    return export


async def archive_members(
    sessionmaker: async_sessionmaker[AsyncSession], keyring: Keyring, workspace_id: uuid.UUID, export_id: uuid.UUID
) -> AsyncIterator[bytes]:
    """The archive's gzip members in order, opened a few at a time, each in a short transaction."""
    seq = 0
    while True:
        async with sessionmaker() as session:
            chunks = list(
                (
                    await session.execute(
                        select(ExportChunk)
                        .where(ExportChunk.export_id == export_id, ExportChunk.seq >= seq)
                        .order_by(ExportChunk.seq)
                        .limit(8)
                    )
                ).scalars()
            )
            opened = [await keyring.open_field(session, chunk, "data") for chunk in chunks]
        if not chunks:
            return
        for member in opened:
            yield member
        seq = chunks[-1].seq + 1


async def inflate(members: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for member in members:
        yield gzip.decompress(member)


# Generation


class ExportRunner:
    """Starts exports as tasks of this process and stops them on shutdown (a stopped export is resumed by the
    maintenance pass of any process once it goes stale)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], keyring: Keyring) -> None:
        self.sessionmaker = sessionmaker
        self.keyring = keyring
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self, export_id: uuid.UUID) -> None:
        task = asyncio.create_task(generate(self.sessionmaker, self.keyring, export_id), name=f"export-{export_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def aclose(self) -> None:
        await cancel_and_wait(self.tasks)


_CLAIM = text(
    """
    UPDATE workspace_export
    SET status = 'running', attempts = attempts + 1, heartbeat_at = now(), done = 0, lines = 0, size_bytes = 0
    WHERE id = :id
      AND (status = 'queued' OR (status = 'running' AND heartbeat_at < now() - make_interval(secs => :stale)))
    RETURNING workspace_id, attempts
    """
)


async def generate(sessionmaker: async_sessionmaker[AsyncSession], keyring: Keyring, export_id: uuid.UUID) -> bool:
    """Makes the archive of one export if nobody else is making it; answers whether this call made it."""
    async with sessionmaker() as session, session.begin():
        claimed = (await session.execute(_CLAIM, {"id": export_id, "stale": STALE.total_seconds()})).first()
        if claimed is None:
            return False
        workspace_id, attempt = claimed
        await session.execute(delete(ExportChunk).where(ExportChunk.export_id == export_id))  # an earlier try's
    writer = _ChunkWriter(sessionmaker, keyring, workspace_id, export_id, attempt)
    try:
        async with sessionmaker() as reader:
            # One consistent snapshot of the whole workspace, whatever changes while it is read.
            await reader.connection(
                execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
            )
            total = await _count(reader, workspace_id)
            await writer.start(total)
            async for line in _lines(reader, keyring, workspace_id, total):
                await writer.add(line)
        await writer.finish()
    except _Superseded:
        return False
    except asyncio.CancelledError:
        raise  # shutting down: left running, resumed elsewhere once stale
    except Exception as exc:
        # The reason, never the contents: no exception text (it could quote data), just its kind.
        logger.error("export %s failed: %s", export_id, type(exc).__name__)
        async with sessionmaker() as session, session.begin():
            await session.execute(
                update(WorkspaceExport)
                .where(WorkspaceExport.id == export_id, WorkspaceExport.attempts == attempt)
                .values(status="failed", error=f"{type(exc).__name__} while exporting", finished_at=func.now())
            )
        return False
    return True


class _Superseded(Exception):
    """Another process took this export over (it thought us dead), or it was deleted meanwhile."""


class _ChunkWriter:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        keyring: Keyring,
        workspace_id: uuid.UUID,
        export_id: uuid.UUID,
        attempt: int,
    ) -> None:
        self.sessionmaker, self.keyring = sessionmaker, keyring
        self.workspace_id, self.export_id, self.attempt = workspace_id, export_id, attempt
        self.pending: list[bytes] = []
        self.seq = self.lines = self.size = self.done = 0

    async def start(self, total: int) -> None:
        await self._save(total=total)

    async def add(self, line: Line) -> None:
        self.pending.append(line.data)
        self.done += line.counts
        if len(self.pending) >= CHUNK_LINES:
            await self._flush()

    async def finish(self) -> None:
        await self._flush()
        await self._save(status="succeeded", finished_at=func.now(), expires_at=func.now() + KEEP)

    async def _flush(self) -> None:
        if not self.pending:
            return
        raw = b"".join(self.pending)
        member = await asyncio.to_thread(gzip.compress, raw, 6)
        async with self.sessionmaker() as session, session.begin():
            chunk = ExportChunk(workspace_id=self.workspace_id, export_id=self.export_id, seq=self.seq)
            await self.keyring.seal_field(session, chunk, "data", member)
            await self._update(session)
            session.add(chunk)
        self.seq += 1
        self.lines += len(self.pending)
        self.size += len(raw)
        self.pending.clear()

    async def _save(self, **values: Any) -> None:
        async with self.sessionmaker() as session, session.begin():
            await self._update(session, **values)

    async def _update(self, session: AsyncSession, **values: Any) -> None:
        values = {"done": self.done, "lines": self.lines, "size_bytes": self.size, "heartbeat_at": func.now(), **values}
        stmt = (
            update(WorkspaceExport)
            .where(
                WorkspaceExport.id == self.export_id,
                WorkspaceExport.attempts == self.attempt,
                WorkspaceExport.status == "running",
            )
            .values(**values)
            .returning(WorkspaceExport.id)
        )
        if (await session.execute(stmt)).first() is None:
            raise _Superseded(str(self.export_id))


class Line:
    __slots__ = ("counts", "data")

    def __init__(self, record: dict[str, Any], *, counts: int = 1) -> None:
        self.data = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=_plain).encode() + b"\n"
        self.counts = counts


# What an archive holds, in this order (each type's line shape is in docs/decisions/exports.md).
_COUNTED = (Membership, Prompt, PromptVersion, PromptLabel, VersionComment, Dataset, Run, SafetyFlag)


async def _count(session: AsyncSession, workspace_id: uuid.UUID) -> int:
    total = 0
    for model in _COUNTED:
        total += await session.scalar(select(func.count()).select_from(model).where(model.workspace_id == workspace_id))
    return total


async def _pages(
    session: AsyncSession, stmt: Any, keys: Callable[[Any], tuple[Any, ...]], columns: tuple[Any, ...]
) -> AsyncIterator[list[Any]]:
    """Keyset pages of `stmt` ordered by `columns` (unique together), PAGE rows at a time."""
    after: tuple[Any, ...] | None = None
    while True:
        page_stmt = stmt.order_by(*columns).limit(PAGE)
        if after is not None:
            page_stmt = page_stmt.where(tuple_(*columns) > tuple_(*after))
        rows = list((await session.execute(page_stmt)).all())
        if not rows:
            return
        yield rows
        after = keys(rows[-1])
        await asyncio.sleep(0)  # long exports share the loop with requests


async def _lines(session: AsyncSession, keyring: Keyring, workspace_id: uuid.UUID, total: int) -> AsyncIterator[Line]:
    workspace = await session.get(Workspace, workspace_id)
    yield Line(
        {
            "type": "export",
            "format": FORMAT_VERSION,
            "workspace": {"id": workspace.id, "name": workspace.name, "slug": workspace.slug},
            "exported_at": await session.scalar(select(func.now())),
            "records": total,
        },
        counts=0,
    )
    counts: dict[str, int] = {}

    def line(kind: str, record: dict[str, Any]) -> Line:
        counts[kind] = counts.get(kind, 0) + 1
        return Line({"type": kind, **record})

    members = select(Membership, User).join(User, User.id == Membership.user_id)
    members = members.where(Membership.workspace_id == workspace_id)
    async for page in _pages(session, members, lambda r: (r[0].user_id,), (Membership.user_id,)):
        for membership, user in page:
            yield line(
                "member",
                {
                    "user_id": user.id,
                    "email": user.email,
                    "name": user.name,
                    "role": membership.role,
                    "joined_at": membership.created_at,
                },
            )

    prompts = select(Prompt).where(Prompt.workspace_id == workspace_id)
    async for page in _pages(session, prompts, lambda r: (r[0].created_at, r[0].id), (Prompt.created_at, Prompt.id)):
        for (prompt,) in page:
            out = PromptOut(**{**_columns(prompt), "latest_version": prompt.version_count or None})
            yield line("prompt", out.model_dump(mode="json"))

    versions = select(PromptVersion).where(PromptVersion.workspace_id == workspace_id)
    by = (PromptVersion.prompt_id, PromptVersion.number)
    async for page in _pages(session, versions, lambda r: (r[0].prompt_id, r[0].number), by):
        for (version,) in page:
            yield line("version", (await version_out(session, keyring, version)).model_dump(mode="json"))

    labels = select(PromptLabel, PromptVersion.number).join(PromptVersion, PromptVersion.id == PromptLabel.version_id)
    labels = labels.where(PromptLabel.workspace_id == workspace_id)
    async for page in _pages(session, labels, lambda r: (r[0].id,), (PromptLabel.id,)):
        for label, number in page:
            yield line(
                "label",
                {
                    "prompt_id": label.prompt_id,
                    "name": label.name,
                    "version": number,
                    "updated_by": label.updated_by,
                    "updated_at": label.updated_at,
                },
            )

    comments = select(VersionComment, PromptVersion.prompt_id, PromptVersion.number)
    comments = comments.join(PromptVersion, PromptVersion.id == VersionComment.version_id)
    comments = comments.where(VersionComment.workspace_id == workspace_id)
    by = (VersionComment.created_at, VersionComment.id)
    async for page in _pages(session, comments, lambda r: (r[0].created_at, r[0].id), by):
        for comment, prompt_id, number in page:
            out = (await comment_out(session, keyring, comment, number)).model_dump(mode="json")
            yield line("comment", {"prompt_id": prompt_id, **out})

    sets = select(Dataset).where(Dataset.workspace_id == workspace_id)
    async for page in _pages(session, sets, lambda r: (r[0].created_at, r[0].id), (Dataset.created_at, Dataset.id)):
        for (dataset,) in page:
            detail = DatasetDetail.model_validate(await datasets.detail(session, keyring, dataset))
            yield line("dataset", detail.model_dump(mode="json"))

    run_rows = select(Run).where(Run.workspace_id == workspace_id)
    async for page in _pages(session, run_rows, lambda r: (r[0].created_at, r[0].id), (Run.created_at, Run.id)):
        for (run,) in page:
            out = RunOut.model_validate(await runs.run_view(session, keyring, run))
            yield line("run", out.model_dump(mode="json"))

    flags = select(SafetyFlag).where(SafetyFlag.workspace_id == workspace_id)
    by = (SafetyFlag.created_at, SafetyFlag.id)
    async for page in _pages(session, flags, lambda r: (r[0].created_at, r[0].id), by):
        for (flag,) in page:
            yield line(
                "flag", FlagOut.model_validate(await safety.flag_view(session, keyring, flag)).model_dump(mode="json")
            )

    yield Line({"type": "end", "records": sum(counts.values()), "counts": counts}, counts=0)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _columns(row: Any) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


# Housekeeping


async def resume_stalled(sessionmaker: async_sessionmaker[AsyncSession], keyring: Keyring) -> int:
    """Exports nobody is making (queued for a while, or running with a silent generator): made here."""
    stalled = select(WorkspaceExport.id).where(
        ((WorkspaceExport.status == "queued") & (WorkspaceExport.created_at < func.now() - STALE))
        | ((WorkspaceExport.status == "running") & (WorkspaceExport.heartbeat_at < func.now() - STALE))
    )
    async with sessionmaker() as session:
        ids = list((await session.execute(stalled)).scalars())
    made = 0
    for export_id in ids:
        made += await generate(sessionmaker, keyring, export_id)
    return made


async def remove_expired(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Archives past their keeping time go (the export row stays, as `expired`, for the record)."""
    async with sessionmaker() as session, session.begin():
        ids = list(
            (
                await session.execute(
                    update(WorkspaceExport)
                    .where(WorkspaceExport.status == "succeeded", WorkspaceExport.expires_at < func.now())
                    .values(status="expired")
                    .returning(WorkspaceExport.id)
                )
            ).scalars()
        )
        if ids:
            await session.execute(delete(ExportChunk).where(ExportChunk.export_id.in_(ids)))
    return len(ids)
