"""The built-in `mock` provider: deterministic, offline echo of the final user message (contract in API.md)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator

from backend.runs.providers.base import (
    Finished,
    ProviderError,
    ProviderRequest,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolUse,
    UsageUpdate,
)

MOCK_MODEL = "mock-1"
MOCK_MAX_TOKENS = 100_000


def _text_of(content: object) -> str:
    """A message's text: the string, or its text blocks and tool results (images carry no words)."""
    if isinstance(content, list):
        parts = []
        for block in content:
            if block.get("type") == "text":
                parts.append(block["text"])
            elif block.get("type") == "tool_result":
                parts.append(str(block.get("content") or ""))
        return " ".join(parts)
    return str(content or "")


def _final_user_text(messages: list[dict]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def count_input_tokens(request: ProviderRequest) -> int:
    """Whitespace-separated words of the system prompt and every message, the mock's input token count."""
    return len(request.system.split()) + sum(len(_text_of(m.get("content")).split()) for m in request.messages)


def _calls_a_tool(request: ProviderRequest, final: str) -> str | None:
    """The tool the mock calls, if any: the named one for tool_choice "tool", the first for "any", and the
    first when the message says MOCK_TOOL (unless tool_choice is "none")."""
    if not request.tools:
        return None
    choice = (request.tool_choice or {}).get("type", "auto")
    if choice == "tool":
        return str(request.tool_choice["name"])  # type: ignore[index]
    if choice == "any" or (choice == "auto" and "MOCK_TOOL" in final):
        return str(request.tools[0]["name"])
    return None


def _tool_input(tool: dict, words: list[str]) -> dict:
    """The words, under the tool's first declared property (or "input")."""
    properties = tool.get("input_schema", {}).get("properties") or {}
    return {next(iter(properties), "input"): " ".join(words)}


def _json_tokens(words: list[str]) -> list[str]:
    """Structured output: {"answer": "<the words>"} as JSON, cut into one token per word."""
    document = json.dumps({"answer": " ".join(words)}, ensure_ascii=False)
    pieces = document.split(" ")
    return [piece + " " for piece in pieces[:-1]] + [pieces[-1]]


class MockProvider:
    """Echoes the words of the final user message, one token per word, with scripted faults.

    Faults are checked in this order: MOCK_FAIL_EARLY, MOCK_REFUSE, MOCK_FAIL_MID. An early failure yields
    nothing at all (like an HTTP 529, it bills nothing); every other outcome starts with the input usage.
    """

    name = "mock"

    def __init__(self, ttft_ms: int, token_ms: int) -> None:
        self.ttft = max(ttft_ms, 0) / 1000
        self.token_interval = max(token_ms, 0) / 1000

    async def stream(self, request: ProviderRequest) -> AsyncIterator[StreamEvent]:
        if request.model != MOCK_MODEL:
            raise ProviderError("not_found", f"unknown mock model {request.model!r}", retryable=False, status=404)
        if not 0 <= request.max_tokens <= MOCK_MAX_TOKENS:
            raise ProviderError("bad_request", f"max_tokens must be at most {MOCK_MAX_TOKENS}", retryable=False)

        final = _final_user_text(request.messages)
        words = final.split()
        input_tokens = count_input_tokens(request)

        if "MOCK_FAIL_EARLY" in final:
            await asyncio.sleep(self.ttft)
            raise ProviderError("overloaded", "mock: overloaded (scripted)", retryable=True, status=529)

        yield UsageUpdate(input_tokens=input_tokens, output_tokens=0)
        await asyncio.sleep(self.ttft)

        if "MOCK_REFUSE" in final:
            yield Finished("refusal", UsageUpdate(input_tokens=input_tokens, output_tokens=0))
            return

        # Extended thinking first: the words in reverse order, one token each, within the budget. Thinking
        # tokens are output tokens (billed as such), as with Anthropic's models.
        thought = 0
        if request.thinking_budget:
            for word in list(reversed(words))[: min(request.thinking_budget, request.max_tokens)]:
                if thought:
                    await asyncio.sleep(self.token_interval)
                thought += 1
                yield ThinkingDelta(word + " ")

        def usage(output: int) -> UsageUpdate:
            thinking = thought if request.thinking_budget else None
            return UsageUpdate(input_tokens=input_tokens, output_tokens=thought + output, thinking_tokens=thinking)

        tool = _calls_a_tool(request, final)
        if tool is not None:
            await asyncio.sleep(self.token_interval if thought else 0)
            definition = next(t for t in request.tools if t["name"] == tool)
            call_id = "toolu_mock_" + hashlib.sha256(final.encode()).hexdigest()[:12]
            yield ToolUse(call_id, tool, _tool_input(definition, words))
            yield Finished("tool_use", usage(len(words)))
            return

        tokens = _json_tokens(words) if request.output_schema is not None else [word + " " for word in words]
        budget = request.max_tokens - thought
        # A scripted mid-stream failure wins a tie with max_tokens: it only loses when the limit comes first.
        fail_at = len(tokens) // 2 if "MOCK_FAIL_MID" in final else None
        for index, token in enumerate(tokens):
            if index == budget and index != fail_at:
                yield Finished("max_tokens", usage(index))
                return
            if index or thought:
                # sleep(0) still yields to the loop, so a cancel lands between tokens even at full speed.
                await asyncio.sleep(self.token_interval)
            if index == fail_at:
                raise ProviderError("stream_error", "mock: stream failed mid-way (scripted)", retryable=False)
            yield TextDelta(token)
        yield Finished("end_turn", usage(len(tokens)))

    async def aclose(self) -> None:
        """Nothing to release; present so every provider can be closed the same way."""
