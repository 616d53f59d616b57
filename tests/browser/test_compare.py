"""Compare and evaluate in the browser: a CSV dataset imported (a bad file's line-numbered error shown), a
grid of two versions by its cases started from the form, every cell streamed over ONE EventSource until
the progress reaches the total, then a check with pass rates per version, a rating, a diff of two cells
and one cell rerun (streamed on the reopened connection, which resumes every other cell)."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import screenshot
from tests.browser.helpers import api, seeded_prompt

pytestmark = pytest.mark.slow  # a real `playground up` and Chromium

# Three cases of 48, 52 and 56 words: at 50 ms a token each cell streams for about 2.5 s or more, long enough
# to be seen streaming on a busy machine.
CASES = [" ".join(f"w{i}c{n}" for i in range(1, n + 1)) for n in (48, 52, 56)]
GOOD_CSV = ("text\n" + "\n".join(CASES) + "\n").encode()
BAD_CSV = b"text,tone\nhello,warm\nonly one value\n"


def expected_output(prefix: str, case: str) -> str:
    return f"{prefix} {case} "  # the mock answers the words of the message, each followed by a space


def cost_of(case: str) -> int:
    """Micro-dollars of one cell: every word of the message in and out, at $3 and $15 per million."""
    words = len(case.split()) + 1
    return words * 3 + words * 15


@pytest.fixture
def expected_http_errors() -> list[int]:
    return [402, 422]  # over budget; the bad CSV file, cases without the version's variable


async def test_a_grid_streams_over_one_connection_and_is_evaluated(page: Page):
    ws, prompt_id = await seeded_prompt(page, "comparer", ["x"] * 70)
    second = {
        "system": "",
        "messages": [{"role": "user", "content": "Echo: {{text}}"}],
        "model_config": {"provider": "mock", "model": "mock-1", "max_tokens": 80},
        "message": "echo instead",
    }
    await api(page, "POST", f"/workspaces/{ws}/prompts/{prompt_id}/versions", second)

    # A bad CSV file: the server's error names the line, shown as it is.
    await page.goto(f"/w/{ws}/datasets")
    await page.get_by_test_id("dataset-import-file").set_input_files(
        files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": BAD_CSV}]
    )
    await page.get_by_test_id("dataset-import-submit").click()
    await expect(page.get_by_test_id("dataset-import-error")).to_contain_text("The file was not imported")
    await expect(page.get_by_test_id("dataset-import-error")).to_contain_text(re.compile(r"line 3\b"))
    await screenshot(page, "datasets")

    # A good one: its cases are listed under the file's name.
    await page.get_by_test_id("dataset-import-file").set_input_files(
        files=[{"name": "cases.csv", "mimeType": "text/csv", "buffer": GOOD_CSV}]
    )
    await page.get_by_test_id("dataset-import-submit").click()
    await page.wait_for_url(re.compile(r"/datasets/[0-9a-f-]{36}$"))
    await expect(page.get_by_role("heading", name="cases")).to_be_visible()
    await expect(page.get_by_test_id("dataset-rows").locator("tbody tr")).to_have_count(3)
    await expect(page.get_by_test_id("dataset-rows")).to_contain_text(CASES[2])
    await screenshot(page, "dataset")

    # A grid of both versions by the three cases, started from the form; every request to a grid's event
    # stream is counted.
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if re.search(r"/comparisons/[^/]+/events", r.url) else None)
    await page.get_by_role("link", name="Compare versions on it").click()
    await page.get_by_test_id("compare-prompt").select_option(prompt_id)
    await page.get_by_test_id("compare-version-1").check()
    await page.get_by_test_id("compare-version-2").check()
    await expect(page.get_by_test_id("compare-cell-count")).to_contain_text("6 cells")
    await page.get_by_test_id("compare-start").click()
    await page.wait_for_url(re.compile(r"/compare/[0-9a-f-]{36}$"))
    comparison_id = page.url.rsplit("/", 1)[1]

    # Cells fill in as their tokens stream: a running cell holds part of its answer.
    grid = page.get_by_test_id("compare-grid")
    first = grid.get_by_test_id("compare-cell-0")
    await expect(first.get_by_test_id("cell-status")).to_have_text("running")
    await expect(first.get_by_test_id("cell-output")).to_contain_text("Repeat: w1c48")
    partial = await first.get_by_test_id("cell-output").text_content() or ""
    assert partial != expected_output("Repeat:", CASES[0]), "the first cell had finished before any text was seen"
    await expect(page.get_by_test_id("compare-status")).to_contain_text("running")

    # Progress reaches the total; every cell holds exactly its answer, with its cost and timings.
    await expect(page.get_by_test_id("compare-progress")).to_have_text("6/6", timeout=60_000)
    await expect(page.get_by_test_id("compare-status")).to_have_text("completed · 6/6")
    for position in range(6):
        prefix, case = ("Repeat:", CASES[position]) if position < 3 else ("Echo:", CASES[position - 3])
        cell = grid.get_by_test_id(f"compare-cell-{position}")
        await expect(cell.get_by_test_id("cell-status")).to_have_text("succeeded")
        await expect(cell.get_by_test_id("cell-output")).to_have_text(expected_output(prefix, case))
        await expect(cell.get_by_test_id("cell-cost")).to_have_text(f"${cost_of(case) / 1e6:.6f}")
        await expect(cell.get_by_test_id("cell-ttft")).to_have_text(re.compile(r"^\d+ ms$"))
    total = 2 * sum(cost_of(case) for case in CASES)
    await expect(page.get_by_test_id("compare-cost")).to_have_text(f"${total / 1e6:.6f}")
    words = 2 * sum(len(case.split()) + 1 for case in CASES)
    await expect(page.get_by_test_id("compare-tokens")).to_have_text(f"{words} / {words}")
    assert len(streams) == 1, f"the grid opened {len(streams)} event streams: {streams}"
    server_totals = (await api(page, "GET", f"/workspaces/{ws}/comparisons/{comparison_id}"))["totals"]
    assert round(float(server_totals["cost_usd"]) * 1e6) == total

    # A check: only version 2 says "Echo", so its pass rate is 100 % and version 1's is 0 %.
    await page.get_by_test_id("assertion-kind").select_option("contains")
    await page.get_by_test_id("assertion-value").fill("Echo")
    await page.get_by_test_id("assertion-add").click()
    await expect(page.get_by_test_id("compare-pass-rate-1")).to_have_text("0% (0/3)")
    await expect(page.get_by_test_id("compare-pass-rate-2")).to_have_text("100% (3/3)")
    await expect(first.get_by_test_id("cell-checks")).to_contain_text("fail")

    # A rating of one cell, shown on the cell and in its version's aggregate.
    await first.get_by_test_id("cell-thumbs-up").click()
    await expect(first.get_by_test_id("cell-thumbs-up")).to_have_attribute("aria-pressed", "true")
    await first.get_by_test_id("cell-score").select_option("4")
    await expect(page.get_by_test_id("compare-ratings-1")).to_have_text("▲ 1 · ▼ 0 · mean 4.0/5 (1)")
    await expect(page.get_by_test_id("compare-ratings-2")).to_have_text("—")
    await first.get_by_text("Note", exact=True).click()
    await first.get_by_test_id("cell-note").fill("Repeats the prefix")
    await first.get_by_test_id("cell-note-save").click()
    await expect(first.get_by_test_id("cell-rating-summary")).to_have_text("▲ 1 · ▼ 0 · 4.0/5 · 1 note(s)")

    # The diff of the same case under both versions.
    await first.get_by_test_id("cell-diff-select").check()
    await grid.get_by_test_id("compare-cell-3").get_by_test_id("cell-diff-select").check()
    diff = page.get_by_test_id("compare-diff-text")
    await expect(diff).to_contain_text(f"-Repeat: {CASES[0]}")
    await expect(diff).to_contain_text(f"+Echo: {CASES[0]}")
    await screenshot(page, "compare-evaluated")

    # Rerun one cell: a new run, streamed on a reopened connection that resumes every other cell where it was.
    rerun_cell = grid.get_by_test_id("compare-cell-5")
    old_run = await rerun_cell.get_attribute("data-run-id")
    await rerun_cell.get_by_test_id("cell-rerun").click()
    await expect(rerun_cell).not_to_have_attribute("data-run-id", old_run or "")
    await expect(page.get_by_test_id("compare-status")).to_contain_text("running")
    await expect(rerun_cell.get_by_test_id("cell-status")).to_have_text("succeeded", timeout=30_000)
    await expect(rerun_cell.get_by_test_id("cell-output")).to_have_text(expected_output("Echo:", CASES[2]))
    await expect(rerun_cell).to_contain_text("reruns: 1")
    await expect(page.get_by_test_id("compare-progress")).to_have_text("6/6")
    # Totals are those of the cells' current runs (as the server's): the rerun replaced a run of the same cost.
    await expect(page.get_by_test_id("compare-cost")).to_have_text(f"${total / 1e6:.6f}")
    assert len(streams) == 2, streams
    assert "positions=" in streams[1], "the reopened stream did not resume the cells it had heard from"
    # The other cells kept their answers (nothing repeated by the resumed stream).
    await expect(first.get_by_test_id("cell-output")).to_have_text(expected_output("Repeat:", CASES[0]))

    # The history lists it, completed.
    await page.goto(f"/w/{ws}/compare")
    row = page.get_by_test_id("comparison-list").locator("tr", has=page.get_by_role("link"))
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("completed")
    await expect(row).to_contain_text("6/6")
    await expect(row).to_contain_text(f"${total / 1e6:.6f}")
    other = await api(page, "POST", f"/workspaces/{ws}/prompts", {"name": "another", "description": ""})
    await page.reload()
    await page.get_by_test_id("comparison-filter-prompt").select_option(other["id"])
    await expect(page.get_by_text("No comparisons of this prompt yet.")).to_be_visible()
    await page.get_by_test_id("comparison-filter-prompt").select_option(prompt_id)
    await expect(row).to_have_count(1)
    await screenshot(page, "comparisons")


async def test_typed_in_cases_a_refused_grid_and_a_model_graded_check(page: Page):
    ws, prompt_id = await seeded_prompt(page, "grader", ["x"] * 10)
    rubric = await api(page, "POST", f"/workspaces/{ws}/prompts", {"name": "rubric", "description": ""})
    rubric_version = {
        "system": "",
        "messages": [{"role": "user", "content": "PASS {{output}}"}],  # the mock's answer begins with PASS
        "model_config": {"provider": "mock", "model": "mock-1", "max_tokens": 40},
        "message": "always passes",
    }
    await api(page, "POST", f"/workspaces/{ws}/prompts/{rubric['id']}/versions", rubric_version)

    # A dataset typed in as a table, a case added on its page, then deleted after a confirmation.
    await page.goto(f"/w/{ws}/datasets")
    await page.get_by_test_id("dataset-name").fill("typed")
    await page.get_by_test_id("dataset-rows-column-0").fill("text")
    await page.get_by_test_id("dataset-rows-cell-0-0").fill("hello there")
    await page.get_by_role("button", name="Add row").click()
    await page.get_by_test_id("dataset-rows-cell-1-0").fill("general kenobi")
    await page.get_by_test_id("dataset-create").click()
    await page.wait_for_url(re.compile(r"/datasets/[0-9a-f-]{36}$"))
    rows = page.get_by_test_id("dataset-rows").locator("tbody tr")
    await expect(rows).to_have_count(2)
    await page.get_by_test_id("dataset-add-text").fill("a third case")
    await page.get_by_test_id("dataset-add-expected").fill("Repeat: a third case")
    await page.get_by_test_id("dataset-add-submit").click()
    await expect(rows).to_have_count(3)
    await expect(rows.nth(2)).to_contain_text("Repeat: a third case")
    await page.get_by_role("button", name="Delete", exact=True).click()
    await page.get_by_role("button", name="Delete for good").click()
    await page.wait_for_url(f"**/w/{ws}/datasets")
    await expect(page.get_by_text("No datasets yet")).to_be_visible()

    # Cases typed in as JSON that lack the version's variable: the server's 422 names the place.
    await page.goto(f"/w/{ws}/compare")
    await page.get_by_test_id("compare-prompt").select_option(prompt_id)
    await page.get_by_test_id("compare-version-1").check()
    await page.get_by_role("button", name="Typed in").click()
    await page.get_by_role("button", name="JSON").click()
    await page.get_by_test_id("compare-rows-json").fill('[{"other": "x"}]')
    await page.get_by_test_id("compare-start").click()
    error = page.get_by_test_id("compare-error")
    await expect(error).to_contain_text("The comparison was not started")
    await expect(error).to_contain_text("rows.0.text")

    # With the variable but over this month's budget: a 402 saying what the grid could cost, nothing started.
    await api(page, "PUT", f"/workspaces/{ws}/limits", {"monthly_budget_usd": "0.000001"})
    await page.get_by_test_id("compare-rows-json").fill('[{"text": "alpha beta"}]')
    await page.get_by_test_id("compare-start").click()
    await expect(error).to_contain_text("Over budget: nothing was started")
    await expect(error).to_contain_text(re.compile(r"Needs up to \$[0-9.]+; \$0\.000001 left this month"))
    assert (await api(page, "GET", f"/workspaces/{ws}/comparisons"))["items"] == []

    # Within budget it runs; a model-graded check then judges its one cell, marked as such, with its own cost.
    await api(page, "PUT", f"/workspaces/{ws}/limits", {"monthly_budget_usd": None})
    await page.get_by_test_id("compare-start").click()
    await page.wait_for_url(re.compile(r"/compare/[0-9a-f-]{36}$"))
    await expect(page.get_by_test_id("compare-status")).to_have_text("completed · 1/1", timeout=30_000)
    cell = page.get_by_test_id("compare-cell-0")
    await expect(cell.get_by_test_id("cell-output")).to_have_text("Repeat: alpha beta ")
    await page.get_by_test_id("assertion-kind").select_option("model_graded")
    await page.get_by_test_id("assertion-rubric").select_option(rubric["id"])
    await page.get_by_test_id("assertion-add").click()
    await expect(page.get_by_test_id("compare-assertions")).to_contain_text("model-graded")
    await page.get_by_test_id("compare-grade").click()
    await expect(cell.get_by_test_id("cell-checks")).to_contain_text("model-graded rubric: pass", timeout=20_000)
    await expect(page.get_by_test_id("compare-graded-rate-1")).to_have_text("100% (1/1)")
    await expect(page.get_by_test_id("compare-pass-rate-1")).to_have_text("—")  # no rule checks
    # The rubric read "PASS Repeat: alpha beta" (4 words in, 4 out at $3/$15 per million), apart from the grid's cost.
    await expect(page.get_by_test_id("compare-grading-cost")).to_have_text(f"${4 * 18 / 1e6:.6f}")
    await expect(page.get_by_test_id("compare-cost")).to_have_text(f"${3 * 18 / 1e6:.6f}")


async def test_a_grid_reloaded_while_it_streams_ends_with_every_answer_once(page: Page):
    ws, prompt_id = await seeded_prompt(page, "reloader", ["x"] * 70)
    cases = [" ".join(f"r{row}w{i}" for i in range(1, 61)) for row in (1, 2)]  # 3 s of tokens per cell
    body = {"prompt_id": prompt_id, "versions": [1], "rows": [{"text": case} for case in cases]}
    accepted = await api(page, "POST", f"/workspaces/{ws}/comparisons", body)
    await page.goto(f"/w/{ws}/compare/{accepted['id']}")
    first = page.get_by_test_id("compare-cell-0")
    await expect(first.get_by_test_id("cell-output")).to_contain_text("r1w5 ")
    await expect(first.get_by_test_id("cell-status")).to_have_text("running")

    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if re.search(r"/comparisons/[^/]+/events", r.url) else None)
    await page.reload()
    # What had streamed is back at once (the summary), then the rest streams in: every word once, in order.
    await expect(first.get_by_test_id("cell-output")).to_contain_text("r1w5 ")
    await expect(page.get_by_test_id("compare-status")).to_have_text("completed · 2/2", timeout=30_000)
    for position, case in enumerate(cases):
        await expect(page.get_by_test_id(f"compare-cell-{position}").get_by_test_id("cell-output")).to_have_text(
            expected_output("Repeat:", case)
        )
    assert len(streams) == 1, streams


async def test_cancel_all_stops_every_unfinished_cell(page: Page):
    ws, prompt_id = await seeded_prompt(page, "canceller", ["x"] * 70)
    rows = [{"text": " ".join(f"c{row}w{i}" for i in range(1, 61))} for row in range(3)]
    body = {"prompt_id": prompt_id, "versions": [1], "rows": rows}
    accepted = await api(page, "POST", f"/workspaces/{ws}/comparisons", body)
    await page.goto(f"/w/{ws}/compare/{accepted['id']}")
    await expect(page.get_by_test_id("compare-cell-0").get_by_test_id("cell-output")).to_contain_text("c0w3 ")
    await page.get_by_test_id("compare-cancel").click()
    await expect(page.get_by_test_id("compare-status")).to_have_text("completed · 3/3", timeout=15_000)
    cells = [page.get_by_test_id(f"compare-cell-{p}") for p in range(3)]
    statuses = [await cell.get_by_test_id("cell-status").inner_text() for cell in cells]
    assert statuses == ["cancelled"] * 3, statuses
    await expect(page.get_by_test_id("compare-cancel")).to_have_count(0)
    # What streamed before the cancel stays, and it costs what was used.
    await expect(page.get_by_test_id("compare-cell-0").get_by_test_id("cell-output")).to_contain_text("c0w3 ")
    await expect(page.get_by_test_id("compare-cell-0").get_by_test_id("cell-cost")).not_to_have_text("—")
