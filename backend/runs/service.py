"""Runs, API side: validate, render and pin a run, hand it to the queue after commit; read, list, cancel,
rerun, delete. The worker side lives in worker.py."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.catalogue.service import config_problems, cost_micros, feature_problems, micros_to_usd
from backend.core.database import after_commit
from backend.core.errors import Conflict, Forbidden, Invalid, InvalidFields, NotFound, ProblemError, TooManyRequests
from backend.core.settings import Settings
from backend.crypto.service import Keyring
from backend.lifecycle import service as lifecycle
from backend.observability import tracing
from backend.prompts import service as prompts
from backend.ratelimit.limiter import Limiter
from backend.runs import repository as repo
from backend.runs.backends.factory import RunBackends
from backend.runs.events import TERMINAL_EVENT_FOR, RunEvent, seal_event
from backend.runs.models import TERMINAL, Run
from backend.runs.schemas import RunIn, RunOut
from backend.safety import service as safety
from backend.usage import service as usage
from backend.workspaces.service import Actor, WorkspaceAccess, provider_access, record_audit

EVENT_TTL_SECONDS = 600  # the live copy of a finished run's events; the database copy stays


class RunNotFound(NotFound):
    type, title = "run-not-found", "Run not found"


class RunFinished(Conflict):
    type, title = "run-finished", "The run has already finished"


class RunNotFinished(Conflict):
    type, title = "run-not-finished", "The run has not finished"


class ContentsExpired(Conflict):
    type, title = "contents-expired", "The run's contents were removed by the retention policy"


class IdempotencyMismatch(Conflict):
    type, title = "idempotency-key-reused", "Idempotency-Key reused with another request"


@dataclass(frozen=True)
class Prepared:
    version: Any
    snapshot: dict[str, Any]
    price: dict[str, str]


async def _prepare(
    session: AsyncSession, keyring: Keyring, settings: Settings, access: WorkspaceAccess, body: RunIn
) -> Prepared:
    """Validate and render, then build the snapshot: everything needed to re-issue the same request."""
    prompt = await prompts.get_prompt(session, access, body.prompt_id)
    if body.draft is not None:
        version, _ = await prompts.save_version(session, keyring, access, prompt, body.draft, "draft")
    else:
        number = body.version or prompt.version_count
        if not number:
            raise Invalid(["body", "version"], "this prompt has no versions yet; save one or send a draft")
        version = await prompts.version_of(session, prompt, number)

    config = {k: v for k, v in version.model_config.items()}
    config.update(body.overrides.model_dump(exclude_none=True))
    problems = config_problems(config, ["body", "overrides"])
    if problems:
        raise InvalidFields(problems)
    provider, model = config["provider"], config["model"]
    price = await usage.effective_price(session, access.workspace.id, provider, model)
    if price is None:
        # Never a silent $0: a model without a known price cannot run until an admin sets one.
        raise Invalid(
            ["body", "overrides", "model"],
            f"no price is known for {provider}/{model}; an admin can set a price override for this workspace",
        )
    content = await prompts.version_content(session, keyring, version)
    problems = feature_problems(config, content, content["messages"], ["body", "overrides"])
    if problems:
        raise InvalidFields(problems)
    if provider != "mock" and await provider_access(session, keyring, settings, access.workspace.id, provider) is None:
        raise Invalid(
            ["body", "overrides", "provider"],
            f"this workspace has no {provider} key; an admin can add one under the workspace's providers",
        )
    rendered = prompts.render_content(content, body.variables)
    snapshot = {
        "prompt_id": str(prompt.id),
        "version_id": str(version.id),
        "version": version.number,
        "variables": body.variables,
        "system": rendered.system,
        "messages": rendered.messages,
        "model_config": config,
        "tools": content["tools"],
        "tool_choice": content["tool_choice"],
        "output_schema": content["output_schema"],
        "provider": provider,
        "model": model,
        "price": price,
    }
    return Prepared(version=version, snapshot=snapshot, price=price)


def _request_hash(body: RunIn) -> bytes:
    canonical = json.dumps(body.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).digest()


async def create_run(
    session: AsyncSession,
    keyring: Keyring,
    settings: Settings,
    backends: RunBackends,
    limiter: Limiter,
    access: WorkspaceAccess,
    body: RunIn,
    *,
    idempotency_key: str | None,
) -> Run:
    """Validates (422), rate-limits (429), reserves the worst case (402) and inserts the run as queued; it
    reaches the queue only once the transaction commits, and only if its workspace is under its cap."""
    user_id = access.principal.user.id
    request_hash = _request_hash(body)
    if idempotency_key:
        existing = await repo.get_by_idempotency_key(session, access.workspace.id, user_id, idempotency_key)
        if existing is not None:
            return _same_request(existing, request_hash)
    prepared = await _prepare(session, keyring, settings, access, body)
    limits = await usage.limits_of(session, access.workspace.id)
    await usage.check_rates(limiter, limits, access.workspace.id, user_id)
    try:
        run = await _insert(session, keyring, backends, access, prepared, idempotency_key, request_hash, None, limits)
    except ProblemError:
        await usage.give_back_rates(limiter, access.workspace.id, user_id)  # a refused run started nothing
        raise
    if run is None:  # lost a race with the same Idempotency-Key
        existing = await repo.get_by_idempotency_key(session, access.workspace.id, user_id, idempotency_key or "")
        assert existing is not None
        return _same_request(existing, request_hash)
    return run


def _same_request(existing: Run, request_hash: bytes) -> Run:
    if existing.request_hash != request_hash:
        raise IdempotencyMismatch("This Idempotency-Key was used with a different request body")
    return existing


async def _insert(
    session: AsyncSession,
    keyring: Keyring,
    backends: RunBackends,
    access: WorkspaceAccess,
    prepared: Prepared,
    idempotency_key: str | None,
    request_hash: bytes | None,
    rerun_of: uuid.UUID | None,
    limits: usage.Limits,
) -> Run | None:
    snapshot = prepared.snapshot
    # The safety policy first: a blocked input creates nothing at all.
    policy = await safety.policy_of(session, access.workspace.id)
    findings = safety.scan_input(snapshot, policy)
    if blocked := safety.blocking(findings, policy):
        raise safety.SafetyBlocked(blocked)
    input_flags = [{"kind": f.finding.kind, "detector": f.finding.detector, "where": "input"} for f in findings]
    run = Run(
        id=uuid.uuid4(),
        workspace_id=access.workspace.id,
        prompt_id=uuid.UUID(snapshot["prompt_id"]),
        version_id=uuid.UUID(snapshot["version_id"]),
        version_number=snapshot["version"],
        status="queued",
        provider=snapshot["provider"],
        model=snapshot["model"],
        created_by=access.principal.user.id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        rerun_of=rerun_of,
        flags=input_flags,
        last_seq=first_worker_seq(input_flags) - 1,  # run.queued, then one run.flagged per input flag
    )
    await keyring.seal_field(session, run, "snapshot", json.dumps(snapshot, ensure_ascii=False))
    # Inserted before the workspace's dispatch lock is taken: the lock is held until the commit, so only the
    # decisions that need it (counts, dispatch, budget) run under it.
    if idempotency_key:
        try:
            async with session.begin_nested():  # a unique violation here means a concurrent twin won
                session.add(run)
                await session.flush()
        except IntegrityError:
            return None
    else:
        session.add(run)
        await session.flush()
    # Only a run its workspace has room for goes to the queue now; the rest wait here, oldest first.
    await repo.lock_dispatch(session, access.workspace.id)
    # Counted under the lock, so concurrent requests cannot all see the same count (this run is among the
    # queued ones, and not yet among the active ones).
    queued, active = await repo.count_queued_and_active(session, access.workspace.id)
    if queued - 1 >= limits.max_queued_runs:
        raise TooManyRequests(
            f"This workspace already has {limits.max_queued_runs} runs waiting (max_queued_runs)", retry_after=5
        )
    dispatch = active < limits.max_concurrent_runs
    worst = worst_case_micros(snapshot, prepared.price)
    # Last, so the budget row stays locked only for the commit: concurrent requests queue on it briefly.
    run.budget_month = await usage.reserve(session, limits, access.workspace.id, run.id, worst)
    run.reserved_micros = worst
    if dispatch:
        run.dispatched_at = func.now()
    await session.flush()  # one UPDATE; eager defaults fetch dispatched_at back with RETURNING
    if findings:
        stored = [(f.finding, f.field, f.excerpt) for f in findings]
        await safety.add_flags(session, keyring, run, "input", stored)
    events = [RunEvent(1, "run.queued", {"run_id": str(run.id)})]
    events += [RunEvent(2 + i, "run.flagged", flag) for i, flag in enumerate(input_flags)]
    sealed = [(str(run.id), await seal_event(session, keyring, run.workspace_id, run.id, e)) for e in events]
    traceparent = tracing.current_traceparent()  # the worker's spans continue this request's trace

    async def hand_off() -> None:
        await backends.events.append_many(sealed)
        if dispatch:
            await backends.queue.publish(str(run.id), traceparent)

    after_commit(session, hand_off)
    return run


def first_worker_seq(flags: list[dict[str, Any]]) -> int:
    """The seq of a run's first event after acceptance: run.queued is 1, then one run.flagged per input flag."""
    return 2 + sum(1 for flag in flags if flag.get("where") == "input")


async def estimate(
    session: AsyncSession, keyring: Keyring, settings: Settings, access: WorkspaceAccess, body: RunIn
) -> dict[str, Any]:
    """The worst case before anything runs: what acceptance would reserve against the budget."""
    prepared = await _prepare(session, keyring, settings, access, body)
    snapshot = prepared.snapshot
    input_tokens = worst_case_input_tokens(snapshot)
    max_output = snapshot["model_config"]["max_tokens"]
    worst = worst_case_micros(snapshot, prepared.price)
    if body.draft is not None:
        # An estimate saves nothing: undo the draft version save_version may have made.
        await session.rollback()
    return {"input_tokens": input_tokens, "max_output_tokens": max_output, "max_cost_usd": micros_to_usd(worst)}


async def preview_snapshot(
    session: AsyncSession, keyring: Keyring, settings: Settings, access: WorkspaceAccess, body: RunIn
) -> dict[str, Any]:
    """The snapshot a run of this body would pin, without running (or saving) anything."""
    prepared = await _prepare(session, keyring, settings, access, body)
    if body.draft is not None:
        await session.rollback()  # nothing is saved: undo the draft version save_version may have made
    return prepared.snapshot


# The most input tokens one image can be billed as. Anthropic resizes images to about 1.15 megapixels
# (about 1,600 tokens); OpenAI's tile-priced models count up to about 48,000 (gpt-4o-mini at high detail:
# 2,833 plus 5,667 per 512-pixel tile, at most 8 tiles), so any other provider is given that bound.
WORST_CASE_IMAGE_TOKENS = {"anthropic": 5_000}
WORST_CASE_IMAGE_TOKENS_OTHERS = 50_000


def _message_texts(content: Any, *, mock: bool) -> list[str]:
    """The text a message's content gives the model: the string, or its text blocks and tool results (and,
    except for the mock, which ignores them, each tool call's name and input as JSON)."""
    if isinstance(content, str):
        return [content]
    texts = []
    for block in content:
        if block.get("type") == "text":
            texts.append(block["text"])
        elif block.get("type") == "tool_result":
            texts.append(str(block.get("content") or ""))
        elif block.get("type") == "tool_use" and not mock:
            texts.append(block.get("name", "") + json.dumps(block.get("input") or {}, ensure_ascii=False))
    return texts


def worst_case_input_tokens(snapshot: dict[str, Any]) -> int:
    """Input tokens, never under-counted: exact for the mock; otherwise at most one token per UTF-8 byte
    (a token always covers at least one byte) of every text, tool definition and output schema, a bound
    per image, plus a few per message for the provider's framing."""
    mock = snapshot["provider"] == "mock"
    texts = [snapshot["system"], *(t for m in snapshot["messages"] for t in _message_texts(m["content"], mock=mock))]
    if mock:
        return sum(len(t.split()) for t in texts)
    extras = [json.dumps(snapshot[k], ensure_ascii=False) for k in ("tools", "output_schema") if snapshot.get(k)]
    blocks = [b for m in snapshot["messages"] if isinstance(m["content"], list) for b in m["content"]]
    images = sum(1 for b in blocks if b.get("type") == "image")
    framing = 10 * (len(snapshot["messages"]) + 1)
    per_image = WORST_CASE_IMAGE_TOKENS.get(snapshot["provider"], WORST_CASE_IMAGE_TOKENS_OTHERS)
    return sum(len(t.encode()) for t in [*texts, *extras]) + per_image * images + framing


def worst_case_micros(snapshot: dict[str, Any], price: dict[str, str]) -> int:
    """The most a run can cost: worst-case input at the dearest input price (cache writes cost more than
    plain input), plus max_tokens at the output price."""
    dearest = max(Decimal(price["input_per_mtok"]), Decimal(price.get("cache_write_per_mtok", "0")))
    pricing = {**price, "input_per_mtok": str(dearest)}
    return cost_micros(
        pricing,
        input_tokens=worst_case_input_tokens(snapshot),
        output_tokens=snapshot["model_config"]["max_tokens"],
    )


async def admit(session: AsyncSession, workspace_id: uuid.UUID) -> list[uuid.UUID]:
    """Hands waiting runs of a workspace to the queue while it is under its cap; publish them after commit."""
    limits = await usage.limits_of(session, workspace_id)
    await repo.lock_dispatch(session, workspace_id)
    free = limits.max_concurrent_runs - await repo.count_active(session, workspace_id)
    if free <= 0:
        return []
    return await repo.admit_waiting(session, workspace_id, free)


async def get_run(session: AsyncSession, access: WorkspaceAccess, run_id: uuid.UUID) -> Run:
    run = await repo.get_run(session, access.workspace.id, run_id)
    if run is None:
        raise RunNotFound(f"Run {run_id} not found")
    return run


async def list_runs(session: AsyncSession, access: WorkspaceAccess, *, filters, after, limit: int) -> list[Run]:
    return await repo.list_runs(session, access.workspace.id, filters=filters, after=after, limit=limit)


async def run_view(session: AsyncSession, keyring: Keyring, run: Run) -> dict[str, Any]:
    """The run as the API shows it, contents decrypted."""
    snapshot = json.loads(await keyring.open_text(session, run, "snapshot")) if run.snapshot is not None else None
    output = await keyring.open_text(session, run, "output") if run.output is not None else ""
    extras = json.loads(await keyring.open_text(session, run, "extras")) if run.extras is not None else {}
    return {
        "id": run.id,
        "status": run.status,
        "prompt_id": run.prompt_id,
        "version_id": run.version_id,
        "version": run.version_number,
        "provider": run.provider,
        "model": run.model,
        "snapshot": snapshot,
        "output": output,
        "stop_reason": run.stop_reason,
        "usage": {
            "input_tokens": run.input_tokens,
            "output_tokens": run.output_tokens,
            "estimated": run.usage_estimated,
            "thinking_tokens": run.thinking_tokens,
        },
        "cost_usd": micros_to_usd(run.cost_micros) if run.cost_micros is not None else None,
        "ttft_ms": run.ttft_ms,
        "duration_ms": run.duration_ms,
        "error": run.error,
        "flags": run.flags,
        **extras,
        "output_valid": run.output_valid,
        "rerun_of": run.rerun_of,
        "created_by": run.created_by,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "contents_expired_at": run.contents_expired_at,
    }


async def cancel_run(
    session: AsyncSession, keyring: Keyring, backends: RunBackends, access: WorkspaceAccess, run_id: uuid.UUID
) -> Run:
    """Queued: cancelled at once. Running: flagged durably and signalled; the worker closes the stream."""
    run = await get_run(session, access, run_id)
    if run.status in TERMINAL:
        raise RunFinished(f"Run {run_id} is already {run.status}")
    await repo.lock_dispatch(session, run.workspace_id)  # before the budget row, as everywhere
    terminal_seq = first_worker_seq(run.flags)
    cancelled = await repo.cancel_queued(session, run.id, last_seq=terminal_seq)
    if cancelled is not None:
        await usage.settle(session, cancelled)  # releases the whole reservation: it cost nothing
        admitted = await admit(session, run.workspace_id)
        view = await run_view(session, keyring, cancelled)
        terminal = await seal_event(
            session,
            keyring,
            run.workspace_id,
            run.id,
            RunEvent(terminal_seq, TERMINAL_EVENT_FOR["cancelled"], {"run": _jsonable(view), "offset": 0}),
        )

        async def announce() -> None:
            await backends.events.append(str(run.id), terminal)
            await backends.events.close(str(run.id), ttl_seconds=EVENT_TTL_SECONDS)
            for admitted_id in admitted:
                await backends.queue.publish(str(admitted_id))

        after_commit(session, announce)
        return cancelled
    if not await repo.request_cancel(session, run.id):
        await session.refresh(run)
        raise RunFinished(f"Run {run_id} is already {run.status}")

    async def signal() -> None:
        await backends.cancels.send(str(run.id))

    after_commit(session, signal)
    await session.refresh(run)
    return run


async def rerun(
    session: AsyncSession,
    keyring: Keyring,
    backends: RunBackends,
    limiter: Limiter,
    access: WorkspaceAccess,
    run_id: uuid.UUID,
) -> Run:
    """A new run from the same snapshot: same rendered messages, config and price (output may differ)."""
    original = await get_run(session, access, run_id)
    if original.snapshot is None:
        raise ContentsExpired(f"Run {run_id}'s contents were removed by the retention policy; it cannot be rerun")
    snapshot = json.loads(await keyring.open_text(session, original, "snapshot"))
    version = await prompts.get_version_by_id(session, access.workspace.id, original.version_id)
    prepared = Prepared(version=version, snapshot=snapshot, price=snapshot["price"])
    limits = await usage.limits_of(session, access.workspace.id)
    await usage.check_rates(limiter, limits, access.workspace.id, access.principal.user.id)
    try:
        run = await _insert(session, keyring, backends, access, prepared, None, None, original.id, limits)
    except ProblemError:
        await usage.give_back_rates(limiter, access.workspace.id, access.principal.user.id)
        raise
    assert run is not None
    return run


async def unfinished_runs(session: AsyncSession, workspace_id: uuid.UUID, prompt_id: uuid.UUID) -> int:
    return await repo.count_unfinished(session, workspace_id, prompt_id)


async def delete_run(session: AsyncSession, access: WorkspaceAccess, run_id: uuid.UUID, actor: Actor) -> None:
    run = await get_run(session, access, run_id)
    if run.created_by != access.principal.user.id and not access.at_least("admin"):
        raise Forbidden("Deleting someone else's run needs the admin role or higher")
    if run.status not in TERMINAL:
        # Its reservation and its tokens must be settled first, or the money would vanish with the row.
        raise RunNotFinished(f"Run {run_id} is {run.status}; cancel it first, then delete it")
    await record_audit(
        session,
        workspace_id=access.workspace.id,
        actor=actor,
        action="run.deleted",
        target_type="run",
        target_id=run.id,
        before={"status": run.status, "cost_micros": run.cost_micros},
    )
    await lifecycle.discard_archives(session, access.workspace.id)
    await repo.delete_run(session, run)


def _jsonable(view: dict[str, Any]) -> dict[str, Any]:
    return RunOut.model_validate(view).model_dump(mode="json")


# For comparisons (issue 10): many ordinary runs created in the caller's one transaction.


async def prepare_run(
    session: AsyncSession, keyring: Keyring, settings: Settings, access: WorkspaceAccess, body: RunIn
) -> Prepared:
    """Validates and renders a run body into its snapshot (422s as for POST /runs); inserts nothing."""
    return await _prepare(session, keyring, settings, access, body)


async def create_prepared_run(
    session: AsyncSession,
    keyring: Keyring,
    backends: RunBackends,
    access: WorkspaceAccess,
    prepared: Prepared,
    limits: usage.Limits,
) -> Run:
    """Inserts a prepared run exactly as create_run does (safety policy, queue bound, dispatch, budget
    reservation, hand-off after commit), inside the caller's transaction. The caller checks rate limits and
    gives them back when it raises; a refusal raises before anything of this run is flushed for good."""
    run = await _insert(session, keyring, backends, access, prepared, None, None, None, limits)
    assert run is not None  # no Idempotency-Key, so no race to lose
    return run


async def runs_by_ids(session: AsyncSession, workspace_id: uuid.UUID, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, Run]:
    """Runs of one workspace by id, in one query (ids of other workspaces are simply absent)."""
    if not run_ids:
        return {}
    # repository.py is owned elsewhere; this one read lives here until it moves there.
    rows = await session.execute(select(Run).where(Run.workspace_id == workspace_id, Run.id.in_(set(run_ids))))
    return {run.id: run for run in rows.scalars()}


async def run_statuses(session: AsyncSession, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Just the statuses of runs the caller already knows belong to its workspace (one light query)."""
    return await repo.statuses(session, run_ids) if run_ids else {}
