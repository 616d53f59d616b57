"""Every query of prompts, versions, labels and comments; each one scoped to its workspace."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.prompts.models import Prompt, PromptLabel, PromptLabelMove, PromptVersion, VersionComment


async def get_prompt(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    prompt_id: uuid.UUID,
    *,
    for_update: bool = False,
    key_share: bool = False,
) -> Prompt | None:
    """With key_share, the row lock is FOR NO KEY UPDATE: it serialises writers of the prompt without waiting
    for the transactions that only reference it (every new run holds FOR KEY SHARE on it until its commit)."""
    stmt = select(Prompt).where(Prompt.workspace_id == workspace_id, Prompt.id == prompt_id)
    if for_update:
        stmt = stmt.with_for_update(key_share=key_share)
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_prompt_by_name(session: AsyncSession, workspace_id: uuid.UUID, name: str) -> Prompt | None:
    stmt = select(Prompt).where(Prompt.workspace_id == workspace_id, Prompt.name == name)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_prompts(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    include_archived: bool,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Prompt]:
    stmt = select(Prompt).where(Prompt.workspace_id == workspace_id)
    if not include_archived:
        stmt = stmt.where(Prompt.archived.is_(False))
    if after is not None:
        at, last_id = after
        stmt = stmt.where(or_(Prompt.updated_at < at, and_(Prompt.updated_at == at, Prompt.id < last_id)))
    stmt = stmt.order_by(Prompt.updated_at.desc(), Prompt.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def delete_prompt(session: AsyncSession, prompt: Prompt) -> None:
    await session.execute(delete(Prompt).where(Prompt.id == prompt.id))


async def get_version(
    session: AsyncSession, workspace_id: uuid.UUID, prompt_id: uuid.UUID, number: int
) -> PromptVersion | None:
    stmt = select(PromptVersion).where(
        PromptVersion.workspace_id == workspace_id,
        PromptVersion.prompt_id == prompt_id,
        PromptVersion.number == number,
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_version_by_id(
    session: AsyncSession, workspace_id: uuid.UUID, version_id: uuid.UUID
) -> PromptVersion | None:
    stmt = select(PromptVersion).where(PromptVersion.workspace_id == workspace_id, PromptVersion.id == version_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_version_by_hash(session: AsyncSession, prompt_id: uuid.UUID, content_hash: bytes) -> PromptVersion | None:
    stmt = select(PromptVersion).where(PromptVersion.prompt_id == prompt_id, PromptVersion.content_hash == content_hash)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_versions(session: AsyncSession, workspace_id: uuid.UUID, prompt_id: uuid.UUID) -> list[PromptVersion]:
    stmt = (
        select(PromptVersion)
        .where(PromptVersion.workspace_id == workspace_id, PromptVersion.prompt_id == prompt_id)
        .order_by(PromptVersion.number.desc())
    )
    return list((await session.execute(stmt)).scalars())


async def version_numbers(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not ids:
        return {}
    stmt = select(PromptVersion.id, PromptVersion.number).where(PromptVersion.id.in_(ids))
    return {row[0]: row[1] for row in (await session.execute(stmt)).all()}


async def version_by_label(
    session: AsyncSession, workspace_id: uuid.UUID, prompt_id: uuid.UUID, label: str
) -> PromptVersion | None:
    stmt = (
        select(PromptVersion)
        .join(PromptLabel, PromptLabel.version_id == PromptVersion.id)
        .where(
            PromptLabel.workspace_id == workspace_id,
            PromptLabel.prompt_id == prompt_id,
            PromptLabel.name == label,
        )
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_label(
    session: AsyncSession, prompt_id: uuid.UUID, name: str, *, for_update: bool = False
) -> PromptLabel | None:
    stmt = select(PromptLabel).where(PromptLabel.prompt_id == prompt_id, PromptLabel.name == name)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_labels(session: AsyncSession, prompt_id: uuid.UUID) -> list[tuple[PromptLabel, int]]:
    stmt = (
        select(PromptLabel, PromptVersion.number)
        .join(PromptVersion, PromptVersion.id == PromptLabel.version_id)
        .where(PromptLabel.prompt_id == prompt_id)
        .order_by(PromptLabel.name)
    )
    return [(label, number) for label, number in (await session.execute(stmt)).all()]


async def label_history(session: AsyncSession, prompt_id: uuid.UUID) -> list[PromptLabelMove]:
    stmt = (
        select(PromptLabelMove)
        .where(PromptLabelMove.prompt_id == prompt_id)
        .order_by(PromptLabelMove.moved_at.desc(), PromptLabelMove.id.desc())
    )
    return list((await session.execute(stmt)).scalars())


async def list_comments(session: AsyncSession, workspace_id: uuid.UUID, version_id: uuid.UUID) -> list[VersionComment]:
    stmt = (
        select(VersionComment)
        .where(VersionComment.workspace_id == workspace_id, VersionComment.version_id == version_id)
        .order_by(VersionComment.created_at, VersionComment.id)
    )
    return list((await session.execute(stmt)).scalars())


async def get_comment(
    session: AsyncSession, workspace_id: uuid.UUID, version_id: uuid.UUID, comment_id: uuid.UUID
) -> VersionComment | None:
    stmt = (
        select(VersionComment)
        .where(
            VersionComment.workspace_id == workspace_id,
            VersionComment.version_id == version_id,
            VersionComment.id == comment_id,
        )
        .with_for_update()
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def now(session: AsyncSession) -> datetime:
    return (await session.execute(select(func.now()))).scalar_one()
