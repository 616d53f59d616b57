"""The interface every provider implements, and the events and errors it yields."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol


@dataclass(frozen=True)
class ProviderRequest:
    """Everything needed to issue one request; built from a run's pinned snapshot."""

    provider: str
    model: str
    system: str
    messages: list[dict]  # [{"role": "user"|"assistant", "content": str | [content blocks]}]
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: list[str] = field(default_factory=list)
    api_key: str | None = None
    base_url: str | None = None
    tools: list[dict] = field(default_factory=list)  # [{"name", "description", "input_schema"}]
    tool_choice: dict | None = None  # {"type": "auto"|"any"|"tool"|"none", "name"?}
    output_schema: dict | None = None
    thinking_budget: int | None = None


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ThinkingDelta:
    text: str


@dataclass(frozen=True)
class ToolUse:
    """A complete tool call: its input JSON has finished streaming."""

    id: str
    name: str
    input: dict


@dataclass(frozen=True)
class UsageUpdate:
    """Token counts as the provider reports them so far (cumulative, not increments)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    thinking_tokens: int | None = None  # of output_tokens, when the provider says (OpenAI's reasoning tokens)


@dataclass(frozen=True)
class Finished:
    stop_reason: str  # end_turn, max_tokens, stop_sequence, refusal, tool_use, ...
    usage: UsageUpdate | None = None  # final figures, when the provider gave them


StreamEvent = TextDelta | ThinkingDelta | ToolUse | UsageUpdate | Finished

ErrorKind = Literal[
    "rate_limited", "overloaded", "server_error", "timeout", "connection", "bad_request", "auth",
    "not_found", "stream_error", "refused_target",
]


class ProviderError(Exception):
    """A classified provider failure. The message is safe to store and show: never a key or prompt text."""

    def __init__(
        self, kind: ErrorKind, message: str, *, retryable: bool, retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


class Provider(Protocol):
    name: str

    def stream(self, request: ProviderRequest) -> AsyncIterator[StreamEvent]:
        """An async generator of events ending with exactly one Finished, or raising ProviderError.

        Closing the generator early (`aclose()`) must close the underlying HTTP stream at once, so that a
        cancelled run stops being billed.
        """
        ...
