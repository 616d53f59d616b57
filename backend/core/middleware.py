"""ASGI middleware: a hard cap on request bodies (413 as problem+json), enforced before the app reads; and
no NUL in the path or query string (400), which PostgreSQL could not compare with any text."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.core.errors import problem_response


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            # The server (h11/httptools) never delivers more than Content-Length, so the header is enough.
            if not declared.isdigit() or int(declared) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return

        # Chunked body: read it up to the cap before the app sees any of it, then replay it.
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            "Request body too large",
            f"The request body exceeds the limit of {self.max_bytes} bytes",
            "payload-too-large",
            instance=scope.get("path"),
            limit_bytes=self.max_bytes,
        )
        await response(scope, receive, send)


class RefuseNul:
    """A NUL in the path or the query string is a 400 before any route sees it: no stored name, id or label
    can hold one, and a path or query parameter reaching a query with it fails in PostgreSQL."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string") or b""
            if "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query:
                where = "query string" if "\x00" not in scope.get("path", "") else "path"
                response = problem_response(
                    400,
                    "Bad Request",
                    f"The request's {where} contains a NUL character (%00)",
                    "bad-request",
                    instance=scope.get("path", "").replace("\x00", "%00"),
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
