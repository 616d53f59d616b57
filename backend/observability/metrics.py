"""Prometheus metrics of this process: runs, their latency, provider errors, refusals, streams, the queue.

One registry per process (the default one, with Python's own process metrics). The api serves it at
/metrics; a worker on its metrics port. Labels stay low-cardinality: provider, model, status, kind — never a
workspace, a user or a run.
"""

from __future__ import annotations

import asyncio
import hmac

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 20, 30, 60, 120, 300)

RUNS_CREATED = Counter("playground_runs_created", "Runs accepted by POST /runs (and reruns)", ["provider", "model"])
RUNS_FINISHED = Counter(
    "playground_runs_finished", "Runs that reached a terminal status", ["status", "provider", "model"]
)
TTFT = Histogram(
    "playground_run_ttft_seconds", "Time to first token, measured in the worker", ["provider", "model"],
    buckets=LATENCY_BUCKETS,
)
DURATION = Histogram(
    "playground_run_duration_seconds", "Run duration from claim to end, in the worker", ["provider", "model"],
    buckets=LATENCY_BUCKETS,
)
PROVIDER_ERRORS = Counter("playground_provider_errors", "Runs ended by a provider error", ["provider", "kind"])
REFUSALS = Counter(
    "playground_refusals", "Run requests refused before anything ran", ["reason"]
)  # budget, rate_limit, safety
SSE_STREAMS = Gauge("playground_sse_streams", "Run event streams open on this api process")
IN_FLIGHT = Gauge("playground_worker_runs_in_flight", "Runs this worker is streaming now")
QUEUE_DEPTH = Gauge("playground_queue_depth", "Runs handed to the queue and not yet claimed (consumer group lag)")
RUNS_WAITING = Gauge("playground_runs_waiting", "Queued runs waiting for their workspace's concurrency cap")
ASYNCIO_TASKS = Gauge("playground_asyncio_tasks", "asyncio tasks alive in this process's event loop (a leak grows it)")


def _asyncio_tasks() -> int:
    # Scrapes are answered inside the event loop (the api's route, the worker's metrics app on its loop).
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # no running loop in this thread
        return 0


ASYNCIO_TASKS.set_function(_asyncio_tasks)


def authorized(token: str | None, authorization: str | None) -> bool:
    """Metrics may be protected by a bearer token from the environment (PLAYGROUND_METRICS_TOKEN)."""
    if not token:
        return True
    return hmac.compare_digest((authorization or "").encode(), f"Bearer {token}".encode())


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
