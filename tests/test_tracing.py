"""Tracing: the trace of the request that accepts a run continues in the worker (through the Redis queue)
down to the provider call; spans carry ids, provider and model, never content."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from backend.observability.tracing import context_from, current_traceparent, tracer
from tests.factories import create_workspace, signup
from tests.runs_helpers import RunningWorker
from tests.test_runs import wait_for

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # the first test to need one sets it; it stays for the process
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    return _EXPORTER


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"mock_ttft_ms": 2, "mock_token_ms": 1})


async def test_a_runs_trace_goes_from_the_request_through_the_queue_to_the_provider(client, app, spans):
    spans.clear()
    owner = await signup(client)
    ws = await create_workspace(owner)
    pid = (await client.post(f"/workspaces/{ws}/prompts", json={"name": "traced"})).json()["id"]
    body = {"messages": [{"role": "user", "content": "{{t}}"}],
            "model_config": {"provider": "mock", "model": "mock-1", "max_tokens": 16}}
    await client.post(f"/workspaces/{ws}/prompts/{pid}/versions", json=body)
    secret = "TRACE-CANARY words"
    accepted = await client.post(f"/workspaces/{ws}/runs", json={"prompt_id": pid, "variables": {"t": secret}})
    run_id = accepted.json()["id"]
    async with RunningWorker(app):
        await wait_for(client, ws, run_id)
    finished = {span.name: span for span in spans.get_finished_spans()}
    create, execute, provider = finished["run.create"], finished["run.execute"], finished["provider.stream"]
    assert execute.context.trace_id == create.context.trace_id == provider.context.trace_id
    assert execute.parent.span_id == create.context.span_id  # continued across the Redis queue
    assert provider.parent.span_id == execute.context.span_id
    assert execute.attributes["run.id"] == run_id and execute.attributes["model"] == "mock-1"
    assert all("CANARY" not in str(span.attributes) for span in spans.get_finished_spans())


def test_traceparent_round_trip(spans):
    with tracer.start_as_current_span("outer") as outer:
        carried = current_traceparent()
    assert carried is not None and carried.split("-")[1] == format(outer.get_span_context().trace_id, "032x")
    with tracer.start_as_current_span("inner", context=context_from(carried)) as inner:
        assert inner.get_span_context().trace_id == outer.get_span_context().trace_id
    assert context_from(None) is None
