"""Request and response bodies of prompts, versions, labels, diffs, comments and the export format."""

from __future__ import annotations

import base64
import binascii
import json
import unicodedata
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from backend.workspaces.schemas import Body, JsonInt, OptionalJsonFloat, OptionalJsonInt, refuse_nul

LABEL_PATTERN = r"^[a-z0-9-]{1,40}$"
MAX_MESSAGES = 500
MAX_TEXT_CHARS = 1_000_000
MAX_BLOCKS = 100
MAX_TOOLS = 64
MAX_IMAGE_BYTES = 1024 * 1024  # decoded; the whole request body is capped at 2 MiB
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_IMAGE_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}


def check_object_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A valid JSON Schema (draft 2020-12) describing an object, or a ValueError saying what is wrong."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
    if schema.get("type") != "object":
        raise ValueError('the schema must describe an object ("type": "object")')
    if len(json.dumps(schema)) > 100_000:
        raise ValueError("the schema is larger than 100 KB")
    return schema


class Content(BaseModel):
    """Bodies whose strings are content: refused if unknown fields come, never stripped of whitespace."""

    model_config = ConfigDict(extra="forbid")

    # Kept as sent, but never with a NUL: providers, flag excerpts and exports all carry this text (422).
    _content_no_nul = field_validator("*", mode="after")(refuse_nul)


class TextBlock(Content):
    type: Literal["text"]
    text: str = Field(max_length=MAX_TEXT_CHARS)


class ImageSource(Content):
    type: Literal["base64"] = "base64"
    media_type: Literal["image/png", "image/jpeg", "image/gif", "image/webp"]
    data: str = Field(description=f"Base64 of the image; at most {MAX_IMAGE_BYTES // 1024} KiB decoded.")

    @model_validator(mode="after")
    def _an_image_of_its_type(self) -> ImageSource:
        try:
            raw = base64.b64decode(self.data, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("data is not valid base64") from None
        if len(raw) > MAX_IMAGE_BYTES:
            raise ValueError(f"the image is larger than {MAX_IMAGE_BYTES // 1024} KiB")
        if not any(raw.startswith(magic) for magic in _IMAGE_MAGIC[self.media_type]):
            raise ValueError(f"the data is not a {self.media_type} image")
        return self


class ImageBlock(Content):
    """An image uploaded with the prompt (never fetched from a URL), sealed like the rest of the content."""

    type: Literal["image"]
    source: ImageSource


class ToolUseBlock(Content):
    """A tool call the assistant made (a conversation continued from a run keeps them)."""

    type: Literal["tool_use"]
    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    input: dict[str, Any] = Field(default_factory=dict)


class ToolResultBlock(Content):
    """What a tool call returned, typed in by the user."""

    type: Literal["tool_result"]
    tool_use_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    content: str = Field(max_length=MAX_TEXT_CHARS)
    is_error: bool = Field(default=False, strict=True)


Block = Annotated[TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock, Field(discriminator="type")]
_BLOCKS_OF = {"user": {"text", "image", "tool_result"}, "assistant": {"text", "tool_use"}}


class MessageIn(Content):
    role: Literal["user", "assistant"]
    content: str | list[Block] = Field(max_length=MAX_TEXT_CHARS)

    @model_validator(mode="after")
    def _blocks_fit_the_role(self) -> MessageIn:
        if isinstance(self.content, list):
            if not self.content:
                raise ValueError("content needs at least one block")
            if len(self.content) > MAX_BLOCKS:
                raise ValueError(f"at most {MAX_BLOCKS} content blocks per message")
            for block in self.content:
                if block.type not in _BLOCKS_OF[self.role]:
                    raise ValueError(f"a {self.role} message cannot hold a {block.type} block")
        return self


class ToolIn(Content):
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str = Field(default="", max_length=4096)
    input_schema: dict[str, Any] = Field(description="A JSON Schema (draft 2020-12) of type object.")

    @field_validator("input_schema")
    @classmethod
    def _a_schema_of_an_object(cls, schema: dict[str, Any]) -> dict[str, Any]:
        return check_object_schema(schema)


class ToolChoiceIn(Content):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = Field(default=None, pattern=TOOL_NAME_PATTERN)

    @model_validator(mode="after")
    def _name_only_for_one_tool(self) -> ToolChoiceIn:
        if (self.type == "tool") != (self.name is not None):
            raise ValueError("name is required with type 'tool', and only then")
        return self


class ModelConfigIn(Content):  # stop sequences such as "\n\n" must survive intact
    """Stored in clear (it is metadata), so NUL is refused here."""

    provider: str = Field(min_length=1, max_length=32)
    model: str = Field(min_length=1, max_length=200)
    max_tokens: JsonInt = Field(ge=1)
    temperature: OptionalJsonFloat = Field(default=None, ge=0)
    top_p: OptionalJsonFloat = Field(default=None, gt=0, le=1)
    top_k: OptionalJsonInt = Field(default=None, ge=1)
    stop_sequences: list[str] = Field(default_factory=list, max_length=16)
    thinking_budget: OptionalJsonInt = Field(
        default=None,
        ge=1024,
        description="Extended thinking: tokens the model may think with (less than max_tokens).",
    )

    _no_nul = field_validator("*", mode="after")(refuse_nul)


class VersionContent(BaseModel):
    """What a version is made of; a run's `draft` is the same without the commit message."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    system: str = Field(default="", max_length=MAX_TEXT_CHARS)
    messages: list[MessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    config: ModelConfigIn = Field(alias="model_config")
    tools: list[ToolIn] = Field(default_factory=list, max_length=MAX_TOOLS)
    tool_choice: ToolChoiceIn | None = None
    output_schema: dict[str, Any] | None = Field(
        default=None, description="Structured output: a JSON Schema (type object) the answer must conform to."
    )

    # Kept encrypted, but flag excerpts and provider requests are made from it: no NUL (422, naming it).
    _system_no_nul = field_validator("system", mode="after")(refuse_nul)

    @field_validator("messages")
    @classmethod
    def _first_from_user(cls, messages: list[MessageIn]) -> list[MessageIn]:
        if messages and messages[0].role != "user":
            raise ValueError("the first message must be from the user")
        return messages

    @field_validator("output_schema")
    @classmethod
    def _a_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if schema is None else check_object_schema(schema)

    @model_validator(mode="after")
    def _tools_fit_together(self) -> VersionContent:
        names = [tool.name for tool in self.tools]
        if len(set(names)) != len(names):
            raise ValueError("tool names must be unique")
        if self.tool_choice is not None:
            if not self.tools:
                raise ValueError("tool_choice needs tools")
            if self.tool_choice.name is not None and self.tool_choice.name not in names:
                raise ValueError(f"tool_choice names {self.tool_choice.name!r}, which is not one of the tools")
        return self

    def extras(self) -> dict[str, Any]:
        """The parts beyond system, messages and model_config, as stored (empty when there are none)."""
        extras: dict[str, Any] = {}
        if self.tools:
            extras["tools"] = [tool.model_dump() for tool in self.tools]
        if self.tool_choice is not None:
            extras["tool_choice"] = self.tool_choice.model_dump(exclude_none=True)
        if self.output_schema is not None:
            extras["output_schema"] = self.output_schema
        return extras


class VersionIn(VersionContent):
    message: str = Field(default="", max_length=500, description="Commit message")

    _no_nul = field_validator("message", mode="after")(refuse_nul)


def nfc_name(value: str | None) -> str | None:
    """Prompt names are kept in Unicode NFC: "café" typed as one code point or as e + combining accent is
    one name (unique per workspace, found by either form). Confusables (Cyrillic a, U+0430, for Latin a) stay
    distinct: they are different characters. See docs/decisions/adversarial-testing.md."""
    return None if value is None else unicodedata.normalize("NFC", value)


class PromptIn(Body):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)

    _nfc = field_validator("name", mode="after")(nfc_name)


class PromptPatch(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    archived: bool | None = Field(default=None, strict=True)

    _nfc = field_validator("name", mode="after")(nfc_name)


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
    tools: list[dict[str, Any]] = Field(default_factory=list)
    tool_choice: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None


class LabelIn(Body):
    version: JsonInt = Field(ge=1, le=2_147_483_647)


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
    resolved: bool | None = Field(default=None, strict=True)


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

    number: JsonInt = Field(ge=1)
    system: str = Field(default="", max_length=MAX_TEXT_CHARS)
    messages: list[MessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    config: ModelConfigIn = Field(alias="model_config")
    tools: list[ToolIn] = Field(default_factory=list, max_length=MAX_TOOLS)
    tool_choice: ToolChoiceIn | None = None
    output_schema: dict[str, Any] | None = None
    message: str = Field(default="", max_length=500)
    created_at: datetime | None = None

    _no_nul = field_validator("message", mode="after")(refuse_nul)


class ExportedLabel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=LABEL_PATTERN)
    version: JsonInt = Field(ge=1)


class ExportedPrompt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    archived: bool = Field(default=False, strict=True)

    _no_nul = field_validator("name", "description", mode="after")(refuse_nul)
    _nfc = field_validator("name", mode="after")(nfc_name)


class PromptExport(BaseModel):
    """The portable document: `GET .../export` writes it, `POST .../prompts/import` reads it."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["prompt-playground.prompt"] = "prompt-playground.prompt"
    format_version: Literal[1] = 1
    prompt: ExportedPrompt
    versions: list[ExportedVersion] = Field(min_length=1, max_length=10_000)
    labels: list[ExportedLabel] = Field(default_factory=list, max_length=200)
