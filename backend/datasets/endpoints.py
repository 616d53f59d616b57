"""Routes of datasets: create (JSON or CSV upload), list, read, delete, add a test case."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Response, UploadFile, status

from backend.core.database import DbSession
from backend.core.errors import Invalid, PayloadTooLarge
from backend.core.pagination import Page, decode_cursor, encode_cursor
from backend.datasets import schemas, service
from backend.workspaces.dependencies import AppKeyring, WorkspaceEditor, WorkspaceViewer

router = APIRouter(prefix="/workspaces/{ws}/datasets", tags=["datasets"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=schemas.DatasetOut)
async def create_dataset(
    body: schemas.DatasetIn, access: WorkspaceEditor, session: DbSession, keyring: AppKeyring
) -> schemas.DatasetOut:
    """A dataset of test cases: rows of variable values, optionally an expected output per row (editor+)."""
    expected = body.expected or [None] * len(body.rows)
    cases = [service.Case(row, exp) for row, exp in zip(body.rows, expected, strict=True)]
    dataset = await service.create_dataset(session, keyring, access, body.name, cases)
    return schemas.DatasetOut(**service.view(dataset))


@router.post("/import", status_code=status.HTTP_201_CREATED, response_model=schemas.DatasetOut)
async def import_dataset(
    access: WorkspaceEditor,
    session: DbSession,
    keyring: AppKeyring,
    file: Annotated[UploadFile, File(description="CSV, UTF-8, its header row naming the variables")],
    name: Annotated[str | None, Form(max_length=200, description="Defaults to the file's name")] = None,
    expected_column: Annotated[
        str | None, Form(max_length=64, description="The column holding each row's expected output, if any")
    ] = None,
) -> schemas.DatasetOut:
    """A dataset from a CSV file (multipart field `file`); a bad file is a 422 naming the line (editor+)."""
    data = await file.read(schemas.MAX_DATASET_BYTES * 2 + 1)
    if len(data) > schemas.MAX_DATASET_BYTES * 2:
        raise PayloadTooLarge("The file is too large to be a dataset")
    cases = service.parse_csv(data, expected_column or None)
    title = (name or "").strip() or (file.filename or "").rsplit("/", 1)[-1].removesuffix(".csv").strip()
    if not title or "\x00" in title:
        raise Invalid(["body", "name"], "give the dataset a name")
    dataset = await service.create_dataset(session, keyring, access, title[:200], cases)
    return schemas.DatasetOut(**service.view(dataset))


@router.get("", response_model=Page[schemas.DatasetOut])
async def list_datasets(
    access: WorkspaceViewer,
    session: DbSession,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[schemas.DatasetOut]:
    """Datasets, newest first (without their rows)."""
    after = decode_cursor(cursor) if cursor else None
    rows = await service.list_datasets(session, access, after, limit + 1)
    items = [schemas.DatasetOut(**service.view(d)) for d in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    return Page[schemas.DatasetOut](items=items, next_cursor=encode_cursor(last.created_at, last.id) if last else None)


@router.get("/{dataset_id:uuid}", response_model=schemas.DatasetDetail)
async def get_dataset(
    dataset_id: uuid.UUID, access: WorkspaceViewer, session: DbSession, keyring: AppKeyring
) -> schemas.DatasetDetail:
    """One dataset with its rows (and expected outputs) decrypted."""
    dataset = await service.get_dataset(session, access, dataset_id)
    return schemas.DatasetDetail(**await service.detail(session, keyring, dataset))


@router.delete("/{dataset_id:uuid}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_dataset(dataset_id: uuid.UUID, access: WorkspaceEditor, session: DbSession) -> Response:
    """Delete a dataset (editor+); comparisons made from it keep their own copy of its cases."""
    await service.delete_dataset(session, access, dataset_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{dataset_id:uuid}/rows", status_code=status.HTTP_201_CREATED, response_model=schemas.RowOut)
async def add_row(
    dataset_id: uuid.UUID, body: schemas.RowIn, access: WorkspaceEditor, session: DbSession, keyring: AppKeyring
) -> schemas.RowOut:
    """ "Save as test case": a run's variable values (`run_id`), or given `variables`, appended (editor+)."""
    row = await service.add_case(
        session,
        keyring,
        access,
        dataset_id,
        run_id=body.run_id,
        variables=body.variables,
        expected=body.expected,
        output_as_expected=body.output_as_expected,
    )
    return schemas.RowOut(**row)
