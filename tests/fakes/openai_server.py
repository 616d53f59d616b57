"""A scripted fake of OpenAI's streaming chat completions (data: lines, a usage chunk, [DONE]), served and
recorded by the same harness as the Anthropic fake."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.anthropic_server import DropConnection, Exchange, ScriptedFake, Wire, run_fake

__all__ = ["FakeOpenAI", "OpenAIScript", "run_fake"]

ERRORS = {
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests"),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    400: ("invalid_request_error", None, "Invalid value for 'max_tokens'."),
}


@dataclass
class OpenAIScript:
    """What the fake answers. Each word is one completion token; the text is the words joined by spaces."""

    words: list[str] = field(default_factory=lambda: ["Hello", "from", "the", "fake"])
    prompt_tokens: int = 9
    cached_tokens: int = 0
    finish_reason: str = "stop"
    first_token_delay: float = 0.0
    token_delay: float = 0.0
    fail_first: int = 0  # the first N requests answer with the HTTP error `failure`
    failure: int = 429
    retry_after: str | None = None
    error_after: int | None = None  # a `data: {"error": ...}` chunk after N tokens, then the body ends
    drop_after: int | None = None  # cut the connection after N tokens
    hang: bool = False  # the role chunk, then silence until the client leaves
    hang_after: int | None = None  # N tokens, then silence until the client leaves (a stall mid-stream)
    fail_now: bool = False  # this request answers with the HTTP error `failure` (with `pick`: per request)
    send_usage: bool = True  # a server that ignores stream_options.include_usage sends none
    send_done: bool = True
    # Tool calls after the text, as OpenAI streams them: per call, a first chunk with index, id, type and name
    # (arguments ""), then the arguments JSON in pieces under the same index. finish_reason becomes tool_calls.
    tool_calls: list[tuple[str, str, list[str]]] = field(default_factory=list)
    reasoning_tokens: int = 0


def data(payload: dict[str, Any] | str) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


class FakeOpenAI(ScriptedFake):
    def __init__(self, script: OpenAIScript | None = None) -> None:
        super().__init__()
        self.script: OpenAIScript = script or OpenAIScript()

    def default_script(self) -> OpenAIScript:
        return OpenAIScript()

    async def respond(self, number: int, exchange: Exchange, wire: Wire) -> None:
        script = self.script_for(exchange)
        request_id = self.request_id()
        if exchange.path != "/v1/chat/completions":
            await wire.json_response(404, {"error": {"message": "Not found", "type": "invalid_request_error",
                                                     "param": None, "code": "unknown_url"}}, {})
            return
        if number <= script.fail_first or script.fail_now:
            error_type, code, message = ERRORS[script.failure]
            headers = {"x-request-id": request_id}
            if script.retry_after is not None:
                headers["retry-after"] = script.retry_after
            body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
            await wire.json_response(script.failure, body, headers)
            return

        await wire.start(200, {"content-type": "text/event-stream; charset=utf-8", "x-request-id": request_id})
        base = {
            "id": f"chatcmpl-fake{number:06d}", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": exchange.body.get("model"), "system_fingerprint": "fp_fake",
        }

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return data({**base, "choices": [choice], "usage": None})

        await wire.write(chunk({"role": "assistant", "content": "", "refusal": None}))
        if script.hang:
            await wire.hang()

        for index, word in enumerate([*script.words, None]):
            if word is not None or index in (script.error_after, script.drop_after):
                await wire.pause(script.first_token_delay if index == 0 else script.token_delay)
            if index == script.error_after:
                await wire.finish(data({"error": {"message": "The server had an error while streaming.",
                                                  "type": "server_error", "param": None, "code": None}}))
                return
            if index == script.drop_after:
                raise DropConnection
            if index == script.hang_after:
                await wire.hang()
            if word is not None:
                await wire.write(chunk({"content": word if index == 0 else " " + word}), tokens=1)

        for index, (call_id, name, pieces) in enumerate(script.tool_calls):
            first = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
            await wire.write(chunk({"tool_calls": [first]}))
            for piece in pieces:
                await wire.write(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
        finish = "tool_calls" if script.tool_calls else script.finish_reason
        await wire.write(chunk({}, finish))
        wants_usage = (exchange.body.get("stream_options") or {}).get("include_usage")
        if script.send_usage and wants_usage:
            usage = {
                "prompt_tokens": script.prompt_tokens, "completion_tokens": len(script.words),
                "total_tokens": script.prompt_tokens + len(script.words),
                "prompt_tokens_details": {"cached_tokens": script.cached_tokens, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": script.reasoning_tokens, "audio_tokens": 0},
            }
            await wire.write(data({**base, "choices": [], "usage": usage}))
        await wire.finish(data("[DONE]") if script.send_done else b"")
