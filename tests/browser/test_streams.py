"""Streams in the browser: a reload in the middle of a stream resumes it exactly (no text lost or
repeated), and a run opened while it still streams attaches to it."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.browser.helpers import api, output_text, seeded_prompt

pytestmark = pytest.mark.slow  # a real `playground up` and Chromium

WORDS = [f"token{i}" for i in range(1, 121)]  # 120 tokens ≈ 6 s at 50 ms each: time to reload or attach mid-stream
EXPECTED = "Repeat: " + " ".join(WORDS) + " "


async def test_a_reload_in_the_middle_of_a_stream_resumes_exactly(page: Page):
    ws, prompt_id = await seeded_prompt(page, "reloader", WORDS)
    await page.goto(f"/w/{ws}/prompts/{prompt_id}")
    await page.get_by_test_id("variable-input-text").fill(" ".join(WORDS))
    await page.get_by_test_id("run-button").click()
    await expect(page.get_by_test_id("run-output")).to_contain_text("token5 ")
    await expect(page.get_by_test_id("run-status")).to_contain_text("running")

    await page.reload()
    # Straight after the reload the text received before it is back (from this tab's session storage) ...
    await expect(page.get_by_test_id("run-output")).to_contain_text("token5 ")
    await expect(page.get_by_test_id("run-status")).to_contain_text("running")
    # ... and the stream resumes after the last event it had: every token once, in order.
    await expect(page.get_by_test_id("run-status")).to_contain_text("succeeded", timeout=20_000)
    assert await output_text(page) == EXPECTED
    # The draft (its variable value) survived the reload too.
    await expect(page.get_by_test_id("variable-input-text")).to_have_value(" ".join(WORDS))


async def test_opening_a_run_that_still_streams_attaches_to_it(page: Page):
    ws, prompt_id = await seeded_prompt(page, "watcher", WORDS)
    await page.goto(f"/w/{ws}/runs")  # the app is loaded; the run starts elsewhere (another tab, a script)
    body = {"prompt_id": prompt_id, "variables": {"text": " ".join(WORDS)}}
    run = await api(page, "POST", f"/workspaces/{ws}/runs", body)
    await page.goto(f"/w/{ws}/runs/{run['id']}")
    await expect(page.get_by_test_id("run-status")).to_have_text("running")
    await expect(page.get_by_test_id("run-output")).to_contain_text("token3 ")
    await expect(page.get_by_test_id("run-status")).to_have_text("succeeded", timeout=20_000)
    assert await output_text(page) == EXPECTED
    tokens = len(WORDS) + 1  # the mock answers with the words of the message: "Repeat:" and the tokens
    await expect(page.get_by_test_id("run-cost")).to_have_text(f"${tokens * (3 + 15) / 1e6:.6f}")  # $3/$15 per M

    # Rerun re-issues the pinned snapshot: a new run, the same answer (the mock is deterministic).
    await page.get_by_role("button", name="Rerun").click()
    await page.wait_for_url(lambda url: run["id"] not in url)
    rerun_id = page.url.rsplit("/", 1)[1]
    await expect(page.get_by_role("heading", name=f"Run {rerun_id[:8]}")).to_be_visible()
    await expect(page.get_by_test_id("run-status")).to_have_text("succeeded", timeout=20_000)
    assert await output_text(page) == EXPECTED
    await expect(page.get_by_text("Rerun of")).to_be_visible()

    # "Open in editor" loads the run's version and its variable values into the editor.
    await page.get_by_role("link", name="Open in editor").click()
    await page.wait_for_url(f"**/w/{ws}/prompts/{prompt_id}")
    await expect(page.get_by_test_id("variable-input-text")).to_have_value(" ".join(WORDS))
    await expect(page.get_by_test_id("message-editor-0")).to_contain_text("Repeat: {{text}}")
