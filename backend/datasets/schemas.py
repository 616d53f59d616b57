"""Request and response bodies of datasets.

A row is an object of variable values, exactly as a run's `variables`. Expected outputs, when a dataset has
them, travel beside the rows in `expected` (one entry per row, null for a row without one), so `rows` keeps
the shape API.md fixes and no variable name is reserved."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from backend.workspaces.schemas import refuse_nul

MAX_ROWS = 1000  # per dataset; a comparison takes at most 500 cells anyway
MAX_VARIABLES = 100  # distinct variable names per dataset (a version has at most 100)
MAX_DATASET_BYTES = 1024 * 1024  # UTF-8 bytes of all values and expected outputs of a dataset
MAX_VALUE_CHARS = 262_144  # as for a run's variable value
VARIABLE_PATTERN = r"^[A-Za-z0-9_]{1,64}$"


class DatasetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    rows: list[dict[str, str]] = Field(max_length=MAX_ROWS, description="Test cases: variable name -> value.")
    expected: list[str | None] | None = Field(
        default=None,
        max_length=MAX_ROWS,
        description="Optional expected output per row (same length as rows; null for a row without one).",
    )

    _no_nul = field_validator("name", mode="after")(refuse_nul)

    @field_validator("name", mode="after")
    @classmethod
    def _strip_name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value

    @model_validator(mode="after")
    def _expected_matches_rows(self) -> DatasetIn:
        if self.expected is not None and len(self.expected) != len(self.rows):
            raise ValueError(f"expected has {len(self.expected)} entries for {len(self.rows)} rows")
        return self


class RowIn(BaseModel):
    """A test case added to a dataset: from a run's variables (`run_id`) or given (`variables`)."""

    model_config = ConfigDict(extra="forbid")

    run_id: uuid.UUID | None = None
    variables: dict[str, str] | None = None
    expected: str | None = Field(default=None, description="The expected output of this case.")
    output_as_expected: bool = Field(
        default=False, strict=True, description="With run_id: the run's output is the expected one."
    )

    @model_validator(mode="after")
    def _one_source(self) -> RowIn:
        if (self.run_id is None) == (self.variables is None):
            raise ValueError("give either run_id or variables")
        if self.output_as_expected and (self.run_id is None or self.expected is not None):
            raise ValueError("output_as_expected needs run_id and no expected")
        return self


class DatasetOut(BaseModel):
    id: uuid.UUID
    name: str
    row_count: int
    variables: list[str]
    has_expected: bool
    size_bytes: int
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class DatasetDetail(DatasetOut):
    rows: list[dict[str, str]]
    expected: list[str | None] | None = Field(description="Expected output per row, or null when none has one.")


class RowOut(BaseModel):
    index: int
    variables: dict[str, str]
    expected: str | None
