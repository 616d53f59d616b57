"""Datasets on real PostgreSQL: JSON and CSV creation, clear errors naming the line, listing, reading (rows
decrypted), deleting, "save as test case" from a run, roles, sizes, and rows sealed at rest."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from tests.factories import add_member, assert_problem, create_workspace, signup
from tests.runs_helpers import RunningWorker, make_prompt


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"mock_ttft_ms": 5, "mock_token_ms": 2})


@pytest.fixture
async def owner(client):
    return await signup(client)


@pytest.fixture
async def ws(owner):
    return await create_workspace(owner)


def upload(csv_text: str | bytes, **form: str):
    data = csv_text.encode() if isinstance(csv_text, str) else csv_text
    return {"files": {"file": ("cases.csv", data, "text/csv")}, "data": form}


async def test_create_from_json_read_list_and_delete(client, ws):
    body = {
        "name": "Support questions",
        "rows": [{"question": "Where is my order?", "tone": "calm"}, {"question": "Refund, now!", "tone": "angry"}],
        "expected": ["It ships tomorrow.", None],
    }
    created = await client.post(f"/workspaces/{ws}/datasets", json=body)
    assert created.status_code == 201, created.text
    dataset = created.json()
    assert dataset["name"] == "Support questions" and dataset["row_count"] == 2
    assert dataset["variables"] == ["question", "tone"] and dataset["has_expected"] is True

    detail = (await client.get(f"/workspaces/{ws}/datasets/{dataset['id']}")).json()
    assert detail["rows"] == body["rows"] and detail["expected"] == body["expected"]

    listed = (await client.get(f"/workspaces/{ws}/datasets")).json()
    assert [d["id"] for d in listed["items"]] == [dataset["id"]] and "rows" not in listed["items"][0]

    assert_problem(await client.post(f"/workspaces/{ws}/datasets", json=body), 409, "dataset-name-taken")
    assert (await client.delete(f"/workspaces/{ws}/datasets/{dataset['id']}")).status_code == 204
    assert_problem(await client.get(f"/workspaces/{ws}/datasets/{dataset['id']}"), 404, "dataset-not-found")


async def test_rows_without_expected_have_none(client, ws):
    created = await client.post(f"/workspaces/{ws}/datasets", json={"name": "plain", "rows": [{"a": "1"}]})
    detail = (await client.get(f"/workspaces/{ws}/datasets/{created.json()['id']}")).json()
    assert detail["expected"] is None and detail["has_expected"] is False


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"name": "x", "rows": [{"bad name": "v"}]}, ["body", "rows", 0, "bad name"]),
        ({"name": "x", "rows": [{"a": 1}]}, ["body", "rows", 0, "a"]),
        ({"name": "x", "rows": [{"a": "1"}], "expected": ["a", "b"]}, ["body"]),
        ({"name": " ", "rows": []}, ["body", "name"]),
        ({"name": "x", "rows": [{"a": "1"}] * 1001}, ["body", "rows"]),
        ({"name": "x", "rows": [], "extra": 1}, ["body", "extra"]),
    ],
)
async def test_invalid_bodies_are_422_naming_the_field_and_write_nothing(client, ws, db_engine, body, loc):
    problem = assert_problem(await client.post(f"/workspaces/{ws}/datasets", json=body), 422)
    assert any(e["loc"][: len(loc)] == loc for e in problem["errors"]), problem["errors"]
    async with db_engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM dataset"))).scalar_one() == 0


async def test_too_many_bytes_is_413(client, ws):
    rows = [{"text": "x" * 200_000} for _ in range(6)]
    assert_problem(await client.post(f"/workspaces/{ws}/datasets", json={"name": "big", "rows": rows}), 413)


async def test_csv_import_with_header_quotes_blank_lines_and_an_expected_column(client, ws):
    csv_text = '\ufeffquestion,tone,answer\r\n"Where, exactly?",calm,"Here.\nThere."\r\n\r\nRefund,angry,\r\n'
    created = await client.post(f"/workspaces/{ws}/datasets/import", **upload(csv_text, expected_column="answer"))
    assert created.status_code == 201, created.text
    dataset = created.json()
    assert dataset["name"] == "cases" and dataset["row_count"] == 2 and dataset["variables"] == ["question", "tone"]
    detail = (await client.get(f"/workspaces/{ws}/datasets/{dataset['id']}")).json()
    assert detail["rows"] == [{"question": "Where, exactly?", "tone": "calm"}, {"question": "Refund", "tone": "angry"}]
    assert detail["expected"] == ["Here.\nThere.", None]

    named = await client.post(f"/workspaces/{ws}/datasets/import", **upload("a\n1\n", name="Named"))
    assert named.status_code == 201 and named.json()["name"] == "Named"


@pytest.mark.parametrize(
    ("content", "line", "words"),
    [
        ("", 1, "empty"),
        ("a,b\n1,2\n3\n", 3, "1 values for 2 columns"),
        ("a,b\n1,2\n\n4,5,6\n", 4, "3 values for 2 columns"),
        ("a,a\n1,2\n", 1, "repeats"),
        ("a,not valid\n1,2\n", 1, "column 2"),
        ("a,\n1,2\n", 1, "column 2 has no name"),
        ("a\n", 2, "no rows"),
        (b"a\n\xff\xfe\n", 2, "UTF-8"),
        ('a,b\n1,"unterminated\n', 2, "CSV"),
        ('a\n"x"y\n', 2, "CSV"),
    ],
)
async def test_bad_csv_is_422_naming_the_line(client, ws, db_engine, content, line, words):
    problem = assert_problem(await client.post(f"/workspaces/{ws}/datasets/import", **upload(content)), 422)
    assert problem["line"] == line, problem
    assert f"line {line}" in problem["detail"] and words in problem["detail"], problem["detail"]
    assert problem["errors"][0]["loc"] == ["body", "file"]
    async with db_engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM dataset"))).scalar_one() == 0


async def test_csv_with_an_unknown_expected_column_or_no_file_is_422(client, ws):
    problem = assert_problem(
        await client.post(f"/workspaces/{ws}/datasets/import", **upload("a\n1\n", expected_column="nope")), 422
    )
    assert "nope" in problem["detail"]
    assert_problem(await client.post(f"/workspaces/{ws}/datasets/import", data={"name": "x"}), 422)


async def test_save_a_run_as_a_test_case(client, app, ws):
    prompt = await make_prompt(client, ws, "Say {{words}}")
    dataset = (await client.post(f"/workspaces/{ws}/datasets", json={"name": "cases", "rows": []})).json()
    assert dataset["row_count"] == 0
    async with RunningWorker(app):
        body = {"prompt_id": prompt["id"], "variables": {"words": "hi there"}}
        run = await client.post(f"/workspaces/{ws}/runs", json=body)
        run_id = run.json()["id"]
        for _ in range(500):
            if (await client.get(f"/workspaces/{ws}/runs/{run_id}")).json()["status"] == "succeeded":
                break
            await asyncio.sleep(0.02)
    url = f"/workspaces/{ws}/datasets/{dataset['id']}/rows"
    first = await client.post(url, json={"run_id": run_id, "output_as_expected": True})
    assert first.status_code == 201, first.text
    assert first.json() == {"index": 0, "variables": {"words": "hi there"}, "expected": "Say hi there "}
    second = await client.post(url, json={"variables": {"other": "v"}, "expected": "ok"})
    assert second.json()["index"] == 1
    detail = (await client.get(f"/workspaces/{ws}/datasets/{dataset['id']}")).json()
    assert detail["row_count"] == 2 and detail["variables"] == ["words", "other"]
    assert detail["rows"] == [{"words": "hi there"}, {"other": "v"}] and detail["expected"] == ["Say hi there ", "ok"]

    assert_problem(await client.post(url, json={"run_id": str(uuid.uuid4())}), 404, "run-not-found")
    assert_problem(await client.post(url, json={"run_id": run_id, "variables": {}}), 422)
    assert_problem(await client.post(f"/workspaces/{ws}/datasets/{uuid.uuid4()}/rows", json={"variables": {}}), 404)


async def test_viewers_read_editors_write_strangers_see_nothing(client, make_client, owner, ws):
    dataset = (await client.post(f"/workspaces/{ws}/datasets", json={"name": "d", "rows": [{"a": "1"}]})).json()
    viewer = await signup(make_client())
    await add_member(owner, ws, viewer, "viewer")
    assert (await viewer.client.get(f"/workspaces/{ws}/datasets/{dataset['id']}")).status_code == 200
    assert_problem(await viewer.client.post(f"/workspaces/{ws}/datasets", json={"name": "v", "rows": []}), 403)
    assert_problem(await viewer.client.delete(f"/workspaces/{ws}/datasets/{dataset['id']}"), 403)
    stranger = await signup(make_client())
    theirs = await create_workspace(stranger, "Theirs")
    assert_problem(await stranger.client.get(f"/workspaces/{theirs}/datasets/{dataset['id']}"), 404)
    assert (await stranger.client.get(f"/workspaces/{theirs}/datasets")).json()["items"] == []


async def test_rows_are_sealed_at_rest(client, ws, db_engine):
    secret = "Zebra-quartz-unique-value"
    body = {"name": "sealed", "rows": [{"a": secret}], "expected": ["Expected-unique-output"]}
    assert (await client.post(f"/workspaces/{ws}/datasets", json=body)).status_code == 201
    async with db_engine.connect() as conn:
        raw = (await conn.execute(text("SELECT variables, expected FROM dataset_row"))).one()
    assert secret.encode() not in bytes(raw[0]) and b"Expected-unique" not in bytes(raw[1])
