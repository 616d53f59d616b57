"""Safety in the browser: a run whose input holds personal data is flagged live in the editor, the flag
is reviewed and resolved on the safety dashboard, and a "block" policy refuses runs with the reason."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import screenshot
from tests.browser.helpers import seeded_prompt

pytestmark = pytest.mark.slow  # a real `playground up` and Chromium


async def test_flag_a_run_review_it_and_block_by_policy(page: Page, expected_http_errors: list[int]):
    ws, prompt_id = await seeded_prompt(page, "safe", ["x"])
    await page.goto(f"/w/{ws}/prompts/{prompt_id}")
    await page.get_by_test_id("variable-input-text").fill("write to grace.hopper@example.com today")
    await page.get_by_test_id("run-button").click()
    await expect(page.get_by_test_id("run-status")).to_contain_text("succeeded", timeout=20_000)
    await expect(page.get_by_test_id("run-flags")).to_contain_text("pii/email (input)")

    await page.get_by_role("link", name="Safety").click()
    flags = page.get_by_test_id("safety-flags")
    await expect(flags.locator("li").first).to_contain_text("email")
    await expect(flags).not_to_contain_text("grace.hopper@example.com")  # excerpts are masked
    await screenshot(page, "safety")
    await expect(flags).to_contain_text("in the output")  # the mock echoes the address back: flagged live
    count = await flags.locator("li").count()
    for remaining in range(count, 0, -1):  # the input's flag and the output's
        await expect(flags.locator("li")).to_have_count(remaining)
        first = flags.locator("li").first
        await first.get_by_label("Note").fill("test data")
        await first.get_by_role("button", name="Resolve").click()
    await expect(page.get_by_text("No flags here.")).to_be_visible()
    await page.get_by_label("Status").select_option("resolved")
    await expect(flags).to_contain_text("Note: test data")

    # Blocking personal data: the next run is refused before anything is sent, and the editor says why.
    expected_http_errors.append(422)
    await page.get_by_role("link", name="Settings").click()
    await page.get_by_label("Personal data (email, phone, card, IBAN, SSN)").select_option("block")
    await expect(page.get_by_role("region", name="Safety policy").get_by_role("status")).to_have_text("Saved.")
    await page.goto(f"/w/{ws}/prompts/{prompt_id}")
    await page.get_by_test_id("run-button").click()
    await expect(page.get_by_role("alert").filter(has_text="Could not run")).to_contain_text("email")
