"""Rich prompts in the editor, end to end against a real `playground up` and the mock model: a tool made
in the tool form, called, its result typed in after "Continue" and answered from; the conversation kept
as a version and continued from run detail; an image attached (and refused when it is too large or no
image); a structured-output run judged against its schema."""

from __future__ import annotations

import base64
import json
import re
import struct
import zlib

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import screenshot, unique_email
from tests.browser.helpers import PASSWORD, api, type_into

pytestmark = pytest.mark.slow  # a real `playground up` and Chromium


async def workspace_with_prompt(page: Page, name: str, version: dict | None = None) -> tuple[str, str]:
    """A signed-up user, a workspace and a prompt (with one version when given); (workspace, prompt) ids."""
    await api(page, "POST", "/auth/signup", {"email": unique_email(name), "password": PASSWORD, "name": name})
    ws = (await api(page, "POST", "/workspaces", {"name": f"{name}'s team"}))["id"]
    prompt = await api(page, "POST", f"/workspaces/{ws}/prompts", {"name": f"{name.lower()}-prompt", "description": ""})
    if version is not None:
        await api(page, "POST", f"/workspaces/{ws}/prompts/{prompt['id']}/versions", version)
    return ws, prompt["id"]


def png(width: int = 96, height: int = 64) -> bytes:
    """A real PNG (a colour gradient), built here so the test carries no binary file."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(
        b"\x00" + b"".join(bytes((255 * x // width, 255 * y // height, 160)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


async def test_tool_round_trip_continue_and_save_the_conversation(page: Page):
    ws, prompt_id = await workspace_with_prompt(page, "Tom")
    await page.goto(f"/w/{ws}/prompts/{prompt_id}")
    await type_into(page, "message-editor-0", "MOCK_TOOL weather in {{city}}")
    await page.get_by_test_id("variable-input-city").fill("Oslo")

    # The tool, made in the form: a name the API would refuse is caught in place and holds the run back.
    await page.get_by_test_id("tools-panel").locator("summary").click()
    await page.get_by_test_id("add-tool").click()
    await page.get_by_test_id("tool-name-0").fill("get weather")
    await expect(page.get_by_test_id("tool-name-0-error")).to_have_text("Name: 1 to 64 letters, digits, _ or -")
    await expect(page.get_by_test_id("run-blocked")).to_contain_text("Tool 1: Name")
    await expect(page.get_by_test_id("run-button")).to_be_disabled()
    await page.get_by_test_id("tool-name-0").fill("get_weather")
    await page.get_by_test_id("tool-description-0").fill("Current weather in a city")
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": "city"}
    await page.get_by_test_id("tool-schema-0").fill(json.dumps(schema))
    # Valid JSON, an object schema, but `required` must be a list: the meta-schema check says where.
    await expect(page.get_by_test_id("tool-schema-0-error")).to_contain_text("/required")
    await expect(page.get_by_test_id("run-button")).to_be_disabled()
    schema["required"] = ["city"]
    await page.get_by_test_id("tool-schema-0").fill(json.dumps(schema))
    await expect(page.get_by_test_id("tool-schema-0-error")).to_have_count(0)
    await expect(page.get_by_test_id("run-blocked")).to_have_count(0)

    # MOCK_TOOL with the default (auto) tool choice: the mock calls the first tool with the words.
    await page.get_by_test_id("run-button").click()
    await expect(page.get_by_test_id("run-status")).to_contain_text("succeeded")
    card = page.get_by_test_id("tool-use")
    await expect(card.get_by_test_id("tool-use-name")).to_have_text("get_weather")
    await expect(card.get_by_test_id("tool-use-input")).to_have_text('{\n  "city": "MOCK_TOOL weather in Oslo"\n}')
    run_link = page.get_by_test_id("run-output").locator("xpath=..").get_by_role("link").first
    first_run = await run_link.get_attribute("href") or ""
    assert re.search(r"/runs/[0-9a-f-]{36}$", first_run), first_run
    call = (await api(page, "GET", f"/workspaces/{ws}/runs/{first_run.rsplit('/', 1)[1]}"))["tool_uses"][0]
    assert re.fullmatch(r"toolu_mock_[0-9a-f]{12}", call["id"]), call

    # Continue: the call becomes the assistant's turn, and a box waits for the tool's result.
    await page.get_by_test_id("continue-button").click()
    await expect(page.get_by_test_id("continue-button")).to_be_disabled()
    await expect(page.get_by_label("Role of message 2")).to_have_value("assistant")
    await expect(page.get_by_test_id("message-1").get_by_test_id("tool-use-block")).to_contain_text("get_weather")
    result = page.get_by_test_id("tool-result-2-0-input")
    await expect(result).to_be_focused()
    await expect(page.get_by_test_id("tool-result-2-0")).to_contain_text("get_weather")
    await result.fill("Sunny and 21 degrees")
    await screenshot(page, "editor-tool-result")

    # Running again sends the whole conversation: the mock answers with the tool result's words.
    await page.get_by_test_id("run-button").click()
    await expect(page.get_by_test_id("run-status")).to_contain_text("succeeded")
    await expect(page.get_by_test_id("run-output")).to_have_text("Sunny and 21 degrees ")
    await expect(page.get_by_test_id("tool-use")).to_have_count(0)
    runs = (await api(page, "GET", f"/workspaces/{ws}/runs?prompt_id={prompt_id}"))["items"]
    latest = max(runs, key=lambda r: r["created_at"])
    assert [m["role"] for m in latest["snapshot"]["messages"]] == ["user", "assistant", "user"]
    assert latest["snapshot"]["messages"][2]["content"][0]["content"] == "Sunny and 21 degrees"

    # Saving keeps the conversation as a version (the run of the draft had pinned it already).
    await page.get_by_test_id("version-message").fill("weather round trip")
    await page.get_by_test_id("save-version-button").click()
    await expect(page.get_by_test_id("saved-version")).to_have_text("Saved as v2")
    version = await api(page, "GET", f"/workspaces/{ws}/prompts/{prompt_id}/versions/2")
    assert version["messages"] == [
        {"role": "user", "content": "MOCK_TOOL weather in {{city}}"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": call["id"],
                    "name": "get_weather",
                    "input": {"city": "MOCK_TOOL weather in Oslo"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": call["id"],
                    "content": "Sunny and 21 degrees",
                    "is_error": False,
                }
            ],
        },
    ]
    assert version["tools"][0]["name"] == "get_weather"
    await page.goto(f"/w/{ws}/prompts/{prompt_id}/versions/2")
    content = page.get_by_role("region", name="Content")
    await expect(content.get_by_text("[tool use get_weather:")).to_be_visible()
    await expect(content.get_by_text("[tool result: Sunny and 21 degrees]")).to_be_visible()

    # From the first run's page: its conversation and its tool call, the result still to type.
    await page.goto(first_run)
    await expect(page.get_by_test_id("run-status")).to_have_text("succeeded")
    await expect(page.get_by_test_id("tool-use-name")).to_have_text("get_weather")
    snapshot = page.get_by_role("region", name="Snapshot")
    await expect(snapshot.get_by_role("heading", name="Tools")).to_be_visible()
    await expect(snapshot).to_contain_text('"name": "get_weather"')
    await screenshot(page, "run-detail-tool-call")
    await page.get_by_test_id("continue-in-editor").click()
    await page.wait_for_url(f"**/w/{ws}/prompts/{prompt_id}")
    await expect(page.get_by_test_id("message-1").get_by_test_id("tool-use-block")).to_contain_text(
        "MOCK_TOOL weather in Oslo"
    )
    await expect(page.get_by_test_id("tool-result-2-0-input")).to_have_value("")
    await expect(page.get_by_test_id("variable-input-city")).to_have_value("Oslo")
    await expect(page.get_by_test_id("message-editor-0")).to_contain_text("MOCK_TOOL weather in {{city}}")
    await page.get_by_test_id("tool-result-2-0-input").fill("Rain")
    await page.get_by_test_id("run-button").click()
    await expect(page.get_by_test_id("run-status")).to_contain_text("succeeded")
    await expect(page.get_by_test_id("run-output")).to_have_text("Rain ")


async def test_attach_an_image_see_it_and_run_and_bad_files_are_refused(page: Page, tmp_path):
    version = {
        "system": "",
        "messages": [{"role": "user", "content": "Describe the picture"}],
        "model_config": {"provider": "mock", "model": "mock-1", "max_tokens": 50},
        "message": "seed",
    }
    ws, prompt_id = await workspace_with_prompt(page, "Ivy", version)
    await page.goto(f"/w/{ws}/prompts/{prompt_id}")

    picture = tmp_path / "red.png"
    picture.write_bytes(png())
    await page.get_by_test_id("image-file-0").set_input_files(str(picture))
    preview = page.get_by_role("img", name="Image 1 of message 1")
    await expect(preview).to_be_visible()
    src = await preview.get_attribute("src") or ""
    assert src.startswith("data:image/png;base64,iVBORw0KGgo"), src[:40]
    assert await preview.evaluate("img => img.naturalWidth") == 96  # the browser decoded it: a real preview
    await expect(page.get_by_test_id("message-editor-0")).to_contain_text("Describe the picture")
    # The text's words are the mock's input (the image carries none), also in the estimate before a run.
    await expect(page.get_by_text(re.compile(r"^Estimate: 3 input tokens"))).to_be_visible()

    # Too large, or not an image: said in the browser, nothing sent, the image already attached kept.
    big = tmp_path / "big.png"
    big.write_bytes(png()[:16] + b"\0" * (1024 * 1024 + 200_000))
    await page.get_by_test_id("image-file-0").set_input_files(str(big))
    await expect(page.get_by_test_id("image-error-0")).to_have_text(
        "big.png is 1.2 MiB; an image can be at most 1 MiB."
    )
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture at all")
    await page.get_by_test_id("image-file-0").set_input_files(str(notes))
    await expect(page.get_by_test_id("image-error-0")).to_have_text("notes.png is not a PNG, JPEG, GIF or WebP image.")
    await expect(page.get_by_role("img")).to_have_count(1)
    await screenshot(page, "editor-image")

    # The mock takes the image (it carries no words): the answer is the text's words.
    await page.get_by_test_id("run-button").click()
    await expect(page.get_by_test_id("run-status")).to_contain_text("succeeded")
    await expect(page.get_by_test_id("run-output")).to_have_text("Describe the picture ")
    await page.get_by_test_id("run-output").locator("xpath=..").get_by_role("link").first.click()
    snapshot_image = page.get_by_role("img", name="Image 1 of the user message 1")
    await expect(snapshot_image).to_be_visible()
    assert (await snapshot_image.get_attribute("src") or "") == src

    # Removing it makes the message plain text again.
    await page.goto(f"/w/{ws}/prompts/{prompt_id}")
    await page.get_by_role("button", name="Remove image 1 of message 1").click()
    await expect(page.get_by_role("img")).to_have_count(0)
    await expect(page.get_by_test_id("message-editor-0")).to_contain_text("Describe the picture")
    # The draft is v1's content again to the byte: running it pins v1 rather than saving a new version.
    run_link = page.get_by_test_id("run-output").locator("xpath=..").get_by_role("link").first
    previous = await run_link.get_attribute("href")
    await page.get_by_test_id("run-button").click()
    await expect(run_link).not_to_have_attribute("href", previous or "")
    await expect(page.get_by_test_id("run-status")).to_contain_text("succeeded")
    runs = (await api(page, "GET", f"/workspaces/{ws}/runs?prompt_id={prompt_id}"))["items"]
    assert [r["version"] for r in sorted(runs, key=lambda r: r["created_at"])] == [2, 1]

    # A screenshot pasted into the message is attached as well.
    paste = """([target, data]) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const clipboard = new DataTransfer();
        clipboard.items.add(new File([bytes], "image.png", { type: "image/png" }));
        document.querySelector(target).dispatchEvent(
            new ClipboardEvent("paste", { clipboardData: clipboard, bubbles: true, cancelable: true }));
    }"""
    await page.evaluate(paste, ['[data-testid="message-0"] .cm-content', base64.b64encode(png()).decode()])
    await expect(page.get_by_role("img", name="Image 1 of message 1")).to_be_visible()
    await expect(page.get_by_test_id("message-editor-0")).to_have_text("Describe the picture")

    # And one dropped on the text: attached, not read into the text editor.
    drop = """([target, data]) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const files = new DataTransfer();
        files.items.add(new File([bytes], "drop.png", { type: "image/png" }));
        const element = document.querySelector(target);
        element.dispatchEvent(new DragEvent("dragover", { dataTransfer: files, bubbles: true, cancelable: true }));
        element.dispatchEvent(new DragEvent("drop", { dataTransfer: files, bubbles: true, cancelable: true }));
    }"""
    await page.evaluate(drop, ['[data-testid="message-0"] .cm-content', base64.b64encode(png(40, 40)).decode()])
    await expect(page.get_by_role("img", name="Image 2 of message 1")).to_be_visible()
    await expect(page.get_by_test_id("message-editor-0")).to_have_text("Describe the picture")


async def test_structured_output_is_judged_against_its_schema(page: Page):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    version = {
        "system": "",
        "messages": [{"role": "user", "content": "name three fruits"}],
        "model_config": {"provider": "mock", "model": "mock-1", "max_tokens": 50},
        "output_schema": schema,
        "message": "structured",
    }
    ws, prompt_id = await workspace_with_prompt(page, "Sam", version)
    await page.goto(f"/w/{ws}/prompts/{prompt_id}")
    await page.get_by_test_id("run-button").click()
    await expect(page.get_by_test_id("run-status")).to_contain_text("succeeded")
    await expect(page.get_by_test_id("run-output")).to_have_text('{"answer": "name three fruits"}')
    await expect(page.get_by_test_id("run-output-valid")).to_have_text("matches schema")

    # A schema that is no JSON Schema is caught before anything is sent.
    box = page.get_by_test_id("output-schema-json")
    await box.fill('{"type": "object", "properties": {"answer": {"type": "text"}}}')
    await expect(page.get_by_test_id("output-schema-json-error")).to_contain_text("/properties/answer/type")
    await expect(page.get_by_test_id("run-button")).to_be_disabled()
    await box.fill(json.dumps(schema))
    await expect(page.get_by_test_id("run-button")).to_be_enabled()

    # Cut short by max_tokens, the JSON is incomplete: the badge says it does not match.
    max_tokens = page.get_by_label("Max tokens")
    await max_tokens.fill("2")
    await page.get_by_test_id("run-button").click()
    await expect(page.get_by_test_id("run-status")).to_contain_text("succeeded")
    await expect(page.get_by_test_id("run-output")).to_have_text('{"answer": "name ')
    await expect(page.get_by_test_id("run-output-valid")).to_have_text("does not match schema")
