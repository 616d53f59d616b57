"""The API serves the browser app: files from frontend/dist, index.html for client-side routes (deep
links), a strict Content-Security-Policy, and /api, /healthz, /docs untouched (no browser needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from httpx import ASGITransport, AsyncClient

from backend.app import create_app
from backend.core.settings import Settings
from backend.crypto.master import generate_master_key
from backend.web.spa import SinglePageApp

INDEX = (
    '<!doctype html><html><head><title>app</title><script type="module" src="/assets/app-1.js"></script></head></html>'
)


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "app-1.js").write_text("console.log('app')")
    (tmp_path / "index.html").write_text(INDEX)
    (tmp_path / "robots.txt").write_text("User-agent: *")
    (tmp_path.parent / "secret.txt").write_text("outside dist")
    return tmp_path


def _client(dist: Path | None) -> AsyncClient:
    settings = Settings(database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none", master_key=generate_master_key())
    app = create_app(settings)
    if dist is not None:
        # Point the installed SPA layer at the test's dist (create_app installed it with the default one).
        app.user_middleware = [
            m if m.cls is not SinglePageApp else type(m)(SinglePageApp, dist=dist) for m in app.user_middleware
        ]
    return AsyncClient(transport=ASGITransport(app=app), base_url="http://test")


@pytest.mark.parametrize("path", ["/", "/login", "/w/abc/prompts/def/versions/2", "/w/x/admin/usage?from=1"])
async def test_client_side_routes_get_index_html_with_a_strict_csp(dist, path):
    async with _client(dist) as client:
        response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>app</title>" in response.text
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    # The style nonce in the header is the one handed to the page, and a new one each time.
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert f'<meta name="csp-nonce" content="{nonce}" />' in response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_files_of_the_build_are_served_and_hashed_assets_cached_for_good(dist):
    async with _client(dist) as client:
        asset = await client.get("/assets/app-1.js")
        robots = await client.get("/robots.txt")
        nonce_a = (await client.get("/")).headers["content-security-policy"]
        nonce_b = (await client.get("/")).headers["content-security-policy"]
    assert asset.status_code == 200 and asset.text == "console.log('app')"
    assert "immutable" in asset.headers["cache-control"]
    assert robots.text == "User-agent: *" and robots.headers["cache-control"] == "no-cache"
    assert nonce_a != nonce_b


async def test_nothing_outside_the_build_is_served(dist):
    async with _client(dist) as client:
        for path in ["/../secret.txt", "/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt"]:
            response = await client.get(path)
            assert "outside dist" not in response.text


async def test_the_api_keeps_its_paths_and_problem_json(dist):
    async with _client(dist) as client:
        unknown = await client.get("/api/v1/no-such-thing")
        outside = await client.get("/no-such-page")  # not a route of the app either
        post = await client.post("/w/abc/prompts", json={})
        health = await client.get("/healthz")
        openapi = await client.get("/api/v1/openapi.json")
        docs = await client.get("/docs")
    assert unknown.status_code in (401, 404)
    assert unknown.headers["content-type"] == "application/problem+json"
    assert outside.status_code == 404 and outside.headers["content-type"] == "application/problem+json"
    assert post.status_code in (404, 405) and "csp-nonce" not in post.text
    assert health.json() == {"status": "ok"}
    assert openapi.json()["paths"]
    assert docs.status_code == 200 and "content-security-policy" not in docs.headers  # Swagger UI loads a CDN


async def test_without_a_build_the_page_says_how_to_build_it(tmp_path):
    async with _client(tmp_path / "missing") as client:
        response = await client.get("/w/abc/prompts")
    assert response.status_code == 503
    assert "make run" in response.text
