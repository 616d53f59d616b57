"""Providers against local fakes speaking the real wire protocols, driven through the real SDK and httpx;
plus the mock provider's contract and the retry wrapper's rules."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from backend.core.settings import Settings
from backend.runs.providers import registry
from backend.runs.providers.anthropic import SAMPLING_API_VERSION, AnthropicProvider
from backend.runs.providers.base import (
    Finished,
    ProviderError,
    ProviderRequest,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolUse,
    UsageUpdate,
)
from backend.runs.providers.mock import MockProvider
from backend.runs.providers.openai import OpenAIProvider, build_body
from backend.runs.providers.retry import backoff_delay, parse_retry_after, stream_with_retries
from tests.fakes.anthropic_server import AnthropicScript, FakeAnthropic, run_fake
from tests.fakes.openai_server import FakeOpenAI, OpenAIScript

FIXTURES = Path("/work/shared/fixtures/anthropic-stream")
KEY = "sk-test-secret-key-0123456789"
SECRET_PROMPT = "zebra-secret-prompt-words"


# --- helpers ---------------------------------------------------------------------------------------------


def make_request(provider: str = "mock", *, base_url: str | None = None, **overrides) -> ProviderRequest:
    fields = {
        "provider": provider,
        "model": {"mock": "mock-1", "anthropic": "claude-test", "openai": "gpt-test"}[provider],
        "system": "",
        "messages": [{"role": "user", "content": f"say hello {SECRET_PROMPT}"}],
        "max_tokens": 256,
        "api_key": None if provider == "mock" else KEY,
        "base_url": base_url,
    } | overrides
    return ProviderRequest(**fields)


async def collect(events: AsyncIterator[StreamEvent]) -> tuple[list[StreamEvent], ProviderError | None]:
    seen: list[StreamEvent] = []
    try:
        async for event in events:
            seen.append(event)
    except ProviderError as error:
        return seen, error
    return seen, None


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def assert_safe(error: ProviderError) -> None:
    assert KEY not in str(error) and SECRET_PROMPT not in str(error)


class Sleeps:
    """A stand-in for asyncio.sleep that records backoff delays instead of waiting them out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


async def wait_for_disconnect(exchange, timeout: float = 1.0) -> bool:
    return await asyncio.to_thread(exchange.disconnected.wait, timeout)


# --- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def anthropic_server() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic()
    with run_fake(fake):
        yield fake


@pytest.fixture(scope="module")
def openai_server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    with run_fake(fake):
        yield fake


@pytest.fixture
def fake_anthropic(anthropic_server: FakeAnthropic) -> FakeAnthropic:
    anthropic_server.reset()
    return anthropic_server


@pytest.fixture
def fake_openai(openai_server: FakeOpenAI) -> FakeOpenAI:
    openai_server.reset()
    return openai_server


@pytest.fixture
async def anthropic_provider() -> AsyncIterator[AnthropicProvider]:
    provider = AnthropicProvider(read_timeout=5)
    yield provider
    await provider.aclose()


@pytest.fixture
async def openai_provider() -> AsyncIterator[OpenAIProvider]:
    provider = OpenAIProvider(read_timeout=5)
    yield provider
    await provider.aclose()


# --- mock ------------------------------------------------------------------------------------------------


async def test_mock_echoes_the_final_user_message_word_by_word() -> None:
    request = make_request(system="You are terse", messages=[
        {"role": "user", "content": "ignored words"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "  hello\tbig \n world "},
    ])
    events, error = await collect(MockProvider(0, 0).stream(request))
    assert error is None
    assert events == [
        UsageUpdate(input_tokens=9, output_tokens=0),
        TextDelta("hello "), TextDelta("big "), TextDelta("world "),
        Finished("end_turn", UsageUpdate(input_tokens=9, output_tokens=3)),
    ]


@pytest.mark.parametrize(
    ("max_tokens", "stop", "output"), [(2, "max_tokens", 2), (3, "end_turn", 3), (0, "max_tokens", 0)],
)
async def test_mock_stops_at_max_tokens_only_when_it_comes_first(max_tokens: int, stop: str, output: int) -> None:
    request = make_request(messages=[{"role": "user", "content": "one two three"}], max_tokens=max_tokens)
    events, _ = await collect(MockProvider(0, 0).stream(request))
    assert text_of(events) == "".join(word + " " for word in ["one", "two", "three"][:output])
    assert events[-1] == Finished(stop, UsageUpdate(input_tokens=3, output_tokens=output))


async def test_mock_refusal_yields_no_text() -> None:
    request = make_request(messages=[{"role": "user", "content": "please MOCK_REFUSE this"}])
    events, error = await collect(MockProvider(0, 0).stream(request))
    assert error is None
    assert events == [UsageUpdate(input_tokens=3, output_tokens=0),
                      Finished("refusal", UsageUpdate(input_tokens=3, output_tokens=0))]


async def test_mock_early_failure_is_retryable_and_retried_until_attempts_run_out() -> None:
    request = make_request(messages=[{"role": "user", "content": "MOCK_FAIL_EARLY now"}])
    events, error = await collect(MockProvider(0, 0).stream(request))
    assert events == [] and error is not None
    assert (error.kind, error.retryable) == ("overloaded", True)

    retries: list[tuple[int, str, float]] = []
    sleeps = Sleeps()
    events, error = await collect(stream_with_retries(
        MockProvider(0, 0), request, max_attempts=3, sleep=sleeps,
        on_retry=lambda attempt, err, delay: retries.append((attempt, err.kind, delay)),
    ))
    assert events == [] and error is not None and error.kind == "overloaded"
    assert [(a, k) for a, k, _ in retries] == [(1, "overloaded"), (2, "overloaded")]
    assert sleeps.delays == [d for _, _, d in retries]


async def test_mock_mid_failure_after_half_the_words_is_not_retried() -> None:
    request = make_request(messages=[{"role": "user", "content": "a b c d MOCK_FAIL_MID"}])
    attempts: list[int] = []
    events, error = await collect(stream_with_retries(
        MockProvider(0, 0), request, sleep=Sleeps(), on_retry=lambda a, e, d: attempts.append(a),
    ))
    assert text_of(events) == "a b "  # floor(5 / 2) words
    assert error is not None and (error.kind, error.retryable) == ("stream_error", False)
    assert attempts == []


async def test_mock_knows_only_mock_1() -> None:
    _, error = await collect(MockProvider(0, 0).stream(make_request(model="mock-2")))
    assert error is not None and error.kind == "not_found"


async def test_mock_waits_ttft_then_token_interval() -> None:
    request = make_request(messages=[{"role": "user", "content": "w1 w2 w3"}])
    started = time.monotonic()
    arrivals: list[float] = []
    async for event in MockProvider(40, 10).stream(request):
        if isinstance(event, TextDelta):
            arrivals.append(time.monotonic() - started)
    assert arrivals[0] >= 0.04
    assert arrivals[-1] >= 0.04 + 2 * 0.01


async def test_mock_at_full_speed_still_lets_a_cancel_land() -> None:
    request = make_request(messages=[{"role": "user", "content": "word " * 200_000}], max_tokens=100_000)
    seen = 0

    async def consume() -> None:
        nonlocal seen
        async for _ in MockProvider(0, 0).stream(request):
            seen += 1

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 0 < seen < 100_000


# --- retry helpers ---------------------------------------------------------------------------------------


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    in_ten = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8 <= (parse_retry_after({"retry-after": in_ten}) or 0) <= 10
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_backoff_is_jittered_under_the_cap_and_honours_retry_after() -> None:
    error = ProviderError("overloaded", "x", retryable=True)
    for attempt in range(1, 8):
        assert 0 <= backoff_delay(attempt, error, base_delay=0.5, max_delay=8.0) <= min(8.0, 0.5 * 2 ** (attempt - 1))
    slow = ProviderError("rate_limited", "x", retryable=True, retry_after=5.0)
    assert backoff_delay(1, slow, base_delay=0.5, max_delay=8.0) == 5.0


# --- anthropic -------------------------------------------------------------------------------------------


async def test_anthropic_streams_text_and_usage_and_sends_the_request(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider,
) -> None:
    fake_anthropic.script = AnthropicScript(words=["Hi", "there", "you"], input_tokens=21, cache_read_input_tokens=5)
    messages = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"},
                {"role": "user", "content": f"again {SECRET_PROMPT}"}]
    request = make_request("anthropic", base_url=fake_anthropic.base_url, system="Be brief.", messages=messages,
                           max_tokens=300, temperature=0.2, top_k=5, stop_sequences=["END"])
    events, error = await collect(anthropic_provider.stream(request))
    assert error is None
    start = UsageUpdate(input_tokens=21, output_tokens=1, cache_creation_input_tokens=0, cache_read_input_tokens=5)
    final = UsageUpdate(input_tokens=21, output_tokens=3, cache_creation_input_tokens=0, cache_read_input_tokens=5)
    texts = [TextDelta("Hi"), TextDelta(" there"), TextDelta(" you")]
    assert events == [start, *texts, final, Finished("end_turn", final)]

    sent = fake_anthropic.last
    assert sent.path == "/v1/messages"  # base_url honoured
    assert sent.headers["authorization"] == f"Bearer {KEY}"  # SDK 2.x sends the key as a bearer token
    assert sent.headers["anthropic-version"] == SAMPLING_API_VERSION
    assert sent.body == {
        "model": "claude-test", "system": "Be brief.", "messages": messages, "max_tokens": 300, "stream": True,
        "temperature": 0.2, "top_k": 5, "stop_sequences": ["END"],
    }


async def test_anthropic_without_sampling_keeps_the_sdk_api_version_and_omits_unset_fields(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider,
) -> None:
    request = make_request("anthropic", base_url=fake_anthropic.base_url)
    events, error = await collect(anthropic_provider.stream(request))
    assert error is None and text_of(events) == "Hello from the fake"
    assert set(fake_anthropic.last.body) == {"model", "messages", "max_tokens", "stream"}
    assert fake_anthropic.last.headers["anthropic-version"] != SAMPLING_API_VERSION


@pytest.mark.parametrize(("fixture", "text", "stop", "usage", "error_kind"), [
    ("basic.sse", "Hello there!", "end_turn", (11, 6), None),
    ("refusal.sse", "", "refusal", (20, 120), None),
    ("tool_use.sse", "I'll check the current weather in Paris for you.", "tool_use", (377, 65), None),
    ("error_mid_stream.sse", "Partial", None, None, "stream_error"),
])
async def test_anthropic_replays_the_recorded_fixtures(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider,
    fixture: str, text: str, stop: str | None, usage: tuple[int, int] | None, error_kind: str | None,
) -> None:
    fake_anthropic.script = AnthropicScript(replay=(FIXTURES / fixture).read_bytes())
    request = make_request("anthropic", base_url=fake_anthropic.base_url)
    events, error = await collect(stream_with_retries(anthropic_provider, request, sleep=Sleeps()))
    assert text_of(events) == text
    if error_kind is None:
        assert error is None
        finished = events[-1]
        assert isinstance(finished, Finished) and finished.stop_reason == stop
        assert finished.usage is not None
        assert (finished.usage.input_tokens, finished.usage.output_tokens) == usage
    else:
        assert error is not None and (error.kind, error.retryable) == (error_kind, False)
        assert "overloaded_error" in error.message
        assert len(fake_anthropic.exchanges) == 1


async def test_anthropic_recorded_tool_call_arrives_whole_after_its_input_json_streamed(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider,
) -> None:
    fake_anthropic.script = AnthropicScript(replay=(FIXTURES / "tool_use.sse").read_bytes())
    request = make_request("anthropic", base_url=fake_anthropic.base_url)
    events, error = await collect(stream_with_retries(anthropic_provider, request, sleep=Sleeps()))
    assert error is None
    calls = [e for e in events if isinstance(e, ToolUse)]
    assert calls == [ToolUse("toolu_01NRLabsLyVHZPKxbKvkfSMn", "get_weather", {"location": "Paris"})]
    # In stream order: the text, then the call, then the end.
    kinds = [type(e).__name__ for e in events if not isinstance(e, UsageUpdate)]
    assert kinds == ["TextDelta", "TextDelta", "ToolUse", "Finished"]


async def test_anthropic_sends_tools_thinking_and_images_and_streams_thinking_and_calls(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider,
) -> None:
    fake_anthropic.script = AnthropicScript(
        words=["Checking"],
        thinking=["The user wants ", "the weather."],
        tool_call=("toolu_fake01", "get_weather", ['{"ci', 'ty": "Par', 'is"}']),
        stop_reason="tool_use",
    )
    tool = {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]}]
    request = make_request(
        "anthropic",
        base_url=fake_anthropic.base_url,
        messages=messages,
        max_tokens=4096,
        tools=[tool],
        tool_choice={"type": "auto"},
        thinking_budget=2048,
    )
    events, error = await collect(stream_with_retries(anthropic_provider, request, sleep=Sleeps()))
    assert error is None
    sent = fake_anthropic.last.body
    assert sent["tools"] == [tool] and sent["tool_choice"] == {"type": "auto"}
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert sent["messages"] == messages
    assert "".join(e.text for e in events if isinstance(e, ThinkingDelta)) == "The user wants the weather."
    assert text_of(events) == "Checking"
    assert [e for e in events if isinstance(e, ToolUse)] == [ToolUse("toolu_fake01", "get_weather", {"city": "Paris"})]
    assert isinstance(events[-1], Finished) and events[-1].stop_reason == "tool_use"


async def test_openai_sends_tools_schema_and_images_and_assembles_streamed_tool_calls(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider,
) -> None:
    fake_openai.script = OpenAIScript(
        words=["Let", "me", "check"],
        tool_calls=[("call_abc", "get_weather", ['{"ci', 'ty":"Par', 'is"}']), ("call_def", "get_time", ["{}"])],
        reasoning_tokens=7,
    )
    tool = {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Weather?"}, image]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "rain"}]},
    ]
    request = make_request(
        "openai",
        base_url=fake_openai.base_url + "/v1",
        messages=messages,
        tools=[tool],
        tool_choice={"type": "any"},
        output_schema=schema,
    )
    events, error = await collect(stream_with_retries(openai_provider, request, sleep=Sleeps()))
    assert error is None
    sent = fake_openai.last.body
    function = {"name": "get_weather", "description": "Weather", "parameters": {"type": "object"}}
    assert sent["tools"] == [{"type": "function", "function": function}]
    assert sent["tool_choice"] == "required"
    assert sent["response_format"]["json_schema"]["schema"] == schema
    data_url = "data:image/png;base64,iVBORw0KGgo="
    assert sent["messages"][0]["content"][1] == {"type": "image_url", "image_url": {"url": data_url}}
    assert sent["messages"][1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": "{}"}
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": "call_1", "content": "rain"}
    assert text_of(events) == "Let me check"
    assert [e for e in events if isinstance(e, ToolUse)] == [
        ToolUse("call_abc", "get_weather", {"city": "Paris"}),
        ToolUse("call_def", "get_time", {}),
    ]
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.stop_reason == "tool_use"
    assert finished.usage is not None and finished.usage.thinking_tokens == 7


@pytest.mark.parametrize(("status", "kind"), [(429, "rate_limited"), (529, "overloaded"), (500, "server_error")])
async def test_anthropic_retries_retryable_http_errors_then_succeeds(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider, status: int, kind: str,
) -> None:
    fake_anthropic.script = AnthropicScript(fail_first=2, failure=status, retry_after="2")
    retries: list[tuple[int, ProviderError, float]] = []
    sleeps = Sleeps()
    request = make_request("anthropic", base_url=fake_anthropic.base_url)
    events, error = await collect(stream_with_retries(
        anthropic_provider, request, sleep=sleeps, on_retry=lambda a, e, d: retries.append((a, e, d)),
    ))
    assert error is None and text_of(events) == "Hello from the fake"
    assert len(fake_anthropic.exchanges) == 3
    assert [(a, e.kind, e.status) for a, e, _ in retries] == [(1, kind, status), (2, kind, status)]
    assert all(e.retry_after == 2.0 for _, e, _ in retries)
    assert sleeps.delays and all(delay >= 2.0 for delay in sleeps.delays)  # retry-after beats the jitter
    for _, e, _ in retries:
        assert_safe(e)


async def test_anthropic_gives_up_after_max_attempts_with_the_last_error(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider,
) -> None:
    fake_anthropic.script = AnthropicScript(fail_first=100, failure=529)
    request = make_request("anthropic", base_url=fake_anthropic.base_url)
    events, error = await collect(stream_with_retries(anthropic_provider, request, max_attempts=3, sleep=Sleeps()))
    assert events == []
    assert error is not None and (error.kind, error.status) == ("overloaded", 529)
    assert "req_fake000003" in error.message  # the third response's error, not the first
    assert len(fake_anthropic.exchanges) == 3


async def test_anthropic_does_not_wait_for_a_retry_after_beyond_the_limit(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider,
) -> None:
    fake_anthropic.script = AnthropicScript(fail_first=1, failure=429, retry_after="120")
    request = make_request("anthropic", base_url=fake_anthropic.base_url)
    _, error = await collect(stream_with_retries(anthropic_provider, request, max_retry_after=30, sleep=Sleeps()))
    assert error is not None and (error.kind, error.retry_after) == ("rate_limited", 120.0)
    assert len(fake_anthropic.exchanges) == 1


@pytest.mark.parametrize(("status", "kind"), [(401, "auth"), (400, "bad_request"), (404, "not_found")])
async def test_anthropic_client_errors_are_not_retried(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider, status: int, kind: str,
) -> None:
    fake_anthropic.script = AnthropicScript(fail_first=1, failure=status)
    request = make_request("anthropic", base_url=fake_anthropic.base_url)
    _, error = await collect(stream_with_retries(anthropic_provider, request, sleep=Sleeps()))
    assert error is not None and (error.kind, error.retryable, error.status) == (kind, False, status)
    assert_safe(error)
    assert len(fake_anthropic.exchanges) == 1


@pytest.mark.parametrize("after", [0, 2])
async def test_anthropic_in_stream_error_is_reported_and_not_retried(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider, after: int,
) -> None:
    fake_anthropic.script = AnthropicScript(error_after=after, error_type="overloaded_error")
    request = make_request("anthropic", base_url=fake_anthropic.base_url)
    events, error = await collect(stream_with_retries(anthropic_provider, request, sleep=Sleeps()))
    assert text_of(events) == " ".join(["Hello", "from"][:after])
    assert error is not None and (error.kind, error.retryable, error.status) == ("stream_error", False, 200)
    assert "overloaded_error" in error.message
    assert_safe(error)
    assert len(fake_anthropic.exchanges) == 1


async def test_anthropic_dropped_connection_mid_stream_is_not_retried(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider,
) -> None:
    fake_anthropic.script = AnthropicScript(drop_after=2)
    request = make_request("anthropic", base_url=fake_anthropic.base_url)
    events, error = await collect(stream_with_retries(anthropic_provider, request, sleep=Sleeps()))
    assert text_of(events) == "Hello from"
    assert error is not None and error.kind == "connection"
    assert len(fake_anthropic.exchanges) == 1


async def test_anthropic_hang_hits_the_first_token_timeout_and_closes_each_attempt(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider,
) -> None:
    fake_anthropic.script = AnthropicScript(hang=True)
    request = make_request("anthropic", base_url=fake_anthropic.base_url)
    started = time.monotonic()
    events, error = await collect(stream_with_retries(
        anthropic_provider, request, max_attempts=2, first_token_timeout=0.3, sleep=Sleeps(),
    ))
    assert time.monotonic() - started < 2
    assert error is not None and (error.kind, error.retryable) == ("timeout", True)
    assert [type(e) for e in events] == [UsageUpdate, UsageUpdate]  # each attempt's message_start
    assert len(fake_anthropic.exchanges) == 2
    for exchange in fake_anthropic.exchanges:
        assert await wait_for_disconnect(exchange)


async def test_anthropic_silence_after_text_is_a_non_retryable_timeout(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider,
) -> None:
    fake_anthropic.script = AnthropicScript(token_delay=5)
    request = make_request("anthropic", base_url=fake_anthropic.base_url)
    events, error = await collect(stream_with_retries(
        anthropic_provider, request, silence_timeout=0.3, sleep=Sleeps(),
    ))
    assert text_of(events) == "Hello"
    assert error is not None and (error.kind, error.retryable) == ("timeout", False)
    assert len(fake_anthropic.exchanges) == 1
    assert await wait_for_disconnect(fake_anthropic.last)


async def test_anthropic_closing_the_stream_disconnects_at_once(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider,
) -> None:
    fake_anthropic.script = AnthropicScript(words=[f"w{i}" for i in range(200)], token_delay=0.01)
    stream = stream_with_retries(anthropic_provider, make_request("anthropic", base_url=fake_anthropic.base_url))
    texts = 0
    async for event in stream:
        texts += isinstance(event, TextDelta)
        if texts == 3:
            break
    await stream.aclose()
    exchange = fake_anthropic.last
    assert await wait_for_disconnect(exchange, 1.0)
    sent = exchange.tokens_sent
    await asyncio.sleep(0.1)
    assert exchange.tokens_sent == sent < 200  # the fake stopped sending once the client left


async def test_anthropic_cancelling_the_consumer_disconnects_at_once(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider,
) -> None:
    fake_anthropic.script = AnthropicScript(words=[f"w{i}" for i in range(200)], token_delay=0.01)
    first_text = asyncio.Event()

    async def run() -> None:
        async for event in stream_with_retries(anthropic_provider,
                                               make_request("anthropic", base_url=fake_anthropic.base_url)):
            if isinstance(event, TextDelta):
                first_text.set()

    task = asyncio.create_task(run())
    await asyncio.wait_for(first_text.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_for_disconnect(fake_anthropic.last, 1.0)
    assert fake_anthropic.last.tokens_sent < 200


async def test_anthropic_reuses_the_connection_after_a_complete_stream(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider,
) -> None:
    for _ in range(2):
        request = make_request("anthropic", base_url=fake_anthropic.base_url)
        events, error = await collect(stream_with_retries(anthropic_provider, request))
        assert error is None and isinstance(events[-1], Finished)
    first, second = fake_anthropic.exchanges
    assert first.client_port == second.client_port
    assert not first.disconnected.is_set()


async def test_anthropic_without_a_key_never_falls_back_to_the_environment(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-operator-key")
    request = make_request("anthropic", base_url=fake_anthropic.base_url, api_key=None)
    _, error = await collect(anthropic_provider.stream(request))
    assert error is not None and (error.kind, error.retryable) == ("auth", False)
    assert fake_anthropic.exchanges == []


async def test_anthropic_unreachable_server_is_a_retryable_connection_error(
    anthropic_provider: AnthropicProvider,
) -> None:
    _, error = await collect(anthropic_provider.stream(make_request("anthropic", base_url="http://127.0.0.1:9")))
    assert error is not None and (error.kind, error.retryable) == ("connection", True)


# --- openai ----------------------------------------------------------------------------------------------


def test_openai_names_the_token_limit_after_the_host() -> None:
    assert build_body(make_request("openai"))["max_completion_tokens"] == 256
    assert "max_tokens" not in build_body(make_request("openai", base_url="https://api.openai.com/v1"))
    compatible = build_body(make_request("openai", base_url="http://gpu-box:8000/v1"))
    assert compatible["max_tokens"] == 256 and "max_completion_tokens" not in compatible


async def test_openai_streams_text_and_usage_and_sends_the_request(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider,
) -> None:
    fake_openai.script = OpenAIScript(words=["Hi", "there"], prompt_tokens=17, cached_tokens=4)
    request = make_request("openai", base_url=fake_openai.base_url + "/v1/", system="Be brief.", max_tokens=50,
                           temperature=0.3, top_p=0.9, top_k=7, stop_sequences=["END"])
    events, error = await collect(openai_provider.stream(request))
    assert error is None
    usage = UsageUpdate(input_tokens=17, output_tokens=2, cache_read_input_tokens=4)
    assert events == [TextDelta("Hi"), TextDelta(" there"), usage, Finished("end_turn", usage)]

    sent = fake_openai.last
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body == {
        "model": "gpt-test",
        "messages": [{"role": "system", "content": "Be brief."}, *request.messages],
        "stream": True, "stream_options": {"include_usage": True},
        "max_tokens": 50, "temperature": 0.3, "top_p": 0.9, "stop": ["END"],
    }


@pytest.mark.parametrize(("finish", "stop"), [
    ("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal"), ("tool_calls", "tool_use"),
])
async def test_openai_maps_finish_reasons(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider, finish: str, stop: str,
) -> None:
    fake_openai.script = OpenAIScript(finish_reason=finish)
    events, _ = await collect(openai_provider.stream(make_request("openai", base_url=fake_openai.base_url + "/v1")))
    assert isinstance(events[-1], Finished) and events[-1].stop_reason == stop


async def test_openai_without_usage_or_done_still_finishes(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider,
) -> None:
    fake_openai.script = OpenAIScript(send_usage=False, send_done=False)
    events, error = await collect(openai_provider.stream(make_request("openai", base_url=fake_openai.base_url + "/v1")))
    assert error is None and text_of(events) == "Hello from the fake"
    assert events[-1] == Finished("end_turn", None)


@pytest.mark.parametrize(("status", "kind"), [(429, "rate_limited"), (500, "server_error")])
async def test_openai_retries_retryable_http_errors_then_succeeds(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider, status: int, kind: str,
) -> None:
    fake_openai.script = OpenAIScript(fail_first=1, failure=status, retry_after="1")
    retries: list[ProviderError] = []
    sleeps = Sleeps()
    request = make_request("openai", base_url=fake_openai.base_url + "/v1")
    events, error = await collect(stream_with_retries(
        openai_provider, request, sleep=sleeps, on_retry=lambda a, e, d: retries.append(e),
    ))
    assert error is None and text_of(events) == "Hello from the fake"
    assert [(e.kind, e.status, e.retry_after) for e in retries] == [(kind, status, 1.0)]
    assert sleeps.delays[0] >= 1.0
    assert len(fake_openai.exchanges) == 2


async def test_openai_auth_error_is_not_retried_and_leaks_nothing(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider,
) -> None:
    fake_openai.script = OpenAIScript(fail_first=1, failure=401)
    request = make_request("openai", base_url=fake_openai.base_url + "/v1")
    _, error = await collect(stream_with_retries(openai_provider, request, sleep=Sleeps()))
    assert error is not None and (error.kind, error.retryable) == ("auth", False)
    assert "invalid_api_key" in error.message
    assert_safe(error)
    assert len(fake_openai.exchanges) == 1


async def test_openai_in_stream_error_is_reported_and_not_retried(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider,
) -> None:
    fake_openai.script = OpenAIScript(error_after=1)
    request = make_request("openai", base_url=fake_openai.base_url + "/v1")
    events, error = await collect(stream_with_retries(openai_provider, request, sleep=Sleeps()))
    assert text_of(events) == "Hello"
    assert error is not None and (error.kind, error.retryable) == ("stream_error", False)
    assert len(fake_openai.exchanges) == 1


async def test_openai_dropped_connection_mid_stream_is_not_retried(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider,
) -> None:
    fake_openai.script = OpenAIScript(drop_after=3)
    request = make_request("openai", base_url=fake_openai.base_url + "/v1")
    events, error = await collect(stream_with_retries(openai_provider, request, sleep=Sleeps()))
    assert text_of(events) == "Hello from the"
    assert error is not None and error.kind == "connection"
    assert len(fake_openai.exchanges) == 1


async def test_openai_hang_hits_the_first_token_timeout(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider,
) -> None:
    fake_openai.script = OpenAIScript(hang=True)
    request = make_request("openai", base_url=fake_openai.base_url + "/v1")
    events, error = await collect(stream_with_retries(
        openai_provider, request, max_attempts=2, first_token_timeout=0.3, sleep=Sleeps(),
    ))
    assert events == []
    assert error is not None and (error.kind, error.retryable) == ("timeout", True)
    assert len(fake_openai.exchanges) == 2
    for exchange in fake_openai.exchanges:
        assert await wait_for_disconnect(exchange)


async def test_openai_closing_the_stream_disconnects_at_once(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider,
) -> None:
    fake_openai.script = OpenAIScript(words=[f"w{i}" for i in range(200)], token_delay=0.01)
    stream = stream_with_retries(openai_provider, make_request("openai", base_url=fake_openai.base_url + "/v1"))
    async for event in stream:
        if isinstance(event, TextDelta) and event.text.strip() == "w2":
            break
    await stream.aclose()
    exchange = fake_openai.last
    assert await wait_for_disconnect(exchange, 1.0)
    sent = exchange.tokens_sent
    await asyncio.sleep(0.1)
    assert exchange.tokens_sent == sent < 200


async def test_openai_reuses_the_connection_after_a_complete_stream(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider,
) -> None:
    for _ in range(2):
        request = make_request("openai", base_url=fake_openai.base_url + "/v1")
        events, error = await collect(stream_with_retries(openai_provider, request))
        assert error is None and isinstance(events[-1], Finished)
    first, second = fake_openai.exchanges
    assert first.client_port == second.client_port


# --- registry --------------------------------------------------------------------------------------------


async def test_registry_keeps_one_instance_per_provider_and_closes_them() -> None:
    fast = Settings(mock_ttft_ms=0, mock_token_ms=0)
    try:
        mock = registry.provider_for("mock", fast)
        assert registry.provider_for("mock", fast) is mock
        assert isinstance(mock, MockProvider) and (mock.ttft, mock.token_interval) == (0, 0)
        assert registry.provider_for("mock", Settings(mock_ttft_ms=5, mock_token_ms=0)) is not mock
        anthropic = registry.provider_for("anthropic", fast)
        assert registry.provider_for("anthropic", fast) is anthropic
        assert isinstance(registry.provider_for("openai", fast), OpenAIProvider)
        with pytest.raises(ProviderError) as unknown:
            registry.provider_for("gemini", fast)
        assert unknown.value.kind == "not_found"
    finally:
        await registry.close_providers()
    assert registry.provider_for("anthropic", fast) is not anthropic
    await registry.close_providers()
