"""Hostile markup is shown as text, never run (issue 14, part 4): `<img onerror>`, `<script>`, a
`javascript:` link and an SVG with onload put into a prompt's name and description, a version's system
and messages, a run's output (the mock echoes the final user message), a comment, and a dataset's name
and cell. Every screen that shows them is opened; no script runs (each payload would set
window.__pwned and log a console error, and the page fixture fails on console errors, including a
Content-Security-Policy refusal that would betray markup reaching the DOM), no element made of them
exists, and the text is visibly there, verbatim."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import unique_email
from tests.browser.helpers import PASSWORD, api

pytestmark = pytest.mark.slow  # a real `playground up` and Chromium

PWN = "window.__pwned=1;console.error('pwned')"
IMG = f"<img src=x onerror=\"{PWN}\">"
SCRIPT = f"<script>{PWN}</script>"
LINK = f'<a href="javascript:{PWN}">click me</a>'
SVG = f'<svg onload="{PWN}"><circle r="4"/></svg>'

# Selectors that would match an element built from any payload.
INJECTED = "img[src='x'], img[onerror], svg[onload], a[href^='javascript:'], script:not([src])"


async def assert_inert(page: Page, *visible: str) -> None:
    """Nothing the payloads would create exists or ran, and each `visible` text is shown as text."""
    for text in visible:
        await expect(page.locator("body")).to_contain_text(text)
    await asyncio.sleep(0.3)  # an image error or an svg load would have fired by now
    assert await page.evaluate("() => window.__pwned") is None
    assert await page.locator(INJECTED).count() == 0, await page.locator(INJECTED).evaluate_all(
        "els => els.map(e => e.outerHTML)"
    )


async def wait_for_run(page: Page, ws: str, run_id: str) -> dict:
    for _ in range(200):
        run = await api(page, "GET", f"/workspaces/{ws}/runs/{run_id}")
        if run["status"] in ("succeeded", "failed", "cancelled"):
            return run
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


async def test_markup_everywhere_is_shown_as_text_and_never_runs(page: Page):
    await api(page, "POST", "/auth/signup", {"email": unique_email("xss"), "password": PASSWORD, "name": IMG})
    ws = (await api(page, "POST", "/workspaces", {"name": f"team {SVG}"}))["id"]
    prompt = await api(page, "POST", f"/workspaces/{ws}/prompts", {"name": f"evil {IMG}", "description": SCRIPT})
    pid = prompt["id"]
    version = {
        "system": f"system {SVG} {SCRIPT}",
        "messages": [{"role": "user", "content": f"{LINK} {{{{text}}}}"}],
        "model_config": {"provider": "mock", "model": "mock-1", "max_tokens": 64},
        "message": f"commit {IMG}",
    }
    await api(page, "POST", f"/workspaces/{ws}/prompts/{pid}/versions", version)
    await api(page, "POST", f"/workspaces/{ws}/prompts/{pid}/versions/1/comments", {"body": f"comment {IMG}"})
    run = await api(page, "POST", f"/workspaces/{ws}/runs", {"prompt_id": pid, "variables": {"text": SVG}})
    finished = await wait_for_run(page, ws, run["id"])
    assert finished["status"] == "succeeded", finished
    # The mock answers with the words of the final user message: the output is markup too.
    expected_output = " ".join(f"{LINK} {SVG}".split()) + " "
    assert finished["output"] == expected_output
    dataset = await api(
        page, "POST", f"/workspaces/{ws}/datasets", {"name": f"data {SCRIPT}", "rows": [{"text": IMG}]}
    )

    # The prompts list: name and description.
    await page.goto(f"/w/{ws}/prompts")
    await assert_inert(page, f"evil {IMG}")

    # The editor: name, system and message in the editors, the variable's value as typed.
    await page.goto(f"/w/{ws}/prompts/{pid}")
    await expect(page.get_by_test_id("system-editor")).to_contain_text("system <svg onload=")
    await expect(page.get_by_test_id("message-editor-0")).to_contain_text('<a href="javascript:')
    await assert_inert(page, f"evil {IMG}")
    await page.get_by_test_id("variable-input-text").fill(IMG)
    await page.get_by_test_id("run-button").click()
    await expect(page.get_by_test_id("run-status")).to_contain_text("succeeded", timeout=30_000)
    await expect(page.get_by_test_id("run-output")).to_contain_text("<img src=x onerror=")
    await assert_inert(page)

    # The version page with its comment and commit message.
    await page.goto(f"/w/{ws}/prompts/{pid}/versions/1")
    await assert_inert(page, f"comment {IMG}")

    # The run's page (its output, streamed and stored) and the runs list.
    await page.goto(f"/w/{ws}/runs/{run['id']}")
    await expect(page.get_by_test_id("run-output")).to_contain_text(expected_output.strip())
    await assert_inert(page)
    await page.goto(f"/w/{ws}/runs")
    await assert_inert(page)

    # The dataset: its name and its cell.
    await page.goto(f"/w/{ws}/datasets/{dataset['id']}")
    await assert_inert(page, f"data {SCRIPT}", IMG)
    await page.goto(f"/w/{ws}/datasets")
    await assert_inert(page, f"data {SCRIPT}")

    # The workspace's settings (its name, the member's name) and the account page.
    await page.goto(f"/w/{ws}/settings")
    await assert_inert(page, IMG)
