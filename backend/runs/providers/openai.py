"""The `openai` provider: streamed chat completions over plain httpx, for OpenAI and compatible servers."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx

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
from backend.runs.providers.retry import parse_retry_after

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_DRAIN_GRACE = 1.0
_ERROR_BODY_LIMIT = 64 * 1024

FINISH_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "content_filter": "refusal",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
}


def _is_openai_itself(base_url: str | None) -> bool:
    return base_url is None or urlsplit(base_url).hostname == "api.openai.com"


def build_body(request: ProviderRequest) -> dict[str, Any]:
    """The chat completions request body.

    OpenAI itself wants `max_completion_tokens` (its reasoning models refuse `max_tokens`), while vLLM,
    Ollama, llama.cpp and most other compatible servers only know `max_tokens`, so the name follows the host.
    top_k has no OpenAI equivalent and is not sent.
    """
    messages: list[dict[str, Any]] = [{"role": "system", "content": request.system}] if request.system else []
    for message in request.messages:
        messages += _chat_messages(message)
    body: dict[str, Any] = {
        "model": request.model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    limit_name = "max_completion_tokens" if _is_openai_itself(request.base_url) else "max_tokens"
    body[limit_name] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop_sequences:
        body["stop"] = list(request.stop_sequences)
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t["name"],
                    "description": t.get("description", ""),
                    "parameters": t["input_schema"],
                },
            }
            for t in request.tools
        ]
        if request.tool_choice:
            body["tool_choice"] = _tool_choice(request.tool_choice)
    if request.output_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": request.output_schema, "strict": False},
        }
    return body


def _tool_choice(choice: dict[str, Any]) -> Any:
    kind = choice["type"]
    if kind == "tool":
        return {"type": "function", "function": {"name": choice["name"]}}
    return {"auto": "auto", "any": "required", "none": "none"}[kind]


def _chat_messages(message: dict[str, Any]) -> list[dict[str, Any]]:
    """One of our messages in chat completions terms: text and images as content parts, an assistant's tool
    calls as tool_calls, and each tool result as a message of its own with role "tool"."""
    content = message["content"]
    if isinstance(content, str):
        return [{"role": message["role"], "content": content}]
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for block in content:
        kind = block["type"]
        if kind == "text":
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image":
            source = block["source"]
            url = f"data:{source['media_type']};base64,{source['data']}"
            parts.append({"type": "image_url", "image_url": {"url": url}})
        elif kind == "tool_use":
            arguments = json.dumps(block["input"], ensure_ascii=False)
            function = {"name": block["name"], "arguments": arguments}
            calls.append({"id": block["id"], "type": "function", "function": function})
        elif kind == "tool_result":
            results.append({"role": "tool", "tool_call_id": block["tool_use_id"], "content": block["content"]})
    out = list(results)  # tool results answer the previous assistant message, so they come first
    if parts or calls:
        entry: dict[str, Any] = {"role": message["role"], "content": parts or None}
        if calls:
            entry["tool_calls"] = calls
        out.append(entry)
    return out


class OpenAIProvider:
    """One httpx client (one connection pool) per provider instance, closed by `aclose()`."""

    name = "openai"

    def __init__(self, *, read_timeout: float = 60.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        # Redirects stay off (httpx's default, kept on purpose): following one would carry the
        # Authorization header past the checks made on the workspace's base_url.
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=10.0, read=read_timeout, write=30.0, pool=10.0),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
            transport=transport,
        )

    async def stream(self, request: ProviderRequest) -> AsyncIterator[StreamEvent]:
        url = (request.base_url or DEFAULT_BASE_URL).rstrip("/") + "/chat/completions"
        # Compatible local servers often need no key; OpenAI itself answers 401, classified below.
        headers = {"Authorization": f"Bearer {request.api_key}"} if request.api_key else {}
        http_request = self._http.build_request("POST", url, json=build_body(request), headers=headers)
        response: httpx.Response | None = None
        payloads: AsyncGenerator[str, None] | None = None
        try:
            response = await self._http.send(http_request, stream=True)
            if response.status_code != 200:
                raise await _status_error(response)
            finish_reason: str | None = None
            usage: UsageUpdate | None = None
            calls: dict[int, list[Any]] = {}  # tool call index -> [id, name, argument pieces]
            payloads = _sse_data(response)
            async for payload in payloads:
                if payload == "[DONE]":
                    for call in _finished_calls(calls):
                        yield call
                    yield Finished(FINISH_REASONS.get(finish_reason or "stop", finish_reason or "end_turn"), usage)
                    await _drain(payloads)
                    return
                chunk = json.loads(payload)
                if "error" in chunk:
                    # Some servers (OpenAI included) report a failure inside a 200 stream as a data chunk.
                    raise _stream_error(chunk["error"])
                for choice in chunk.get("choices") or []:
                    if choice.get("index", 0) != 0:
                        continue
                    delta = choice.get("delta") or {}
                    if content := delta.get("content"):
                        yield TextDelta(content)
                    if reasoning := delta.get("reasoning_content") or delta.get("reasoning"):
                        yield ThinkingDelta(reasoning)  # what vLLM, Ollama and others stream for thinking models
                    for piece in delta.get("tool_calls") or []:
                        call = calls.setdefault(piece.get("index", 0), [None, None, []])
                        function = piece.get("function") or {}
                        call[0] = piece.get("id") or call[0]
                        call[1] = function.get("name") or call[1]
                        call[2].append(function.get("arguments") or "")
                    finish_reason = choice.get("finish_reason") or finish_reason
                    if choice.get("finish_reason"):
                        for call in _finished_calls(calls):
                            yield call
                if chunk.get("usage"):
                    usage = _usage(chunk["usage"])
                    yield usage
            if finish_reason is not None:
                # Ended cleanly after a finish_reason but without [DONE]: some compatible servers stop here.
                for call in _finished_calls(calls):
                    yield call
                yield Finished(FINISH_REASONS.get(finish_reason, finish_reason), usage)
                return
            raise ProviderError("connection", "openai: stream ended before it finished", retryable=True)
        except httpx.TimeoutException:
            raise ProviderError("timeout", "openai: request timed out", retryable=True) from None
        except httpx.TransportError as error:
            raise ProviderError("connection", f"openai: connection failed ({type(error).__name__})",
                                retryable=True) from None
        except (ValueError, TypeError, AttributeError) as error:  # not JSON, or JSON of the wrong shape
            raise ProviderError("stream_error", f"openai: unreadable stream ({type(error).__name__})",
                                retryable=False) from None
        finally:
            if payloads is not None:
                await payloads.aclose()
            if response is not None:
                # Closing a half-read response drops its connection: the server sees the client go away.
                await response.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()


async def _sse_data(response: httpx.Response) -> AsyncGenerator[str, None]:
    """The data of each server-sent event; multi-line data is joined with newlines as the SSE spec says."""
    data: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)
        # Comments (":"), event names and ids carry nothing this protocol uses.
    if data:
        yield "\n".join(data)


async def _drain(payloads: AsyncIterator[str]) -> None:
    """Read what follows [DONE], so the connection goes back to the pool instead of being cut."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(_DRAIN_GRACE):
            async for _ in payloads:
                pass


def _finished_calls(calls: dict[int, list[Any]]) -> list[ToolUse]:
    """The tool calls streamed so far, whole (their arguments JSON complete), in index order; then forgotten."""
    done = []
    for index in sorted(calls):
        call_id, name, pieces = calls[index]
        raw = "".join(pieces)
        try:
            arguments = json.loads(raw) if raw.strip() else {}
        except ValueError:
            message = "openai: a tool call's arguments are not JSON"
            raise ProviderError("stream_error", message, retryable=False) from None
        if not isinstance(arguments, dict) or not name:
            message = "openai: a tool call without a name or object arguments"
            raise ProviderError("stream_error", message, retryable=False)
        done.append(ToolUse(call_id or f"call_{index}", name, arguments))
    calls.clear()
    return done


def _usage(raw: dict[str, Any]) -> UsageUpdate:
    cached = (raw.get("prompt_tokens_details") or {}).get("cached_tokens")
    reasoning = (raw.get("completion_tokens_details") or {}).get("reasoning_tokens")
    return UsageUpdate(
        input_tokens=raw.get("prompt_tokens"),
        output_tokens=raw.get("completion_tokens"),
        cache_read_input_tokens=cached,
        thinking_tokens=reasoning or None,
    )


def _error_label(error: Any) -> str:
    """The error's code or type only: its message may quote the request."""
    if isinstance(error, dict):
        label = error.get("code") or error.get("type")
        if isinstance(label, str | int):
            return str(label)
    return "unknown_error"


def _stream_error(error: Any) -> ProviderError:
    return ProviderError("stream_error", f"openai: {_error_label(error)} in the stream", retryable=False, status=200)


async def _status_error(response: httpx.Response) -> ProviderError:
    status = response.status_code
    body = b""
    with contextlib.suppress(httpx.HTTPError):
        async for piece in response.aiter_bytes():
            body += piece
            if len(body) > _ERROR_BODY_LIMIT:
                break
    try:
        label = _error_label(json.loads(body).get("error"))
    except (ValueError, AttributeError):
        label = "unknown_error"
    message = f"openai: {label} (HTTP {status})"
    retry_after = parse_retry_after(response.headers)
    if status == 429:
        return ProviderError("rate_limited", message, retryable=True, status=status, retry_after=retry_after)
    if status == 408:
        return ProviderError("timeout", message, retryable=True, status=status)
    if status in (401, 403):
        return ProviderError("auth", message, retryable=False, status=status)
    if status == 404:
        return ProviderError("not_found", message, retryable=False, status=status)
    if status == 529:
        return ProviderError("overloaded", message, retryable=True, status=status, retry_after=retry_after)
    if status >= 500 or status == 409:
        return ProviderError("server_error", message, retryable=True, status=status, retry_after=retry_after)
    return ProviderError("bad_request", message, retryable=False, status=status)
