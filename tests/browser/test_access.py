"""Deep links and tenancy in the browser: a link opened in a fresh tab works; another workspace's prompt
URL shows not-found (and says nothing about what is there)."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import screenshot
from tests.browser.helpers import PASSWORD, seeded_prompt

pytestmark = pytest.mark.slow  # a real `playground up` and Chromium


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


async def test_an_invitation_link_signs_a_teammate_up_into_the_workspace(page: Page, second_page: Page):
    ws, prompt_id = await seeded_prompt(page, "inviter", ["a"])
    await page.goto(f"/w/{ws}/settings")
    invite = page.get_by_role("form", name="Invite")
    await invite.get_by_label("Email").fill("teammate@example.com")
    await invite.get_by_label("Role").select_option("viewer")
    await invite.get_by_role("button", name="Add or invite").click()
    link = await page.locator(".notice code.secret").inner_text()
    assert "/signup?invite=" in link
    await expect(page.get_by_role("region", name="Members")).to_contain_text("teammate@example.com (viewer)")

    # The teammate opens the link (on a 1024 px screen), signs up, and lands in the workspace as a viewer.
    await second_page.goto("/" + link.split("/", 3)[3])  # the same path on this test's server
    await expect(second_page.get_by_label("Invite token")).not_to_have_value("")
    await second_page.get_by_label("Name").fill("Grace")
    await second_page.get_by_label("Email").fill("teammate@example.com")
    await second_page.get_by_label("Password").fill(PASSWORD)
    await second_page.get_by_role("button", name="Sign up").click()
    await second_page.wait_for_url(f"**/w/{ws}/prompts")
    await second_page.get_by_role("link", name="repeater").click()
    await expect(second_page.get_by_test_id("message-editor-0")).to_contain_text("Repeat: {{text}}")
    # A viewer reads but cannot run or save.
    await expect(second_page.get_by_test_id("run-button")).to_be_disabled()
    await expect(second_page.get_by_test_id("save-version-button")).to_have_count(0)
    await screenshot(second_page, "editor-1024-viewer")
    assert prompt_id in second_page.url
