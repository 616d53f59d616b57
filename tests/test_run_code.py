""""Get code": a run's pinned request as a program, in Python, TypeScript and curl; keys never written out."""

from __future__ import annotations

import ast
import json
import subprocess
import uuid

import pytest

from backend.runs.code import LANGUAGES, anthropic_params, code_for, openai_body
from tests.factories import assert_problem, create_workspace, signup
from tests.runs_helpers import RunningWorker
from tests.test_runs import start, wait_for

TOOL = {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}


def snapshot(provider: str, model: str, **extra) -> dict:
    return {
        "prompt_id": str(uuid.uuid4()),
        "version_id": str(uuid.uuid4()),
        "version": 3,
        "variables": {"city": "Paris"},
        "system": "You answer in one line. It's \"quoted\" and 'single'.",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "model_config": {"provider": provider, "model": model, "max_tokens": 2048, "temperature": 0.5,
                         "stop_sequences": ["\n\n"], **extra.pop("config", {})},
        "provider": provider,
        "model": model,
        "tools": extra.pop("tools", []),
        "tool_choice": extra.pop("tool_choice", None),
        "output_schema": extra.pop("output_schema", None),
        "price": {"input_per_mtok": "3", "output_per_mtok": "15"},
    }


def python_call_kwargs(code: str, call: str) -> dict:
    """The keyword arguments of the SDK call in generated Python, evaluated back into data."""
    tree = ast.parse(code)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith(call):
            return {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
    raise AssertionError(f"no call to {call}")


def test_anthropic_python_makes_exactly_the_pinned_request():
    pinned = snapshot("anthropic", "claude-sonnet-4-5", tools=[TOOL], tool_choice={"type": "auto"},
                      config={"thinking_budget": 1024})
    code = code_for(pinned, "python", playground_url="http://x", workspace_id="w")
    kwargs = python_call_kwargs(code, "messages.stream")
    assert kwargs == anthropic_params(pinned)
    assert kwargs["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert kwargs["system"] == pinned["system"] and kwargs["stop_sequences"] == ["\n\n"]
    assert "api_key" not in code and "ANTHROPIC_API_KEY" in code


def test_openai_python_makes_the_body_the_provider_sends():
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    pinned = snapshot("openai", "gpt-4o", tools=[TOOL], tool_choice={"type": "any"}, output_schema=schema)
    code = code_for(pinned, "python", playground_url="http://x", workspace_id="w")
    kwargs = python_call_kwargs(code, "completions.create")
    assert kwargs == {**openai_body(pinned), "stream": True}
    assert kwargs["tool_choice"] == "required" and kwargs["response_format"]["json_schema"]["schema"] == schema


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_curl_is_valid_shell_whose_body_is_the_request(provider, tmp_path):
    pinned = snapshot(provider, "claude-sonnet-4-5" if provider == "anthropic" else "gpt-4o")
    code = code_for(pinned, "curl", playground_url="http://x", workspace_id="w")
    script = tmp_path / "run.sh"
    script.write_text(code)
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    # Replace curl with a printer of its --data-binary argument, then run the script for real.
    printer = tmp_path / "bin"
    printer.mkdir()
    (printer / "curl").write_text('#!/bin/sh\nwhile [ "$1" != "--data-binary" ]; do shift; done\nprintf %s "$2"\n')
    (printer / "curl").chmod(0o755)
    sent = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=True,
                          env={"PATH": f"{printer}:/usr/bin:/bin"}).stdout
    expected = anthropic_params(pinned) if provider == "anthropic" else openai_body(pinned)
    assert json.loads(sent) == {**expected, "stream": True}


@pytest.mark.parametrize("language", LANGUAGES)
def test_typescript_and_every_language_name_the_model_and_no_key(language):
    pinned = snapshot("openai", "gpt-4o")
    code = code_for(pinned, language, playground_url="http://x", workspace_id="w")
    assert "gpt-4o" in code and "Weather in Paris?" in code
    assert "sk-" not in code


async def test_a_mock_run_gets_code_that_runs_it_again_through_the_playground(client, app):
    owner = await signup(client)
    ws = await create_workspace(owner)
    prompt = (await client.post(f"/workspaces/{ws}/prompts", json={"name": "code"})).json()
    body = {"messages": [{"role": "user", "content": "Say {{words}}"}],
            "model_config": {"provider": "mock", "model": "mock-1", "max_tokens": 64}}
    assert (await client.post(f"/workspaces/{ws}/prompts/{prompt['id']}/versions", json=body)).status_code == 201
    run_id = await start(client, ws, prompt["id"], {"words": "hello there"})
    async with RunningWorker(app):
        await wait_for(client, ws, run_id)
    response = await client.get(f"/workspaces/{ws}/runs/{run_id}/code", params={"language": "python"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["provider"] == "mock" and answer["language"] == "python"
    ast.parse(answer["code"])
    assert f"/api/v1/workspaces/{ws}/runs" in answer["code"] and "'hello there'" in answer["code"]
    assert_problem(await client.get(f"/workspaces/{ws}/runs/{run_id}/code", params={"language": "cobol"}), 422)


async def test_code_for_a_draft_saves_nothing(client):
    owner = await signup(client)
    ws = await create_workspace(owner)
    prompt = (await client.post(f"/workspaces/{ws}/prompts", json={"name": "draft-code"})).json()
    draft = {"messages": [{"role": "user", "content": "Say {{words}}"}],
             "model_config": {"provider": "mock", "model": "mock-1", "max_tokens": 64}}
    body = {"prompt_id": prompt["id"], "draft": draft, "variables": {"words": "hi"}}
    response = await client.post(f"/workspaces/{ws}/runs/code", params={"language": "curl"}, json=body)
    assert response.status_code == 200, response.text
    assert '"version": 1' in response.json()["code"]
    assert (await client.get(f"/workspaces/{ws}/prompts/{prompt['id']}/versions")).json() == []
    assert (await client.get(f"/workspaces/{ws}/runs")).json()["items"] == []
