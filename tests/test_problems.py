"""Every error is RFC 9457 problem+json, and the OpenAPI document says so."""

from __future__ import annotations

from tests.conftest import MASTER_KEY
from tests.factories import create_workspace, signup

PROBLEM = "application/problem+json"


def _assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    for field in ("type", "title", "detail"):
        assert isinstance(body[field], str) and body[field]
    return body


async def test_unknown_route_is_a_problem(client):
    body = _assert_problem(await client.get("/no/such/route"), 404)
    assert "/no/such/route" in body["detail"]


async def test_unknown_route_outside_the_api_is_a_problem(client):
    _assert_problem(await client.get("http://testserver/nothing-here"), 404)


async def test_wrong_method_is_a_problem(client):
    response = await client.put("/auth/login", json={})
    body = _assert_problem(response, 405)
    assert "PUT" in body["detail"]
    assert "POST" in response.headers["allow"]


async def test_validation_errors_name_the_fields(client):
    response = await client.post("/auth/signup", json={"email": "not-an-email", "password": "x", "extra": 1})
    body = _assert_problem(response, 422)
    locs = {tuple(e["loc"]) for e in body["errors"]}
    assert ("body", "email") in locs
    assert ("body", "password") in locs
    assert ("body", "name") in locs
    assert ("body", "extra") in locs
    assert all(isinstance(e["msg"], str) and e["msg"] for e in body["errors"])


async def test_malformed_json_is_a_422_problem(client):
    response = await client.post(
        "/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    _assert_problem(response, 422)


async def test_bad_path_parameter_is_a_422_problem(client):
    await signup(client)
    body = _assert_problem(await client.get("/workspaces/not-a-uuid"), 422)
    assert body["errors"][0]["loc"] == ["path", "ws"]


async def test_oversized_body_is_413_and_nothing_is_written(client, app, db_engine):
    from sqlalchemy import text

    limit = app.state.settings.max_body_bytes
    account = await signup(client)
    await create_workspace(account)
    huge = {"name": "x" * (limit + 10)}
    body = _assert_problem(await client.post("/workspaces", json=huge), 413)
    assert str(limit) in body["detail"]
    async with db_engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM workspace"))).scalar_one()
    assert count == 1


async def test_oversized_chunked_body_is_413(client, app):
    limit = app.state.settings.max_body_bytes

    async def chunks():
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536

    response = await client.post("/auth/login", content=chunks(), headers={"content-type": "application/json"})
    _assert_problem(response, 413)


async def test_errors_never_echo_submitted_secrets(client):
    secret = "hunter2-very-secret-password"
    response = await client.post("/auth/signup", json={"email": "bad", "password": secret, "name": ""})
    assert response.status_code == 422
    assert secret not in response.text


async def test_openapi_documents_problem_json(client):
    from backend.app import PUBLIC_PATHS

    assert {"/api/v1/auth/signup", "/api/v1/auth/login"} <= PUBLIC_PATHS
    document = (await client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert "Problem" in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        assert path.startswith("/api/v1/")
        for method, operation in operations.items():
            for code in ("404", "422"):
                content = operation["responses"][code]["content"]
                assert list(content) == [PROBLEM], f"{method} {path} {code}"
            public = path in PUBLIC_PATHS  # signup, login, password reset and the SSO round trip
            answers_401 = not public or path == "/api/v1/auth/login"  # login: wrong credentials
            assert ("401" in operation["responses"]) is answers_401, f"{method} {path}"


async def test_docs_page_is_served(client):
    response = await client.get("http://testserver/docs")
    assert response.status_code == 200
    assert "/api/v1/openapi.json" in response.text


async def test_health_and_readiness(client):
    assert (await client.get("http://testserver/healthz")).json() == {"status": "ok"}
    ready = await client.get("http://testserver/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_readiness_fails_when_redis_is_unreachable(database_url, redis_prefix):
    from httpx import ASGITransport, AsyncClient

    from backend.app import create_app
    from backend.core.settings import Settings

    app = create_app(
        Settings(
            database_url=database_url,
            redis_url="redis://127.0.0.1:1/0",
            redis_prefix=redis_prefix,
            master_key=MASTER_KEY,
        )
    )
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as c:
        response = await c.get("/readyz")
    await app.state.redis.aclose()
    await app.state.engine.dispose()
    body = _assert_problem(response, 503)
    assert body["checks"] == {"database": "ok", "redis": "unreachable"}


async def test_an_unreachable_database_is_a_503_problem_with_retry_after(redis_prefix):
    from httpx import ASGITransport, AsyncClient

    from backend.app import create_app
    from backend.core.settings import Settings

    app = create_app(
        Settings(
            database_url="postgresql+asyncpg://postgres@127.0.0.1:1/nowhere",
            redis_url="redis://127.0.0.1:6379/0",
            redis_prefix=redis_prefix,
            master_key=MASTER_KEY,
        )
    )
    async with AsyncClient(
        transport=ASGITransport(app=app, raise_app_exceptions=False), base_url="http://testserver"
    ) as c:
        response = await c.post(
            "/api/v1/auth/login", json={"email": "someone@example.com", "password": "correct horse battery"}
        )
    await app.state.redis.aclose()
    await app.state.engine.dispose()
    body = _assert_problem(response, 503)
    assert body["type"].endswith("/service-unavailable")
    assert response.headers["Retry-After"] == "1"
    assert "correct horse" not in response.text and "someone@example.com" not in response.text


def test_only_connection_failures_count_as_transient_database_errors():
    from sqlalchemy import exc as sa_exc

    from backend.core.database import is_transient_db_error

    assert is_transient_db_error(sa_exc.TimeoutError("QueuePool limit reached"))
    assert is_transient_db_error(ConnectionRefusedError())
    assert is_transient_db_error(sa_exc.OperationalError("SELECT 1", {}, OSError("server closed the connection")))
    assert not is_transient_db_error(sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not is_transient_db_error(ValueError("not a database error"))
