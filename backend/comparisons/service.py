"""Comparisons: every version x model x test case of a grid is one ordinary run, all created in the request's
one transaction (so a refusal of any cell leaves nothing); the grid read back with progress, totals,
assertion results and ratings; cancel-all, rerun one cell, diff two cells."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import regex
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.catalogue.service import micros_to_usd
from backend.comparisons import repository as repo
from backend.comparisons.models import (
    MAX_CELLS,
    Comparison,
    ComparisonAssertion,
    ComparisonCell,
    ComparisonGrading,
    ComparisonRating,
)
from backend.comparisons.schemas import MAX_ASSERTIONS, AssertionIn, ComparisonIn
from backend.core.errors import Conflict, Invalid, InvalidFields, NotFound, ProblemError
from backend.core.settings import Settings
from backend.crypto.service import Keyring
from backend.datasets import service as datasets
from backend.prompts import service as prompts
from backend.ratelimit.limiter import Limiter
from backend.runs import service as runs
from backend.runs.backends.factory import RunBackends
from backend.runs.models import TERMINAL
from backend.runs.schemas import Overrides, RunIn
from backend.usage import service as usage
from backend.workspaces.service import WorkspaceAccess

REGEX_TIMEOUT_SECONDS = 0.05  # one pattern against one output
REGEX_BUDGET_SECONDS = 2.0  # all regex assertions of one read of a grid


class ComparisonNotFound(NotFound):
    type, title = "comparison-not-found", "Comparison not found"


class CellNotFound(NotFound):
    type, title = "cell-not-found", "No cell of this comparison has this run"


class CellNotFinished(Conflict):
    type, title = "cell-not-finished", "The cell's run has not finished"


def _moved(problem: ProblemError, cell: str, locs: dict[str, list[str | int]]) -> InvalidFields:
    """A cell's 422, its fields moved to where they came from in the grid's body."""
    moved: list[tuple[list[str | int], str]] = []
    for error in problem.errors or [{"loc": ["body"], "msg": problem.detail}]:
        loc = list(error["loc"])
        if loc[:2] == ["body", "variables"] and "variables" in locs:
            loc = [*locs["variables"], *loc[2:]]
        elif loc[:2] == ["body", "overrides"] and "overrides" in locs:
            loc = [*locs["overrides"], *loc[2:]]
        moved.append((loc, f"{cell}: {error['msg']}"))
    return InvalidFields(moved)


async def create_comparison(
    session: AsyncSession,
    keyring: Keyring,
    settings: Settings,
    backends: RunBackends,
    limiter: Limiter,
    access: WorkspaceAccess,
    body: ComparisonIn,
) -> tuple[Comparison, list[ComparisonCell]]:
    """Validates every cell (422), counts the grid as one start against the rate limits (429), then inserts
    every run (safety 422, queue bound 429, budget 402 for the grid's whole worst case): all or nothing."""
    prompt = await prompts.get_prompt(session, access, body.prompt_id)
    versions = []
    for index, number in enumerate(body.versions):
        try:
            versions.append(await prompts.version_of(session, prompt, number))
        except NotFound:
            raise Invalid(["body", "versions", index], f"this prompt has no version {number}") from None
    if body.dataset_id is not None:
        cases = await datasets.dataset_cases(session, keyring, access, body.dataset_id)
        if not cases:
            raise Invalid(["body", "dataset_id"], "this dataset has no rows")
        row_loc: list[str | int] = ["body", "dataset_id"]
    elif body.rows is not None:
        expected = body.expected or [None] * len(body.rows)
        cases = [datasets.Case(row, exp) for row, exp in zip(body.rows, expected, strict=True)]
        if not cases:
            raise Invalid(["body", "rows"], "give at least one row")
        row_loc = ["body", "rows"]
    else:
        cases = [datasets.Case({}, None)]  # a prompt without variables: one case with none
        row_loc = ["body", "rows"]
    columns: list[Any] = list(body.models) if body.models else [None]
    total = len(versions) * len(columns) * len(cases)
    if total > MAX_CELLS:
        raise Invalid(
            ["body"],
            f"{len(versions)} versions x {len(columns)} models x {len(cases)} rows = {total} cells; "
            f"a comparison has at most {MAX_CELLS}",
        )
    checks = [
        await _checked_assertion(session, access, a, ["body", "assertions", i]) for i, a in enumerate(body.assertions)
    ]

    # 422: every cell rendered and priced before anything is counted or reserved.
    planned: list[tuple[int, int, Any, runs.Prepared]] = []
    for version in versions:
        for column_index, column in enumerate(columns):
            overrides = Overrides(provider=column.provider, model=column.model) if column else Overrides()
            for row_index, case in enumerate(cases):
                wanted = {k: v for k, v in case.variables.items() if k in set(version.variables)}
                run_body = RunIn(prompt_id=prompt.id, version=version.number, variables=wanted, overrides=overrides)
                try:
                    prepared = await runs.prepare_run(session, keyring, settings, access, run_body)
                except ProblemError as problem:
                    if problem.status != 422:
                        raise
                    where = f"version {version.number}" + (f", {column.provider}/{column.model}" if column else "")
                    row_where = [*row_loc, row_index] if row_loc[-1] == "rows" else row_loc
                    raise _moved(
                        problem,
                        f"{where}, row {row_index}",
                        {"variables": row_where, "overrides": ["body", "models", column_index]},
                    ) from None
                planned.append((version.number, row_index, column, prepared))

    limits = await usage.limits_of(session, access.workspace.id)
    user_id = access.principal.user.id
    await usage.check_rates(limiter, limits, access.workspace.id, user_id)  # the grid counts as one start
    inserted_micros = 0
    cells: list[ComparisonCell] = []
    comparison = Comparison(
        id=uuid.uuid4(),
        workspace_id=access.workspace.id,
        prompt_id=prompt.id,
        dataset_id=body.dataset_id,
        name=body.name.strip(),
        versions=body.versions,
        models=[m.model_dump() for m in body.models] if body.models else None,
        cell_count=total,
        created_by=user_id,
    )
    try:
        for position, (number, row_index, _column, prepared) in enumerate(planned):
            try:
                run = await runs.create_prepared_run(session, keyring, backends, access, prepared, limits)
            except usage.BudgetExhausted as exhausted:
                raise _grid_over_budget(exhausted, planned, inserted_micros) from None
            inserted_micros += runs.worst_case_micros(prepared.snapshot, prepared.price)
            cells.append(
                ComparisonCell(
                    id=uuid.uuid4(),
                    workspace_id=access.workspace.id,
                    comparison_id=comparison.id,
                    position=position,
                    version=number,
                    provider=prepared.snapshot["provider"],
                    model=prepared.snapshot["model"],
                    row_index=row_index,
                    run_id=run.id,
                )
            )
    except ProblemError:
        await usage.give_back_rates(limiter, access.workspace.id, user_id)  # a refused grid started nothing
        raise
    pinned = [{"variables": c.variables, "expected": c.expected} for c in cases]
    await keyring.seal_field(session, comparison, "cases", json.dumps(pinned, ensure_ascii=False))
    session.add(comparison)
    await session.flush()
    session.add_all(cells)
    for position, check in enumerate(checks):
        await _add_assertion(session, keyring, comparison, position, check, user_id)
    await session.flush()
    return comparison, cells


def _grid_over_budget(
    exhausted: usage.BudgetExhausted, planned: list[tuple[int, int, Any, runs.Prepared]], inserted_micros: int
) -> usage.BudgetExhausted:
    """The cell's 402 retold for the whole grid: what all of it could cost against what was left before it."""
    worst = sum(runs.worst_case_micros(p.snapshot, p.price) for *_, p in planned)
    left = int(Decimal(exhausted.extra["remaining_usd"]) * 1_000_000) + inserted_micros
    return usage.BudgetExhausted(
        f"This grid of {len(planned)} runs could cost up to ${micros_to_usd(worst)}; ${micros_to_usd(left)} of "
        f"this month's ${exhausted.extra['budget_usd']} budget is left, so none of it was started",
        remaining_usd=micros_to_usd(left),
        required_usd=micros_to_usd(worst),
        budget_usd=exhausted.extra["budget_usd"],
    )


# Reading


async def get_comparison(session: AsyncSession, access: WorkspaceAccess, comparison_id: uuid.UUID) -> Comparison:
    comparison = await repo.get_comparison(session, access.workspace.id, comparison_id)
    if comparison is None:
        raise ComparisonNotFound(f"Comparison {comparison_id} not found")
    return comparison


async def cells_of(session: AsyncSession, comparison: Comparison) -> list[ComparisonCell]:
    return await repo.cells_of(session, comparison)


def _status(statuses: list[str | None]) -> str:
    if all(s is None or s in TERMINAL for s in statuses):
        return "completed"
    if all(s == "queued" for s in statuses):
        return "queued"
    return "running"


def _summary(comparison: Comparison, statuses: list[str | None], cost_micros: int) -> dict[str, Any]:
    done = sum(1 for s in statuses if s is None or s in TERMINAL)
    return {
        "id": comparison.id,
        "name": comparison.name,
        "prompt_id": comparison.prompt_id,
        "dataset_id": comparison.dataset_id,
        "versions": comparison.versions,
        "models": comparison.models,
        "cell_count": comparison.cell_count,
        "status": _status(statuses),
        "progress": {"done": done, "total": len(statuses)},
        "cost_usd": micros_to_usd(cost_micros),
        "created_by": comparison.created_by,
        "created_at": comparison.created_at,
    }


async def list_comparisons(
    session: AsyncSession,
    access: WorkspaceAccess,
    prompt_id: uuid.UUID | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[dict[str, Any]]:
    found = await repo.list_comparisons(session, access.workspace.id, prompt_id, after, limit)
    cells = await repo.cells_of_many(session, access.workspace.id, [c.id for c in found])
    by_comparison: dict[uuid.UUID, list[ComparisonCell]] = {}
    for cell in cells:
        by_comparison.setdefault(cell.comparison_id, []).append(cell)
    # Cells are this workspace's, so their run ids are too: only statuses and costs are read, not the runs.
    figures = await repo.run_statuses_and_costs(session, [c.run_id for c in cells if c.run_id is not None])
    out = []
    for comparison in found:
        mine = [figures.get(c.run_id) if c.run_id else None for c in by_comparison.get(comparison.id, [])]
        statuses = [f[0] if f else None for f in mine]
        out.append(_summary(comparison, statuses, sum(f[1] or 0 for f in mine if f)))
    return out


def cell_ref(cell: ComparisonCell) -> dict[str, Any]:
    return {
        "position": cell.position,
        "version": cell.version,
        "provider": cell.provider,
        "model": cell.model,
        "row_index": cell.row_index,
        "run_id": cell.run_id,
    }


async def comparison_view(
    session: AsyncSession, keyring: Keyring, access: WorkspaceAccess, comparison: Comparison
) -> dict[str, Any]:
    cells = await repo.cells_of(session, comparison)
    found_runs = await runs.runs_by_ids(session, access.workspace.id, [c.run_id for c in cells if c.run_id])
    cases = json.loads(await keyring.open_text(session, comparison, "cases"))
    assertions = [await _assertion_view(session, keyring, a) for a in await repo.assertions_of(session, comparison)]
    ratings: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for rating in await repo.ratings_of(session, comparison):
        ratings.setdefault(rating.run_id, []).append(await _rating_view(session, keyring, rating))

    views = []
    for cell in cells:
        run = found_runs.get(cell.run_id) if cell.run_id else None
        view = await runs.run_view(session, keyring, run) if run is not None else None
        views.append(
            {
                **cell_ref(cell),
                "status": view["status"] if view else "deleted",
                "output": view["output"] if view else "",
                "stop_reason": view["stop_reason"] if view else None,
                "error": view["error"] if view else None,
                "usage": view["usage"] if view else None,
                "cost_usd": view["cost_usd"] if view else None,
                "ttft_ms": view["ttft_ms"] if view else None,
                "duration_ms": view["duration_ms"] if view else None,
                "earlier_run_ids": cell.earlier_run_ids,
                "ratings": ratings.get(cell.run_id, []) if cell.run_id else [],
                "_cost_micros": run.cost_micros if run is not None else None,
            }
        )
    gradings, grading_micros = await _gradings(session, keyring, access, comparison)
    results = await asyncio.to_thread(_evaluate_all, assertions, views, cases, gradings)
    for view, cell_results in zip(views, results, strict=True):
        view["assertions"] = cell_results

    statuses = [v["status"] if v["status"] != "deleted" else None for v in views]
    totals = {"cost_micros": 0, "input_tokens": 0, "output_tokens": 0}
    for view in views:
        totals["cost_micros"] += view["_cost_micros"] or 0
        if view["usage"]:
            totals["input_tokens"] += view["usage"]["input_tokens"] or 0
            totals["output_tokens"] += view["usage"]["output_tokens"] or 0
    by_version = [
        _version_summary(number, [v for v in views if v["version"] == number]) for number in comparison.versions
    ]
    for view in views:
        view.pop("_cost_micros")
    return {
        **_summary(comparison, statuses, totals["cost_micros"]),
        "totals": {
            "cost_usd": micros_to_usd(totals["cost_micros"]),
            "input_tokens": totals["input_tokens"],
            "output_tokens": totals["output_tokens"],
            "grading_cost_usd": micros_to_usd(grading_micros),
        },
        "cases": cases,
        "assertions": assertions,
        "by_version": by_version,
        "cells": views,
    }


def _mean(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def _version_summary(number: int, views: list[dict[str, Any]]) -> dict[str, Any]:
    results = [r for v in views for r in v["assertions"] if r["passed"] is not None]
    ratings = [r for v in views for r in v["ratings"]]
    scores = [r["score"] for r in ratings if r["score"] is not None]
    passed = sum(1 for r in results if r["passed"])
    return {
        "version": number,
        "cells": len(views),
        "done": sum(1 for v in views if v["status"] in TERMINAL or v["status"] == "deleted"),
        "cost_usd": micros_to_usd(sum(v["_cost_micros"] or 0 for v in views)),
        "mean_ttft_ms": _mean([v["ttft_ms"] for v in views if v["ttft_ms"] is not None]),
        "mean_duration_ms": _mean([v["duration_ms"] for v in views if v["duration_ms"] is not None]),
        "assertions_passed": passed,
        "assertions_evaluated": len(results),
        "pass_rate": round(passed / len(results), 4) if results else None,
        "thumbs_up": sum(1 for r in ratings if r["thumbs"] == "up"),
        "thumbs_down": sum(1 for r in ratings if r["thumbs"] == "down"),
        "mean_score": round(sum(scores) / len(scores), 2) if scores else None,
        "ratings": len(ratings),
    }


# Assertions


async def _checked_assertion(
    session: AsyncSession, access: WorkspaceAccess, assertion: AssertionIn, loc: list[str | int]
) -> tuple[str, str | None, uuid.UUID | None, int | None]:
    if assertion.kind == "regex":
        try:
            regex.compile(assertion.value or "", regex.V1)
        except (regex.error, OverflowError) as exc:
            raise Invalid([*loc, "value"], f"not a valid pattern: {exc}") from None
    if assertion.kind == "model_graded":
        assert assertion.prompt_id is not None
        try:
            rubric = await prompts.get_prompt(session, access, assertion.prompt_id)
        except NotFound:
            raise Invalid([*loc, "prompt_id"], "no such prompt in this workspace") from None
        try:
            version = await prompts.version_of(session, rubric, assertion.version or rubric.version_count or 1)
        except NotFound:
            raise Invalid([*loc, "version"], "the rubric prompt has no such version") from None
        if "output" not in version.variables:
            raise Invalid([*loc, "prompt_id"], "a rubric prompt needs an {{output}} variable for the answer it grades")
    return assertion.kind, assertion.value, assertion.prompt_id, assertion.version


async def _add_assertion(
    session: AsyncSession,
    keyring: Keyring,
    comparison: Comparison,
    position: int,
    check: tuple[str, str | None, uuid.UUID | None, int | None],
    user_id: uuid.UUID,
) -> ComparisonAssertion:
    kind, value, grader_prompt_id, grader_version = check
    assertion = ComparisonAssertion(
        id=uuid.uuid4(),
        workspace_id=comparison.workspace_id,
        comparison_id=comparison.id,
        position=position,
        kind=kind,
        grader_prompt_id=grader_prompt_id,
        grader_version=grader_version,
        created_by=user_id,
    )
    if value is not None:
        await keyring.seal_field(session, assertion, "argument", value)
    session.add(assertion)
    return assertion


async def add_assertion(
    session: AsyncSession, keyring: Keyring, access: WorkspaceAccess, comparison_id: uuid.UUID, body: AssertionIn
) -> dict[str, Any]:
    comparison = await get_comparison(session, access, comparison_id)
    existing = await repo.assertions_of(session, comparison)
    if len(existing) >= MAX_ASSERTIONS:
        raise Invalid(["body"], f"a comparison has at most {MAX_ASSERTIONS} assertions")
    check = await _checked_assertion(session, access, body, ["body"])
    position = existing[-1].position + 1 if existing else 0
    assertion = await _add_assertion(session, keyring, comparison, position, check, access.principal.user.id)
    await session.flush()
    return await _assertion_view(session, keyring, assertion)


async def delete_assertion(
    session: AsyncSession, access: WorkspaceAccess, comparison_id: uuid.UUID, assertion_id: uuid.UUID
) -> None:
    comparison = await get_comparison(session, access, comparison_id)
    if not await repo.delete_assertion(session, comparison, assertion_id):
        raise NotFound(f"Comparison {comparison_id} has no assertion {assertion_id}")


async def _assertion_view(session: AsyncSession, keyring: Keyring, assertion: ComparisonAssertion) -> dict[str, Any]:
    value = await keyring.open_text(session, assertion, "argument") if assertion.argument is not None else None
    return {
        "id": assertion.id,
        "kind": assertion.kind,
        "value": value,
        "model_graded": assertion.kind == "model_graded",
        "grader_prompt_id": assertion.grader_prompt_id,
        "grader_version": assertion.grader_version,
        "created_at": assertion.created_at,
    }


def _evaluate_all(
    assertions: list[dict[str, Any]],
    views: list[dict[str, Any]],
    cases: list[dict[str, Any]],
    gradings: dict[tuple[uuid.UUID, uuid.UUID], dict[str, Any]],
) -> list[list[dict[str, Any]]]:
    """Every assertion against every finished cell. Runs in a thread: regex matching releases the GIL
    (`concurrent=True`), each match is cut off after REGEX_TIMEOUT_SECONDS and all of them together after
    REGEX_BUDGET_SECONDS, so a catastrophic pattern costs a bounded moment, never the process."""
    compiled = {a["id"]: regex.compile(a["value"], regex.V1) for a in assertions if a["kind"] == "regex"}
    deadline = time.monotonic() + REGEX_BUDGET_SECONDS
    out = []
    for view in views:
        results = []
        for assertion in assertions:
            graded = assertion["model_graded"]
            if view["status"] != "succeeded":
                results.append({"assertion_id": assertion["id"], "passed": None, "error": None, "model_graded": graded})
                continue
            if graded:
                grading = gradings.get((assertion["id"], view["run_id"]))
                results.append({"assertion_id": assertion["id"], "model_graded": True, **_graded(grading)})
                continue
            expected = cases[view["row_index"]]["expected"] if view["row_index"] < len(cases) else None
            results.append(
                {"assertion_id": assertion["id"], **_evaluate(assertion, view["output"], expected, compiled, deadline)}
            )
        out.append(results)
    return out


def _evaluate(
    assertion: dict[str, Any], output: str, expected: str | None, compiled: dict[Any, Any], deadline: float
) -> dict[str, Any]:
    kind, value = assertion["kind"], assertion["value"]
    if kind == "contains":
        return {"passed": value in output, "error": None}
    if kind == "not_contains":
        return {"passed": value not in output, "error": None}
    if kind == "is_json":
        try:
            json.loads(output)
        except ValueError:
            return {"passed": False, "error": None}
        return {"passed": True, "error": None}
    if kind == "equals_expected":
        if expected is None:
            return {"passed": None, "error": "this case has no expected output"}
        return {"passed": output.strip() == expected.strip(), "error": None}
    left = deadline - time.monotonic()
    if left <= 0:
        return {"passed": None, "error": "not evaluated: the time for patterns in this grid ran out"}
    try:
        found = compiled[assertion["id"]].search(output, timeout=min(REGEX_TIMEOUT_SECONDS, left), concurrent=True)
    except TimeoutError:
        return {"passed": None, "error": f"the pattern took longer than {REGEX_TIMEOUT_SECONDS}s on this output"}
    return {"passed": found is not None, "error": None}


def _graded(grading: dict[str, Any] | None) -> dict[str, Any]:
    """A rubric run's verdict: its answer begins with PASS or FAIL."""
    if grading is None:
        return {"passed": None, "error": "not graded yet (POST .../grade)", "grader_run_id": None}
    verdict: dict[str, Any] = {"grader_run_id": grading["grader_run_id"], "passed": None, "error": None}
    if grading["status"] is None:
        verdict["error"] = "the grading run was deleted"
    elif grading["status"] not in TERMINAL:
        verdict["error"] = "grading"
    elif grading["status"] != "succeeded":
        verdict["error"] = f"the grading run {grading['status']}"
    else:
        first = (grading["output"].strip().split() or [""])[0].strip(".:!*").upper()
        if first in ("PASS", "FAIL"):
            verdict["passed"] = first == "PASS"
        else:
            verdict["error"] = "the grader's answer began with neither PASS nor FAIL"
    return verdict


async def _gradings(
    session: AsyncSession, keyring: Keyring, access: WorkspaceAccess, comparison: Comparison
) -> tuple[dict[tuple[uuid.UUID, uuid.UUID], dict[str, Any]], int]:
    rows = await repo.gradings_of(session, comparison)
    found = await runs.runs_by_ids(session, access.workspace.id, [g.grader_run_id for g in rows if g.grader_run_id])
    out: dict[tuple[uuid.UUID, uuid.UUID], dict[str, Any]] = {}
    for grading in rows:
        run = found.get(grading.grader_run_id) if grading.grader_run_id else None
        output = (
            (await runs.run_view(session, keyring, run))["output"] if run is not None and run.status in TERMINAL else ""
        )
        out[(grading.assertion_id, grading.run_id)] = {
            "grader_run_id": grading.grader_run_id,
            "status": run.status if run is not None else None,
            "output": output,
        }
    return out, sum(r.cost_micros or 0 for r in found.values())


async def grade(
    session: AsyncSession,
    keyring: Keyring,
    settings: Settings,
    backends: RunBackends,
    limiter: Limiter,
    access: WorkspaceAccess,
    comparison_id: uuid.UUID,
) -> tuple[Comparison, list[ComparisonGrading]]:
    """Runs every model-graded assertion's rubric on every succeeded cell not graded yet: each one an ordinary
    run of the rubric prompt ({{output}}, and {{expected}} and the case's values when it names them), created
    all or nothing like a grid (422, then one rate-limit start, then 402 for the whole batch's worst case)."""
    comparison = await get_comparison(session, access, comparison_id)
    graders = [a for a in await repo.assertions_of(session, comparison) if a.kind == "model_graded"]
    if not graders:
        raise Invalid(["body"], "this comparison has no model_graded assertion")
    cells = await repo.cells_of(session, comparison)
    found = await runs.runs_by_ids(session, access.workspace.id, [c.run_id for c in cells if c.run_id])
    done = {(g.assertion_id, g.run_id) for g in await repo.gradings_of(session, comparison)}
    cases = json.loads(await keyring.open_text(session, comparison, "cases"))
    planned: list[tuple[Any, uuid.UUID, Any, runs.Prepared]] = []
    for assertion in graders:
        assert assertion.grader_prompt_id is not None
        rubric = await prompts.get_prompt(session, access, assertion.grader_prompt_id)
        version = await prompts.version_of(session, rubric, assertion.grader_version or rubric.version_count)
        for cell in cells:
            run = found.get(cell.run_id) if cell.run_id else None
            if run is None or run.status != "succeeded" or (assertion.id, run.id) in done:
                continue
            case = cases[cell.row_index]
            pool = {**case["variables"], "expected": case["expected"] or ""}
            pool["output"] = (await runs.run_view(session, keyring, run))["output"]
            wanted = {k: pool[k] for k in version.variables if k in pool}
            body = RunIn(prompt_id=rubric.id, version=version.number, variables=wanted)
            try:
                prepared = await runs.prepare_run(session, keyring, settings, access, body)
            except ProblemError as problem:
                if problem.status != 422:
                    raise
                raise _moved(problem, f"rubric of assertion {assertion.id}, cell {cell.position}", {}) from None
            planned.append((assertion, run.id, None, prepared))
    limits = await usage.limits_of(session, access.workspace.id)
    user_id = access.principal.user.id
    gradings: list[ComparisonGrading] = []
    if not planned:
        return comparison, gradings
    await usage.check_rates(limiter, limits, access.workspace.id, user_id)
    inserted_micros = 0
    try:
        for assertion, graded_run_id, _, prepared in planned:
            try:
                grader_run = await runs.create_prepared_run(session, keyring, backends, access, prepared, limits)
            except usage.BudgetExhausted as exhausted:
                raise _grid_over_budget(exhausted, planned, inserted_micros) from None
            inserted_micros += runs.worst_case_micros(prepared.snapshot, prepared.price)
            gradings.append(
                ComparisonGrading(
                    id=uuid.uuid4(),
                    workspace_id=comparison.workspace_id,
                    comparison_id=comparison.id,
                    assertion_id=assertion.id,
                    run_id=graded_run_id,
                    grader_run_id=grader_run.id,
                )
            )
    except ProblemError:
        await usage.give_back_rates(limiter, access.workspace.id, user_id)
        raise
    session.add_all(gradings)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict("These cells are being graded by another request already") from None
    return comparison, gradings


# Ratings


async def _rating_view(session: AsyncSession, keyring: Keyring, rating: ComparisonRating) -> dict[str, Any]:
    return {
        "user_id": rating.user_id,
        "thumbs": None if rating.thumbs is None else ("up" if rating.thumbs > 0 else "down"),
        "score": rating.score,
        "note": await keyring.open_text(session, rating, "note") if rating.note is not None else None,
        "updated_at": rating.updated_at,
    }


async def _cell_with_run(
    session: AsyncSession, comparison: Comparison, run_id: uuid.UUID, *, current_only: bool, for_update: bool = False
) -> ComparisonCell:
    for cell in await repo.cells_of(session, comparison, for_update=for_update):
        if cell.run_id == run_id or (not current_only and str(run_id) in cell.earlier_run_ids):
            return cell
    raise CellNotFound(f"No cell of comparison {comparison.id} has run {run_id}")


async def rate(
    session: AsyncSession,
    keyring: Keyring,
    access: WorkspaceAccess,
    comparison_id: uuid.UUID,
    run_id: uuid.UUID,
    *,
    thumbs: str | None,
    score: int | None,
    note: str | None,
) -> dict[str, Any]:
    """The caller's rating of a cell's run (one per person and run; a second replaces the first)."""
    comparison = await get_comparison(session, access, comparison_id)
    await _cell_with_run(session, comparison, run_id, current_only=False)
    user_id = access.principal.user.id
    rating = await repo.get_rating(session, comparison, run_id, user_id)
    if rating is None:
        rating = ComparisonRating(
            id=uuid.uuid4(),
            workspace_id=comparison.workspace_id,
            comparison_id=comparison.id,
            run_id=run_id,
            user_id=user_id,
        )
        session.add(rating)
    else:
        rating.updated_at = func.now()
    rating.thumbs = None if thumbs is None else (1 if thumbs == "up" else -1)
    rating.score = score
    rating.note = None
    if note:
        await keyring.seal_field(session, rating, "note", note)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict("This rating was just changed by another request; send it again") from None
    await session.refresh(rating)
    return await _rating_view(session, keyring, rating)


async def unrate(session: AsyncSession, access: WorkspaceAccess, comparison_id: uuid.UUID, run_id: uuid.UUID) -> None:
    comparison = await get_comparison(session, access, comparison_id)
    if not await repo.delete_rating(session, comparison, run_id, access.principal.user.id):
        raise NotFound(f"You have not rated run {run_id} in this comparison")


# Acting on the grid


async def cancel_comparison(
    session: AsyncSession, keyring: Keyring, backends: RunBackends, access: WorkspaceAccess, comparison_id: uuid.UUID
) -> list[uuid.UUID]:
    """Cancels every unfinished cell exactly as POST /runs/{id}/cancel would; returns the runs it cancelled."""
    comparison = await get_comparison(session, access, comparison_id)
    cells = await repo.cells_of(session, comparison)
    found = await runs.runs_by_ids(session, access.workspace.id, [c.run_id for c in cells if c.run_id])
    cancelled = []
    # Last cells first: those still waiting behind the workspace's cap go before the dispatched ones, so
    # cancelling a dispatched run never admits a waiting cell of this same grid.
    for cell in reversed(cells):
        run = found.get(cell.run_id) if cell.run_id else None
        if run is None or run.status in TERMINAL:
            continue
        try:
            await runs.cancel_run(session, keyring, backends, access, run.id)
        except runs.RunFinished:
            continue  # it finished meanwhile
        cancelled.append(run.id)
    return cancelled


async def rerun_cell(
    session: AsyncSession,
    keyring: Keyring,
    backends: RunBackends,
    limiter: Limiter,
    access: WorkspaceAccess,
    comparison_id: uuid.UUID,
    run_id: uuid.UUID,
) -> ComparisonCell:
    """A new run of the cell's pinned snapshot (runs.rerun: rate limits, safety, budget as for any rerun);
    the cell then points at it and remembers the run it had."""
    comparison = await get_comparison(session, access, comparison_id)
    cell = await _cell_with_run(session, comparison, run_id, current_only=True, for_update=True)
    current = await runs.get_run(session, access, run_id)
    if current.status not in TERMINAL:
        raise CellNotFinished(f"Run {run_id} is {current.status}; cancel it or wait for it before a rerun")
    new = await runs.rerun(session, keyring, backends, limiter, access, run_id)
    cell.earlier_run_ids = [*cell.earlier_run_ids, str(run_id)]
    cell.run_id = new.id
    await session.flush()
    return cell


async def diff_cells(
    session: AsyncSession,
    keyring: Keyring,
    access: WorkspaceAccess,
    comparison_id: uuid.UUID,
    a: uuid.UUID,
    b: uuid.UUID,
) -> dict[str, Any]:
    """A unified diff of two cells' outputs (any run a cell has or had in this comparison)."""
    comparison = await get_comparison(session, access, comparison_id)
    outputs = []
    for run_id in (a, b):
        await _cell_with_run(session, comparison, run_id, current_only=False)
        outputs.append((await runs.run_view(session, keyring, await runs.get_run(session, access, run_id)))["output"])
    return {
        "a": a,
        "b": b,
        "identical": outputs[0] == outputs[1],
        "unified": prompts.text_diff(outputs[0], outputs[1], "output"),
    }


# For the grid's event stream


async def stream_cells(session: AsyncSession, workspace_id: uuid.UUID, comparison_id: uuid.UUID) -> list[Any]:
    from backend.comparisons.streaming import CellRun

    comparison = await repo.get_comparison(session, workspace_id, comparison_id)
    if comparison is None:
        return []
    return [
        CellRun(cell.position, len(cell.earlier_run_ids), cell.run_id)
        for cell in await repo.cells_of(session, comparison)
        if cell.run_id is not None
    ]


async def completion(session: AsyncSession, workspace_id: uuid.UUID, comparison_id: uuid.UUID) -> dict[str, Any]:
    """What `comparison.completed` carries: progress and the totals of cost and tokens."""
    comparison = await repo.get_comparison(session, workspace_id, comparison_id)
    if comparison is None:
        return {"comparison_id": str(comparison_id), "status": "completed"}
    cells = await repo.cells_of(session, comparison)
    found = await runs.runs_by_ids(session, workspace_id, [c.run_id for c in cells if c.run_id])
    statuses = [found[c.run_id].status if c.run_id in found else None for c in cells]
    summary = _summary(comparison, statuses, sum(r.cost_micros or 0 for r in found.values()))
    return {
        "comparison_id": str(comparison_id),
        "status": summary["status"],
        "progress": summary["progress"],
        "totals": {
            "cost_usd": micros_to_usd(sum(r.cost_micros or 0 for r in found.values())),
            "input_tokens": sum(r.input_tokens or 0 for r in found.values()),
            "output_tokens": sum(r.output_tokens or 0 for r in found.values()),
        },
    }
