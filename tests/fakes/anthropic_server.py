"""A scripted fake of the Anthropic Messages API speaking its real streaming wire format, plus the harness
(shared with the OpenAI fake) that records each exchange and serves a fake on a loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn


class ClientGone(Exception):
    """The client closed the connection; the fake stops sending."""


class DropConnection(Exception):
    """Raised by a script to cut the connection mid-body: uvicorn closes the socket without finishing."""


@dataclass
class Exchange:
    """One request the fake received and what it sent back before the client left (read from the test)."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    client_port: int | None = None  # the same port on two exchanges means the connection was reused
    status: int | None = None
    tokens_sent: int = 0
    bytes_sent: int = 0
    last_sent_at: float | None = None  # time.monotonic()
    disconnected_at: float | None = None
    disconnected: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)


class Wire:
    """The response side of one exchange: counts what it sends and notices the client leaving at once."""

    def __init__(self, exchange: Exchange, receive: Any, send: Any) -> None:
        self.exchange = exchange
        self._send = send
        self._gone = asyncio.Event()
        self._completing = False
        self._watcher = asyncio.create_task(self._watch(receive))

    async def _watch(self, receive: Any) -> None:
        # With the body read, uvicorn's receive() returns only when the client goes (or we finish).
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if not self._completing:
                    self.exchange.disconnected_at = time.monotonic()
                    self.exchange.disconnected.set()
                    self._gone.set()
                return

    async def start(self, status: int, headers: dict[str, str]) -> None:
        self.exchange.status = status
        raw = [(k.encode(), v.encode()) for k, v in headers.items()]
        await self._send({"type": "http.response.start", "status": status, "headers": raw})

    async def write(self, data: bytes, *, tokens: int = 0) -> None:
        if self._gone.is_set():
            raise ClientGone
        await self._send({"type": "http.response.body", "body": data, "more_body": True})
        self.exchange.bytes_sent += len(data)
        self.exchange.tokens_sent += tokens
        self.exchange.last_sent_at = time.monotonic()

    async def finish(self, data: bytes = b"") -> None:
        self._completing = True
        await self._send({"type": "http.response.body", "body": data, "more_body": False})
        self.exchange.bytes_sent += len(data)

    async def pause(self, seconds: float) -> None:
        """Wait, but return early (raising ClientGone) the moment the client disconnects."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._gone.wait(), seconds)
        if self._gone.is_set():
            raise ClientGone

    async def hang(self) -> None:
        await self._gone.wait()
        raise ClientGone

    async def json_response(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        await self.start(status, {"content-type": "application/json", **headers})
        await self.finish(json.dumps(body).encode())

    async def close(self) -> None:
        self._watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._watcher


class ScriptedFake:
    """An ASGI app recording every exchange; subclasses answer from `self.script`, which tests replace."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self.base_url = ""
        self._ids = itertools.count(1)
        # Per-request scripting (chaos tests): when set, called with each exchange (in the server's thread) and
        # answers from the script it returns instead of `self.script`, e.g. a fault chosen by the prompt's text.
        self.pick: Callable[[Exchange], Any] | None = None

    def script_for(self, exchange: Exchange) -> Any:
        return self.pick(exchange) if self.pick is not None else self.script

    def reset(self, script: Any = None) -> None:
        """Forget earlier exchanges and answer from `script` (the subclass's default when None)."""
        self.exchanges.clear()
        self._ids = itertools.count(1)
        self.script = script or self.default_script()

    def default_script(self) -> Any:
        raise NotImplementedError

    @property
    def last(self) -> Exchange:
        return self.exchanges[-1]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"_raw": raw.decode(errors="replace")}
        client = scope.get("client")
        exchange = Exchange(path=scope["path"], headers=headers, body=body, client_port=client[1] if client else None)
        self.exchanges.append(exchange)
        wire = Wire(exchange, receive, send)
        try:
            await self.respond(len(self.exchanges), exchange, wire)
        except ClientGone:
            pass
        finally:
            await wire.close()
            exchange.done.set()

    async def respond(self, number: int, exchange: Exchange, wire: Wire) -> None:
        raise NotImplementedError

    def request_id(self) -> str:
        return f"req_fake{next(self._ids):06d}"


class _HideScriptedDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and record.exc_info[0] is DropConnection)


@contextlib.contextmanager
def run_fake(app: ScriptedFake) -> Iterator[str]:
    """Serve `app` with uvicorn on a free loopback port in a background thread; yields the base URL.

    uvicorn 0.54 has no install_signal_handlers switch any more: Server.capture_signals() leaves signals
    alone when it runs outside the main thread, which is what makes a thread safe here.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, http="h11", loop="asyncio", lifespan="off", log_config=None, access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    drops = _HideScriptedDrops()
    logging.getLogger("uvicorn.error").addFilter(drops)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="fake-provider", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake provider server did not start")
            time.sleep(0.01)
        app.base_url = f"http://127.0.0.1:{port}"
        yield app.base_url
    finally:
        server.should_exit = True
        server.force_exit = True  # a scripted hang must not hold the shutdown
        thread.join(10)
        sock.close()
        logging.getLogger("uvicorn.error").removeFilter(drops)


# --- the Anthropic Messages API -------------------------------------------------------------------------

ERRORS = {
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
    529: ("overloaded_error", "Overloaded"),
    500: ("api_error", "Internal server error"),
    401: ("authentication_error", "invalid x-api-key"),
    400: ("invalid_request_error", "messages: field required"),
    404: ("not_found_error", "model: not found"),
}


@dataclass
class AnthropicScript:
    """What the fake answers. Each word is one output token; the text is the words joined by spaces."""

    words: list[str] = field(default_factory=lambda: ["Hello", "from", "the", "fake"])
    input_tokens: int = 12
    cache_read_input_tokens: int | None = None
    stop_reason: str = "end_turn"
    first_token_delay: float = 0.0
    token_delay: float = 0.0
    fail_first: int = 0  # the first N requests answer with the HTTP error `failure`
    failure: int = 429
    retry_after: str | None = None
    error_after: int | None = None  # an in-stream `event: error` after N tokens, and nothing after it
    error_type: str = "overloaded_error"
    drop_after: int | None = None  # cut the connection after N tokens
    hang: bool = False  # message_start, then silence until the client leaves
    hang_after: int | None = None  # N tokens, then silence until the client leaves (a stall mid-stream)
    fail_now: bool = False  # this request answers with the HTTP error `failure` (with `pick`: per request)
    replay: bytes | None = None  # a recorded response body, sent verbatim
    thinking: list[str] = field(default_factory=list)  # a thinking block first: thinking_delta each, a signature
    tool_call: tuple[str, str, list[str]] | None = None  # (id, name, input JSON in pieces) after the text


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class FakeAnthropic(ScriptedFake):
    def __init__(self, script: AnthropicScript | None = None) -> None:
        super().__init__()
        self.script: AnthropicScript = script or AnthropicScript()

    def default_script(self) -> AnthropicScript:
        return AnthropicScript()

    async def respond(self, number: int, exchange: Exchange, wire: Wire) -> None:
        script = self.script_for(exchange)
        request_id = self.request_id()
        if exchange.path != "/v1/messages":
            error_type, message = ERRORS[404]
            await wire.json_response(404, _error(error_type, message), {"request-id": request_id})
            return
        if number <= script.fail_first or script.fail_now:
            error_type, message = ERRORS[script.failure]
            headers = {"request-id": request_id}
            if script.retry_after is not None:
                headers["retry-after"] = script.retry_after
            await wire.json_response(script.failure, _error(error_type, message), headers)
            return

        await wire.start(200, {
            "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache",
            "request-id": request_id,
        })
        if script.replay is not None:
            await wire.write(script.replay, tokens=script.replay.count(b"event: content_block_delta"))
            await wire.finish()
            return

        usage: dict[str, Any] = {"input_tokens": script.input_tokens, "output_tokens": 1}
        if script.cache_read_input_tokens is not None:
            usage |= {"cache_creation_input_tokens": 0, "cache_read_input_tokens": script.cache_read_input_tokens}
        await wire.write(sse("message_start", {"type": "message_start", "message": {
            "id": f"msg_fake{number:06d}", "type": "message", "role": "assistant", "content": [],
            "model": exchange.body.get("model"), "stop_reason": None, "stop_sequence": None, "usage": usage,
        }}))
        text_index = 0
        if script.thinking:
            await wire.write(sse("content_block_start", {
                "type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""},
            }))
            for piece in script.thinking:
                await wire.write(sse("content_block_delta", {
                    "type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": piece},
                }), tokens=1)
            await wire.write(sse("content_block_delta", {
                "type": "content_block_delta", "index": 0,
                "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMO"},
            }))
            await wire.write(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
            text_index = 1
        await wire.write(sse("content_block_start", {
            "type": "content_block_start", "index": text_index, "content_block": {"type": "text", "text": ""},
        }))
        await wire.write(b'event: ping\ndata: {"type": "ping"}\n\n')
        if script.hang:
            await wire.hang()

        for index, word in enumerate([*script.words, None]):
            if word is not None or index in (script.error_after, script.drop_after):
                await wire.pause(script.first_token_delay if index == 0 else script.token_delay)
            if index == script.error_after:
                await wire.write(sse("error", {
                    "type": "error", "error": {"details": None, "type": script.error_type, "message": "Overloaded"},
                }))
                await wire.finish()
                return
            if index == script.drop_after:
                raise DropConnection
            if index == script.hang_after:
                await wire.hang()
            if word is not None:
                text = word if index == 0 else " " + word
                await wire.write(sse("content_block_delta", {
                    "type": "content_block_delta", "index": text_index, "delta": {"type": "text_delta", "text": text},
                }), tokens=1)

        await wire.write(sse("content_block_stop", {"type": "content_block_stop", "index": text_index}))
        if script.tool_call is not None:
            call_id, name, pieces = script.tool_call
            index = text_index + 1
            await wire.write(sse("content_block_start", {
                "type": "content_block_start", "index": index,
                "content_block": {"type": "tool_use", "id": call_id, "name": name, "input": {}},
            }))
            for piece in pieces:
                await wire.write(sse("content_block_delta", {
                    "type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": piece},
                }))
            await wire.write(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        await wire.write(sse("message_delta", {
            "type": "message_delta", "delta": {"stop_reason": script.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": len(script.words)},
        }))
        await wire.finish(sse("message_stop", {"type": "message_stop"}))


def _error(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}
