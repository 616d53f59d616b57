"""Datasets: test cases of variable values (and optional expected outputs), from JSON or CSV, sealed with
the workspace key row by row; listed, read, deleted; cases added from a run's variables. Comparisons read
them through `dataset_cases`."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.errors import Conflict, Invalid, NotFound, PayloadTooLarge
from backend.crypto.service import Keyring
from backend.datasets import repository as repo
from backend.datasets.models import Dataset, DatasetRow
from backend.datasets.schemas import (
    MAX_DATASET_BYTES,
    MAX_ROWS,
    MAX_VALUE_CHARS,
    MAX_VARIABLES,
    VARIABLE_PATTERN,
)
from backend.runs import service as runs
from backend.workspaces.service import WorkspaceAccess

_VARIABLE = re.compile(VARIABLE_PATTERN)


class DatasetNotFound(NotFound):
    type, title = "dataset-not-found", "Dataset not found"


class DatasetNameTaken(Conflict):
    type, title = "dataset-name-taken", "A dataset with this name exists"


class InvalidFile(Invalid):
    """422 for an uploaded file, naming the line (1-based, as an editor shows it)."""

    type, title = "invalid-file", "The file cannot be imported"

    def __init__(self, line: int, msg: str) -> None:
        super().__init__(["body", "file"], f"line {line}: {msg}", line=line)


@dataclass(frozen=True)
class Case:
    """One test case: variable values, and the expected output if the dataset gives one."""

    variables: dict[str, str]
    expected: str | None


def _utf8_size(value: str, loc: list[str | int]) -> int:
    """UTF-8 bytes of a value; a lone surrogate (JSON's "\\ud800" can make one) has none: 422 naming it."""
    try:
        return len(value.encode())
    except UnicodeEncodeError:
        raise Invalid(loc, "must be valid Unicode text (no lone surrogates)") from None


def _check_cases(cases: list[Case], where: list[str | int]) -> tuple[list[str], int]:
    """Names, values and sizes of test cases; returns (variable names in order, UTF-8 bytes)."""
    if len(cases) > MAX_ROWS:
        raise Invalid([*where], f"at most {MAX_ROWS} rows per dataset")
    names: dict[str, None] = {}
    size = 0
    for index, case in enumerate(cases):
        for name, value in case.variables.items():
            if not _VARIABLE.match(name):
                raise Invalid([*where, index, name], "a variable name is 1-64 letters, digits or underscores")
            if len(value) > MAX_VALUE_CHARS:
                raise Invalid([*where, index, name], f"value exceeds {MAX_VALUE_CHARS} characters")
            if "\x00" in value:
                raise Invalid([*where, index, name], "must not contain NUL characters")
            names.setdefault(name, None)
            size += _utf8_size(value, [*where, index, name])
        if case.expected is not None:
            if len(case.expected) > MAX_VALUE_CHARS:
                raise Invalid(["body", "expected", index], f"expected output exceeds {MAX_VALUE_CHARS} characters")
            size += _utf8_size(case.expected, ["body", "expected", index])
    if len(names) > MAX_VARIABLES:
        raise Invalid([*where], f"at most {MAX_VARIABLES} distinct variables per dataset")
    if size > MAX_DATASET_BYTES:
        raise PayloadTooLarge(f"A dataset holds at most {MAX_DATASET_BYTES} bytes of values; this one has {size}")
    return list(names), size


async def create_dataset(
    session: AsyncSession, keyring: Keyring, access: WorkspaceAccess, name: str, cases: list[Case]
) -> Dataset:
    variables, size = _check_cases(cases, ["body", "rows"])
    dataset = Dataset(
        id=uuid.uuid4(),
        workspace_id=access.workspace.id,
        name=name,
        variables=variables,
        row_count=len(cases),
        expected_count=sum(c.expected is not None for c in cases),
        size_bytes=size,
        created_by=access.principal.user.id,
    )
    try:
        async with session.begin_nested():
            session.add(dataset)
            await session.flush()
    except IntegrityError as exc:
        raise DatasetNameTaken(f"A dataset named '{name}' already exists in this workspace") from exc
    for position, case in enumerate(cases):
        await _add_row(session, keyring, dataset, position, case)
    await session.flush()
    return dataset


async def _add_row(session: AsyncSession, keyring: Keyring, dataset: Dataset, position: int, case: Case) -> None:
    row = DatasetRow(id=uuid.uuid4(), workspace_id=dataset.workspace_id, dataset_id=dataset.id, position=position)
    await keyring.seal_field(session, row, "variables", json.dumps(case.variables, ensure_ascii=False))
    if case.expected is not None:
        await keyring.seal_field(session, row, "expected", case.expected)
    session.add(row)


def parse_csv(data: bytes, expected_column: str | None) -> list[Case]:
    """A CSV file with a header row of variable names; `expected_column`, if given, holds expected outputs.

    Errors name the line as an editor counts them (a quoted value may span lines)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidFile(line, "the file is not UTF-8 text") from None
    if "\x00" in text:
        raise InvalidFile(text[: text.index("\x00")].count("\n") + 1, "the file contains a NUL character")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise InvalidFile(1, "the file is empty; its first line must name the variables")
        names = [h.strip() for h in header]
        for column, name in enumerate(names, start=1):
            if not name:
                raise InvalidFile(reader.line_num, f"column {column} has no name")
            if name != expected_column and not _VARIABLE.match(name):
                raise InvalidFile(
                    reader.line_num,
                    f"column {column} is not a variable name (1-64 letters, digits or underscores)",
                )
            if names.index(name) != column - 1:
                raise InvalidFile(reader.line_num, f"column {column} repeats the name '{name}'")
        if expected_column is not None and expected_column not in names:
            raise InvalidFile(reader.line_num, f"no column is named '{expected_column}' (expected_column)")
        cases: list[Case] = []
        for record in reader:
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # a blank line
            if len(record) != len(names):
                raise InvalidFile(reader.line_num, f"{len(record)} values for {len(names)} columns")
            if len(cases) == MAX_ROWS:
                raise InvalidFile(reader.line_num, f"more than {MAX_ROWS} rows")
            values = dict(zip(names, record, strict=True))
            expected = values.pop(expected_column) if expected_column is not None else None
            cases.append(Case(values, expected if expected else None))
    except csv.Error as exc:
        raise InvalidFile(reader.line_num or 1, f"not valid CSV ({exc})") from None
    if not cases:
        raise InvalidFile(2, "the file has a header but no rows")
    return cases


async def get_dataset(session: AsyncSession, access: WorkspaceAccess, dataset_id: uuid.UUID) -> Dataset:
    dataset = await repo.get_dataset(session, access.workspace.id, dataset_id)
    if dataset is None:
        raise DatasetNotFound(f"Dataset {dataset_id} not found")
    return dataset


async def list_datasets(
    session: AsyncSession, access: WorkspaceAccess, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Dataset]:
    return await repo.list_datasets(session, access.workspace.id, after, limit)


async def cases_of(session: AsyncSession, keyring: Keyring, dataset: Dataset) -> list[Case]:
    cases = []
    for row in await repo.rows_of(session, dataset):
        variables = json.loads(await keyring.open_text(session, row, "variables"))
        expected = await keyring.open_text(session, row, "expected") if row.expected is not None else None
        cases.append(Case(variables, expected))
    return cases


async def dataset_cases(
    session: AsyncSession, keyring: Keyring, access: WorkspaceAccess, dataset_id: uuid.UUID
) -> list[Case]:
    """For comparisons: the test cases of a dataset of this workspace (404 otherwise)."""
    return await cases_of(session, keyring, await get_dataset(session, access, dataset_id))


def view(dataset: Dataset) -> dict[str, Any]:
    return {
        "id": dataset.id,
        "name": dataset.name,
        "row_count": dataset.row_count,
        "variables": dataset.variables,
        "has_expected": dataset.expected_count > 0,
        "size_bytes": dataset.size_bytes,
        "created_by": dataset.created_by,
        "created_at": dataset.created_at,
        "updated_at": dataset.updated_at,
    }


async def detail(session: AsyncSession, keyring: Keyring, dataset: Dataset) -> dict[str, Any]:
    cases = await cases_of(session, keyring, dataset)
    return {
        **view(dataset),
        "rows": [c.variables for c in cases],
        "expected": [c.expected for c in cases] if dataset.expected_count else None,
    }


async def delete_dataset(session: AsyncSession, access: WorkspaceAccess, dataset_id: uuid.UUID) -> None:
    await repo.delete_dataset(session, await get_dataset(session, access, dataset_id))


async def add_case(
    session: AsyncSession,
    keyring: Keyring,
    access: WorkspaceAccess,
    dataset_id: uuid.UUID,
    *,
    run_id: uuid.UUID | None,
    variables: dict[str, str] | None,
    expected: str | None,
    output_as_expected: bool,
) -> dict[str, Any]:
    """ "Save as test case": a run's variable values (and, if asked, its output as the expected one), or given
    values, appended to the dataset."""
    dataset = await repo.get_dataset(session, access.workspace.id, dataset_id, for_update=True)
    if dataset is None:
        raise DatasetNotFound(f"Dataset {dataset_id} not found")
    if run_id is not None:
        run_view = await runs.run_view(session, keyring, await runs.get_run(session, access, run_id))
        if run_view["snapshot"] is None:
            raise Invalid(["body", "run_id"], "this run's contents were emptied by the workspace's retention policy")
        variables = {k: v for k, v in run_view["snapshot"]["variables"].items() if isinstance(v, str)}
        if output_as_expected:
            expected = run_view["output"]
    assert variables is not None
    if dataset.row_count >= MAX_ROWS:
        raise Invalid(["body"], f"this dataset already has {MAX_ROWS} rows, the most a dataset may hold")
    case = Case(variables, expected)
    names, size = _check_cases([case], ["body", "variables"])
    if dataset.size_bytes + size > MAX_DATASET_BYTES:
        raise PayloadTooLarge(f"A dataset holds at most {MAX_DATASET_BYTES} bytes of values")
    position = dataset.row_count
    await _add_row(session, keyring, dataset, position, case)
    dataset.row_count = position + 1
    dataset.size_bytes += size
    dataset.expected_count += case.expected is not None
    dataset.variables = list(dict.fromkeys([*dataset.variables, *names]))
    dataset.updated_at = func.now()
    await session.flush()
    return {"index": position, "variables": case.variables, "expected": case.expected}
