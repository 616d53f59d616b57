"""The client: prompts by label with a local cache revalidated by ETag, rendering, runs and their streams.

Synchronous on purpose (most application code that fetches a prompt is), built on httpx; only the API's
public contract is used, so it works against any Prompt Playground server.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from backend.prompts.rendering import RenderedPrompt, render

TERMINAL = ("run.completed", "run.failed", "run.cancelled")


class PlaygroundError(Exception):
    """A problem+json answer: `status`, `type` (the last part of the problem type URI) and `detail`."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.type = str(problem.get("type", "")).rsplit("/", 1)[-1]
        self.detail = str(problem.get("detail") or problem.get("title") or "")
        self.problem = problem
        super().__init__(f"{status} {self.type}: {self.detail}")


@dataclass(frozen=True)
class PromptVersion:
    prompt_id: str
    number: int
    system: str
    messages: list[dict[str, Any]]
    model_config: dict[str, Any]
    variables: list[str]
    etag: str

    def render(self, values: Mapping[str, str]) -> RenderedPrompt:
        """The system prompt and messages with the values in (the server's own renderer and its rules)."""
        return render(self.system, self.messages, values)


@dataclass(frozen=True)
class Run:
    id: str
    status: str
    output: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    id: str
    name: str
    data: dict[str, Any]


@dataclass
class _Cached:
    version: PromptVersion
    checked_at: float


class Playground:
    """`Playground(base_url, api_key, workspace_id)`; use as a context manager or call close()."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        workspace_id: str,
        *,
        cache_seconds: float = 60.0,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(timeout, read=None),  # event streams may be quiet for a while
            transport=transport,
        )
        self.workspace = f"/workspaces/{workspace_id}"
        self.cache_seconds = cache_seconds
        self._cache: dict[tuple[str, str | None, int | None], _Cached] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Playground:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # Prompts

    def prompt(self, name: str, *, label: str | None = None, version: int | None = None) -> PromptVersion:
        """The version a label points at (or a number, or the latest). Served from the local cache for
        `cache_seconds`; after that revalidated with If-None-Match, so an unchanged version costs a 304."""
        key = (name, label, version)
        with self._lock:
            cached = self._cache.get(key)
        if cached and time.monotonic() - cached.checked_at < self.cache_seconds:
            return cached.version
        params: dict[str, Any] = {}
        if label is not None:
            params["label"] = label
        if version is not None:
            params["version"] = version
        headers = {"If-None-Match": cached.version.etag} if cached else {}
        response = self._http.get(
            f"{self.workspace}/prompts/by-name/{quote(name, safe='')}", params=params, headers=headers
        )
        if response.status_code == 304 and cached:
            fresh = cached.version
        else:
            body = self._json(response)
            fresh = PromptVersion(
                prompt_id=body["prompt_id"],
                number=body["number"],
                system=body["system"],
                messages=body["messages"],
                model_config=body["model_config"],
                variables=body["variables"],
                etag=response.headers["etag"],
            )
        with self._lock:
            self._cache[key] = _Cached(fresh, time.monotonic())
        return fresh

    # Runs

    def run(
        self,
        version: PromptVersion,
        variables: Mapping[str, str],
        *,
        overrides: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Run:
        """Starts a run of exactly this version (pinned by number, so a label moving meanwhile changes nothing)."""
        body = {"prompt_id": version.prompt_id, "version": version.number, "variables": dict(variables)}
        if overrides:
            body["overrides"] = dict(overrides)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        accepted = self._json(self._http.post(f"{self.workspace}/runs", json=body, headers=headers))
        return Run(id=accepted["id"], status=accepted["status"])

    def get_run(self, run_id: str) -> Run:
        data = self._json(self._http.get(f"{self.workspace}/runs/{run_id}"))
        return Run(id=data["id"], status=data["status"], output=data["output"], data=data)

    def cancel(self, run_id: str) -> None:
        self._json(self._http.post(f"{self.workspace}/runs/{run_id}/cancel"))

    def stream(self, run_id: str, *, max_reconnects: int = 5) -> Iterator[Event]:
        """The run's events to its terminal one, resuming with Last-Event-ID if the connection drops: no text
        is lost or repeated."""
        last_id: str | None = None
        for _ in range(max_reconnects + 1):
            headers = {"Accept": "text/event-stream"}
            if last_id:
                headers["Last-Event-ID"] = last_id
            try:
                with self._http.stream("GET", f"{self.workspace}/runs/{run_id}/events", headers=headers) as response:
                    if response.status_code != 200:
                        response.read()
                        self._json(response)
                    for event in _events(response.iter_lines()):
                        last_id = event.id
                        yield event
                        if event.name in TERMINAL:
                            return
            except httpx.TransportError:
                continue  # dropped: resume after the last event we had
        raise PlaygroundError(0, {"type": "stream-lost", "detail": f"the event stream of run {run_id} kept dropping"})

    def complete(self, version: PromptVersion, variables: Mapping[str, str], **options: Any) -> Run:
        """Runs and waits: the finished run (its text streamed meanwhile, checked against the stored output)."""
        run = self.run(version, variables, **options)
        text, final = "", None
        for event in self.stream(run.id):
            if event.name == "run.delta":
                text += event.data["text"]
            elif event.name in TERMINAL:
                final = event.data
        assert final is not None and final["output"] == text, "streamed text differs from the run's output"
        return Run(id=final["id"], status=final["status"], output=final["output"], data=final)

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"detail": response.text[:200]}
            raise PlaygroundError(response.status_code, problem)
        return response.json() if response.content else {}


def _events(lines: Iterator[str]) -> Iterator[Event]:
    fields: dict[str, str] = {}
    for line in lines:
        if not line:
            if "event" in fields:
                yield Event(fields.get("id", ""), fields["event"], json.loads(fields.get("data", "null")))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
