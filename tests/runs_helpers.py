"""Helpers for run tests: a prompt to run, a worker in the test's event loop, SSE parsing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from backend.runs.worker import Worker

MOCK_CONFIG = {"provider": "mock", "model": "mock-1", "max_tokens": 256}


async def make_prompt(client, ws: str, user_text: str = "Say {{words}}", system: str = "") -> dict[str, Any]:
    prompt = await client.post(f"/workspaces/{ws}/prompts", json={"name": f"p-{id(user_text)}-{user_text[:8]}"})
    assert prompt.status_code == 201, prompt.text
    body = {"system": system, "messages": [{"role": "user", "content": user_text}], "model_config": MOCK_CONFIG}
    version = await client.post(f"/workspaces/{ws}/prompts/{prompt.json()['id']}/versions", json=body)
    assert version.status_code == 201, version.text
    return prompt.json()


def parse_sse(text: str) -> list[dict[str, Any]]:
    events, current = [], {}
    for line in text.splitlines():
        if not line:
            if current:
                events.append(current)
                current = {}
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            current["data"] = json.loads(value)
        elif field in ("event", "id"):
            current[field] = value
    if current:
        events.append(current)
    return events


class RunningWorker:
    def __init__(self, app, **options: Any) -> None:
        self.worker = Worker(
            sessionmaker=app.state.sessionmaker,
            keyring=app.state.keyring,
            backends=app.state.run_backends,
            settings=app.state.settings,
            **options,
        )
        self.task: asyncio.Task | None = None

    async def __aenter__(self) -> Worker:
        self.task = asyncio.create_task(self.worker.run())
        return self.worker

    async def __aexit__(self, *exc: object) -> None:
        self.worker.stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, 30)


async def sse_events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Events of a live SSE response, one by one as each completes."""
    block: list[str] = []
    async for line in response.aiter_lines():
        if line:
            block.append(line)
            continue
        if block:
            parsed = parse_sse("\n".join(block))
            block = []
            if parsed:
                yield parsed[0]
