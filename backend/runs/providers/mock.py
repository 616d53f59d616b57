"""The built-in `mock` provider: deterministic, offline echo of the final user message (contract in API.md)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from backend.runs.providers.base import Finished, ProviderError, ProviderRequest, StreamEvent, TextDelta, UsageUpdate

MOCK_MODEL = "mock-1"
MOCK_MAX_TOKENS = 100_000


def _final_user_text(messages: list[dict]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return str(message.get("content") or "")
    return ""


def count_input_tokens(request: ProviderRequest) -> int:
    """Whitespace-separated words of the system prompt and every message, the mock's input token count."""
    return len(request.system.split()) + sum(len(str(m.get("content") or "").split()) for m in request.messages)


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

        # A scripted mid-stream failure wins a tie with max_tokens: it only loses when the limit comes first.
        fail_at = len(words) // 2 if "MOCK_FAIL_MID" in final else None
        for index, word in enumerate(words):
            if index == request.max_tokens and index != fail_at:
                yield Finished("max_tokens", UsageUpdate(input_tokens=input_tokens, output_tokens=index))
                return
            if index:
                # sleep(0) still yields to the loop, so a cancel lands between tokens even at full speed.
                await asyncio.sleep(self.token_interval)
            if index == fail_at:
                raise ProviderError("stream_error", "mock: stream failed mid-way (scripted)", retryable=False)
            yield TextDelta(word + " ")
        yield Finished("end_turn", UsageUpdate(input_tokens=input_tokens, output_tokens=len(words)))

    async def aclose(self) -> None:
        """Nothing to release; present so every provider can be closed the same way."""
