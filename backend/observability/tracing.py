"""Optional OpenTelemetry tracing: spans across api → queue → worker → provider, the trace context carried
through the run queue with each run.

Off unless configured: with `OTEL_EXPORTER_OTLP_ENDPOINT` set (the standard variable) and the SDK and the
OTLP exporter installed (`pip install 'prompt-playground[otel]'`), `configure()` exports spans there. Without
that every span is a no-op. Spans carry ids, provider and model, never content.
"""

from __future__ import annotations

import logging
import os

from opentelemetry import context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

logger = logging.getLogger(__name__)
tracer = trace.get_tracer("prompt-playground")
_propagator = TraceContextTextMapPropagator()


def configure(service_name: str) -> bool:
    """Installs an exporting tracer provider when the environment asks for one; answers whether it did."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry SDK or OTLP exporter is missing")
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True


def current_traceparent() -> str | None:
    """The W3C traceparent of the span in progress, to travel with a run through the queue."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def context_from(traceparent: str | None) -> context.Context | None:
    return _propagator.extract({"traceparent": traceparent}) if traceparent else None
