"""Rich prompts: versions with tools, tool choice, an output schema, images and a thinking budget; runs that
stream thinking and tool calls, and check structured output (through the mock model)."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from tests.factories import assert_problem, create_workspace, signup
from tests.runs_helpers import RunningWorker
from tests.test_runs import delta_text, events_of, start, wait_for

MOCK = {"provider": "mock", "model": "mock-1", "max_tokens": 256}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).decode()
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
ANSWER_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"mock_ttft_ms": 5, "mock_token_ms": 2})


@pytest.fixture
async def ws(client) -> str:
    return await create_workspace(await signup(client))


async def new_prompt(client, ws: str) -> str:
    response = await client.post(f"/workspaces/{ws}/prompts", json={"name": f"rich-{uuid.uuid4().hex[:8]}"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def save(client, ws: str, pid: str, **content: Any):
    body = {"messages": [{"role": "user", "content": "{{words}}"}], "model_config": MOCK, **content}
    return await client.post(f"/workspaces/{ws}/prompts/{pid}/versions", json=body)


async def test_a_version_keeps_its_tools_schema_and_images_sealed_and_dedupes_on_them(client, ws, db_engine):
    pid = await new_prompt(client, ws)
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Look: {{words}}"}, _image()]},
    ]
    created = await save(
        client,
        ws,
        pid,
        messages=messages,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        output_schema=ANSWER_SCHEMA,
    )
    assert created.status_code == 201, created.text
    version = created.json()
    assert version["tools"] == [WEATHER]
    assert version["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert version["output_schema"] == ANSWER_SCHEMA
    assert version["messages"][0]["content"][1]["source"]["data"] == PNG
    assert version["variables"] == ["words"]
    again = await save(
        client,
        ws,
        pid,
        messages=messages,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        output_schema=ANSWER_SCHEMA,
    )
    assert again.status_code == 200 and again.json()["number"] == 1  # the same content is the same version
    without_tools = await save(client, ws, pid, messages=messages, output_schema=ANSWER_SCHEMA)
    assert without_tools.status_code == 201 and without_tools.json()["number"] == 2
    async with db_engine.connect() as conn:
        query = text("SELECT extras, messages FROM prompt_version WHERE number = 1 AND prompt_id = :p")
        stored = (await conn.execute(query, {"p": pid})).one()
    assert b"get_weather" not in stored.extras and PNG.encode()[:40] not in stored.messages  # sealed
    diff = (await client.get(f"/workspaces/{ws}/prompts/{pid}/versions/1/diff/2")).json()
    assert diff["changed"] and [e["key"] for e in diff["extras"]] == ["tools", "tool_choice"]
    assert diff["extras"][0]["status"] == "removed"


@pytest.mark.parametrize(
    ("content", "loc_tail", "words"),
    [
        ({"tools": [{**WEATHER, "input_schema": {"type": "array"}}]}, ["tools", 0, "input_schema"], "object"),
        ({"tools": [{**WEATHER, "input_schema": {"type": 12}}]}, ["tools", 0, "input_schema"], "JSON Schema"),
        ({"tools": [WEATHER, WEATHER]}, [], "unique"),
        ({"tools": [WEATHER], "tool_choice": {"type": "tool", "name": "nope"}}, [], "not one of the tools"),
        ({"tool_choice": {"type": "any"}}, [], "needs tools"),
        ({"output_schema": {"type": "string"}}, ["output_schema"], "object"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image", "source": {
                "media_type": "image/jpeg", "data": PNG}}]}]},
            ["messages", 0, "content"],
            "not a image/jpeg",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image", "source": {
                "media_type": "image/png", "data": "not base64!"}}]}]},
            ["messages", 0, "content"],
            "base64",
        ),
        (
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [
                {"type": "image", "source": {"media_type": "image/png", "data": PNG}}]}]},
            ["messages", 1],
            "cannot hold a image block",
        ),
    ],
)
async def test_bad_rich_content_is_a_422_naming_the_field(client, ws, content, loc_tail, words):
    pid = await new_prompt(client, ws)
    problem = assert_problem(await save(client, ws, pid, **content), 422)
    assert any(words in error["msg"] for error in problem["errors"]), problem
    assert any(error["loc"][1 : 1 + len(loc_tail)] == loc_tail for error in problem["errors"]), problem
    assert (await client.get(f"/workspaces/{ws}/prompts/{pid}/versions")).json() == []  # nothing saved


async def test_a_model_that_lacks_a_feature_is_named_in_the_422(client, ws):
    pid = await new_prompt(client, ws)
    gpt = {"provider": "openai", "model": "gpt-4o", "max_tokens": 4096, "thinking_budget": 2048}
    problem = assert_problem(await save(client, ws, pid, model_config=gpt), 422)
    assert problem["errors"][0]["loc"] == ["body", "model_config", "thinking_budget"]
    assert "does not support extended thinking" in problem["errors"][0]["msg"]
    claude = {"provider": "anthropic", "model": "claude-sonnet-4-5", "max_tokens": 1024}
    problem = assert_problem(await save(client, ws, pid, model_config=claude, output_schema=ANSWER_SCHEMA), 422)
    assert problem["errors"][0]["loc"] == ["body", "output_schema"]
    too_big = {**MOCK, "thinking_budget": 4096}  # not below max_tokens
    problem = assert_problem(await save(client, ws, pid, model_config=too_big), 422)
    assert "less than max_tokens" in problem["errors"][0]["msg"]


async def test_a_run_overriding_the_model_to_one_without_the_feature_is_refused(client, ws):
    pid = await new_prompt(client, ws)
    assert (await save(client, ws, pid, output_schema=ANSWER_SCHEMA)).status_code == 201
    overrides = {"provider": "anthropic", "model": "claude-sonnet-4-5"}
    response = await client.post(
        f"/workspaces/{ws}/runs", json={"prompt_id": pid, "variables": {"words": "x"}, "overrides": overrides}
    )
    problem = assert_problem(response, 422)
    assert "anthropic/claude-sonnet-4-5 does not support structured output" in problem["errors"][0]["msg"]
    assert (await client.get(f"/workspaces/{ws}/runs")).json()["items"] == []


async def test_thinking_streams_before_the_answer_and_is_billed_as_output(client, app, ws):
    pid = await new_prompt(client, ws)
    thinking = {**MOCK, "max_tokens": 2048, "thinking_budget": 1024}
    assert (await save(client, ws, pid, model_config=thinking)).status_code == 201
    run_id = await start(client, ws, pid, {"words": "one two three"})
    async with RunningWorker(app):
        run = await wait_for(client, ws, run_id)
    events = await events_of(client, ws, run_id)
    names = [e["event"] for e in events]
    assert names.index("run.thinking") < names.index("run.delta")
    assert "".join(e["data"]["text"] for e in events if e["event"] == "run.thinking") == "three two one "
    assert run["thinking"] == "three two one "
    assert run["output"] == delta_text(events) == "one two three "
    assert run["usage"] == {"input_tokens": 3, "output_tokens": 6, "estimated": False, "thinking_tokens": 3}
    assert events[-1]["event"] == "run.completed" and events[-1]["data"] == run


async def test_a_tool_call_streams_as_a_tool_use_event_and_stops_for_the_result(client, app, ws):
    pid = await new_prompt(client, ws)
    version = await save(client, ws, pid, tools=[WEATHER], tool_choice={"type": "any"})
    assert version.status_code == 201, version.text
    run_id = await start(client, ws, pid, {"words": "Paris"})
    async with RunningWorker(app):
        run = await wait_for(client, ws, run_id)
    assert run["status"] == "succeeded" and run["stop_reason"] == "tool_use"
    assert run["output"] == ""
    [call] = run["tool_uses"]
    assert call["name"] == "get_weather" and call["input"] == {"city": "Paris"}
    events = await events_of(client, ws, run_id)
    assert [e["data"] for e in events if e["event"] == "run.tool_use"] == [call]

    # The conversation goes on: the call and its result are sent back, and the model answers.
    follow_up = await save(
        client,
        ws,
        pid,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Weather in {{words}}?"},
            {"role": "assistant", "content": [{"type": "tool_use", **call}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "sunny"}]},
        ],
    )
    assert follow_up.status_code == 201, follow_up.text
    answer_id = await start(client, ws, pid, {"words": "Paris"})
    async with RunningWorker(app):
        answer = await wait_for(client, ws, answer_id)
    assert answer["output"] == "sunny " and answer["tool_uses"] == []
    assert answer["snapshot"]["messages"][1]["content"][0]["type"] == "tool_use"


@pytest.mark.parametrize(
    ("schema", "valid"),
    [
        (ANSWER_SCHEMA, True),
        ({"type": "object", "properties": {"other": {"type": "number"}}, "required": ["other"]}, False),
    ],
)
async def test_structured_output_is_checked_against_the_schema(client, app, ws, schema, valid):
    pid = await new_prompt(client, ws)
    assert (await save(client, ws, pid, output_schema=schema)).status_code == 201
    run_id = await start(client, ws, pid, {"words": "a short answer"})
    async with RunningWorker(app):
        run = await wait_for(client, ws, run_id)
    assert run["output"] == '{"answer": "a short answer"}'
    assert run["output_valid"] is valid
    assert run["snapshot"]["output_schema"] == schema


async def test_export_and_import_keep_tools_and_schemas(client, ws):
    pid = await new_prompt(client, ws)
    assert (await save(client, ws, pid, tools=[WEATHER], output_schema=ANSWER_SCHEMA)).status_code == 201
    document = (await client.get(f"/workspaces/{ws}/prompts/{pid}/export")).json()
    document["prompt"]["name"] = "copy"
    imported = await client.post(f"/workspaces/{ws}/prompts/import", json=document)
    assert imported.status_code == 201, imported.text
    copy = (await client.get(f"/workspaces/{ws}/prompts/{imported.json()['id']}/versions/1")).json()
    assert copy["tools"] == [WEATHER] and copy["output_schema"] == ANSWER_SCHEMA


def _image() -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}


async def test_the_estimate_counts_block_messages_exactly_for_the_mock(client, app, ws):
    """Text blocks and tool results are input (the estimate and the budget reservation counted only plain
    string messages, so a conversation continued after a tool call was estimated at nearly nothing)."""
    pid = await new_prompt(client, ws)
    call = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Weather in {{words}}"}, _image()]},
        {"role": "assistant", "content": [call]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny and warm"}]},
    ]
    assert (await save(client, ws, pid, messages=messages, tools=[WEATHER])).status_code == 201
    body = {"prompt_id": pid, "variables": {"words": "Oslo today"}}
    estimate = await client.post(f"/workspaces/{ws}/runs/estimate", json=body)
    assert estimate.status_code == 200, estimate.text
    assert estimate.json()["input_tokens"] == 4 + 3  # "Weather in Oslo today", "sunny and warm"
    async with RunningWorker(app):
        run = await wait_for(client, ws, await start(client, ws, pid, {"words": "Oslo today"}))
    assert run["status"] == "succeeded", run
    assert run["usage"]["input_tokens"] == estimate.json()["input_tokens"]


def test_the_worst_case_of_other_providers_covers_blocks_images_tools_and_schema():
    from backend.runs.service import WORST_CASE_IMAGE_TOKENS_OTHERS, worst_case_input_tokens

    call = {"type": "tool_use", "id": "t", "name": "get_weather", "input": {"city": "Oslo"}}
    plain = {"provider": "anthropic", "system": "", "messages": [{"role": "user", "content": "hi"}]}
    rich = {
        "provider": "anthropic",
        "system": "",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi"}, _image()]},
            {"role": "assistant", "content": [call]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x" * 100}]},
        ],
        "tools": [WEATHER],
        "output_schema": None,
    }
    base = worst_case_input_tokens(plain) - 10 * 2  # "hi" and the framing of one message
    assert base == 2
    tools_bytes = len(json.dumps([WEATHER], ensure_ascii=False).encode())
    call_bytes = len(("get_weather" + json.dumps({"city": "Oslo"})).encode())
    expected = 2 + 5_000 + call_bytes + 100 + tools_bytes + 10 * 4  # Anthropic bills an image at most ~1,600
    assert worst_case_input_tokens(rich) == expected
    # OpenAI's tile-priced models count far more per image.
    openai = {**rich, "provider": "openai"}
    assert worst_case_input_tokens(openai) == expected - 5_000 + WORST_CASE_IMAGE_TOKENS_OTHERS
