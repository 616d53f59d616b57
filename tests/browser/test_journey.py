"""A person's first session in the browser, end to end against a real `playground up`:
sign up → prompt → variables → run → tokens arrive while running → stop → versions → diff → comment →
the cost on the usage page; and every main screen pictured on the way."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import screenshot, unique_email
from tests.browser.helpers import PASSWORD, api, create_prompt, output_text, sign_up, type_into

pytestmark = pytest.mark.slow  # a real `playground up` and Chromium

WORDS = [f"w{i}" for i in range(1, 151)]  # 150 mock tokens ≈ 7.5 s at 50 ms each: time to stop, even on a busy CI


async def test_author_run_stop_version_diff_comment_and_see_the_cost(page: Page):
    await page.goto("/")
    await page.wait_for_url("**/login?next=*")
    await screenshot(page, "login")
    _email, ws = await sign_up(page, "Ada", "Acme")
    prompt_id = await create_prompt(page, "greeter")
    await expect(page.get_by_test_id("version-list")).to_be_attached()

    await type_into(page, "system-editor", "You are {{persona}}.")
    await type_into(page, "message-editor-0", "Repeat: {{text}}")
    await page.get_by_test_id("variable-input-persona").fill("a parrot")
    await page.get_by_test_id("variable-input-text").fill(" ".join(WORDS))
    await expect(page.get_by_test_id("model-select")).to_have_value("mock/mock-1")
    await expect(page.get_by_text(re.compile(r"Estimate: \d+ input tokens"))).to_be_visible()

    # Ctrl+Enter runs; the text streams in while the status says running.
    await page.get_by_test_id("variable-input-text").press("Control+Enter")
    await expect(page.get_by_test_id("run-status")).to_contain_text("running")
    await expect(page.get_by_test_id("run-output")).to_contain_text("w3 ")
    first = await output_text(page)
    await expect(page.get_by_test_id("run-output")).not_to_have_text(first)  # more tokens keep arriving
    await expect(page.get_by_test_id("run-status")).to_contain_text("running")
    await expect(page.get_by_test_id("run-tokens")).to_contain_text(re.compile(r"[1-9]\d* out"))
    await screenshot(page, "editor-streaming")

    await page.get_by_test_id("stop-button").click()
    await expect(page.get_by_test_id("run-status")).to_contain_text("cancelled")
    stopped = await output_text(page)
    expected = "Repeat: " + " ".join(WORDS) + " "
    assert expected.startswith(stopped) and len(stopped) < len(expected), stopped
    await expect(page.get_by_test_id("run-cost")).to_have_text(re.compile(r"^\$0\.0\d+$"))
    run_cost = await page.get_by_test_id("run-cost").inner_text()

    # Running the draft pinned it as v1; saving the same content names that version.
    await page.get_by_test_id("version-message").fill("first draft")
    await page.get_by_test_id("save-version-button").click()
    await expect(page.get_by_test_id("saved-version")).to_have_text("Saved as v1")
    await expect(page.get_by_test_id("version-list").locator("li")).to_have_count(1)

    await type_into(page, "message-editor-0", "Repeat twice: {{text}}")
    await expect(page.get_by_text("Unsaved changes")).to_be_visible()
    # Leaving with unsaved changes asks first; staying keeps everything as it was.
    await page.get_by_role("link", name="Runs").click()
    dialog = page.get_by_role("alertdialog", name="Leave with unsaved changes?")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Stay").click()
    await expect(dialog).to_have_count(0)
    await expect(page.get_by_test_id("message-editor-0")).to_contain_text("Repeat twice: {{text}}")
    await page.get_by_test_id("version-message").fill("say it twice")
    await page.get_by_test_id("save-version-button").click()
    await expect(page.get_by_test_id("saved-version")).to_have_text("Saved as v2")
    await expect(page.get_by_test_id("version-list").locator("li")).to_have_count(2)
    await expect(page.get_by_text("Unsaved changes")).to_have_count(0)
    await screenshot(page, "editor")

    # The diff of v2 against v1, then a comment on v2.
    await page.get_by_test_id("version-list").get_by_role("link", name="v2").click()
    await page.wait_for_url(f"**/w/{ws}/prompts/{prompt_id}/versions/2")
    diff = page.get_by_test_id("diff-view")
    await expect(diff).to_contain_text("Repeat: {{text}}")
    await expect(diff).to_contain_text("Repeat twice: {{text}}")
    await page.get_by_test_id("comment-input").fill("Twice reads better.")
    await page.get_by_test_id("comment-submit").click()
    await expect(page.get_by_test_id("comment-list")).to_contain_text("Twice reads better.")
    await expect(page.get_by_test_id("comment-list")).to_contain_text("Ada ·")
    await page.get_by_test_id("comment-input").fill("A typo")
    await page.get_by_test_id("comment-submit").click()
    await expect(page.get_by_test_id("comment-list").locator("li")).to_have_count(2)
    await page.get_by_role("button", name="Delete the comment “A typo”").click()
    await expect(page.get_by_test_id("comment-list").locator("li")).to_have_count(1)
    await page.get_by_role("button", name="Point at v2").click()  # the label "production"
    await expect(page.get_by_role("region", name="Labels")).to_contain_text("production → v2")
    await expect(page.get_by_test_id("version-list").locator("li").first).to_contain_text("production")
    await screenshot(page, "version-diff-comments")

    # Both versions side by side on the draft's variable values: a comparison of two runs.
    await page.get_by_role("button", name="Run v1 and v2 side by side").click()
    await page.wait_for_url(f"**/w/{ws}/compare/*")
    grid = page.get_by_test_id("compare-grid")
    await expect(grid.get_by_role("cell")).to_have_count(2)
    await expect(page.get_by_test_id("compare-status")).to_contain_text("completed · 2/2", timeout=30_000)
    await expect(grid).to_contain_text("Repeat twice: w1 w2 ")  # v2 answers with its rendered message
    await screenshot(page, "compare")
    compare_cost = await page.get_by_test_id("compare-cost").inner_text()
    await page.go_back()

    # The run in the history and its detail page.
    await page.get_by_role("link", name="Runs").click()
    await expect(page.get_by_role("table", name="Runs")).to_contain_text("cancelled")
    await page.get_by_label("Status").select_option("failed")
    await expect(page.get_by_text("No runs match")).to_be_visible()
    await page.get_by_label("Status").select_option("cancelled")
    await expect(page.get_by_role("table", name="Runs").locator("tbody tr")).to_have_count(1)
    await screenshot(page, "runs")
    await page.get_by_role("table", name="Runs").get_by_role("link").first.click()
    await expect(page.get_by_test_id("run-status")).to_have_text("cancelled")
    await expect(page.get_by_test_id("run-cost")).to_have_text(run_cost)
    await expect(page.get_by_test_id("run-output")).to_have_text(stopped)
    await screenshot(page, "run-detail")

    # The usage dashboard counts the cancelled run's cost.
    await page.get_by_role("link", name="Usage").click()
    await expect(page.get_by_test_id("usage-chart")).to_be_visible()
    # The usage total is the cancelled run plus the comparison's two runs, to the micro-dollar.
    micros = round((float(run_cost[1:]) + float(compare_cost[1:])) * 1_000_000)
    await expect(page.get_by_test_id("usage-total-cost")).to_have_text(f"${micros / 1e6:.6f}")
    await expect(page.get_by_test_id("budget-gauge")).to_be_visible()
    await screenshot(page, "usage")
    spend_by = page.get_by_role("group", name="Group spend by")
    await spend_by.get_by_role("button", name="By model").click()
    await expect(page.get_by_test_id("usage-chart").get_by_role("table")).to_contain_text("mock/mock-1")
    await spend_by.get_by_role("button", name="By prompt").click()
    await expect(page.get_by_test_id("usage-chart").get_by_role("table")).to_contain_text("greeter")

    await page.get_by_role("link", name="Settings").click()
    await expect(page.get_by_role("region", name="Members")).to_contain_text("Ada")
    await page.get_by_label("Key name").fill("ci")
    await page.get_by_role("button", name="Create key").click()
    await expect(page.get_by_test_id("api-key-secret")).to_contain_text("pp")
    await screenshot(page, "settings")

    await page.get_by_role("link", name="Safety").click()
    await expect(page.get_by_test_id("safety-flags")).to_be_attached()
    await page.get_by_role("link", name="Prompts").click()
    await expect(page.get_by_role("table", name="Prompts")).to_contain_text("greeter")
    await screenshot(page, "prompts")

    # A second workspace from the switcher; switching back shows the first one's prompts.
    await page.get_by_test_id("workspace-switcher").select_option("+")
    await page.get_by_label("Workspace name").fill("Side project")
    await page.get_by_role("button", name="Create workspace").click()
    await expect(page.get_by_text("No prompts yet")).to_be_visible()
    await expect(page.get_by_test_id("workspace-switcher")).to_contain_text("Side project (owner)")
    await page.get_by_test_id("workspace-switcher").select_option(ws)
    await expect(page.get_by_role("table", name="Prompts")).to_contain_text("greeter")


async def test_errors_show_the_problem_detail(page: Page, expected_http_errors: list[int]):
    expected_http_errors.append(409)
    await sign_up(page, "Bob", "Bobs")
    await create_prompt(page, "twin")
    await page.get_by_role("link", name="Prompts").click()
    await page.get_by_test_id("new-prompt-name").fill("twin")
    await page.get_by_role("button", name="New prompt").click()
    await expect(page.get_by_role("alert")).to_contain_text("A prompt named 'twin' already exists in this workspace")
    await expect(page.get_by_role("table", name="Prompts").locator("tbody tr")).to_have_count(1)


async def test_thinking_tool_call_and_get_code(page: Page, expected_http_errors: list[int]):
    """A version with a tool the model must call and a thinking budget, run in the editor: the thinking and
    the tool call show live and in run detail; "Get code" writes a program for the draft and for the run.
    Then the editor's own fields: an invalid thinking budget shows the server's detail, and an output schema
    instead of the tool gives a structured answer that matches it."""
    expected_http_errors.append(422)
    await api(page, "POST", "/auth/signup", {"email": unique_email("tina"), "password": PASSWORD, "name": "Tina"})
    ws = (await api(page, "POST", "/workspaces", {"name": "Tools"}))["id"]
    prompt = await api(page, "POST", f"/workspaces/{ws}/prompts", {"name": "searcher", "description": ""})
    tool = {
        "name": "search",
        "description": "Searches the web",
        "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    }
    version = {
        "system": "",
        "messages": [{"role": "user", "content": "Find {{topic}}"}],
        "model_config": {"provider": "mock", "model": "mock-1", "max_tokens": 2048, "thinking_budget": 1024},
        "tools": [tool],
        "tool_choice": {"type": "any"},
        "message": "with a tool",
    }
    await api(page, "POST", f"/workspaces/{ws}/prompts/{prompt['id']}/versions", version)

    await page.goto(f"/w/{ws}/prompts/{prompt['id']}")
    await page.get_by_test_id("variable-input-topic").fill("red apples")
    await page.get_by_test_id("run-button").click()
    await expect(page.get_by_test_id("run-status")).to_contain_text("succeeded")
    await expect(page.get_by_test_id("run-thinking")).to_contain_text("apples red Find")
    card = page.get_by_test_id("tool-use")
    await expect(card).to_have_count(1)
    await expect(card.get_by_test_id("tool-use-name")).to_have_text("search")
    await expect(card.get_by_test_id("tool-use-input")).to_have_text('{\n  "query": "Find red apples"\n}')
    assert await output_text(page) == ""

    # Get code for the draft: the same request, in each language.
    await page.get_by_test_id("get-code-button").click()
    dialog = page.get_by_test_id("code-dialog")
    # A mock run's program calls this playground's own API with the same version and variables.
    await expect(dialog.get_by_test_id("code-text")).to_contain_text(prompt["id"])
    await expect(dialog.get_by_test_id("code-text")).to_contain_text("red apples")
    await expect(dialog.get_by_test_id("code-text")).to_contain_text("PLAYGROUND_API_KEY")
    await dialog.get_by_test_id("code-tab-curl").click()
    await expect(dialog.get_by_test_id("code-text")).to_contain_text("curl")
    await dialog.get_by_role("button", name="Close").click()
    await expect(dialog).to_have_count(0)

    # The run's own page shows the same, and its code.
    await page.get_by_test_id("run-output").locator("xpath=..").get_by_role("link").first.click()
    await expect(page.get_by_test_id("run-status")).to_have_text("succeeded")
    await expect(page.get_by_test_id("tool-use-name")).to_have_text("search")
    await expect(page.get_by_test_id("run-thinking")).to_contain_text("apples red Find")
    await page.get_by_test_id("get-code-button").click()
    await dialog.get_by_test_id("code-tab-typescript").click()
    await expect(dialog.get_by_test_id("code-text")).to_contain_text(prompt["id"])
    await expect(dialog.get_by_test_id("code-text")).to_contain_text("red apples")

    # Back in the editor: the version's tool is in its form and in its JSON box; a thinking budget too small
    # is refused.
    await page.goto(f"/w/{ws}/prompts/{prompt['id']}")
    await expect(page.get_by_test_id("tool-name-0")).to_have_value("search")
    await page.get_by_test_id("tools-view-json").click()
    await expect(page.get_by_test_id("tools-json")).to_have_value(re.compile(r'"name": "search"'))
    await expect(page.get_by_test_id("tool-choice")).to_have_value("any")
    await page.get_by_test_id("thinking-budget").fill("10")
    await page.get_by_test_id("run-button").click()
    await expect(page.get_by_role("alert").filter(has_text="Could not run")).to_contain_text("thinking_budget")
    await page.get_by_test_id("tools-json").fill("[{")
    await expect(page.get_by_test_id("tools-json-error")).to_contain_text("Invalid JSON")

    # No tools, no thinking, an output schema: the answer is JSON that matches it.
    await page.get_by_test_id("thinking-budget").fill("")
    await page.get_by_test_id("tools-json").fill("")
    schema = '{"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}'
    await page.get_by_test_id("output-schema-json").fill(schema)
    await page.get_by_test_id("run-button").click()
    await expect(page.get_by_test_id("run-status")).to_contain_text("succeeded")
    await expect(page.get_by_test_id("run-output")).to_have_text('{"answer": "Find red apples"}')
    await expect(page.get_by_test_id("run-output-valid")).to_have_text("matches schema")
    await expect(page.get_by_test_id("tool-use")).to_have_count(0)
