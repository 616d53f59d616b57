"""Serves the built browser app (frontend/dist) at `/`: its files, and index.html for its client-side routes.

It sits in front of the API as a thin ASGI wrapper and only answers GET/HEAD requests for a file of the
build or a page of the app (`/`, `/login`, `/signup`, `/w/...`) that no API route matches, so API routing
(404s and 405s as problem+json, also for unknown paths outside /api) is untouched. Every
response it sends carries a strict Content-Security-Policy: scripts only from this origin, never inline;
styles from this origin plus the `<style>` elements CodeMirror creates, which carry a per-response nonce
that index.html hands to the app in `<meta name="csp-nonce">`."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

# PLAYGROUND_SPA_DIR serves another build (a test's private build, a packaged copy).
DEFAULT_DIST = Path(os.environ.get("PLAYGROUND_SPA_DIR") or Path(__file__).resolve().parents[2] / "frontend" / "dist")

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'nonce-{nonce}'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
# The app's client-side routes (API.md, "Browser routes"): these paths, and everything under /w/.
APP_PAGES = frozenset({"/", "/login", "/signup", "/reset-password", "/account", "/admin"})
APP_PREFIX = "/w/"
NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>Prompt Playground</title>
<p>The browser app is not built. Run <code>make run</code> (or <code>npm ci && npm run build</code> in
<code>frontend/</code>). The API is at <a href="/docs">/docs</a>.</p>"""


class SinglePageApp:
    """ASGI middleware: the SPA for browser paths, the wrapped app for everything else."""

    def __init__(self, app: ASGIApp, dist: Path = DEFAULT_DIST, reserved: tuple[str, ...] = ("/api",)) -> None:
        self.app = app
        self.dist = dist.resolve()
        self.reserved = reserved

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or not self._is_browser_path(scope):
            await self.app(scope, receive, send)
            return
        await self._response(scope["path"])(scope, receive, send)

    def _is_browser_path(self, scope: Scope) -> bool:
        path: str = scope["path"]
        if any(path == prefix or path.startswith(prefix + "/") for prefix in self.reserved):
            return False
        if not (path in APP_PAGES or path.startswith(APP_PREFIX) or self._built_file(path) is not None):
            return False  # not a page of the app: the API's problem+json 404
        router = scope["app"].router if "app" in scope else getattr(self.app, "router", None)
        routes = router.routes if router is not None else []
        return not any(route.matches(scope)[0] == Match.FULL for route in routes)

    def _built_file(self, path: str) -> Path | None:
        candidate = (self.dist / path.lstrip("/")).resolve()
        inside = candidate.is_relative_to(self.dist) and candidate not in (self.dist, self.dist / "index.html")
        return candidate if inside and candidate.is_file() else None

    def _response(self, path: str) -> Response:
        nonce = secrets.token_urlsafe(18)
        headers = {**SECURITY_HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY.format(nonce=nonce)}
        index = self.dist / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, status_code=503, headers=headers)
        candidate = self._built_file(path)
        if candidate is not None:
            # Vite names everything under assets/ by content hash: cache it for good.
            immutable = candidate.is_relative_to(self.dist / "assets")
            cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
            return FileResponse(candidate, headers={**headers, "Cache-Control": cache})
        # A client-side route (a deep link opened in a fresh tab): the app decides what it shows.
        html = index.read_text(encoding="utf-8").replace(
            "<head>", f'<head>\n    <meta name="csp-nonce" content="{nonce}" />', 1
        )
        return HTMLResponse(html, headers={**headers, "Cache-Control": "no-store"})


def install_spa(app, dist: Path = DEFAULT_DIST) -> None:
    """Serves the browser app from `dist` in front of `app` (call after every router is included)."""
    app.add_middleware(SinglePageApp, dist=dist)
