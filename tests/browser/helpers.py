"""What a person does in the app, as steps the end-to-end tests share."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.conftest import unique_email

PASSWORD = "a long passphrase"


async def sign_up(page: Page, name: str, workspace: str) -> tuple[str, str]:
    """Signs up through the UI and creates a workspace; returns (email, workspace id)."""
    email = unique_email(name.lower())
    await page.goto("/signup")
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign up").click()
    await page.get_by_label("Workspace name").fill(workspace)
    await page.get_by_role("button", name="Create workspace").click()
    await page.wait_for_url("**/w/*/prompts")
    return email, page.url.split("/w/")[1].split("/")[0]


async def create_prompt(page: Page, name: str) -> str:
    await page.get_by_test_id("new-prompt-name").fill(name)
    await page.get_by_role("button", name="New prompt").click()
    await page.wait_for_url("**/prompts/*")
    await expect(page.get_by_test_id("system-editor")).to_be_visible()
    return page.url.rsplit("/", 1)[1]


async def type_into(page: Page, test_id: str, text: str) -> None:
    """Types into a CodeMirror editor (replacing what it holds)."""
    content = page.get_by_test_id(test_id).locator(".cm-content")
    await content.click()
    await page.keyboard.press("ControlOrMeta+a")
    await page.keyboard.type(text)


async def output_text(page: Page) -> str:
    return await page.get_by_test_id("run-output").text_content() or ""
