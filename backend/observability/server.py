"""The worker's own /metrics endpoint: a tiny ASGI app on its metrics port, in the worker's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import uvicorn

from backend.observability import metrics


def metrics_app(token: str | None) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if scope["path"] == "/healthz":
            # Liveness: the answer comes from the worker's own event loop, so a stuck loop fails it. No token.
            status, body, content_type = 200, b'{"status":"ok"}', "application/json"
        elif scope["path"] != "/metrics":
            status, body, content_type = 404, b"not found\n", "text/plain"
        elif not metrics.authorized(token, headers.get("authorization")):
            status, body, content_type = 401, b"metrics need the bearer token\n", "text/plain"
        else:
            status = 200
            body, content_type = metrics.exposition()
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type.encode())]}
        )
        await send({"type": "http.response.body", "body": body})

    return app


class MetricsServer:
    def __init__(self, host: str, port: int, token: str | None) -> None:
        config = uvicorn.Config(
            metrics_app(token), host=host, port=port, log_level="warning", lifespan="off", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(), name="worker-metrics")

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)
