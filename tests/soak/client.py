"""An HTTP client for the fault-injection test and the soak: a signed-in user that talks to several api
processes, retries what may be retried (a POST only with its Idempotency-Key), and follows a run's events
across dropped connections and dead apis with Last-Event-ID, recording everything it saw."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.runs_helpers import sse_events

TERMINAL = {"succeeded", "failed", "cancelled"}
TERMINAL_EVENTS = {"run.completed", "run.failed", "run.cancelled"}
WANT_EVENT = {"succeeded": "run.completed", "failed": "run.failed", "cancelled": "run.cancelled"}
RETRYABLE_STATUS = {500, 502, 503, 504}


@dataclass
class Reading:
    """What one reader of a run saw over all its connections."""

    events: list[dict[str, Any]] = field(default_factory=list)
    connections: int = 0
    last_id: str | None = None
    finished: bool = False

    @property
    def text(self) -> str:
        return "".join(e["data"]["text"] for e in self.events if e["event"] == "run.delta")

    def problems(self, final: dict[str, Any]) -> list[str]:
        """What breaks the stream contract (API.md, runs.md): the deltas concatenate to exactly the final
        output, exactly one terminal event (the last, matching the final status), ids never go backwards and
        each id's offset is the number of output characters the reader has after that event."""
        found = []
        if self.text != final["output"]:
            found.append(
                f"streamed {len(self.text)} chars != stored {len(final['output'] or '')}: "
                f"{self.text[-60:]!r} vs {(final['output'] or '')[-60:]!r}"
            )
        ends = [e["event"] for e in self.events if e["event"] in TERMINAL_EVENTS]
        if ends != [WANT_EVENT[final["status"]]]:
            found.append(f"terminal events {ends} for status {final['status']}")
        elif self.events[-1]["event"] != ends[0]:
            found.append("events after the terminal event")
        positions = [tuple(int(p) for p in e["id"].split("-")) for e in self.events]
        if positions != sorted(positions):
            found.append("event ids went backwards")
        offset = 0
        for event in self.events:
            if event["event"] == "run.delta":
                offset += len(event["data"]["text"])
            if int(event["id"].split("-")[1]) != offset:
                found.append(f"id {event['id']} after {offset} chars")
                break
        return found


class User:
    """A signed-in user (cookie + CSRF) with one httpx client per api process."""

    def __init__(self, bases: list[str], *, read_timeout: float = 30) -> None:
        self.bases = bases
        self.clients: list[httpx.AsyncClient] = []
        self.cookies: dict[str, str] = {}
        self._turn = itertools.count()
        self.read_timeout = read_timeout
        self.retries = 0  # requests sent again after a transport error or a 5xx

    async def sign_up(self, email: str) -> None:
        async with httpx.AsyncClient(base_url=f"{self.bases[0]}/api/v1", timeout=60) as web:
            signed = await web.post("/auth/signup", json={"email": email, "password": "long enough 1", "name": "L"})
            assert signed.status_code == 201, signed.text
            self.cookies = dict(web.cookies)
        headers = {"X-CSRF-Token": self.cookies["csrf_token"]}
        self.clients = [
            httpx.AsyncClient(
                base_url=f"{base}/api/v1",
                cookies=self.cookies,
                headers=headers,
                timeout=httpx.Timeout(30, read=self.read_timeout),
                limits=httpx.Limits(max_connections=400, max_keepalive_connections=100),
            )
            for base in self.bases
        ]

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()

    def client(self, index: int | None = None) -> httpx.AsyncClient:
        return self.clients[next(self._turn) % len(self.clients) if index is None else index % len(self.clients)]

    async def call(
        self,
        method: str,
        path: str,
        *,
        expect: set[int] | None = None,
        retry: bool = True,
        attempts: int = 40,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request, sent again (to the next api) after a transport error or a 5xx while `retry` (safe
        methods, or a POST carrying an Idempotency-Key), for up to `attempts` tries about 0.25 s apart."""
        last: httpx.Response | Exception | None = None
        for attempt in range(attempts if retry else 1):
            if attempt:
                self.retries += 1
                await asyncio.sleep(0.25)
            try:
                response = await self.client().request(method, path, **kwargs)
            except (httpx.TransportError, httpx.RemoteProtocolError) as exc:
                last = exc
                continue
            if response.status_code in RETRYABLE_STATUS and retry:
                last = response
                continue
            if expect is not None:
                assert response.status_code in expect, (method, path, response.status_code, response.text[:500])
            return response
        if isinstance(last, httpx.Response):
            if expect is not None:
                raise AssertionError((method, path, last.status_code, last.text[:500]))
            return last
        raise AssertionError(f"{method} {path}: no answer after {attempts if retry else 1} tries: {last!r}")

    async def post_run(self, ws: str, body: dict[str, Any]) -> httpx.Response:
        """POST /runs with an Idempotency-Key, retried with the same key after a lost answer."""
        key = str(uuid.uuid4())
        return await self.call("POST", f"/workspaces/{ws}/runs", json=body, headers={"Idempotency-Key": key})

    async def read_run(
        self,
        ws: str,
        run_id: str,
        *,
        timeout: float,
        reading: Reading | None = None,
        stop_after_deltas: int | None = None,
        start_api: int = 0,
    ) -> Reading:
        """Follows the run's events to its terminal event, reconnecting (to the next api) with Last-Event-ID
        after a drop, an error answer or an early end, until `timeout`."""
        reading = reading or Reading()
        deadline = time.monotonic() + timeout
        api = start_api
        got = 0
        while time.monotonic() < deadline:
            reading.connections += 1
            headers = {"Last-Event-ID": reading.last_id} if reading.last_id else {}
            client = self.client(api)
            api += 1
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    async with client.stream(
                        "GET", f"/workspaces/{ws}/runs/{run_id}/events", headers=headers
                    ) as response:
                        if response.status_code != 200:
                            await response.aread()
                            assert response.status_code in RETRYABLE_STATUS, (response.status_code, response.text)
                            await asyncio.sleep(0.25)
                            continue
                        async for event in sse_events(response):
                            reading.events.append(event)
                            reading.last_id = event["id"]
                            if event["event"] in TERMINAL_EVENTS:
                                reading.finished = True
                                return reading
                            if event["event"] == "run.delta":
                                got += 1
                                if stop_after_deltas is not None and got >= stop_after_deltas:
                                    return reading
            except TimeoutError:
                break
            except (httpx.TransportError, httpx.RemoteProtocolError):
                pass
            await asyncio.sleep(0.1)
        return reading


async def wait_terminal(user: User, ws: str, run_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Every run's final object, polling until all are terminal; fails naming the ones that are not."""
    deadline = time.monotonic() + timeout
    final: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        pending = [r for r in run_ids if r not in final]
        if not pending:
            return final
        for start in range(0, len(pending), 50):
            chunk = pending[start : start + 50]
            bodies = await asyncio.gather(
                *(user.call("GET", f"/workspaces/{ws}/runs/{r}", expect={200}) for r in chunk)
            )
            for run_id, response in zip(chunk, bodies, strict=True):
                if response.json()["status"] in TERMINAL:
                    final[run_id] = response.json()
        await asyncio.sleep(0.5)
    stuck = [r for r in run_ids if r not in final]
    raise AssertionError(f"{len(stuck)} accepted runs not terminal after {timeout}s: {stuck[:10]}")
