"""Every query of datasets."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.datasets.models import Dataset, DatasetRow


async def get_dataset(
    session: AsyncSession, workspace_id: uuid.UUID, dataset_id: uuid.UUID, *, for_update: bool = False
) -> Dataset | None:
    stmt = select(Dataset).where(Dataset.workspace_id == workspace_id, Dataset.id == dataset_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_datasets(
    session: AsyncSession, workspace_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Dataset]:
    stmt = select(Dataset).where(Dataset.workspace_id == workspace_id)
    if after is not None:
        at, last_id = after
        stmt = stmt.where(or_(Dataset.created_at < at, and_(Dataset.created_at == at, Dataset.id < last_id)))
    stmt = stmt.order_by(Dataset.created_at.desc(), Dataset.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def rows_of(session: AsyncSession, dataset: Dataset) -> list[DatasetRow]:
    stmt = (
        select(DatasetRow)
        .where(DatasetRow.workspace_id == dataset.workspace_id, DatasetRow.dataset_id == dataset.id)
        .order_by(DatasetRow.position)
    )
    return list((await session.execute(stmt)).scalars())


async def delete_dataset(session: AsyncSession, dataset: Dataset) -> None:
    await session.delete(dataset)
    await session.flush()
