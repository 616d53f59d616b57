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


async def api(page: Page, method: str, path: str, body: dict | None = None) -> dict:
    """Calls the API with the page's own session cookie (and its CSRF token), as the app would."""
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    headers = {"X-CSRF-Token": cookies.get("csrf_token", "")}
    response = await page.request.fetch(f"/api/v1{path}", method=method, data=body, headers=headers)
    assert response.ok, f"{method} {path}: {response.status} {await response.text()}"
    return await response.json() if response.status != 204 else {}


async def seeded_prompt(page: Page, name: str, words: list[str]) -> tuple[str, str]:
    """A signed-up user with a workspace and a one-version prompt `Repeat: {{text}}`, made through the API;
    returns (workspace id, prompt id)."""
    await api(page, "POST", "/auth/signup", {"email": unique_email(name), "password": PASSWORD, "name": name})
    ws = (await api(page, "POST", "/workspaces", {"name": f"{name}'s team"}))["id"]
    prompt = await api(page, "POST", f"/workspaces/{ws}/prompts", {"name": "repeater", "description": ""})
    version = {
        "system": "",
        "messages": [{"role": "user", "content": "Repeat: {{text}}"}],
        "model_config": {"provider": "mock", "model": "mock-1", "max_tokens": len(words) + 10},
        "message": "seed",
    }
    await api(page, "POST", f"/workspaces/{ws}/prompts/{prompt['id']}/versions", version)
    return ws, prompt["id"]
