"""Request and response bodies of prompts, versions, labels, diffs, comments and the export format."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend.workspaces.schemas import Body, refuse_nul

LABEL_PATTERN = r"^[a-z0-9-]{1,40}$"
MAX_MESSAGES = 500
MAX_TEXT_CHARS = 1_000_000


class Content(BaseModel):
    """Bodies whose strings are content: refused if unknown fields come, never stripped of whitespace."""

    model_config = ConfigDict(extra="forbid")


class MessageIn(Content):
    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_TEXT_CHARS)


class ModelConfigIn(Content):  # stop sequences such as "\n\n" must survive intact
    """Stored in clear (it is metadata), so NUL is refused here."""
    provider: str = Field(min_length=1, max_length=32)
    model: str = Field(min_length=1, max_length=200)
    max_tokens: int = Field(ge=1)
    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=1)
    stop_sequences: list[str] = Field(default_factory=list, max_length=16)

    _no_nul = field_validator("*", mode="after")(refuse_nul)


class VersionContent(BaseModel):
    """What a version is made of; a run's `draft` is the same without the commit message."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    system: str = Field(default="", max_length=MAX_TEXT_CHARS)
    messages: list[MessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    config: ModelConfigIn = Field(alias="model_config")

    @field_validator("messages")
    @classmethod
    def _first_from_user(cls, messages: list[MessageIn]) -> list[MessageIn]:
        if messages and messages[0].role != "user":
            raise ValueError("the first message must be from the user")
        return messages


class VersionIn(VersionContent):
    message: str = Field(default="", max_length=500, description="Commit message")

    _no_nul = field_validator("message", mode="after")(refuse_nul)


class PromptIn(Body):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)


class PromptPatch(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    archived: bool | None = None


class PromptOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    archived: bool
    latest_version: int | None
    created_by: uuid.UUID | None
    updated_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class VersionSummary(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    id: uuid.UUID
    prompt_id: uuid.UUID
    number: int
    content_hash: str
    config: dict[str, Any] = Field(alias="model_config")
    variables: list[str]
    message: str
    parent_version: int | None
    created_by: uuid.UUID | None
    created_at: datetime


class VersionOut(VersionSummary):
    system: str
    messages: list[dict[str, Any]]


class LabelIn(Body):
    version: int = Field(ge=1)


class LabelMoveOut(BaseModel):
    from_version: int | None
    to_version: int
    moved_by: uuid.UUID | None
    moved_at: datetime


class LabelOut(BaseModel):
    name: str
    version: int
    updated_by: uuid.UUID | None
    updated_at: datetime
    history: list[LabelMoveOut]


class CommentIn(Content):
    body: str = Field(min_length=1, max_length=20_000)


class CommentPatch(Content):
    body: str | None = Field(default=None, min_length=1, max_length=20_000)
    resolved: bool | None = None


class CommentOut(BaseModel):
    id: uuid.UUID
    version: int
    author_id: uuid.UUID | None
    body: str
    resolved: bool
    resolved_by: uuid.UUID | None
    created_at: datetime
    edited_at: datetime | None


class ExportedVersion(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    number: int = Field(ge=1)
    system: str = Field(default="", max_length=MAX_TEXT_CHARS)
    messages: list[MessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    config: ModelConfigIn = Field(alias="model_config")
    message: str = Field(default="", max_length=500)
    created_at: datetime | None = None

    _no_nul = field_validator("message", mode="after")(refuse_nul)


class ExportedLabel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=LABEL_PATTERN)
    version: int = Field(ge=1)


class ExportedPrompt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    archived: bool = False

    _no_nul = field_validator("name", "description", mode="after")(refuse_nul)


class PromptExport(BaseModel):
    """The portable document: `GET .../export` writes it, `POST .../prompts/import` reads it."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["prompt-playground.prompt"] = "prompt-playground.prompt"
    format_version: Literal[1] = 1
    prompt: ExportedPrompt
    versions: list[ExportedVersion] = Field(min_length=1, max_length=10_000)
    labels: list[ExportedLabel] = Field(default_factory=list, max_length=200)
