"""Request and response bodies of comparisons."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from backend.datasets.schemas import MAX_ROWS
from backend.runs.schemas import Usage
from backend.workspaces.schemas import JsonInt, OptionalJsonInt, refuse_nul

MAX_PATTERN_CHARS = 500
MAX_ASSERTIONS = 20


class ModelChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str = Field(min_length=1, max_length=32)
    model: str = Field(min_length=1, max_length=200)

    _no_nul = field_validator("*", mode="after")(refuse_nul)


class AssertionIn(BaseModel):
    """contains / not_contains (`value`: text), regex (`value`: a pattern, at most 500 characters), is_json,
    equals_expected (the case's expected output, whitespace at both ends ignored)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["contains", "not_contains", "regex", "is_json", "equals_expected", "model_graded"]
    value: str | None = Field(default=None, max_length=10_000)
    prompt_id: uuid.UUID | None = Field(
        default=None, description="model_graded: the rubric prompt; its answer must begin with PASS or FAIL."
    )
    version: OptionalJsonInt = Field(
        default=None, ge=1, description="model_graded: the rubric's version (latest if omitted)."
    )

    @model_validator(mode="after")
    def _value_fits_kind(self) -> AssertionIn:
        needs_value = self.kind in ("contains", "not_contains", "regex")
        if needs_value and not self.value:
            raise ValueError(f"{self.kind} needs a value")
        if not needs_value and self.value is not None:
            raise ValueError(f"{self.kind} takes no value")
        if self.kind == "regex" and self.value is not None and len(self.value) > MAX_PATTERN_CHARS:
            raise ValueError(f"a pattern has at most {MAX_PATTERN_CHARS} characters")
        if (self.kind == "model_graded") != (self.prompt_id is not None):
            raise ValueError("prompt_id is for model_graded, which needs it")
        if self.version is not None and self.kind != "model_graded":
            raise ValueError("version is for model_graded")
        if self.value is not None and "\x00" in self.value:
            raise ValueError("must not contain NUL characters")
        return self


class ComparisonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt_id: uuid.UUID
    versions: list[JsonInt] = Field(min_length=1, max_length=50, description="Version numbers, each once.")
    models: list[ModelChoice] | None = Field(
        default=None, min_length=1, max_length=20, description="Defaults to each version's own model."
    )
    dataset_id: uuid.UUID | None = None
    rows: list[dict[str, str]] | None = Field(default=None, max_length=MAX_ROWS, description="Cases given inline.")
    expected: list[str | None] | None = Field(default=None, max_length=MAX_ROWS, description="Per inline row.")
    name: str = Field(default="", max_length=200)
    assertions: list[AssertionIn] = Field(default_factory=list, max_length=MAX_ASSERTIONS)

    _no_nul = field_validator("name", mode="after")(refuse_nul)

    @model_validator(mode="after")
    def _one_source(self) -> ComparisonIn:
        if self.dataset_id is not None and self.rows is not None:
            raise ValueError("give either dataset_id or rows, not both")
        if self.expected is not None and (self.rows is None or len(self.expected) != len(self.rows)):
            raise ValueError("expected needs rows, one entry per row")
        if any(v < 1 for v in self.versions):
            raise ValueError("version numbers start at 1")
        if len(set(self.versions)) != len(self.versions):
            raise ValueError("each version at most once")
        if self.models and len({(m.provider, m.model) for m in self.models}) != len(self.models):
            raise ValueError("each model at most once")
        return self


class CellRef(BaseModel):
    position: int
    version: int
    provider: str
    model: str
    row_index: int
    run_id: uuid.UUID | None


class ComparisonAccepted(BaseModel):
    id: uuid.UUID
    cells: list[CellRef]
    events_url: str


class Progress(BaseModel):
    done: int
    total: int


class Totals(BaseModel):
    cost_usd: str
    input_tokens: int
    output_tokens: int
    grading_cost_usd: str = Field(description="What the model-graded checks' runs cost (not in cost_usd).")


class AssertionResult(BaseModel):
    assertion_id: uuid.UUID
    passed: bool | None = Field(description="null: not evaluated (the cell has not finished) or could not be.")
    error: str | None = None
    model_graded: bool = Field(default=False, description="Judged by a model (a rubric run), not by a rule.")
    grader_run_id: uuid.UUID | None = Field(default=None, description="model_graded: the grading run.")


class RatingOut(BaseModel):
    user_id: uuid.UUID
    thumbs: Literal["up", "down"] | None
    score: int | None
    note: str | None
    updated_at: datetime


class Cell(CellRef):
    status: str = Field(description="The run's status; `deleted` when its run was deleted.")
    output: str
    stop_reason: str | None
    error: dict[str, Any] | None
    usage: Usage | None
    cost_usd: str | None
    ttft_ms: int | None
    duration_ms: int | None
    earlier_run_ids: list[uuid.UUID] = Field(description="Runs this cell had before reruns, oldest first.")
    assertions: list[AssertionResult] = Field(default_factory=list)
    ratings: list[RatingOut] = Field(default_factory=list)


class AssertionOut(BaseModel):
    id: uuid.UUID
    kind: str
    value: str | None
    model_graded: bool
    grader_prompt_id: uuid.UUID | None
    grader_version: int | None
    created_at: datetime


class Grading(BaseModel):
    assertion_id: uuid.UUID
    run_id: uuid.UUID
    grader_run_id: uuid.UUID


class GradeOut(BaseModel):
    id: uuid.UUID
    gradings: list[Grading] = Field(description="Grading runs started now (cells already graded are skipped).")


class VersionSummary(BaseModel):
    version: int
    cells: int
    done: int
    cost_usd: str
    mean_ttft_ms: float | None
    mean_duration_ms: float | None
    assertions_passed: int
    assertions_evaluated: int
    pass_rate: float | None = Field(description="Passed / evaluated assertion results of this version's cells.")
    thumbs_up: int
    thumbs_down: int
    mean_score: float | None
    ratings: int


class ComparisonSummary(BaseModel):
    id: uuid.UUID
    name: str
    prompt_id: uuid.UUID
    dataset_id: uuid.UUID | None
    versions: list[int]
    models: list[ModelChoice] | None
    cell_count: int
    status: Literal["queued", "running", "completed"]
    progress: Progress
    cost_usd: str = Field(description="What the cells' current runs cost so far (totals.cost_usd of the grid).")
    created_by: uuid.UUID | None
    created_at: datetime


class ComparisonOut(ComparisonSummary):
    totals: Totals
    cases: list[dict[str, Any]] = Field(description="The test cases as pinned: {variables, expected}.")
    assertions: list[AssertionOut]
    by_version: list[VersionSummary]
    cells: list[Cell]


class CancelOut(BaseModel):
    id: uuid.UUID
    cancelled: list[uuid.UUID]


class DiffOut(BaseModel):
    a: uuid.UUID
    b: uuid.UUID
    identical: bool
    unified: str


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    thumbs: Literal["up", "down"] | None = None
    score: OptionalJsonInt = Field(default=None, ge=1, le=5)
    note: str | None = Field(default=None, max_length=10_000)

    _no_nul = field_validator("note", mode="after")(refuse_nul)

    @model_validator(mode="after")
    def _something(self) -> RatingIn:
        if self.thumbs is None and self.score is None:
            raise ValueError("give thumbs (up or down) or a score (1-5)")
        return self
