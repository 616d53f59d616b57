"""Prompt templates: find `{{name}}` variables, render a version with run-time values, and produce the
canonical bytes and per-field diff of a version's content. Pure functions; no I/O."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

MAX_VALUE_CHARS = 262_144  # 256 Ki characters per value: room for a long document, well under the 2 MiB body cap
MAX_VARIABLES = 100  # distinct variables per version; enforced by whoever saves a version

# The lookbehind makes a match start only at the first backslash of a run, so a long run of backslashes
# (or text with many of them) is scanned in linear time rather than retried from every position.
_PLACEHOLDER = re.compile(r"(?<!\\)(?P<escapes>\\*)\{\{ *(?P<name>[A-Za-z0-9_]+) *\}\}")


class RenderError(ValueError):
    """Values that do not fit a version. Messages name variables but never quote values (they are prompt text)."""

    def __init__(self, problems: list[tuple[list[str | int], str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in problems))


@dataclass(frozen=True)
class RenderedPrompt:
    system: str
    messages: list[dict]


def _placeholders(text: str) -> Iterator[re.Match[str]]:
    """Matches that are real placeholders: an odd number of backslashes in front escapes the `{{`."""
    for match in _PLACEHOLDER.finditer(text):
        if len(match["escapes"]) % 2 == 0:
            yield match


def _texts(content: object) -> Iterator[str]:
    """The template text of one message: the string itself, or the text of each text block."""
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
                yield block["text"]


def variables_of(system: str, messages: list[dict]) -> list[str]:
    """Unique variable names in order of first appearance: the system prompt, then each message in order."""
    texts = [system, *(text for message in messages for text in _texts(message.get("content")))]
    seen: dict[str, None] = {}
    for text in texts:
        for match in _placeholders(text):
            seen.setdefault(match["name"], None)
    return list(seen)


def render_text(text: str, values: Mapping[str, str]) -> str:
    """Substitute every placeholder in `text`; values go in verbatim and are never scanned again."""
    missing = list(dict.fromkeys(m["name"] for m in _placeholders(text) if m["name"] not in values))
    if missing:
        raise RenderError([(["variables", name], "missing value") for name in missing])

    def substitute(match: re.Match[str]) -> str:
        escapes = match["escapes"]
        # Each `\\` before a placeholder stands for one backslash; a final odd one keeps the `{{...}}` as typed.
        kept = "\\" * (len(escapes) // 2)
        if len(escapes) % 2:
            return kept + match.group()[len(escapes) :]
        return kept + values[match["name"]]

    # re.sub inserts a function's return value literally and resumes after the match, so a value that
    # contains `{{x}}` or backslashes comes out exactly as given.
    return _PLACEHOLDER.sub(substitute, text)


def _render_content(content: object, values: Mapping[str, str]) -> object:
    if isinstance(content, str):
        return render_text(content, values)
    if isinstance(content, list):
        return [
            {**block, "text": render_text(block["text"], values)}
            if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
            else block
            for block in content
        ]
    return content


def render(system: str, messages: list[dict], values: Mapping[str, object]) -> RenderedPrompt:
    """Check `values` against the version's variables (reporting every problem at once), then render."""
    names = variables_of(system, messages)
    problems: list[tuple[list[str | int], str]] = []
    text_values: dict[str, str] = {}
    for name in names:
        value = values.get(name)
        if name not in values:
            problems.append((["variables", name], "missing value"))
        elif not isinstance(value, str):
            problems.append((["variables", name], "value must be a string"))
        elif len(value) > MAX_VALUE_CHARS:
            problems.append((["variables", name], f"value exceeds {MAX_VALUE_CHARS} characters"))
        else:
            text_values[name] = value
    known = set(names)
    problems.extend(
        (["variables", str(name)], "not a variable of this version") for name in values if name not in known
    )
    if problems:
        raise RenderError(problems)

    return RenderedPrompt(
        system=render_text(system, text_values),
        messages=[{**message, "content": _render_content(message.get("content"), text_values)} for message in messages],
    )


def _normalized_config(model_config: Mapping[str, Any]) -> dict[str, Any]:
    """Drop settings that mean "provider default" so equivalent configs hash and diff as equal."""
    normalized: dict[str, Any] = {}
    for key, value in model_config.items():
        if value is None or (key == "stop_sequences" and value == []):
            continue
        # 1 and 1.0 are the same setting, but json.dumps spells them differently.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        normalized[key] = value
    return normalized


def content_hash_material(
    system: str, messages: list[dict], model_config: dict, extras: dict[str, Any] | None = None
) -> bytes:
    """Canonical bytes of a version's content, for the caller to HMAC. Text is hashed exactly as given.
    Tools, tool choice and output schema count only when present, so older versions keep their hashes."""
    document = {"system": system, "messages": messages, "model_config": _normalized_config(model_config)}
    if extras:
        document["extras"] = extras
    # allow_nan=False: NaN/Infinity are not JSON and NaN != NaN, so such a config could never dedupe anyway.
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return canonical.encode("utf-8")


def _content_text(content: object) -> str:
    """A readable text form of a message for diffs: text blocks as text, other blocks as `[type]`."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
                parts.append(block["text"])
            else:
                kind = block.get("type") if isinstance(block, dict) else None
                parts.append(f"[{kind or 'block'}]")
        return "\n".join(parts)
    return ""


def _lines(text: str) -> list[str]:
    # Split on "\n" only: str.splitlines would also break on \r, \x0c, U+2028 and so misreport line ends.
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _unified(before: str, after: str, field: str) -> str:
    out = []
    for line in difflib.unified_diff(_lines(before), _lines(after), fromfile=f"a/{field}", tofile=f"b/{field}"):
        # As in `diff`/git: mark a last line without a newline, so "x" -> "x\n" still shows a difference.
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def _diff_message(index: int, a: dict | None, b: dict | None) -> dict[str, Any]:
    before = _content_text(a.get("content")) if a is not None else None
    after = _content_text(b.get("content")) if b is not None else None
    if a is None:
        status = "added"
    elif b is None:
        status = "removed"
    elif a == b:  # whole messages, so any field that the hash sees also counts here
        status = "unchanged"
    else:
        status = "changed"
    return {
        "index": index,
        "status": status,
        "role_before": a.get("role") if a is not None else None,
        "role_after": b.get("role") if b is not None else None,
        "before": before,
        "after": after,
        "unified": "" if status == "unchanged" else _unified(before or "", after or "", f"messages[{index}]"),
    }


def diff_versions(a: dict, b: dict) -> dict[str, Any]:
    """Per-field differences from version `a` to version `b`; messages are compared by position."""
    system_before, system_after = a.get("system", ""), b.get("system", "")
    system_changed = system_before != system_after

    messages_a, messages_b = a.get("messages", []), b.get("messages", [])
    messages = [
        _diff_message(
            i,
            messages_a[i] if i < len(messages_a) else None,
            messages_b[i] if i < len(messages_b) else None,
        )
        for i in range(max(len(messages_a), len(messages_b)))
    ]

    # Compared after the hash's normalisation, so "changed" agrees with whether the content hashes differ.
    config_a = _normalized_config(a.get("model_config", {}))
    config_b = _normalized_config(b.get("model_config", {}))
    model_config = []
    for key in sorted(config_a.keys() | config_b.keys()):
        if key not in config_a:
            status = "added"
        elif key not in config_b:
            status = "removed"
        else:
            status = "unchanged" if config_a[key] == config_b[key] else "changed"
        model_config.append({"key": key, "status": status, "before": config_a.get(key), "after": config_b.get(key)})

    extras = []
    for key in ("tools", "tool_choice", "output_schema"):
        before, after = a.get(key) or None, b.get(key) or None
        if before != after:
            status = "added" if before is None else "removed" if after is None else "changed"
            extras.append({"key": key, "status": status, "before": before, "after": after})

    variables_a = variables_of(system_before, messages_a)
    variables_b = variables_of(system_after, messages_b)
    return {
        "system": {
            "changed": system_changed,
            "before": system_before,
            "after": system_after,
            "unified": _unified(system_before, system_after, "system") if system_changed else "",
        },
        "messages": messages,
        "model_config": model_config,
        "extras": extras,
        "variables": {
            "added": [name for name in variables_b if name not in variables_a],
            "removed": [name for name in variables_a if name not in variables_b],
        },
        "changed": system_changed
        or any(m["status"] != "unchanged" for m in messages)
        or any(c["status"] != "unchanged" for c in model_config)
        or bool(extras),
    }
