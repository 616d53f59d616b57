"""Template syntax, rendering, canonical hash material and version diffs (pure functions, no services)."""

from __future__ import annotations

import time

import pytest

from backend.prompts.rendering import (
    MAX_VALUE_CHARS,
    RenderedPrompt,
    RenderError,
    content_hash_material,
    diff_versions,
    render,
    render_text,
    variables_of,
)


def user(content: object) -> dict:
    return {"role": "user", "content": content}


def version(system: str = "", messages: list[dict] | None = None, model_config: dict | None = None) -> dict:
    return {
        "system": system,
        "messages": messages if messages is not None else [user("hi")],
        "model_config": model_config if model_config is not None else {"provider": "mock", "model": "mock-1"},
    }


# --- syntax -------------------------------------------------------------------------------------------


def test_variables_in_order_of_first_appearance_system_first() -> None:
    messages = [user("{{b}} and {{a}}"), {"role": "assistant", "content": "{{c}} {{b}}"}, user("{{d}}{{a}}")]
    assert variables_of("You are {{persona}}; {{a}}", messages) == ["persona", "a", "b", "c", "d"]


def test_no_variables() -> None:
    assert variables_of("", [user("plain")]) == []
    assert render_text("plain {text} with } and {", {}) == "plain {text} with } and {"


def test_spaces_inside_braces_are_the_same_variable() -> None:
    assert variables_of("{{x}} {{ x }} {{  x}}", []) == ["x"]
    assert render_text("[{{x}}|{{ x }}|{{x   }}]", {"x": "v"}) == "[v|v|v]"


def test_names_are_case_sensitive_and_may_start_with_digits_or_underscore() -> None:
    assert variables_of("{{Name}} {{name}} {{1st}} {{_x_2}}", []) == ["Name", "name", "1st", "_x_2"]


@pytest.mark.parametrize(
    "text",
    [
        '{"a": {"b": 1}}',
        '{{"a": 1}}',
        "{{a-b}}",
        "{{a.b}}",
        "{{not valid}}",
        "{{}}",
        "{{ }}",
        "{{x}",
        "{x}}",
        "{{\tx}}",
        "{{\nx\n}}",
        "{{café}}",
        "{% if x %}{{#each}}",
    ],
)
def test_invalid_placeholders_stay_literal(text: str) -> None:
    assert variables_of(text, []) == []
    assert render_text(text, {}) == text
    assert render(text, [user(text)], {}) == RenderedPrompt(system=text, messages=[user(text)])


def test_json_example_next_to_a_real_variable() -> None:
    text = 'Reply as JSON like {"user": {"name": "Ann"}} about {{topic}}.'
    assert variables_of(text, []) == ["topic"]
    assert render_text(text, {"topic": "cats"}) == 'Reply as JSON like {"user": {"name": "Ann"}} about cats.'


def test_extra_braces_around_a_placeholder_stay_literal() -> None:
    # The innermost `{{name}}` is the placeholder; the surrounding braces are plain text.
    assert variables_of("{{{x}}}", []) == ["x"]
    assert render_text("{{{x}}}", {"x": "v"}) == "{v}"
    assert render_text("{{{{x}}}}", {"x": "v"}) == "{{v}}"


def test_escaped_placeholder_renders_literally_and_is_not_a_variable() -> None:
    text = r"Use \{{x}} or \{{ y }} in your template, for {{z}}."
    assert variables_of(text, []) == ["z"]
    assert render_text(text, {"z": "you"}) == "Use {{x}} or {{ y }} in your template, for you."


def test_double_backslash_is_one_backslash_then_a_variable() -> None:
    assert variables_of(r"C:\\{{dir}}", []) == ["dir"]
    assert render_text(r"C:\\{{dir}}", {"dir": "tmp"}) == r"C:\tmp"
    assert render_text(r"\\\{{dir}}", {}) == r"\{{dir}}"
    assert render_text(r"\\\\{{dir}}", {"dir": "tmp"}) == r"\\tmp"


def test_backslashes_elsewhere_are_untouched() -> None:
    text = r"regex \d+\\ and \{ and \\{ x }} and \{{not valid}} and \\n"
    assert render_text(text, {}) == text


def test_long_runs_of_backslashes_and_braces_scan_in_linear_time() -> None:
    hostile = "\\" * 500_000 + "{{" + " " * 100_000 + "x" * 100_000 + "{{" * 100_000
    started = time.perf_counter()
    assert variables_of(hostile, []) == []
    assert time.perf_counter() - started < 2


# --- rendering ----------------------------------------------------------------------------------------


def test_render_substitutes_system_and_messages() -> None:
    rendered = render(
        "You are {{persona}}.",
        [user("Summarize: {{text}}"), {"role": "assistant", "content": "OK, {{persona}}"}],
        {"persona": "a pirate", "text": "the news"},
    )
    assert rendered == RenderedPrompt(
        system="You are a pirate.",
        messages=[user("Summarize: the news"), {"role": "assistant", "content": "OK, a pirate"}],
    )


def test_render_does_not_mutate_its_input() -> None:
    messages = [user("{{x}}"), user([{"type": "text", "text": "{{x}}"}])]
    render("", messages, {"x": "v"})
    assert messages == [user("{{x}}"), user([{"type": "text", "text": "{{x}}"}])]


def test_values_are_never_rescanned() -> None:
    rendered = render("{{x}} / {{y}}", [], {"x": "{{y}}", "y": r"\{{x}} \\{{y}}"})
    assert rendered.system == r"{{y}} / \{{x}} \\{{y}}"


def test_value_with_regex_replacement_syntax_is_inserted_verbatim() -> None:
    assert render_text("{{x}}", {"x": r"\1 \g<0> $1 \n"}) == r"\1 \g<0> $1 \n"


def test_missing_variables_are_all_listed() -> None:
    with pytest.raises(RenderError) as caught:
        render("{{a}} {{b}}", [user("{{c}} {{a}}")], {"b": "ok"})
    assert caught.value.problems == [(["variables", "a"], "missing value"), (["variables", "c"], "missing value")]
    assert isinstance(caught.value, ValueError)


def test_render_text_missing_value_is_a_render_error_not_a_key_error() -> None:
    with pytest.raises(RenderError) as caught:
        render_text("{{a}} {{b}} {{a}}", {"b": "x"})
    assert caught.value.problems == [(["variables", "a"], "missing value")]


def test_extra_variables_are_all_listed() -> None:
    with pytest.raises(RenderError) as caught:
        render("{{a}}", [], {"a": "1", "extra": "2", "other": "3"})
    assert caught.value.problems == [
        (["variables", "extra"], "not a variable of this version"),
        (["variables", "other"], "not a variable of this version"),
    ]


def test_escaped_name_is_not_a_variable_so_a_value_for_it_is_extra() -> None:
    with pytest.raises(RenderError) as caught:
        render(r"\{{x}}", [], {"x": "v"})
    assert caught.value.problems == [(["variables", "x"], "not a variable of this version")]


@pytest.mark.parametrize("value", [1, None, ["a"], {"a": "b"}, b"bytes", True])
def test_non_string_value_is_refused(value: object) -> None:
    with pytest.raises(RenderError) as caught:
        render("{{x}}", [], {"x": value})
    assert caught.value.problems == [(["variables", "x"], "value must be a string")]


def test_all_kinds_of_problem_reported_together() -> None:
    with pytest.raises(RenderError) as caught:
        render("{{a}} {{b}} {{c}}", [], {"b": 5, "c": "x" * (MAX_VALUE_CHARS + 1), "z": "?"})
    assert caught.value.problems == [
        (["variables", "a"], "missing value"),
        (["variables", "b"], "value must be a string"),
        (["variables", "c"], f"value exceeds {MAX_VALUE_CHARS} characters"),
        (["variables", "z"], "not a variable of this version"),
    ]


def test_error_message_names_variables_but_never_echoes_values() -> None:
    with pytest.raises(RenderError) as caught:
        render("{{secret}}", [], {"secret": "s" * (MAX_VALUE_CHARS + 1)})
    assert str(caught.value) == f"variables.secret: value exceeds {MAX_VALUE_CHARS} characters"


def test_value_at_the_limit_is_accepted_one_over_is_refused() -> None:
    assert MAX_VALUE_CHARS >= 100_000
    at_limit = "é" * MAX_VALUE_CHARS  # characters, not UTF-8 bytes, are counted
    assert render("<{{x}}>", [], {"x": at_limit}).system == f"<{at_limit}>"
    with pytest.raises(RenderError) as caught:
        render("<{{x}}>", [], {"x": at_limit + "é"})
    assert caught.value.problems == [(["variables", "x"], f"value exceeds {MAX_VALUE_CHARS} characters")]


@pytest.mark.parametrize(
    "value",
    [
        "😀👩🏽‍💻🇳🇿",  # emoji, skin tone, ZWJ sequence, flag
        "中文テキスト한국어",  # CJK
        "שלום עולם مرحبا",  # RTL
        "e\u0301 n\u0303 \u1e9b\u0323",  # combining marks, deliberately not NFC
        "a\x00b\r\n\u2028\ufeff",  # NUL, CRLF, line separator, BOM: plain characters to the renderer
    ],
)
def test_unicode_round_trips_exactly(value: str) -> None:
    rendered = render("[{{v}}]", [user("{{v}}"), user([{"type": "text", "text": "{{v}}"}])], {"v": value})
    assert rendered.system == f"[{value}]"
    assert rendered.messages[0]["content"] == value
    assert rendered.messages[1]["content"][0]["text"] == value


def test_unicode_template_text_round_trips() -> None:
    text = "Réponds en 日本語 👋 e\u0301 to {{name}}"
    assert render_text(text, {"name": "Zoë"}) == "Réponds en 日本語 👋 e\u0301 to Zoë"


def test_content_blocks_text_rendered_other_blocks_passed_through() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "{{x}}"}}
    message = user([{"type": "text", "text": "Describe {{x}}", "cache_control": {"type": "ephemeral"}}, image])
    assert variables_of("", [message]) == ["x"]
    rendered = render("", [message], {"x": "this"})
    assert rendered.messages == [
        user([{"type": "text", "text": "Describe this", "cache_control": {"type": "ephemeral"}}, image])
    ]
    assert rendered.messages[0]["content"][1] is image


def test_message_keys_other_than_content_are_kept() -> None:
    rendered = render("", [{"role": "assistant", "content": "{{x}}", "name": "bot"}], {"x": "v"})
    assert rendered.messages == [{"role": "assistant", "content": "v", "name": "bot"}]


def test_empty_system_and_no_messages() -> None:
    assert render("", [], {}) == RenderedPrompt(system="", messages=[])


# --- content hash material ----------------------------------------------------------------------------

BASE_CONFIG = {"provider": "mock", "model": "mock-1", "max_tokens": 256, "temperature": 0.7}


def material(system: str = "You are {{p}}.", messages: list[dict] | None = None, config: dict | None = None) -> bytes:
    return content_hash_material(system, messages or [user("Hi {{t}}")], config or BASE_CONFIG)


def test_hash_material_is_canonical_json() -> None:
    assert (
        content_hash_material("Sé", [user("😀")], {"model": "m", "provider": "p"})
        == (
            '{"messages":[{"content":"😀","role":"user"}],"model_config":{"model":"m","provider":"p"},"system":"Sé"}'
        ).encode()
    )


@pytest.mark.parametrize(
    "config",
    [
        {"temperature": 0.7, "max_tokens": 256, "model": "mock-1", "provider": "mock"},
        {**BASE_CONFIG, "top_p": None},
        {**BASE_CONFIG, "stop_sequences": []},
        {**BASE_CONFIG, "top_p": None, "stop_sequences": [], "top_k": None},
        {**BASE_CONFIG, "max_tokens": 256.0},
    ],
)
def test_hash_material_equal_for_equivalent_configs(config: dict) -> None:
    assert material(config=config) == material()


@pytest.mark.parametrize(
    "changed",
    [
        {"system": "You are {{p}}!"},
        {"system": "You are {{ p }}."},
        {"system": "You are e\u0301."},
        {"messages": [{"role": "assistant", "content": "Hi {{t}}"}]},
        {"messages": [user("Hi {{t}} ")]},
        {"messages": [user([{"type": "text", "text": "Hi {{t}}"}])]},
        {"messages": [user("Hi {{t}}"), user("Hi {{t}}")]},
        {"config": {**BASE_CONFIG, "temperature": 0.8}},
        {"config": {**BASE_CONFIG, "model": "mock-2"}},
        {"config": {**BASE_CONFIG, "stop_sequences": ["END"]}},
        {"config": {**BASE_CONFIG, "top_p": 0.9}},
        {"config": {k: v for k, v in BASE_CONFIG.items() if k != "temperature"}},
    ],
)
def test_hash_material_differs_for_any_real_change(changed: dict) -> None:
    assert material(**changed) != material()


def test_hash_material_refuses_nan() -> None:
    with pytest.raises(ValueError):
        content_hash_material("", [], {"temperature": float("nan")})


# --- diffs --------------------------------------------------------------------------------------------


def test_identical_versions_are_unchanged() -> None:
    a = version("You are {{p}}.", [user("Hi {{t}}")], {**BASE_CONFIG, "top_p": None})
    b = version("You are {{p}}.", [user("Hi {{t}}")], {**BASE_CONFIG, "stop_sequences": []})
    diff = diff_versions(a, b)
    assert diff["changed"] is False
    assert diff["system"] == {"changed": False, "before": "You are {{p}}.", "after": "You are {{p}}.", "unified": ""}
    assert diff["messages"] == [
        {
            "index": 0,
            "status": "unchanged",
            "role_before": "user",
            "role_after": "user",
            "before": "Hi {{t}}",
            "after": "Hi {{t}}",
            "unified": "",
        }
    ]
    assert {c["status"] for c in diff["model_config"]} == {"unchanged"}
    assert [c["key"] for c in diff["model_config"]] == sorted(BASE_CONFIG)
    assert diff["variables"] == {"added": [], "removed": []}


def test_system_change_has_a_unified_diff() -> None:
    diff = diff_versions(version("Line one.\nBe brief.\nEnd."), version("Line one.\nBe thorough.\nEnd."))
    assert diff["changed"] is True
    assert diff["system"]["changed"] is True
    unified = diff["system"]["unified"]
    assert unified.startswith("--- a/system\n+++ b/system\n@@")
    assert "-Be brief.\n" in unified
    assert "+Be thorough.\n" in unified
    assert " Line one.\n" in unified
    assert diff["messages"][0]["status"] == "unchanged"


def test_trailing_newline_change_is_visible_in_the_unified_diff() -> None:
    unified = diff_versions(version("x"), version("x\n"))["system"]["unified"]
    assert "-x\n\\ No newline at end of file\n" in unified
    assert "+x\n" in unified


def test_message_changed_added_removed_by_position() -> None:
    a = version(messages=[user("one"), {"role": "assistant", "content": "two"}, user("three")])
    b = version(messages=[user("one!"), user("two")])
    diff = diff_versions(a, b)
    assert diff["changed"] is True
    first, second, third = diff["messages"]
    assert first["status"] == "changed"
    assert "-one\n" in first["unified"]
    assert "+one!\n" in first["unified"]
    assert first["unified"].startswith("--- a/messages[0]\n+++ b/messages[0]\n")
    assert second["status"] == "changed"
    assert (second["role_before"], second["role_after"]) == ("assistant", "user")
    assert (second["before"], second["after"]) == ("two", "two")
    assert third == {
        "index": 2,
        "status": "removed",
        "role_before": "user",
        "role_after": None,
        "before": "three",
        "after": None,
        "unified": "--- a/messages[2]\n+++ b/messages[2]\n@@ -1 +0,0 @@\n-three\n\\ No newline at end of file\n",
    }

    added = diff_versions(b, a)["messages"][2]
    assert added["status"] == "added"
    assert (added["role_before"], added["role_after"], added["before"], added["after"]) == (None, "user", None, "three")
    assert "+three\n" in added["unified"]


def test_content_blocks_in_diffs_show_text_and_name_other_blocks() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
    a = version(messages=[user("Describe this")])
    b = version(messages=[user([{"type": "text", "text": "Describe this"}, image])])
    message = diff_versions(a, b)["messages"][0]
    assert message["status"] == "changed"
    assert message["after"] == "Describe this\n[image]"
    assert "+[image]" in message["unified"]


def test_model_config_changed_added_removed_sorted_by_key() -> None:
    a = version(model_config={"provider": "mock", "model": "mock-1", "temperature": 0.7, "top_p": 0.9})
    b = version(
        model_config={"provider": "mock", "model": "mock-1", "temperature": 0.2, "max_tokens": 100, "top_p": None}
    )
    diff = diff_versions(a, b)
    assert diff["changed"] is True
    assert diff["model_config"] == [
        {"key": "max_tokens", "status": "added", "before": None, "after": 100},
        {"key": "model", "status": "unchanged", "before": "mock-1", "after": "mock-1"},
        {"key": "provider", "status": "unchanged", "before": "mock", "after": "mock"},
        {"key": "temperature", "status": "changed", "before": 0.7, "after": 0.2},
        {"key": "top_p", "status": "removed", "before": 0.9, "after": None},
    ]
    assert diff["system"]["changed"] is False


def test_only_a_config_change_makes_the_versions_changed() -> None:
    diff = diff_versions(version(model_config={"stop_sequences": []}), version(model_config={"stop_sequences": ["X"]}))
    assert diff["changed"] is True
    assert diff["model_config"] == [{"key": "stop_sequences", "status": "added", "before": None, "after": ["X"]}]


def test_variables_added_and_removed() -> None:
    a = version("You are {{persona}}.", [user("{{text}} in {{lang}}")])
    b = version("You are {{ persona }}.", [user("{{text}} for {{audience}}, \\{{lang}}")])
    assert diff_versions(a, b)["variables"] == {"added": ["audience"], "removed": ["lang"]}


def test_diff_changed_agrees_with_hash_material() -> None:
    pairs = [
        (version("a"), version("a")),
        (version("a"), version("b")),
        (version(model_config={"t": 1}), version(model_config={"t": 1.0})),
        (version(model_config={"t": None}), version(model_config={})),
        (version(messages=[user("x")]), version(messages=[{"role": "assistant", "content": "x"}])),
    ]
    for a, b in pairs:
        same_hash = content_hash_material(a["system"], a["messages"], a["model_config"]) == content_hash_material(
            b["system"], b["messages"], b["model_config"]
        )
        assert diff_versions(a, b)["changed"] is not same_hash
