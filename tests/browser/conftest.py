"""End-to-end fixtures: one real `playground up` (private PostgreSQL, in-process queue, slow mock tokens so
streams can be watched) for the session, Debian's Chromium driven by Playwright, and a page per test that
fails the test on any console error."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
# PLAYGROUND_TEST_SPA_DIR: test a private build (vite build --outDir ...) instead of frontend/dist.
SPA_DIR = Path(os.environ.get("PLAYGROUND_TEST_SPA_DIR") or ROOT / "frontend" / "dist")
DIST = SPA_DIR / "index.html"
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("PLAYGROUND_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# Slow enough to watch a stream and stop or reload in the middle of it; fast enough for a short suite.
MOCK_TTFT_MS = "200"
MOCK_TOKEN_MS = "50"


@dataclass
class Server:
    base: str
    proc: subprocess.Popen


@contextmanager
def playground_up(prefix: str = "pp-browser-", **extra_env: str) -> Iterator[Server]:
    """A real `playground up` (private PostgreSQL, in-process queue, slow mock tokens) serving the built SPA,
    with `extra_env` on top (single sign-on settings, say); stopped with SIGTERM at the end."""
    if not DIST.is_file():
        pytest.fail(f"{SPA_DIR} has no built SPA: run `make frontend` (make test does it)")
    # The embedded server runs as an unprivileged user when we are root: its parents must be traversable.
    parent = Path(tempfile.mkdtemp(prefix=prefix))
    parent.chmod(0o755)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYGROUND_")}
    env.update(
        PLAYGROUND_MOCK_TTFT_MS=MOCK_TTFT_MS,
        PLAYGROUND_MOCK_TOKEN_MS=MOCK_TOKEN_MS,
        PLAYGROUND_LOG_LEVEL="WARNING",
        PLAYGROUND_SPA_DIR=str(SPA_DIR),
        **extra_env,
    )
    log = open(parent / "up.log", "w+b")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "up", "--port", str(port), "--data-dir", str(parent / "data")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"playground up exited with {proc.returncode}: {log.read().decode()[-3000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("playground up did not answer /healthz within 90 s")
            time.sleep(0.1)
        yield Server(base, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    with playground_up() as up:
        yield up


@pytest.fixture(scope="session")
async def browser():
    # The async API: the sync one runs an event loop of its own, which pytest-asyncio's session loop forbids.
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run infra/dev/ensure-chromium.sh (make test does it)")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


class ConsoleErrors(list):
    """Console errors and uncaught exceptions of one page; a test ends with none."""


async def new_page(browser, server: Server, errors: ConsoleErrors, width: int = 1440, height: int = 900):
    context = await browser.new_context(base_url=server.base, viewport={"width": width, "height": height})
    context.set_default_timeout(15_000)
    page = await context.new_page()
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    return page


@pytest.fixture
def expected_http_errors() -> list[int]:
    """Statuses a test provokes on purpose: Chromium logs every failed response to the console itself."""
    return []


def _unexpected(errors: ConsoleErrors, statuses: list[int]) -> list[str]:
    allowed = [f"the server responded with a status of {status} " for status in statuses]
    return [e for e in errors if not any(a in e for a in allowed)]


@pytest.fixture
async def page(browser, server, expected_http_errors):
    errors = ConsoleErrors()
    page = await new_page(browser, server, errors)
    yield page
    await page.context.close()
    assert _unexpected(errors, expected_http_errors) == [], "the browser console reported errors"


@pytest.fixture
async def second_page(browser, server):
    """Another person, in a browser context of their own, on a 1024 px wide screen."""
    errors = ConsoleErrors()
    page = await new_page(browser, server, errors, width=1024, height=768)
    yield page
    await page.context.close()
    assert list(errors) == [], "the browser console reported errors"


def unique_email(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


# Visible controls without an accessible name: no <label>, aria-label(ledby), title or text of their own.
UNLABELLED_CONTROLS = """() => [...document.querySelectorAll(
    'input, select, textarea, button, a[href], [contenteditable="true"], [role="button"]')]
  .filter((el) => el.getClientRects().length > 0 && el.type !== 'hidden')
  .filter((el) => !(el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') || el.title
                    || (el.labels && el.labels.length) || (el.textContent || '').trim()))
  .map((el) => el.outerHTML.slice(0, 120))"""


async def screenshot(page, name: str) -> None:
    """Every main screen, checked and pictured: each visible control has a label, and docs/screenshots/
    keeps a picture of it (refreshed with PLAYGROUND_UPDATE_SCREENSHOTS=1, so ordinary runs leave the
    committed pictures alone)."""
    assert await page.evaluate(UNLABELLED_CONTROLS) == [], f"controls without a label on the {name} screen"
    target = SCREENSHOTS / f"{name}.png"
    if target.exists() and os.environ.get("PLAYGROUND_UPDATE_SCREENSHOTS") != "1":
        target = Path(tempfile.gettempdir()) / f"pp-screenshot-{name}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(target))
