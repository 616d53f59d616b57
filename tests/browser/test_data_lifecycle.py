"""The workspace's data in the browser: an admin sets how long run contents are kept, exports the workspace,
watches it finish and downloads it (its first line names the workspace, its last one counts the records)."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.async_api import Page, expect

from tests.browser.conftest import screenshot
from tests.browser.helpers import api, seeded_prompt


async def test_retention_and_an_export_downloaded(page: Page):
    ws, prompt_id = await seeded_prompt(page, "dora", ["hello", "there"])
    await page.goto(f"/w/{ws}/settings")
    panel = page.get_by_role("region", name="Data")
    await expect(panel.get_by_test_id("retention-days")).to_have_value("")
    await panel.get_by_test_id("retention-days").fill("30")
    async with page.expect_response(lambda r: r.url.endswith("/retention") and r.request.method == "PUT") as saved:
        await panel.get_by_test_id("retention-form").get_by_role("button", name="Save").click()
    assert (await saved.value).ok
    assert (await api(page, "GET", f"/workspaces/{ws}/retention"))["runs_days"] == 30
    # The audit log on the same page shows the change without a reload.
    await expect(page.get_by_test_id("audit-log")).to_contain_text("retention.updated")

    await panel.get_by_test_id("export-button").click()
    await expect(panel.get_by_test_id("export-status")).to_have_text("succeeded")
    await screenshot(page, "settings-data")
    async with page.expect_download() as waiting:
        await panel.get_by_test_id("export-download").click()
    download = await waiting.value
    await expect(page.get_by_test_id("audit-log")).to_contain_text("export.created")
    lines = [json.loads(line) for line in Path(await download.path()).read_text(encoding="utf-8").splitlines()]
    assert lines[0]["type"] == "export" and lines[0]["workspace"]["id"] == ws
    assert [line["name"] for line in lines if line["type"] == "prompt"] == ["repeater"]
    assert [line["id"] for line in lines if line["type"] == "prompt"] == [prompt_id]
    assert lines[-1] == {"type": "end", "records": len(lines) - 2, "counts": {"member": 1, "prompt": 1, "version": 1}}

