"""The `anthropic` provider: the Messages API streamed through the official SDK, errors classified for retry."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx2  # the transport of anthropic>=2 (not httpx: the SDK refuses httpx objects)

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

DEFAULT_BASE_URL = "https://api.anthropic.com"
SAMPLING_API_VERSION = "2023-06-01"  # the last API version that accepts sampling parameters
_DRAIN_GRACE = 1.0
_USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")

# Spans keep metadata for operators; prompt content never goes into them (it is encrypted at rest here),
# and trace headers are not propagated to a base_url a workspace may have chosen.
_TELEMETRY: Any = {"traces": {"content_mode": "metadata_only"}, "propagation": False}


class AnthropicProvider:
    """One shared connection pool; a cheap SDK client per request, since key and base_url vary by workspace."""

    name = "anthropic"

    def __init__(self, *, read_timeout: float = 60.0) -> None:
        self.timeout = httpx2.Timeout(connect=10.0, read=read_timeout, write=30.0, pool=10.0)
        # Without a shared client every SDK client builds its own pool and TLS context (~20 ms each).
        # Redirects stay off: following one would take the request, key included, past the base_url checks.
        self._http = httpx2.AsyncClient(
            timeout=self.timeout, follow_redirects=False,
            limits=httpx2.Limits(max_connections=1000, max_keepalive_connections=100),
        )

    def _client(self, request: ProviderRequest) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            api_key=request.api_key,
            # Explicit even for the default: left as None the SDK would read ANTHROPIC_BASE_URL.
            base_url=request.base_url or DEFAULT_BASE_URL,
            max_retries=0,  # stream_with_retries owns retries, so they stop once text has been shown
            timeout=self.timeout,
            http_client=self._http,
            open_telemetry=_TELEMETRY,
        )

    async def stream(self, request: ProviderRequest) -> AsyncIterator[StreamEvent]:
        if not request.api_key:
            # Given no key, the SDK falls back to ANTHROPIC_API_KEY, profiles and federation files: the
            # operator's credentials, possibly towards a workspace's base_url. Which key to use is decided
            # upstream, so a missing one is an error here.
            raise ProviderError("auth", "anthropic: no API key configured", retryable=False)

        params: dict[str, Any] = {
            "model": request.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
        }
        if request.system:
            params["system"] = request.system
        sampling = {
            name: value for name in ("temperature", "top_p", "top_k") if (value := getattr(request, name)) is not None
        }
        if sampling:
            # SDK 2.x has no sampling arguments and sends anthropic-version 2026-10-21, under which the API
            # refuses temperature/top_p/top_k at any value. A playground must honour them where the model
            # still allows them, so such a request goes out under the previous version, fields in extra_body.
            params["extra_body"] = sampling
            params["extra_headers"] = {"anthropic-version": SAMPLING_API_VERSION}
        if request.stop_sequences:
            params["stop_sequences"] = list(request.stop_sequences)
        if request.tools:
            params["tools"] = [
                {"name": t["name"], "description": t.get("description", ""), "input_schema": t["input_schema"]}
                for t in request.tools
            ]
            if request.tool_choice:
                params["tool_choice"] = dict(request.tool_choice)
        if request.thinking_budget:
            params["thinking"] = {"type": "enabled", "budget_tokens": request.thinking_budget}

        sdk_stream = None
        try:
            sdk_stream = await self._client(request).messages.create(**params, stream=True)
            usage: dict[str, int | None] = {}
            stop_reason: str | None = None
            calls: dict[int, tuple[str, str, list[str]]] = {}  # block index -> (id, name, partial JSON)
            async for event in sdk_stream:
                kind = event.type
                if kind == "content_block_delta":
                    delta = event.delta
                    if delta.type == "text_delta" and delta.text:
                        yield TextDelta(delta.text)
                    elif delta.type == "thinking_delta" and delta.thinking:
                        yield ThinkingDelta(delta.thinking)
                    elif delta.type == "input_json_delta" and event.index in calls:
                        calls[event.index][2].append(delta.partial_json)
                elif kind == "content_block_start":
                    block = event.content_block
                    if block.type == "tool_use":
                        calls[event.index] = (block.id, block.name, [])
                elif kind == "content_block_stop":
                    if event.index in calls:
                        yield _tool_use(*calls.pop(event.index))
                elif kind == "message_start":
                    usage = {field: getattr(event.message.usage, field, None) for field in _USAGE_FIELDS}
                    yield UsageUpdate(**usage)
                elif kind == "message_delta":
                    stop_reason = event.delta.stop_reason or stop_reason
                    # message_delta usage is cumulative; fields it leaves out keep their message_start value.
                    for field in _USAGE_FIELDS:
                        if isinstance(value := getattr(event.usage, field, None), int):
                            usage[field] = value
                    yield UsageUpdate(**usage)
                elif kind == "message_stop":
                    yield Finished(stop_reason or "end_turn", UsageUpdate(**usage) if usage else None)
                    await _drain(sdk_stream)
                    return
            if stop_reason is not None:
                # The body ended cleanly after message_delta but message_stop never surfaced: the SDK drops a
                # last event that lacks its closing blank line (the recorded fixtures end that way). Nothing
                # is missing, since message_stop carries no data.
                yield Finished(stop_reason, UsageUpdate(**usage) if usage else None)
                return
            # The body ended cleanly but the message never did: a proxy or the server cut it short.
            raise ProviderError("connection", "anthropic: stream ended before message_stop", retryable=True)
        except anthropic.APIStatusError as error:
            raise _classify_status(error) from None
        except anthropic.APITimeoutError:
            raise ProviderError("timeout", "anthropic: request timed out", retryable=True) from None
        except anthropic.APIConnectionError as error:
            raise _connection_error(error.__cause__) from None
        except httpx2.TransportError as error:
            # Failures while reading the body are not wrapped by the SDK; they arrive as raw httpx2 errors.
            raise _connection_error(error) from None
        except ValueError as error:  # malformed JSON in an event
            raise ProviderError("stream_error", f"anthropic: unreadable stream ({type(error).__name__})",
                                retryable=False) from None
        finally:
            if sdk_stream is not None:
                # Closing the response drops the half-read connection, so the server stops generating.
                await sdk_stream.close()

    async def aclose(self) -> None:
        await self._http.aclose()


def _tool_use(call_id: str, name: str, parts: list[str]) -> ToolUse:
    """A tool call whose input JSON has streamed in full (an empty input streams as nothing at all)."""
    raw = "".join(parts)
    try:
        arguments = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise ProviderError("stream_error", "anthropic: a tool call's input is not JSON", retryable=False) from None
    if not isinstance(arguments, dict):
        raise ProviderError("stream_error", "anthropic: a tool call's input is not an object", retryable=False)
    return ToolUse(call_id, name, arguments)


async def _drain(sdk_stream: anthropic.AsyncStream[Any]) -> None:
    """Read the few bytes after message_stop, so the connection goes back to the pool instead of being cut."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(_DRAIN_GRACE):
            async for _ in sdk_stream:
                pass


def _connection_error(error: BaseException | None) -> ProviderError:
    if isinstance(error, httpx2.TimeoutException):
        return ProviderError("timeout", "anthropic: request timed out", retryable=True)
    detail = type(error).__name__ if error is not None else "unknown"
    return ProviderError("connection", f"anthropic: connection failed ({detail})", retryable=True)


def _classify_status(error: anthropic.APIStatusError) -> ProviderError:
    """Only status, error type and request id go into the message: the API's own text can quote the request."""
    status = error.status_code
    error_type = error.type or "unknown_error"
    request_id = f", request {error.request_id}" if error.request_id else ""
    message = f"anthropic: {error_type} (HTTP {status}{request_id})"
    if status == 200:
        # An `event: error` after the 200 response began. The SDK (2.x) raises it as an APIStatusError that
        # keeps the stream's status 200 and carries the event's error type; never retried, text may be shown.
        return ProviderError("stream_error", f"anthropic: {error_type} in the stream{request_id}",
                             retryable=False, status=status)
    if status == 429:
        return ProviderError("rate_limited", message, retryable=True, status=status,
                             retry_after=parse_retry_after(error.response.headers))
    if status == 529:
        return ProviderError("overloaded", message, retryable=True, status=status,
                             retry_after=parse_retry_after(error.response.headers))
    if status == 408:
        return ProviderError("timeout", message, retryable=True, status=status)
    if status in (401, 403):
        return ProviderError("auth", message, retryable=False, status=status)
    if status == 404:
        return ProviderError("not_found", message, retryable=False, status=status)
    if status >= 500 or status == 409:  # 409 is retried by the SDK's own policy as well
        return ProviderError("server_error", message, retryable=True, status=status,
                             retry_after=parse_retry_after(error.response.headers))
    return ProviderError("bad_request", message, retryable=False, status=status)
