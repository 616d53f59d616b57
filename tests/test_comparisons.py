"""Comparisons on real PostgreSQL and Redis: a grid of version x model x case where every cell is an ordinary
run (all or nothing: 422, 402 and safety blocks leave nothing), read back with progress and totals, cancelled,
a cell rerun, two cells diffed, assertions and ratings aggregated per version."""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from tests.factories import add_member, assert_problem, create_workspace, signup
from tests.runs_helpers import RunningWorker

MOCK = {"provider": "mock", "model": "mock-1", "max_tokens": 256}


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"mock_ttft_ms": 5, "mock_token_ms": 2})


@pytest.fixture
async def owner(client):
    return await signup(client)


@pytest.fixture
async def ws(owner):
    return await create_workspace(owner)


async def prompt_with_versions(client, ws: str, *users: str, system: str = "") -> str:
    response = await client.post(f"/workspaces/{ws}/prompts", json={"name": f"p-{uuid.uuid4().hex[:8]}"})
    pid = response.json()["id"]
    for user in users:
        body = {"system": system, "messages": [{"role": "user", "content": user}], "model_config": MOCK}
        created = await client.post(f"/workspaces/{ws}/prompts/{pid}/versions", json=body)
        assert created.status_code == 201, created.text
    return pid


async def start_grid(client, ws: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/workspaces/{ws}/comparisons", json=body)
    assert response.status_code == 202, response.text
    return response.json()


async def wait_grid(client, ws: str, cid: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        grid = (await client.get(f"/workspaces/{ws}/comparisons/{cid}")).json()
        if grid["status"] == "completed":
            return grid
        assert time.monotonic() < deadline, grid["progress"]
        await asyncio.sleep(0.05)


async def counts(db_engine) -> dict[str, int]:
    async with db_engine.connect() as conn:
        return {
            table: (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            for table in ("run", "comparison", "comparison_cell", "usage_ledger")
        }


def words(text_: str) -> str:
    return "".join(w + " " for w in text_.split())


async def test_a_grid_runs_every_version_and_case_as_ordinary_runs(client, app, ws):
    pid = await prompt_with_versions(client, ws, "Say {{a}}", "Shout {{a}} {{b}}")
    rows = [{"a": "one", "b": "uno"}, {"a": "two", "b": "dos"}]
    accepted = await start_grid(client, ws, prompt_id=pid, versions=[1, 2], rows=rows, name="first")
    cells = accepted["cells"]
    assert [(c["version"], c["row_index"], c["model"]) for c in cells] == [
        (1, 0, "mock-1"),
        (1, 1, "mock-1"),
        (2, 0, "mock-1"),
        (2, 1, "mock-1"),
    ]
    assert accepted["events_url"].endswith(f"/comparisons/{accepted['id']}/events")
    queued = (await client.get(f"/workspaces/{ws}/comparisons/{accepted['id']}")).json()
    assert queued["status"] == "queued" and queued["progress"] == {"done": 0, "total": 4}

    async with RunningWorker(app):
        grid = await wait_grid(client, ws, accepted["id"])
    outputs = [c["output"] for c in grid["cells"]]
    assert outputs == [words("Say one"), words("Say two"), words("Shout one uno"), words("Shout two dos")]
    assert grid["progress"] == {"done": 4, "total": 4} and grid["name"] == "first"
    assert all(
        c["status"] == "succeeded" and c["ttft_ms"] is not None and c["duration_ms"] is not None for c in grid["cells"]
    )

    # Each cell is an ordinary run: its own page has the same output, pinned variables (only its version's).
    first_v1 = await client.get(f"/workspaces/{ws}/runs/{cells[0]['run_id']}")
    assert first_v1.json()["snapshot"]["variables"] == {"a": "one"} and first_v1.json()["output"] == outputs[0]
    runs = [(await client.get(f"/workspaces/{ws}/runs/{c['run_id']}")).json() for c in cells]
    total_cost = sum(Decimal(r["cost_usd"]) for r in runs)
    assert Decimal(grid["totals"]["cost_usd"]) == total_cost
    assert grid["totals"]["output_tokens"] == sum(r["usage"]["output_tokens"] for r in runs)
    assert grid["totals"]["input_tokens"] == sum(r["usage"]["input_tokens"] for r in runs)
    assert [v["version"] for v in grid["by_version"]] == [1, 2]
    assert sum(Decimal(v["cost_usd"]) for v in grid["by_version"]) == total_cost
    assert grid["cases"] == [{"variables": rows[0], "expected": None}, {"variables": rows[1], "expected": None}]

    listed = (await client.get(f"/workspaces/{ws}/comparisons")).json()
    assert [c["id"] for c in listed["items"]] == [accepted["id"]]
    assert listed["items"][0]["status"] == "completed" and listed["items"][0]["progress"]["done"] == 4
    assert Decimal(listed["items"][0]["cost_usd"]) == total_cost and grid["cost_usd"] == grid["totals"]["cost_usd"]
    by_prompt = await client.get(f"/workspaces/{ws}/comparisons", params={"prompt_id": str(uuid.uuid4())})
    assert by_prompt.json()["items"] == []


async def test_a_grid_from_a_dataset_and_with_models_given(client, app, ws):
    pid = await prompt_with_versions(client, ws, "Echo {{q}}")
    dataset = (
        await client.post(
            f"/workspaces/{ws}/datasets", json={"name": "d", "rows": [{"q": "x"}, {"q": "y"}, {"q": "z"}]}
        )
    ).json()
    models = [{"provider": "mock", "model": "mock-1"}]
    accepted = await start_grid(client, ws, prompt_id=pid, versions=[1], models=models, dataset_id=dataset["id"])
    assert len(accepted["cells"]) == 3
    async with RunningWorker(app):
        grid = await wait_grid(client, ws, accepted["id"])
    assert [c["output"] for c in grid["cells"]] == ["Echo x ", "Echo y ", "Echo z "]
    assert grid["dataset_id"] == dataset["id"] and grid["models"] == models
    # The grid keeps its own copy of the cases: deleting the dataset changes nothing in it.
    assert (await client.delete(f"/workspaces/{ws}/datasets/{dataset['id']}")).status_code == 204
    after = (await client.get(f"/workspaces/{ws}/comparisons/{accepted['id']}")).json()
    assert after["dataset_id"] is None and [c["variables"] for c in after["cases"]] == [
        {"q": "x"},
        {"q": "y"},
        {"q": "z"},
    ]


async def test_a_prompt_without_variables_needs_no_rows(client, app, ws):
    pid = await prompt_with_versions(client, ws, "Hello there", "Hello again")
    accepted = await start_grid(client, ws, prompt_id=pid, versions=[2, 1])
    assert [c["version"] for c in accepted["cells"]] == [2, 1]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"versions": [1], "rows": [{"a": "x"}] * 501}, ["body"]),
        ({"versions": [1, 9], "rows": [{"a": "x"}]}, ["body", "versions", 1]),
        ({"versions": [1], "rows": [{"a": "x"}, {"b": "y"}]}, ["body", "rows", 1, "a"]),
        (
            {"versions": [1], "rows": [{"a": "x"}], "models": [{"provider": "mock", "model": "nope"}]},
            ["body", "models", 0],
        ),
        ({"versions": [1, 1], "rows": [{"a": "x"}]}, ["body"]),
        ({"versions": [], "rows": [{"a": "x"}]}, ["body", "versions"]),
        ({"versions": [1], "rows": []}, ["body", "rows"]),
        ({"versions": [1], "rows": [{"a": "x"}], "dataset_id": str(uuid.uuid4())}, ["body"]),
        ({"versions": [1], "rows": [{"a": "x"}], "expected": []}, ["body"]),
        (
            {"versions": [1], "rows": [{"a": "x"}], "assertions": [{"kind": "regex", "value": "("}]},
            ["body", "assertions", 0],
        ),
        ({"versions": [1], "rows": [{"a": "x"}], "assertions": [{"kind": "contains"}]}, ["body", "assertions", 0]),
    ],
)
async def test_an_invalid_grid_is_a_422_naming_the_field_and_starts_nothing(client, ws, db_engine, body, loc):
    pid = await prompt_with_versions(client, ws, "Say {{a}}")
    before = await counts(db_engine)
    problem = assert_problem(await client.post(f"/workspaces/{ws}/comparisons", json={"prompt_id": pid, **body}), 422)
    assert any(e["loc"][: len(loc)] == loc for e in problem["errors"]), problem["errors"]
    assert await counts(db_engine) == before


async def test_exactly_500_cells_are_accepted(client, ws, db_engine):
    pid = await prompt_with_versions(client, ws, "Say {{a}}", "Tell {{a}}")
    rows = [{"a": f"w{i}"} for i in range(250)]
    accepted = await start_grid(client, ws, prompt_id=pid, versions=[1, 2], rows=rows)
    assert len(accepted["cells"]) == 500 and len({c["run_id"] for c in accepted["cells"]}) == 500
    assert (await counts(db_engine))["run"] == 500


async def test_unknown_prompt_or_dataset_is_404(client, ws):
    missing = await client.post(f"/workspaces/{ws}/comparisons", json={"prompt_id": str(uuid.uuid4()), "versions": [1]})
    assert_problem(missing, 404)
    pid = await prompt_with_versions(client, ws, "Say {{a}}")
    body = {"prompt_id": pid, "versions": [1], "dataset_id": str(uuid.uuid4())}
    assert_problem(await client.post(f"/workspaces/{ws}/comparisons", json=body), 404, "dataset-not-found")


async def test_a_budget_that_cannot_cover_the_whole_grid_is_a_402_before_anything_starts(client, ws, db_engine):
    pid = await prompt_with_versions(client, ws, "Say {{a}}")
    limits = await client.put(f"/workspaces/{ws}/limits", json={"monthly_budget_usd": "0.01"})
    assert limits.status_code == 200, limits.text
    before = await counts(db_engine)
    body = {"prompt_id": pid, "versions": [1], "rows": [{"a": str(i)} for i in range(4)]}
    problem = assert_problem(await client.post(f"/workspaces/{ws}/comparisons", json=body), 402, "budget-exhausted")
    assert "grid of 4 runs" in problem["detail"]
    assert Decimal(problem["required_usd"]) > Decimal("0.01") and problem["remaining_usd"] == "0.010000"
    assert await counts(db_engine) == before
    usage = (await client.get(f"/workspaces/{ws}/usage")).json()
    assert Decimal(usage["budget"]["reserved_usd"]) == 0
    # Two cells fit: accepted, and reserved.
    await start_grid(client, ws, prompt_id=pid, versions=[1], rows=[{"a": "1"}, {"a": "2"}])


async def test_a_blocked_cell_blocks_the_grid_and_is_audited(client, ws, db_engine):
    pid = await prompt_with_versions(client, ws, "Reply to {{a}}")
    assert (await client.put(f"/workspaces/{ws}/safety/policy", json={"pii": "block"})).status_code == 200
    before = await counts(db_engine)
    body = {"prompt_id": pid, "versions": [1], "rows": [{"a": "hello"}, {"a": "mail me at jane.doe@example.com"}]}
    assert_problem(await client.post(f"/workspaces/{ws}/comparisons", json=body), 422, "blocked-by-policy")
    assert await counts(db_engine) == before
    log = (await client.get(f"/workspaces/{ws}/audit-log")).json()["items"]
    assert [e["action"] for e in log].count("run.blocked") == 1


async def test_the_grid_counts_as_one_start_against_the_rate_limits(client, ws):
    pid = await prompt_with_versions(client, ws, "Say {{a}}")
    assert (await client.put(f"/workspaces/{ws}/limits", json={"runs_per_minute": 2})).status_code == 200
    rows = [{"a": str(i)} for i in range(5)]
    await start_grid(client, ws, prompt_id=pid, versions=[1], rows=rows)
    await start_grid(client, ws, prompt_id=pid, versions=[1], rows=rows)
    refused = await client.post(f"/workspaces/{ws}/comparisons", json={"prompt_id": pid, "versions": [1], "rows": rows})
    assert_problem(refused, 429)
    assert int(refused.headers["Retry-After"]) >= 1


async def test_a_grid_over_max_queued_runs_is_a_429_and_starts_nothing(client, ws, db_engine):
    pid = await prompt_with_versions(client, ws, "Say {{a}}")
    assert (await client.put(f"/workspaces/{ws}/limits", json={"max_queued_runs": 3})).status_code == 200
    before = await counts(db_engine)
    body = {"prompt_id": pid, "versions": [1], "rows": [{"a": str(i)} for i in range(5)]}
    assert_problem(await client.post(f"/workspaces/{ws}/comparisons", json=body), 429)
    assert await counts(db_engine) == before


async def test_cancel_stops_every_unfinished_cell(client, app, ws):
    app.state.settings = app.state.settings.model_copy(update={"mock_ttft_ms": 5, "mock_token_ms": 40})
    pid = await prompt_with_versions(client, ws, "{{a}}")
    long_text = " ".join(f"w{i}" for i in range(200))
    accepted = await start_grid(client, ws, prompt_id=pid, versions=[1], rows=[{"a": long_text}] * 3)
    async with RunningWorker(app):
        await asyncio.sleep(0.3)
        response = await client.post(f"/workspaces/{ws}/comparisons/{accepted['id']}/cancel")
        assert response.status_code == 202, response.text
        assert len(response.json()["cancelled"]) == 3
        grid = await wait_grid(client, ws, accepted["id"])
    assert [c["status"] for c in grid["cells"]] == ["cancelled"] * 3
    assert all(len(c["output"]) < len(words(long_text)) for c in grid["cells"])
    again = await client.post(f"/workspaces/{ws}/comparisons/{accepted['id']}/cancel")
    assert again.status_code == 202 and again.json()["cancelled"] == []


async def test_rerun_one_cell_keeps_its_history_and_diff_two_cells(client, app, ws):
    pid = await prompt_with_versions(client, ws, "Say {{a}}", "Say {{a}} twice\nagain")
    accepted = await start_grid(client, ws, prompt_id=pid, versions=[1, 2], rows=[{"a": "hi"}])
    first, second = (c["run_id"] for c in accepted["cells"])
    base = f"/workspaces/{ws}/comparisons/{accepted['id']}"
    assert_problem(await client.post(f"{base}/cells/{first}/rerun"), 409, "cell-not-finished")
    async with RunningWorker(app):
        await wait_grid(client, ws, accepted["id"])
        rerun = await client.post(f"{base}/cells/{first}/rerun")
        assert rerun.status_code == 202, rerun.text
        new_id = rerun.json()["run_id"]
        assert new_id != first and rerun.json()["position"] == 0
        grid = await wait_grid(client, ws, accepted["id"])
    cell = grid["cells"][0]
    assert cell["run_id"] == new_id and cell["earlier_run_ids"] == [first] and cell["output"] == "Say hi "
    assert (await client.get(f"/workspaces/{ws}/runs/{new_id}")).json()["rerun_of"] == first
    assert_problem(await client.post(f"{base}/cells/{first}/rerun"), 404, "cell-not-found")
    assert_problem(await client.post(f"{base}/cells/{uuid.uuid4()}/rerun"), 404)

    diff = (await client.get(f"{base}/diff", params={"a": new_id, "b": second})).json()
    assert diff["identical"] is False
    assert "-Say hi \n" in diff["unified"] or "-Say hi " in diff["unified"]
    assert "+Say hi twice again " in diff["unified"]
    same = (await client.get(f"{base}/diff", params={"a": first, "b": new_id})).json()
    assert same["identical"] is True and same["unified"] == ""
    other = await start_grid(client, ws, prompt_id=pid, versions=[1], rows=[{"a": "x"}])
    foreign = other["cells"][0]["run_id"]
    assert_problem(await client.get(f"{base}/diff", params={"a": first, "b": foreign}), 404, "cell-not-found")


async def test_assertions_are_evaluated_per_finished_cell_with_pass_rates_per_version(client, app, ws):
    pid = await prompt_with_versions(client, ws, "{{a}}", "{{a}} extra")
    rows = [{"a": '{"ok": true}'}, {"a": "plain words"}, {"a": "a" * 40 + "!"}]
    assertions = [
        {"kind": "contains", "value": "ok"},
        {"kind": "not_contains", "value": "extra"},
        {"kind": "regex", "value": "^pla.n"},
        {"kind": "is_json"},
        {"kind": "equals_expected"},
    ]
    expected = ['{"ok": true}', None, "nope"]
    accepted = await start_grid(
        client, ws, prompt_id=pid, versions=[1, 2], rows=rows, expected=expected, assertions=assertions
    )
    base = f"/workspaces/{ws}/comparisons/{accepted['id']}"
    # A catastrophic pattern is cut off by its timeout, never hangs the grid.
    slow = await client.post(f"{base}/assertions", json={"kind": "regex", "value": "(a|aa)+$"})
    assert slow.status_code == 201, slow.text
    pending = (await client.get(base)).json()
    assert all(r["passed"] is None for c in pending["cells"] for r in c["assertions"])
    async with RunningWorker(app):
        grid = await wait_grid(client, ws, accepted["id"])

    def results(cell: dict[str, Any]) -> list[bool | None]:
        return [r["passed"] for r in cell["assertions"]]

    cells = grid["cells"]
    # mock output: the words plus a trailing space
    assert results(cells[0])[:5] == [True, True, False, True, True]
    assert results(cells[1])[:5] == [False, True, True, False, None]
    assert results(cells[2])[:5] == [False, True, False, False, False]
    assert results(cells[3])[:5] == [True, False, False, False, False]
    slow_result = cells[2]["assertions"][5]
    assert slow_result["passed"] is None and "longer than" in slow_result["error"]
    v1 = grid["by_version"][0]
    # 6 + 5 + 5 evaluated (no expected output for row 1; the slow pattern on row 2), 4 + 2 + 1 passed
    assert v1["assertions_evaluated"] == 16 and v1["assertions_passed"] == 7
    assert v1["pass_rate"] == round(7 / 16, 4)
    assert [a["kind"] for a in grid["assertions"]] == [*(a["kind"] for a in assertions), "regex"]
    assert (await client.delete(f"{base}/assertions/{slow.json()['id']}")).status_code == 204
    assert_problem(await client.delete(f"{base}/assertions/{slow.json()['id']}"), 404)
    assert_problem(await client.post(f"{base}/assertions", json={"kind": "regex", "value": "a" * 501}), 422)


async def test_ratings_by_editors_aggregate_per_version(client, app, make_client, owner, ws, db_engine):
    pid = await prompt_with_versions(client, ws, "Say {{a}}", "Tell {{a}}")
    accepted = await start_grid(client, ws, prompt_id=pid, versions=[1, 2], rows=[{"a": "x"}])
    base = f"/workspaces/{ws}/comparisons/{accepted['id']}"
    v1_run, v2_run = (c["run_id"] for c in accepted["cells"])
    editor = await signup(make_client())
    await add_member(owner, ws, editor, "editor")
    viewer = await signup(make_client())
    await add_member(owner, ws, viewer, "viewer")

    mine = await client.put(f"{base}/cells/{v1_run}/rating", json={"thumbs": "up", "score": 5, "note": "Crisp-note"})
    assert mine.status_code == 200, mine.text
    assert mine.json()["thumbs"] == "up" and mine.json()["note"] == "Crisp-note"
    assert (await editor.client.put(f"{base}/cells/{v1_run}/rating", json={"score": 3})).status_code == 200
    assert (await editor.client.put(f"{base}/cells/{v2_run}/rating", json={"thumbs": "down"})).status_code == 200
    # A second rating by the same person replaces the first.
    again = await editor.client.put(f"{base}/cells/{v2_run}/rating", json={"thumbs": "down", "score": 2})
    assert again.json()["score"] == 2
    assert_problem(await viewer.client.put(f"{base}/cells/{v1_run}/rating", json={"thumbs": "up"}), 403)
    assert_problem(await client.put(f"{base}/cells/{v1_run}/rating", json={"note": "only a note"}), 422)
    assert_problem(await client.put(f"{base}/cells/{v1_run}/rating", json={"score": 6}), 422)
    assert_problem(await client.put(f"{base}/cells/{uuid.uuid4()}/rating", json={"score": 1}), 404)

    grid = (await viewer.client.get(base)).json()
    v1, v2 = grid["by_version"]
    assert (v1["ratings"], v1["thumbs_up"], v1["thumbs_down"], v1["mean_score"]) == (2, 1, 0, 4.0)
    assert (v2["ratings"], v2["thumbs_up"], v2["thumbs_down"], v2["mean_score"]) == (1, 0, 1, 2.0)
    assert len(grid["cells"][0]["ratings"]) == 2
    async with db_engine.connect() as conn:
        notes = (await conn.execute(text("SELECT note FROM comparison_rating WHERE note IS NOT NULL"))).scalars().all()
    assert notes and all(b"Crisp-note" not in bytes(n) for n in notes)

    assert (await client.delete(f"{base}/cells/{v1_run}/rating")).status_code == 204
    assert_problem(await client.delete(f"{base}/cells/{v1_run}/rating"), 404)


async def test_viewers_read_strangers_get_404(client, make_client, owner, ws):
    pid = await prompt_with_versions(client, ws, "Say {{a}}")
    accepted = await start_grid(client, ws, prompt_id=pid, versions=[1], rows=[{"a": "x"}])
    viewer = await signup(make_client())
    await add_member(owner, ws, viewer, "viewer")
    base = f"/workspaces/{ws}/comparisons/{accepted['id']}"
    assert (await viewer.client.get(base)).status_code == 200
    assert_problem(
        await viewer.client.post(f"/workspaces/{ws}/comparisons", json={"prompt_id": pid, "versions": [1]}), 403
    )
    assert_problem(await viewer.client.post(f"{base}/cancel"), 403)
    stranger = await signup(make_client())
    theirs = await create_workspace(stranger, "Theirs")
    assert_problem(await stranger.client.get(f"/workspaces/{theirs}/comparisons/{accepted['id']}"), 404)
    assert_problem(await stranger.client.get(base), 404)


async def test_the_grid_and_its_cases_are_sealed_at_rest(client, ws, db_engine):
    pid = await prompt_with_versions(client, ws, "Say {{a}}")
    secret = "Quokka-sealed-value"
    await start_grid(
        client,
        ws,
        prompt_id=pid,
        versions=[1],
        rows=[{"a": secret}],
        assertions=[{"kind": "contains", "value": "Narwhal-x"}],
    )
    async with db_engine.connect() as conn:
        cases = (await conn.execute(text("SELECT cases FROM comparison"))).scalar_one()
        argument = (await conn.execute(text("SELECT argument FROM comparison_assertion"))).scalar_one()
    assert secret.encode() not in bytes(cases) and b"Narwhal" not in bytes(argument)


async def test_a_model_graded_check_runs_its_rubric_as_ordinary_runs_with_their_own_cost(client, app, ws):
    pid = await prompt_with_versions(client, ws, "Say {{a}}")
    rubric = await prompt_with_versions(client, ws, "{{expected}} {{output}}")
    no_output = await prompt_with_versions(client, ws, "Judge {{a}}")
    graded = [{"kind": "model_graded", "prompt_id": rubric}]
    bad = {
        "prompt_id": pid,
        "versions": [1],
        "rows": [{"a": "x"}],
        "assertions": [{"kind": "model_graded", "prompt_id": no_output}],
    }
    assert_problem(await client.post(f"/workspaces/{ws}/comparisons", json=bad), 422)
    plain = await start_grid(client, ws, prompt_id=pid, versions=[1], rows=[{"a": "x"}])
    assert_problem(await client.post(f"/workspaces/{ws}/comparisons/{plain['id']}/grade"), 422)

    accepted = await start_grid(
        client,
        ws,
        prompt_id=pid,
        versions=[1],
        rows=[{"a": "x"}, {"a": "y"}],
        expected=["PASS", "FAIL"],
        assertions=graded,
    )
    base = f"/workspaces/{ws}/comparisons/{accepted['id']}"
    async with RunningWorker(app):
        await wait_grid(client, ws, accepted["id"])
        before = (await client.get(base)).json()
        assert [c["assertions"][0]["passed"] for c in before["cells"]] == [None, None]
        assert before["cells"][0]["assertions"][0]["error"].startswith("not graded yet")
        started = await client.post(f"{base}/grade")
        assert started.status_code == 202, started.text
        gradings = started.json()["gradings"]
        assert [g["run_id"] for g in gradings] == [c["run_id"] for c in accepted["cells"]]
        again = await client.post(f"{base}/grade")
        assert again.json()["gradings"] == []
        deadline = time.monotonic() + 20
        while True:
            grid = (await client.get(base)).json()
            if all(c["assertions"][0]["error"] != "grading" for c in grid["cells"]):
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    results = [c["assertions"][0] for c in grid["cells"]]
    assert [r["passed"] for r in results] == [True, False]
    assert all(r["model_graded"] for r in results) and grid["assertions"][0]["model_graded"] is True
    assert [r["grader_run_id"] for r in results] == [g["grader_run_id"] for g in gradings]
    grader_runs = [(await client.get(f"/workspaces/{ws}/runs/{g['grader_run_id']}")).json() for g in gradings]
    assert grader_runs[0]["output"] == "PASS Say x " and grader_runs[0]["prompt_id"] == rubric
    assert Decimal(grid["totals"]["grading_cost_usd"]) == sum(Decimal(r["cost_usd"]) for r in grader_runs)
    cell_runs = [(await client.get(f"/workspaces/{ws}/runs/{c['run_id']}")).json() for c in grid["cells"]]
    assert Decimal(grid["totals"]["cost_usd"]) == sum(Decimal(r["cost_usd"]) for r in cell_runs)
    assert grid["by_version"][0]["pass_rate"] == 0.5
