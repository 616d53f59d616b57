"""One provider instance per kind and process, so HTTP connection pools are shared by every run."""

from __future__ import annotations

from typing import Protocol

from backend.core.settings import Settings
from backend.runs.providers.anthropic import AnthropicProvider
from backend.runs.providers.base import Provider, ProviderError
from backend.runs.providers.mock import MockProvider
from backend.runs.providers.openai import OpenAIProvider


class ClosableProvider(Provider, Protocol):
    async def aclose(self) -> None: ...


# Keyed by name plus what the instance was built from, so a process (or a test) with other mock timings
# gets its own mock rather than the first one built.
_providers: dict[tuple[object, ...], ClosableProvider] = {}


def provider_for(name: str, settings: Settings) -> Provider:
    """The process-wide instance of provider `name`; an unknown name is a non-retryable not_found error."""
    key: tuple[object, ...] = (name, settings.mock_ttft_ms, settings.mock_token_ms) if name == "mock" else (name,)
    provider = _providers.get(key)
    if provider is None:
        if name == "mock":
            provider = MockProvider(settings.mock_ttft_ms, settings.mock_token_ms)
        elif name == "anthropic":
            provider = AnthropicProvider()
        elif name == "openai":
            provider = OpenAIProvider()
        else:
            raise ProviderError("not_found", f"unknown provider {name!r}", retryable=False)
        _providers[key] = provider
    return provider


async def close_providers() -> None:
    """Close every pool (at shutdown); the next provider_for builds fresh instances."""
    providers = list(_providers.values())
    _providers.clear()
    for provider in providers:
        await provider.aclose()
