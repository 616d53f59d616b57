"""Hostile input (issue 14, part 4): every probe gets either a clear problem+json naming what is wrong,
with nothing half-written, or is stored and given back exactly as sent."""

from __future__ import annotations

import json
import types
import typing
import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, BeforeValidator
from sqlalchemy import text

from backend.workspaces.schemas import json_number
from tests.factories import PASSWORD, PROBLEM, assert_problem, create_workspace, signup

VERSION = {
    "system": "You are {{persona}}.",
    "messages": [{"role": "user", "content": "Say {{text}}"}],
    "model_config": {"provider": "mock", "model": "mock-1", "max_tokens": 64},
}
SQL_STRINGS = [
    "'; DROP TABLE prompt; --",
    "1' OR '1'='1",
    "Robert'); DELETE FROM run WHERE ('a'='a",
    "$$; SELECT pg_sleep(10); $$",
    "\\'; TRUNCATE workspace CASCADE; --",
]
HTML_STRINGS = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(document.cookie)</script>",
    '<a href="javascript:alert(1)">click</a>',
    '<svg onload="alert(1)"><circle r="1"/></svg>',
    "&lt;b&gt; &amp; &#x3C;script&#x3E;",
    "{{constructor.constructor('alert(1)')()}}",
]


async def counts(db_engine, *tables: str) -> dict[str, int]:
    async with db_engine.connect() as conn:
        return {t: (await conn.execute(text(f'SELECT count(*) FROM "{t}"'))).scalar_one() for t in tables}


@pytest.fixture
async def owner(client):
    account = await signup(client)
    account.ws = await create_workspace(account)
    return account


async def new_prompt(owner, name: str = "p", **extra) -> dict:
    response = await owner.client.post(f"/workspaces/{owner.ws}/prompts", json={"name": name, **extra})
    assert response.status_code == 201, response.text
    return response.json()


async def new_version(owner, prompt_id: str, body: dict | None = None) -> dict:
    response = await owner.client.post(f"/workspaces/{owner.ws}/prompts/{prompt_id}/versions", json=body or VERSION)
    assert response.status_code == 201, response.text
    return response.json()


def named(body: dict, *fields: str) -> None:
    """The problem's `errors` (or its detail) names each field."""
    said = [".".join(str(p) for p in e["loc"]) + " " + e["msg"] for e in body.get("errors", [])]
    for field in fields:
        assert any(field in text for text in said) or field in body["detail"], (field, body)


# --- Bodies: size, nesting, encoding -------------------------------------------------------------------


async def test_oversized_body_is_413_and_writes_nothing(owner, db_engine):
    before = await counts(db_engine, "prompt")
    big = json.dumps({"name": "big", "description": "x" * (3 * 1024 * 1024)})
    response = await owner.client.post(
        f"/workspaces/{owner.ws}/prompts", content=big, headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 413, "payload-too-large")
    assert "limit" in body["detail"]
    assert await counts(db_engine, "prompt") == before


async def test_oversized_chunked_body_is_413(owner, db_engine):
    before = await counts(db_engine, "prompt")

    async def chunks():
        yield b'{"name": "chunked", "description": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"}'

    response = await owner.client.post(
        f"/workspaces/{owner.ws}/prompts", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "payload-too-large")
    assert await counts(db_engine, "prompt") == before


@pytest.mark.parametrize("opener,closer", [("[", "]"), ('{"a":', "}")])
async def test_deeply_nested_json_is_a_clean_4xx(owner, db_engine, opener, closer):
    prompt = await new_prompt(owner)
    await new_version(owner, prompt["id"])
    before = await counts(db_engine, "run", "prompt_version")
    deep = opener * 10_000 + "1" + closer * 10_000
    for path, payload in [
        (f"/workspaces/{owner.ws}/runs", '{"prompt_id": "' + prompt["id"] + '", "variables": {"text": ' + deep + "}}"),
        (f"/workspaces/{owner.ws}/prompts/{prompt['id']}/versions", '{"system": "s", "messages": ' + deep + "}"),
        (f"/workspaces/{owner.ws}/prompts", deep),
    ]:
        response = await owner.client.post(path, content=payload, headers={"content-type": "application/json"})
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text[:300])
        assert response.headers["content-type"].startswith(PROBLEM)
        assert "nested too deeply" in response.json()["detail"], response.text[:300]
    assert await counts(db_engine, "run", "prompt_version") == before


async def test_moderately_nested_variable_value_is_refused_by_type(owner):
    """Variables are strings (or simple values): a nested structure is refused naming the variable."""
    prompt = await new_prompt(owner)
    await new_version(owner, prompt["id"])
    nested = {"a": [{"b": [1, 2, {"c": "d"}]}]}
    response = await owner.client.post(
        f"/workspaces/{owner.ws}/runs",
        json={"prompt_id": prompt["id"], "variables": {"persona": "x", "text": nested}},
    )
    assert response.status_code in (202, 422), response.text
    if response.status_code == 422:
        named(assert_problem(response, 422), "text")


async def test_invalid_utf8_body_is_422(owner, db_engine):
    before = await counts(db_engine, "prompt")
    for raw in (b'{"name": "caf\xe9"}', b'{"name": "\xff\xfe\xfd"}', b'{"name": "ok", "description": "\xc3"}'):
        response = await owner.client.post(
            f"/workspaces/{owner.ws}/prompts", content=raw, headers={"content-type": "application/json"}
        )
        body = assert_problem(response, 400)
        assert "not valid UTF-8" in body["detail"], body
    assert await counts(db_engine, "prompt") == before


async def test_body_that_is_not_json_or_wrong_content_type(owner):
    for content, ctype in [(b"name=x", "application/x-www-form-urlencoded"), (b"\x00\x01\x02", "application/json")]:
        response = await owner.client.post(
            f"/workspaces/{owner.ws}/prompts", content=content, headers={"content-type": ctype}
        )
        assert response.status_code in (415, 422), response.text
        assert response.headers["content-type"].startswith(PROBLEM)


# --- NUL and control characters --------------------------------------------------------------------------


async def test_nul_in_any_text_field_is_422_naming_it(owner, db_engine):
    prompt = await new_prompt(owner)
    await new_version(owner, prompt["id"])
    ws = f"/workspaces/{owner.ws}"
    tables = ("prompt", "prompt_version", "run", "version_comment", "dataset", "workspace")
    before = await counts(db_engine, *tables)
    probes = [
        ("/workspaces", {"name": "a\x00b"}, "name"),
        (f"{ws}/prompts", {"name": "a\x00b"}, "name"),
        (f"{ws}/prompts", {"name": "fine", "description": "d\x00"}, "description"),
        (f"{ws}/prompts/{prompt['id']}/versions", {**VERSION, "system": "s\x00"}, "system"),
        (
            f"{ws}/prompts/{prompt['id']}/versions",
            {**VERSION, "messages": [{"role": "user", "content": "hi\x00there"}]},
            "messages",
        ),
        (f"{ws}/prompts/{prompt['id']}/versions", {**VERSION, "message": "m\x00"}, "message"),
        (f"{ws}/runs", {"prompt_id": prompt["id"], "variables": {"persona": "p\x00", "text": "t"}}, "persona"),
        (f"{ws}/runs", {"prompt_id": prompt["id"], "variables": {"per\x00sona": "p", "text": "t"}}, "variables"),
        (f"{ws}/prompts/{prompt['id']}/versions/1/comments", {"body": "c\x00"}, "body"),
        (f"{ws}/datasets", {"name": "d", "rows": [{"text": "v\x00"}]}, "rows"),
        (f"{ws}/datasets", {"name": "d\x00", "rows": [{"text": "v"}]}, "name"),
    ]
    for path, payload, field in probes:
        response = await owner.client.post(path, json=payload)
        assert response.status_code == 422, (field, payload, response.text)
        body = assert_problem(response, 422)
        named(body, field)
        assert "NUL" in json.dumps(body), body
    response = await owner.client.patch(f"{ws}/prompts/{prompt['id']}", json={"name": "x\x00"})
    named(assert_problem(response, 422), "name")
    assert await counts(db_engine, *tables) == before


async def test_other_control_characters_round_trip_exactly(owner):
    """Tabs, newlines, escape and bell are content: they are kept as sent (the UI shows them as text)."""
    weird = "line1\nline2\ttab \x1b[31mred\x1b[0m \x07bell \x7f del \u200b zw \u202e rtl"
    prompt = await new_prompt(owner, name="ctl", description=weird)
    assert prompt["description"] == weird
    version = await new_version(
        owner, prompt["id"], {**VERSION, "system": weird, "messages": [{"role": "user", "content": weird}]}
    )
    got = await owner.client.get(f"/workspaces/{owner.ws}/prompts/{prompt['id']}/versions/{version['number']}")
    assert got.json()["system"] == weird
    assert got.json()["messages"][0]["content"] == weird


# --- Huge values -----------------------------------------------------------------------------------------


async def test_huge_variable_value_is_accepted_within_the_body_cap_or_refused_clearly(owner, db_engine):
    prompt = await new_prompt(owner)
    await new_version(owner, prompt["id"])
    huge = "word " * 300_000  # 1.5 MB, under the 2 MiB cap
    response = await owner.client.post(
        f"/workspaces/{owner.ws}/runs/estimate",
        json={"prompt_id": prompt["id"], "variables": {"persona": "p", "text": huge}},
    )
    assert response.status_code in (200, 422), response.text[:300]
    if response.status_code == 200:
        assert response.json()["input_tokens"] >= 300_000
    else:
        named(assert_problem(response, 422), "text")
    too_big = "w" * (3 * 1024 * 1024)
    before = await counts(db_engine, "run")
    response = await owner.client.post(
        f"/workspaces/{owner.ws}/runs",
        json={"prompt_id": prompt["id"], "variables": {"persona": "p", "text": too_big}},
    )
    assert_problem(response, 413)
    assert await counts(db_engine, "run") == before


async def test_too_long_name_is_422_naming_it(owner, db_engine):
    before = await counts(db_engine, "prompt")
    response = await owner.client.post(f"/workspaces/{owner.ws}/prompts", json={"name": "n" * 10_000})
    named(assert_problem(response, 422), "name")
    assert await counts(db_engine, "prompt") == before


# --- Template edge cases -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template,variables",
    [
        ("{{ unbalanced", []),
        ("unbalanced }}", []),
        ("{{{{nested}}}}", ["nested"]),
        ("{{#each items}}{{this}}{{/each}}", []),
        ("{{ spaced }}", ["spaced"]),
        ("{{__proto__}} {{constructor}} {{prototype}}", ["__proto__", "constructor", "prototype"]),
        ("{{}} {{ }} {{1}} {{a-b}} {{a.b}}", ["1"]),
        ("{{text}}{{text}}{{TEXT}}", ["text", "TEXT"]),
    ],
)
async def test_template_edge_cases_parse_and_run_safely(owner, template, variables):
    prompt = await new_prompt(owner, name="tpl")
    body = {**VERSION, "system": "", "messages": [{"role": "user", "content": template}]}
    response = await owner.client.post(f"/workspaces/{owner.ws}/prompts/{prompt['id']}/versions", json=body)
    if response.status_code == 422:
        # A template the renderer refuses must say where.
        named(assert_problem(response, 422), "messages")
        return
    assert response.status_code == 201, response.text
    found = response.json()["variables"]
    for name in variables:
        assert name in found, (template, found)
    values = {name: f"<{name}>" for name in found}
    estimate = await owner.client.post(
        f"/workspaces/{owner.ws}/runs/estimate", json={"prompt_id": prompt["id"], "variables": values}
    )
    assert estimate.status_code == 200, estimate.text


async def test_variable_named_proto_renders_its_value(owner, client):
    prompt = await new_prompt(owner, name="proto")
    body = {**VERSION, "system": "", "messages": [{"role": "user", "content": "A {{__proto__}} B {{constructor}}"}]}
    await new_version(owner, prompt["id"], body)

    response = await owner.client.post(
        f"/workspaces/{owner.ws}/runs/estimate",
        json={"prompt_id": prompt["id"], "variables": {"__proto__": "one", "constructor": "two"}},
    )
    assert response.status_code == 200, response.text
    missing = await owner.client.post(
        f"/workspaces/{owner.ws}/runs/estimate",
        json={"prompt_id": prompt["id"], "variables": {"__proto__": "one"}},
    )
    named(assert_problem(missing, 422), "constructor")


async def test_variable_values_that_look_like_templates_are_not_rendered_again(owner):
    prompt = await new_prompt(owner, name="twice")
    await new_version(owner, prompt["id"])
    code = await owner.client.post(
        f"/workspaces/{owner.ws}/runs/estimate",
        json={"prompt_id": prompt["id"], "variables": {"persona": "{{text}}", "text": "{{persona}}"}},
    )
    assert code.status_code == 200, code.text


# --- Unicode normalisation -----------------------------------------------------------------------------


async def test_names_differing_only_by_normalisation_are_the_same_name(owner, db_engine):
    nfc = unicodedata.normalize("NFC", "Café résumé")
    nfd = unicodedata.normalize("NFD", "Café résumé")
    assert nfc != nfd
    first = await new_prompt(owner, name=nfc)
    assert first["name"] == nfc
    response = await owner.client.post(f"/workspaces/{owner.ws}/prompts", json={"name": nfd})
    assert_problem(response, 409)
    assert (await counts(db_engine, "prompt"))["prompt"] == 1
    # Lookup by name finds it whichever form the caller sends.
    await new_version(owner, first["id"])
    for form in (nfc, nfd):
        got = await owner.client.get(f"/workspaces/{owner.ws}/prompts/by-name/{form}", params={"version": 1})
        assert got.status_code == 200, (form, got.text)


async def test_confusable_names_are_different_names(owner):
    latin = await new_prompt(owner, name="paypal")
    cyrillic = await new_prompt(owner, name="p\u0430yp\u0430l")  # Cyrillic a: a different name
    assert latin["id"] != cyrillic["id"]
    assert cyrillic["name"] == "p\u0430yp\u0430l"


# --- Injection strings are data -------------------------------------------------------------------------


async def test_sql_and_html_strings_are_stored_and_returned_verbatim(owner, db_engine):
    ws = f"/workspaces/{owner.ws}"
    for i, value in enumerate(SQL_STRINGS + HTML_STRINGS):
        prompt = await new_prompt(owner, name=f"{value} #{i}", description=value)
        assert prompt["name"] == f"{value} #{i}"
        assert prompt["description"] == value
        version = await new_version(
            owner, prompt["id"], {**VERSION, "system": value, "messages": [{"role": "user", "content": value}]}
        )
        comment = await owner.client.post(
            f"{ws}/prompts/{prompt['id']}/versions/{version['number']}/comments", json={"body": value}
        )
        assert comment.status_code == 201, comment.text
        assert comment.json()["body"] == value
        listed = await owner.client.get(f"{ws}/prompts/{prompt['id']}/versions/{version['number']}/comments")
        assert [c["body"] for c in listed.json()] == [value]
        got = await owner.client.get(f"{ws}/prompts/{prompt['id']}/versions/{version['number']}")
        assert got.json()["system"] == value
        assert got.json()["messages"][0]["content"] == value
        dataset = await owner.client.post(f"{ws}/datasets", json={"name": f"d{i} {value}", "rows": [{"v": value}]})
        assert dataset.status_code == 201, dataset.text
        rows = await owner.client.get(f"{ws}/datasets/{dataset.json()['id']}")
        assert rows.json()["rows"] == [{"v": value}]
        assert rows.json()["name"] == f"d{i} {value}"
    # The tables the strings name are all still there and hold what was written.
    total = await counts(db_engine, "prompt", "prompt_version", "version_comment", "dataset", "workspace", "run")
    assert total["prompt"] == total["prompt_version"] == total["version_comment"] == total["dataset"]
    assert total["prompt"] == len(SQL_STRINGS + HTML_STRINGS)
    listed = await owner.client.get(f"{ws}/prompts")
    names = {p["name"] for p in (listed.json()["items"] if isinstance(listed.json(), dict) else listed.json())}
    assert {f"{v} #{i}" for i, v in enumerate(SQL_STRINGS + HTML_STRINGS)} <= names


async def test_injection_strings_in_query_and_path_parameters(owner):
    ws = f"/workspaces/{owner.ws}"
    for value in SQL_STRINGS:
        response = await owner.client.get(f"{ws}/runs", params={"status": value})
        assert response.status_code == 422, response.text
        response = await owner.client.get(f"{ws}/runs", params={"cursor": value})
        assert response.status_code in (200, 422), response.text
        assert response.headers["content-type"].startswith(("application/json", PROBLEM))
        response = await owner.client.get(f"{ws}/prompts/by-name/{value}")
        assert_problem(response, 404)
        response = await owner.client.get(f"{ws}/prompts/{value}")
        assert response.status_code in (404, 422), response.text


# --- Headers ---------------------------------------------------------------------------------------------


async def test_bad_authorization_headers_are_401(make_client, owner):
    anon = make_client(csrf=False)
    for value in [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer " + "a" * 20_000,
        "Bearer pp_' OR 1=1 --",
        "Bearer \u00e9\u00e9",
        "bearer  spaced  out",
        "Token abc",
    ]:
        response = await anon.get(f"/workspaces/{owner.ws}", headers={"authorization": value.encode("utf-8")})
        body = assert_problem(response, 401)
        assert "Bearer" in body["detail"] or "invalid" in body["detail"].lower(), body


async def test_huge_and_garbled_cookies_are_401(make_client, owner):
    anon = make_client(csrf=False)
    for cookie in [
        "pp_session=" + "a" * 60_000,
        "pp_session=" + "%00%ff" * 100,
        'pp_session="quoted"; csrf_token=x',
        "garbage without equals",
        "pp_session=",
    ]:
        response = await anon.get(f"/workspaces/{owner.ws}", headers={"cookie": cookie})
        assert_problem(response, 401)


async def test_csrf_token_header_garbage_is_403(owner):
    for value in ["", "x" * 10_000, "' OR 1=1 --"]:
        response = await owner.client.post(
            f"/workspaces/{owner.ws}/prompts", json={"name": "csrf"}, headers={"X-CSRF-Token": value}
        )
        assert_problem(response, 403)


async def test_peer_that_is_not_an_ip_address_can_sign_up_and_log_in(app):
    """A server on a unix socket (or a test client) reports a peer that is no IP address: the inet columns
    get NULL instead of failing the request with a 500."""
    from httpx import ASGITransport, AsyncClient

    transport = ASGITransport(app=app, client=("testclient", 50000))
    async with AsyncClient(transport=transport, base_url="http://testserver/api/v1") as peer:
        account = await signup(peer)
        response = await peer.post("/auth/login", json={"email": account.email, "password": PASSWORD})
        assert response.status_code == 200, response.text


async def test_nul_and_garbage_in_paths_and_query_strings_are_4xx(owner):
    ws = f"/workspaces/{owner.ws}"
    prompt = await new_prompt(owner, name="paths")
    await new_version(owner, prompt["id"])
    for path in [
        f"{ws}/prompts/by-name/a%00b",
        f"{ws}/prompts/by-name/%ff%fe",
        f"{ws}/prompts/by-name/paths?label=%00",
        f"{ws}/runs?cursor=%00",
        f"{ws}/runs?status=%00",
        f"{ws}/runs?prompt_id=%00",
        f"{ws}/usage?group_by=%00",
        f"{ws}/usage?from=%00",
        f"{ws}/safety/flags?kind=%00",
        f"{ws}/audit-log?cursor=%00",
        f"{ws}/prompts/{prompt['id']}/labels/%00",
        f"{ws}/prompts/%00",
    ]:
        response = await owner.client.get(path)
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
        assert response.headers["content-type"].startswith(PROBLEM), path
        if "%00" in path:
            assert "NUL" in assert_problem(response, 400)["detail"], path
    label = await owner.client.put(f"{ws}/prompts/{prompt['id']}/labels/a%00b", json={"version": 1})
    assert "NUL" in assert_problem(label, 400)["detail"]
    for method, path, body in [
        ("PUT", f"{ws}/providers/a%00b", {"api_key": "sk-test-1234567890"}),
        ("DELETE", f"{ws}/providers/a%00b", None),
        ("PUT", f"{ws}/price-overrides/mock/a%00b", {"input_per_mtok": "1", "output_per_mtok": "2"}),
        ("PUT", f"{ws}/price-overrides/a%00b/mock-1", {"input_per_mtok": "1", "output_per_mtok": "2"}),
        ("PUT", f"{ws}/providers/mock", {"api_key": "sk-\x00"}),
        ("POST", f"{ws}/members", {"email": "a\x00b@example.com", "role": "viewer"}),
        ("POST", f"{ws}/api-keys", {"name": "k\x00"}),
        ("PATCH", f"{ws}", {"name": "w\x00"}),
        ("PATCH", "/me", {"name": "me\x00"}),
    ]:
        response = await owner.client.request(method, path, json=body)
        assert 400 <= response.status_code < 500, (method, path, response.status_code, response.text)
        assert response.headers["content-type"].startswith(PROBLEM), path


async def test_csv_import_with_nul_or_bad_encoding_is_refused_whole(owner, db_engine):
    ws = f"/workspaces/{owner.ws}"
    before = await counts(db_engine, "dataset", "dataset_row")
    for raw in [b"text\nfine\nbad\x00cell\n", b"text\n\xff\xfe\xfa\n", b"te\x00xt\nvalue\n"]:
        response = await owner.client.post(f"{ws}/datasets/import", files={"file": ("d.csv", raw, "text/csv")})
        body = assert_problem(response, 422)
        assert body["detail"]
    assert await counts(db_engine, "dataset", "dataset_row") == before
    good = await owner.client.post(
        f"{ws}/datasets/import", files={"file": ("d.csv", b'text\n"<img src=x>, \'; --"\n', "text/csv")}
    )
    assert good.status_code == 201, good.text
    rows = await owner.client.get(f"{ws}/datasets/{good.json()['id']}")
    assert rows.json()["rows"] == [{"text": "<img src=x>, '; --"}]


async def test_comment_edit_with_nul_is_422_and_keeps_the_old_body(owner):
    prompt = await new_prompt(owner, name="c")
    await new_version(owner, prompt["id"])
    base = f"/workspaces/{owner.ws}/prompts/{prompt['id']}/versions/1/comments"
    comment = (await owner.client.post(base, json={"body": "before"})).json()
    response = await owner.client.patch(f"{base}/{comment['id']}", json={"body": "after\x00"})
    named(assert_problem(response, 422), "body")
    assert [c["body"] for c in (await owner.client.get(base)).json()] == ["before"]


async def test_lone_surrogates_from_json_escapes_are_422_naming_the_field(owner, db_engine):
    """JSON may spell "\\ud800" (half a surrogate pair); no UTF-8 text can hold it."""
    ws = f"/workspaces/{owner.ws}"
    prompt = await new_prompt(owner, name="s")
    await new_version(owner, prompt["id"])
    tables = ("prompt", "prompt_version", "run", "version_comment", "dataset", "workspace")
    before = await counts(db_engine, *tables)
    config = '"model_config": {"provider": "mock", "model": "mock-1", "max_tokens": 5}'

    def run(variables: str) -> str:
        return '{"prompt_id": "' + prompt["id"] + '", "variables": ' + variables + "}"

    for path, raw, field in [
        (f"{ws}/prompts", '{"name": "a\\ud800b"}', "name"),
        (f"{ws}/prompts", '{"name": "ok", "description": "\\udfff"}', "description"),
        (
            f"{ws}/prompts/{prompt['id']}/versions",
            '{"system": "\\ud800", "messages": [{"role": "user", "content": "x"}], ' + config + "}",
            "system",
        ),
        (f"{ws}/prompts/{prompt['id']}/versions/1/comments", '{"body": "\\ud83d"}', "body"),
        (f"{ws}/runs", run('{"persona": "\\ud800", "text": "t"}'), "persona"),
        (f"{ws}/runs", run('{"persona": "p", "text": {"deep": ["\\ud800"]}}'), "text"),
        (f"{ws}/runs/estimate", run('{"\\ud800": "v"}'), "variables"),
        (f"{ws}/datasets", '{"name": "d", "rows": [{"text": "\\ud800"}]}', "rows"),
        ("/workspaces", '{"name": "\\ud800"}', "name"),
    ]:
        response = await owner.client.post(path, content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 422, (path, field, response.status_code, response.text[:300])
        named(assert_problem(response, 422), field)
    assert await counts(db_engine, *tables) == before


# --- Found by schemathesis (regressions) -------------------------------------------------------------------


async def test_booleans_are_not_numbers_in_instance_default_limits(owner):
    """The first account is the instance admin. `false` is no budget of 0, `true` no limit of 1."""
    for field, value in [("monthly_budget_micros", False), ("max_concurrent_runs", True), ("runs_per_minute", "5")]:
        response = await owner.client.put("/admin/settings", json={"default_limits": {field: value}})
        named(assert_problem(response, 422), field)
    response = await owner.client.put("/admin/settings", json={"default_limits": {"max_concurrent_runs": 3}})
    assert response.status_code == 200, response.text
    assert response.json()["default_limits"]["max_concurrent_runs"] == 3


async def test_an_undeclared_method_on_a_fixed_path_is_405_not_a_parameter(owner):
    """DELETE /me/sessions/revoke-others is no session id: the path only takes POST."""
    response = await owner.client.delete("/me/sessions/revoke-others")
    body = assert_problem(response, 405)
    assert "POST" in response.headers.get("allow", ""), response.headers
    assert body["detail"]
    sessions = (await owner.client.get("/me/sessions")).json()
    assert len(sessions) == 1  # nothing was revoked


async def test_booleans_and_strings_are_not_numbers_or_booleans_in_bodies(owner):
    """Lax coercion changed meaning: `"runs_days": true` was a retention of one day, `"archived": "yes"`
    archived, `"max_tokens": "12"` was 12. Each is now a 422 naming the field."""
    ws = f"/workspaces/{owner.ws}"
    prompt = await new_prompt(owner, name="strict")
    await new_version(owner, prompt["id"])
    pid = prompt["id"]
    config = VERSION["model_config"]
    probes = [
        ("PUT", f"{ws}/retention", {"runs_days": True}, "runs_days"),
        ("PUT", f"{ws}/limits", {"max_concurrent_runs": True}, "max_concurrent_runs"),
        ("PUT", f"{ws}/limits", {"runs_per_minute": "60"}, "runs_per_minute"),
        ("PUT", f"{ws}/prompts/{pid}/labels/prod", {"version": True}, "version"),
        ("PATCH", f"{ws}/prompts/{pid}", {"archived": "yes"}, "archived"),
        ("PATCH", f"{ws}/prompts/{pid}", {"archived": 1}, "archived"),
        (
            "POST",
            f"{ws}/prompts/{pid}/versions",
            {**VERSION, "model_config": {**config, "max_tokens": "12"}},
            "max_tokens",
        ),
        (
            "POST",
            f"{ws}/prompts/{pid}/versions",
            {**VERSION, "model_config": {**config, "max_tokens": True}},
            "max_tokens",
        ),
        ("POST", f"{ws}/runs/estimate", {"prompt_id": pid, "version": True, "variables": {}}, "version"),
        ("POST", f"{ws}/runs/estimate", {"prompt_id": pid, "overrides": {"max_tokens": True}}, "max_tokens"),
    ]
    for method, path, body, field in probes:
        response = await owner.client.request(method, path, json=body)
        assert response.status_code == 422, (method, path, body, response.status_code, response.text[:200])
        named(assert_problem(response, 422), field)
    retention = await owner.client.get(f"{ws}/retention")
    assert retention.json()["runs_days"] is None  # nothing was set
    assert (await owner.client.get(f"{ws}/prompts/{pid}")).json()["archived"] is False


def _scalars(annotation: Any, guarded: bool) -> Iterator[tuple[type, bool]]:
    """Each int, float and bool in an annotation (through unions, lists, dicts and Annotated), and whether a
    validator keeps pydantic's lax mode off it."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        inner, *metadata = typing.get_args(annotation)
        yield from _scalars(inner, guarded or _guards(metadata))
    elif origin in (typing.Union, types.UnionType, list, set, tuple, dict):
        for arg in typing.get_args(annotation):
            yield from _scalars(arg, guarded)
    elif annotation in (int, float, bool):
        yield annotation, guarded


def _guards(metadata: list[Any]) -> bool:
    return any(
        (isinstance(m, BeforeValidator) and m.func is json_number) or getattr(m, "strict", None) is True
        for m in metadata
    )


def _request_models(app) -> set[type[BaseModel]]:
    """The models of every request body the API documents, and the models nested in them."""
    document = app.openapi()
    schemas, names = document["components"]["schemas"], set()

    def follow(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node and (name := node["$ref"].rsplit("/", 1)[1]) not in names:
                names.add(name)
                follow(schemas[name])
            for value in node.values():
                follow(value)
        elif isinstance(node, list):
            for value in node:
                follow(value)

    for operations in document["paths"].values():
        for operation in operations.values():
            follow(operation.get("requestBody"))
    found, stack = set(), list(BaseModel.__subclasses__())
    while stack:
        model = stack.pop()
        stack.extend(model.__subclasses__())
        if model.__module__.startswith("backend.") and model.__name__ in {n.removesuffix("-Input") for n in names}:
            found.add(model)
    return found


def test_no_request_body_field_takes_booleans_or_strings_for_numbers(app):
    """Pydantic's lax mode takes `true` as 1 and "12" as 12 (a retention of `true` days was one day). Every
    int, float and bool in every request body refuses the other JSON types; a new field without the guard
    (JsonInt, OptionalJsonInt, OptionalJsonFloat, strict=True) fails here."""
    models = _request_models(app)
    assert len(models) > 30  # the walk found the bodies
    lax = sorted(
        f"{model.__module__}.{model.__name__}.{name}: {kind.__name__}"
        for model in models
        for name, field in model.model_fields.items()
        for kind, guarded in _scalars(field.annotation, _guards(field.metadata))
        if not guarded
    )
    assert not lax, lax


async def test_booleans_and_strings_are_not_numbers_in_the_remaining_bodies(owner, db_engine):
    """The fields the structural test above found lax: each refuses a boolean or a string, naming itself."""
    ws = f"/workspaces/{owner.ws}"
    prompt = await new_prompt(owner, name="strict-too")
    await new_version(owner, prompt["id"])
    pid = prompt["id"]
    config = VERSION["model_config"]
    tool_result = {"type": "tool_result", "tool_use_id": "t1", "content": "ok", "is_error": "yes"}
    probes = [
        ("POST", f"{ws}/prompts/{pid}/versions", {**VERSION, "model_config": {**config, "temperature": True}},
         "temperature"),
        ("POST", f"{ws}/prompts/{pid}/versions", {**VERSION, "model_config": {**config, "top_p": "0.5"}}, "top_p"),
        ("POST", f"{ws}/runs/estimate", {"prompt_id": pid, "overrides": {"temperature": "1"}}, "temperature"),
        ("POST", f"{ws}/comparisons", {"prompt_id": pid, "versions": [True], "rows": [{}]}, "versions"),
        ("POST", f"{ws}/prompts/{pid}/versions",
         {**VERSION, "messages": [
             {"role": "user", "content": "call"},
             {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
             {"role": "user", "content": [tool_result]},
         ]}, "is_error"),
    ]
    before = await counts(db_engine, "prompt_version", "comparison", "run")
    for method, path, body, field in probes:
        response = await owner.client.request(method, path, json=body)
        assert response.status_code == 422, (method, path, body, response.status_code, response.text[:200])
        named(assert_problem(response, 422), field)
    assert await counts(db_engine, "prompt_version", "comparison", "run") == before


async def test_version_numbers_beyond_postgresql_integers_are_422(owner):
    """Found by schemathesis: `?version=2147483648` overflowed the driver's int32 and was a 500."""
    prompt = await new_prompt(owner, name="big")
    await new_version(owner, prompt["id"])
    ws, pid, huge = f"/workspaces/{owner.ws}", prompt["id"], 2**31
    for path in [
        f"{ws}/prompts/by-name/big?version={huge}",
        f"{ws}/prompts/{pid}/versions/{huge}",
        f"{ws}/prompts/{pid}/versions/1/diff/{huge}",
        f"{ws}/prompts/{pid}/versions/{huge}/comments",
        f"{ws}/runs?prompt_id={pid}&version={huge}",
    ]:
        response = await owner.client.get(path)
        assert response.status_code == 422, (path, response.status_code, response.text[:200])
        assert_problem(response, 422)
    for method, path, body in [
        ("PUT", f"{ws}/prompts/{pid}/labels/prod", {"version": huge}),
        ("POST", f"{ws}/runs/estimate", {"prompt_id": pid, "version": huge, "variables": {}}),
    ]:
        response = await owner.client.request(method, path, json=body)
        named(assert_problem(response, 422), "version")
