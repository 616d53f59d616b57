""""Get code": the request a run makes (or would make), as a program to paste into an application.

Written from the pinned snapshot, so it reproduces exactly what the playground sends: the rendered messages,
the effective model config, tools, tool choice, thinking and output schema. Keys are never written out: the
programs read them from the environment, as the providers' SDKs do by default.
"""

from __future__ import annotations

import json
import pprint
import shlex
from typing import Any, Literal

from backend.runs.providers.base import ProviderRequest
from backend.runs.providers.openai import build_body

Language = Literal["python", "typescript", "curl"]
LANGUAGES: tuple[Language, ...] = ("python", "typescript", "curl")


def code_for(snapshot: dict[str, Any], language: Language, *, playground_url: str, workspace_id: str) -> str:
    provider = snapshot["provider"]
    if provider == "anthropic":
        return _ANTHROPIC[language](anthropic_params(snapshot))
    if provider == "openai":
        return _OPENAI[language](openai_body(snapshot))
    # The mock (or any provider only the playground speaks): run the same version through the playground.
    body = {"prompt_id": snapshot["prompt_id"], "version": snapshot["version"], "variables": snapshot["variables"]}
    return _PLAYGROUND[language](f"{playground_url}/api/v1/workspaces/{workspace_id}/runs", body)


def anthropic_params(snapshot: dict[str, Any]) -> dict[str, Any]:
    config = snapshot["model_config"]
    params: dict[str, Any] = {"model": snapshot["model"], "max_tokens": config["max_tokens"]}
    if snapshot["system"]:
        params["system"] = snapshot["system"]
    params["messages"] = snapshot["messages"]
    for name in ("temperature", "top_p", "top_k"):
        if config.get(name) is not None:
            params[name] = config[name]
    if config.get("stop_sequences"):
        params["stop_sequences"] = config["stop_sequences"]
    if snapshot.get("tools"):
        params["tools"] = snapshot["tools"]
        if snapshot.get("tool_choice"):
            params["tool_choice"] = snapshot["tool_choice"]
    if config.get("thinking_budget"):
        params["thinking"] = {"type": "enabled", "budget_tokens": config["thinking_budget"]}
    return params


def openai_body(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The very body the provider sends, for OpenAI itself (max_completion_tokens), without streaming options."""
    config = snapshot["model_config"]
    request = ProviderRequest(
        provider="openai",
        model=snapshot["model"],
        system=snapshot["system"],
        messages=snapshot["messages"],
        max_tokens=config["max_tokens"],
        temperature=config.get("temperature"),
        top_p=config.get("top_p"),
        stop_sequences=config.get("stop_sequences") or [],
        tools=snapshot.get("tools") or [],
        tool_choice=snapshot.get("tool_choice"),
        output_schema=snapshot.get("output_schema"),
    )
    body = build_body(request)
    for streaming_only in ("stream", "stream_options"):
        body.pop(streaming_only, None)
    return body


def _py(value: Any, indent: int) -> str:
    """A Python literal for JSON data, indented to sit after `indent` spaces."""
    text = pprint.pformat(value, width=100 - indent, sort_dicts=False)
    return text.replace("\n", "\n" + " " * indent)


def _py_kwargs(params: dict[str, Any]) -> str:
    return "".join(f"    {name}={_py(value, 4)},\n" for name, value in params.items())


def _js(value: Any, indent: int = 0) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n" + " " * indent)


def _curl(url: str, headers: list[str], body: dict[str, Any]) -> str:
    lines = [f"curl {shlex.quote(url)}"]
    lines += [f"  -H {header}" for header in headers]
    lines.append(f"  --data-binary {shlex.quote(json.dumps(body, indent=2, ensure_ascii=False))}")
    return " \\\n".join(lines) + "\n"


def _anthropic_python(params: dict[str, Any]) -> str:
    return (
        "import anthropic\n\n"
        "client = anthropic.Anthropic()  # reads ANTHROPIC_API_KEY\n\n"
        "with client.messages.stream(\n"
        f"{_py_kwargs(params)}"
        ") as stream:\n"
        "    for text in stream.text_stream:\n"
        '        print(text, end="", flush=True)\n'
        "    message = stream.get_final_message()\n"
    )


def _anthropic_typescript(params: dict[str, Any]) -> str:
    return (
        'import Anthropic from "@anthropic-ai/sdk";\n\n'
        "const client = new Anthropic(); // reads ANTHROPIC_API_KEY\n\n"
        f"const stream = client.messages.stream({_js(params)});\n"
        'stream.on("text", (text) => process.stdout.write(text));\n'
        "const message = await stream.finalMessage();\n"
    )


def _anthropic_curl(params: dict[str, Any]) -> str:
    headers = ['"x-api-key: $ANTHROPIC_API_KEY"', '"anthropic-version: 2023-06-01"', '"content-type: application/json"']
    return _curl("https://api.anthropic.com/v1/messages", headers, {**params, "stream": True})


def _openai_python(body: dict[str, Any]) -> str:
    return (
        "from openai import OpenAI\n\n"
        "client = OpenAI()  # reads OPENAI_API_KEY; pass base_url=... for another compatible server\n\n"
        "stream = client.chat.completions.create(\n"
        f"{_py_kwargs(body)}"
        "    stream=True,\n"
        ")\n"
        "for chunk in stream:\n"
        "    if chunk.choices and chunk.choices[0].delta.content:\n"
        '        print(chunk.choices[0].delta.content, end="", flush=True)\n'
    )


def _openai_typescript(body: dict[str, Any]) -> str:
    return (
        'import OpenAI from "openai";\n\n'
        "const client = new OpenAI(); // reads OPENAI_API_KEY; pass baseURL for another compatible server\n\n"
        f"const stream = await client.chat.completions.create({{ ...{_js(body)}, stream: true }});\n"
        "for await (const chunk of stream) {\n"
        '  process.stdout.write(chunk.choices[0]?.delta?.content ?? "");\n'
        "}\n"
    )


def _openai_curl(body: dict[str, Any]) -> str:
    headers = ['"Authorization: Bearer $OPENAI_API_KEY"', '"Content-Type: application/json"']
    return _curl("https://api.openai.com/v1/chat/completions", headers, {**body, "stream": True})


def _playground_python(url: str, body: dict[str, Any]) -> str:
    return (
        "import os\n\nimport httpx\n\n"
        'headers = {"Authorization": f"Bearer {os.environ[\'PLAYGROUND_API_KEY\']}"}\n'
        f"run = httpx.post(\n    {url!r},\n    json={_py(body, 4)},\n    headers=headers,\n).json()\n"
        "# The run streams as server-sent events; the last one carries the finished run.\n"
        'with httpx.stream("GET", run["events_url"], headers=headers, base_url=' + repr(_origin(url)) + ") as events:\n"
        "    for line in events.iter_lines():\n"
        "        print(line)\n"
    )


def _playground_typescript(url: str, body: dict[str, Any]) -> str:
    return (
        'const headers = { Authorization: `Bearer ${process.env.PLAYGROUND_API_KEY}`, "Content-Type": '
        '"application/json" };\n'
        f"const response = await fetch({json.dumps(url)}, {{ method: \"POST\", headers, body: "
        f"JSON.stringify({_js(body)}) }});\n"
        "const run = await response.json();\n"
        f"const events = await fetch({json.dumps(_origin(url))} + run.events_url, {{ headers }});\n"
        "for await (const chunk of events.body!) process.stdout.write(chunk);\n"
    )


def _playground_curl(url: str, body: dict[str, Any]) -> str:
    headers = ['"Authorization: Bearer $PLAYGROUND_API_KEY"', '"Content-Type: application/json"']
    return _curl(url, headers, body)


def _origin(url: str) -> str:
    return url.split("/api/v1/", 1)[0]


_ANTHROPIC = {"python": _anthropic_python, "typescript": _anthropic_typescript, "curl": _anthropic_curl}
_OPENAI = {"python": _openai_python, "typescript": _openai_typescript, "curl": _openai_curl}
_PLAYGROUND = {"python": _playground_python, "typescript": _playground_typescript, "curl": _playground_curl}
