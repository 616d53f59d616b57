"""Deep links and tenancy in the browser: a link opened in a fresh tab works; another workspace's prompt
URL shows not-found (and says nothing about what is there)."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.helpers import seeded_prompt


async def test_deep_links_work_and_another_workspaces_prompt_is_not_found(page: Page, second_page: Page):
    ws, prompt_id = await seeded_prompt(page, "owner", ["a", "b"])
    # A deep link opened in a fresh tab of a signed-in person: the editor, with the latest version loaded.
    await page.goto(f"/w/{ws}/prompts/{prompt_id}")
    await expect(page.get_by_test_id("message-editor-0")).to_contain_text("Repeat: {{text}}")
    await expect(page.get_by_test_id("variable-input-text")).to_be_visible()
    await page.goto(f"/w/{ws}/prompts/{prompt_id}/versions/1")
    await expect(page.get_by_test_id("version-list")).to_contain_text("seed")

    # Someone else, signed in to a workspace of their own, opens the same URL.
    other_ws, _ = await seeded_prompt(second_page, "stranger", ["c"])
    await second_page.goto(f"/w/{ws}/prompts/{prompt_id}")
    await expect(second_page.get_by_test_id("not-found")).to_be_visible()
    await expect(second_page.get_by_role("heading", name="Not found")).to_be_visible()
    await expect(second_page.get_by_text("Repeat")).to_have_count(0)
    await expect(second_page.get_by_test_id("workspace-switcher")).to_be_visible()

    # Signed out, a deep link leads to the login and back to where it pointed.
    await second_page.context.clear_cookies()
    await second_page.goto(f"/w/{other_ws}/prompts")
    await second_page.wait_for_url("**/login?next=*")
    await expect(second_page.get_by_role("heading", name="Log in to Prompt Playground")).to_be_visible()
