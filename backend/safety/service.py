"""Safety, in the product: the workspace policy, the checks of a run's input before it is queued and of its
output as it streams, flags (stored sealed, listed, resolved) and the dashboard summary."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.errors import NotFound, ProblemError
from backend.crypto.service import Keyring
from backend.runs.models import Run
from backend.safety.detectors import Finding, mask, scan
from backend.safety.models import POLICY_KINDS, SafetyFlag, SafetyPolicy
from backend.workspaces.service import Actor, WorkspaceAccess, record_audit, require_at_least


class FlagNotFound(NotFound):
    type, title = "flag-not-found", "Flag not found"


class SafetyBlocked(ProblemError):
    """422: the rendered input tripped a detector whose kind the workspace blocks; nothing was run."""

    status, type, title = 422, "blocked-by-policy", "Blocked by the workspace's safety policy"

    def __init__(self, findings: list[InputFinding]) -> None:
        detectors = sorted({f.finding.detector for f in findings})
        places = sorted({f.field for f in findings})
        super().__init__(
            f"The input contains {', '.join(detectors)} ({', '.join(places)}); this workspace's safety policy "
            "blocks it, so nothing was sent to a provider",
            detectors=detectors,
            errors=[
                {"loc": ["body", *f.field.split(".")], "msg": f"{f.finding.detector} found", "type": "safety"}
                for f in findings
            ],
        )
        self.findings = findings


@dataclass(frozen=True)
class Policy:
    pii: str = "flag"
    secret: str = "flag"
    injection: str = "flag"

    def action(self, kind: str) -> str:
        return getattr(self, kind, "flag")  # refusals are always flagged

    def as_api(self) -> dict[str, str]:
        return {kind: getattr(self, kind) for kind in POLICY_KINDS}


@dataclass(frozen=True)
class InputFinding:
    finding: Finding
    field: str  # "system", "messages.0.content", "variables.name"
    excerpt: str


async def policy_of(session: AsyncSession, workspace_id: uuid.UUID) -> Policy:
    row = await session.get(SafetyPolicy, workspace_id)
    return Policy() if row is None else Policy(row.pii, row.secret, row.injection)


async def update_policy(
    session: AsyncSession, access: WorkspaceAccess, changes: dict[str, str], actor: Actor
) -> Policy:
    require_at_least(access, "admin", "Changing the safety policy")
    before = await policy_of(session, access.workspace.id)
    after = Policy(**{**before.as_api(), **changes})
    row = await session.get(SafetyPolicy, access.workspace.id, with_for_update=True)
    if row is None:
        row = SafetyPolicy(workspace_id=access.workspace.id)
        session.add(row)
    row.pii, row.secret, row.injection = after.pii, after.secret, after.injection
    row.updated_at = func.now()
    if after != before:
        await record_audit(
            session,
            workspace_id=access.workspace.id,
            actor=actor,
            action="policy.updated",
            target_type="safety_policy",
            target_id=access.workspace.id,
            before=before.as_api(),
            after=after.as_api(),
        )
    await session.flush()
    return after


def scan_input(snapshot: dict[str, Any], policy: Policy) -> list[InputFinding]:
    """Findings in a run's rendered input that the policy does not switch off: personal data and secrets in
    the system prompt and messages, injection attempts in the variable values (where outside text comes in)."""
    out: list[InputFinding] = []

    def check(text: str, field: str, *, injection: bool) -> None:
        for finding in scan(text, injection=injection):
            if injection and finding.kind != "injection":
                continue  # a value's personal data is found again where it was rendered
            if policy.action(finding.kind) != "off":
                out.append(InputFinding(finding, field, mask(text, finding)))

    check(snapshot["system"], "system", injection=False)
    for index, message in enumerate(snapshot["messages"]):
        content = message["content"]
        if isinstance(content, str):
            check(content, f"messages.{index}.content", injection=False)
        else:
            for block_index, block in enumerate(content):
                text = block.get("text") if block["type"] == "text" else block.get("content")
                if isinstance(text, str):
                    check(text, f"messages.{index}.content.{block_index}", injection=False)
    for name, value in snapshot.get("variables", {}).items():
        if isinstance(value, str):
            check(value, f"variables.{name}", injection=True)
    return out


def blocking(findings: list[InputFinding], policy: Policy) -> list[InputFinding]:
    return [f for f in findings if policy.action(f.finding.kind) == "block"]


async def add_flags(
    session: AsyncSession,
    keyring: Keyring,
    run: Run,
    where: str,
    findings: list[tuple[Finding, str | None, str]],
) -> list[dict[str, str]]:
    """Stores findings (finding, field, masked excerpt) as flags of a run; answers their summary for run.flags."""
    summary = []
    for finding, field, excerpt in findings:
        flag = SafetyFlag(
            id=uuid.uuid4(),
            workspace_id=run.workspace_id,
            run_id=run.id,
            kind=finding.kind,
            detector=finding.detector,
            location=where,
            field=field,
            start=finding.start,
            end=finding.end,
        )
        await keyring.seal_field(session, flag, "excerpt", excerpt)
        session.add(flag)
        summary.append({"kind": finding.kind, "detector": finding.detector, "where": where})
    return summary


async def list_flags(
    session: AsyncSession,
    keyring: Keyring,
    access: WorkspaceAccess,
    *,
    status: str | None,
    kind: str | None,
    run_id: uuid.UUID | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[dict[str, Any]]:
    stmt = select(SafetyFlag).where(SafetyFlag.workspace_id == access.workspace.id)
    if status:
        stmt = stmt.where(SafetyFlag.status == status)
    if kind:
        stmt = stmt.where(SafetyFlag.kind == kind)
    if run_id:
        stmt = stmt.where(SafetyFlag.run_id == run_id)
    if after is not None:
        at, last_id = after
        # `created_at <= at` bounds the index scan, so a deep page starts at the cursor (as the run list does).
        stmt = stmt.where(SafetyFlag.created_at <= at, or_(SafetyFlag.created_at < at, SafetyFlag.id < last_id))
    stmt = stmt.order_by(SafetyFlag.created_at.desc(), SafetyFlag.id.desc()).limit(limit)
    return [await flag_view(session, keyring, flag) for flag in (await session.execute(stmt)).scalars()]


async def flag_view(session: AsyncSession, keyring: Keyring, flag: SafetyFlag) -> dict[str, Any]:
    return {
        "id": flag.id,
        "run_id": flag.run_id,
        "kind": flag.kind,
        "detector": flag.detector,
        "where": flag.location,
        "field": flag.field,
        "excerpt": await keyring.open_text(session, flag, "excerpt") if flag.excerpt is not None else "",
        "status": flag.status,
        "note": await keyring.open_text(session, flag, "note") if flag.note is not None else None,
        "resolved_by": flag.resolved_by,
        "resolved_at": flag.resolved_at,
        "created_at": flag.created_at,
    }


async def resolve_flag(
    session: AsyncSession,
    keyring: Keyring,
    access: WorkspaceAccess,
    flag_id: uuid.UUID,
    status: str,
    note: str | None,
    actor: Actor,
) -> dict[str, Any]:
    require_at_least(access, "admin", "Resolving safety flags")
    stmt = select(SafetyFlag).where(SafetyFlag.workspace_id == access.workspace.id, SafetyFlag.id == flag_id)
    flag = (await session.execute(stmt.with_for_update())).scalar_one_or_none()
    if flag is None:
        raise FlagNotFound(f"Flag {flag_id} not found")
    before = flag.status
    flag.status = status
    if note is not None:
        await keyring.seal_field(session, flag, "note", note)
    flag.resolved_by = access.principal.user.id if status == "resolved" else None
    flag.resolved_at = func.now() if status == "resolved" else None
    if status == "resolved":
        await record_audit(
            session,
            workspace_id=access.workspace.id,
            actor=actor,
            action="flag.resolved",
            target_type="safety_flag",
            target_id=flag.id,
            before={"status": before},
            after={"status": status, "kind": flag.kind, "detector": flag.detector},  # the note is content: not here
        )
    await session.flush()
    await session.refresh(flag)
    return await flag_view(session, keyring, flag)


async def summary(session: AsyncSession, access: WorkspaceAccess, days: int) -> dict[str, Any]:
    """For the dashboard: flags by kind and day, open flags by kind, and the refusal rate per model."""
    since = datetime.now(UTC) - timedelta(days=days)
    ws = access.workspace.id
    day = func.date_trunc("day", SafetyFlag.created_at).label("day")
    by_day = await session.execute(
        select(day, SafetyFlag.kind, func.count())
        .where(SafetyFlag.workspace_id == ws, SafetyFlag.created_at >= since)
        .group_by(day, SafetyFlag.kind)
        .order_by(day)
    )
    open_by_kind = await session.execute(
        select(SafetyFlag.kind, func.count())
        .where(SafetyFlag.workspace_id == ws, SafetyFlag.status == "open")
        .group_by(SafetyFlag.kind)
    )
    refusals = await session.execute(
        select(
            Run.provider,
            Run.model,
            func.count(),
            func.count().filter(Run.stop_reason == "refusal"),
        )
        .where(Run.workspace_id == ws, Run.created_at >= since, Run.status.in_(("succeeded", "failed", "cancelled")))
        .group_by(Run.provider, Run.model)
        .order_by(Run.provider, Run.model)
    )
    return {
        "days": days,
        "by_day": [{"day": d.date(), "kind": kind, "count": n} for d, kind, n in by_day],
        "open": {kind: n for kind, n in open_by_kind},
        "refusal_rate": [
            {"provider": p, "model": m, "runs": runs, "refusals": refused, "rate": round(refused / runs, 4)}
            for p, m, runs, refused in refusals
            if runs
        ],
    }
