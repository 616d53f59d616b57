"""Request and response bodies of runs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from backend.prompts.schemas import Content, VersionContent
from backend.workspaces.schemas import OptionalJsonFloat, OptionalJsonInt, refuse_nul


class Overrides(Content):
    """Parameters that replace the version's for this run only (pinned in its snapshot)."""

    model: str | None = Field(default=None, min_length=1, max_length=200)
    provider: str | None = Field(default=None, min_length=1, max_length=32)
    max_tokens: OptionalJsonInt = Field(default=None, ge=1)
    temperature: OptionalJsonFloat = Field(default=None, ge=0)
    top_p: OptionalJsonFloat = Field(default=None, gt=0, le=1)
    top_k: OptionalJsonInt = Field(default=None, ge=1)
    stop_sequences: list[str] | None = Field(default=None, max_length=16)

    _no_nul = field_validator("*", mode="after")(refuse_nul)


def _storable(value: Any) -> bool:
    """No NUL and no lone surrogate in any string of a JSON value (iteratively: values may be deep)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return False
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt_id: uuid.UUID
    version: OptionalJsonInt = Field(
        default=None, ge=1, le=2_147_483_647, description="A version number; the latest when omitted"
    )
    draft: VersionContent | None = Field(default=None, description="Unsaved content: saved (or reused) and pinned")
    variables: dict[str, Any] = Field(default_factory=dict, max_length=100)
    overrides: Overrides = Field(default_factory=Overrides)

    @field_validator("variables")
    @classmethod
    def _without_nul(cls, variables: dict[str, Any]) -> dict[str, Any]:
        # PostgreSQL text (flag excerpts, datasets made from runs) cannot hold NUL, and UTF-8 (what is
        # sealed and sent) cannot hold a lone surrogate, which JSON's \ud800 escapes can produce: refuse
        # both, naming the variable, in its name or anywhere inside its value.
        for name, value in variables.items():
            if not _storable(name):
                raise ValueError("variable names must not contain NUL characters or lone surrogates")
            if not _storable(value):
                raise ValueError(f"variable {name!r} must not contain NUL characters or lone surrogates")
        return variables

    @model_validator(mode="after")
    def _one_source(self) -> RunIn:
        if self.version is not None and self.draft is not None:
            raise ValueError("give either version or draft, not both")
        return self


class RunAccepted(BaseModel):
    id: uuid.UUID
    status: str
    events_url: str


class Estimate(BaseModel):
    input_tokens: int
    max_output_tokens: int
    max_cost_usd: str


class Usage(BaseModel):
    input_tokens: int | None
    output_tokens: int | None
    estimated: bool
    thinking_tokens: int | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="Of output_tokens, those spent thinking (present only when the model thought).",
    )


class CodeOut(BaseModel):
    language: Literal["python", "typescript", "curl"]
    provider: str
    code: str = Field(description="A program making the same request; keys come from the environment.")


class RunOut(BaseModel):
    id: uuid.UUID
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    prompt_id: uuid.UUID
    version_id: uuid.UUID
    version: int
    provider: str
    model: str
    snapshot: dict[str, Any] | None
    output: str
    stop_reason: str | None
    usage: Usage
    cost_usd: str | None
    ttft_ms: int | None
    duration_ms: int | None
    error: dict[str, Any] | None
    flags: list[dict[str, Any]]
    thinking: str | None = Field(default=None, description="The model's extended thinking, when it was asked to.")
    tool_uses: list[dict[str, Any]] = Field(
        default_factory=list, description="Tool calls the model made: {id, name, input}."
    )
    output_valid: bool | None = Field(
        default=None, description="Whether the output conforms to the version's output schema (null: no schema)."
    )
    rerun_of: uuid.UUID | None
    created_by: uuid.UUID | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    contents_expired_at: datetime | None = Field(
        default=None, description="When the retention policy removed the snapshot and output (null: kept)"
    )
