"""Loads the model catalogue (a data file in the package) and validates model configurations against it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from functools import lru_cache
from importlib import resources
from typing import Any

MAX_STOP_SEQUENCE_CHARS = 200


@dataclass(frozen=True)
class ModelInfo:
    provider: str
    model: str
    label: str
    max_output_tokens: int
    context_window: int | None
    known: bool  # False: a name an OpenAI-compatible endpoint may serve that the catalogue does not list


@lru_cache
def catalogue() -> dict[str, Any]:
    raw = resources.files("backend.catalogue").joinpath("models.json").read_text(encoding="utf-8")
    data = json.loads(raw)
    for provider, entry in data["providers"].items():
        for model, info in entry["models"].items():
            if not (isinstance(info.get("max_output_tokens"), int) and info["max_output_tokens"] > 0):
                raise ValueError(f"catalogue: {provider}/{model} needs a positive max_output_tokens")
    return data


def providers() -> list[str]:
    return list(catalogue()["providers"])


def model_info(provider: str, model: str) -> ModelInfo | None:
    entry = catalogue()["providers"].get(provider)
    if entry is None:
        return None
    info = entry["models"].get(model)
    if info is not None:
        return ModelInfo(provider, model, info["label"], info["max_output_tokens"], info.get("context_window"), True)
    if entry.get("open_model_list"):
        return ModelInfo(provider, model, model, entry["default_max_output_tokens"], None, False)
    return None


def config_problems(config: dict[str, Any], loc: list[str | int]) -> list[tuple[list[str | int], str]]:
    """Every way a model_config is wrong for its provider and model, each with the field it concerns."""
    problems: list[tuple[list[str | int], str]] = []
    provider, model = config.get("provider"), config.get("model")
    entry = catalogue()["providers"].get(provider)
    if entry is None:
        return [([*loc, "provider"], f"unknown provider; choose one of {', '.join(providers())}")]
    info = model_info(provider, model)
    if info is None:
        known = ", ".join(entry["models"])
        return [([*loc, "model"], f"{model} is not a {provider} model; choose one of {known}")]
    params = entry["params"]
    max_tokens = config.get("max_tokens")
    if max_tokens is not None and max_tokens > info.max_output_tokens:
        problems.append(([*loc, "max_tokens"], f"at most {info.max_output_tokens} for {model}"))
    temperature = config.get("temperature")
    low, high = params["temperature"]
    if temperature is not None and not low <= temperature <= high:
        problems.append(([*loc, "temperature"], f"must be between {low} and {high} for {provider}"))
    if config.get("top_k") is not None and not params["top_k"]:
        problems.append(([*loc, "top_k"], f"{provider} does not support top_k"))
    if config.get("top_p") is not None and not params["top_p"]:
        problems.append(([*loc, "top_p"], f"{provider} does not support top_p"))
    stops = config.get("stop_sequences") or []
    if len(stops) > params["max_stop_sequences"]:
        problems.append(([*loc, "stop_sequences"], f"at most {params['max_stop_sequences']} for {provider}"))
    for index, stop in enumerate(stops):
        if not stop or len(stop) > MAX_STOP_SEQUENCE_CHARS:
            problems.append(([*loc, "stop_sequences", index], f"must be 1 to {MAX_STOP_SEQUENCE_CHARS} characters"))
    return problems


FEATURES = ("tools", "images", "thinking", "structured_output")
MIN_THINKING_BUDGET = 1024


def features_of(provider: str, model: str) -> frozenset[str]:
    """What a model can do beyond text in, text out: tools, images, thinking, structured_output."""
    entry = catalogue()["providers"].get(provider)
    if entry is None:
        return frozenset()
    info = entry["models"].get(model)
    return frozenset(info.get("features", []) if info is not None else entry.get("default_features", []))


def feature_problems(
    config: dict[str, Any], extras: dict[str, Any], messages: list[dict[str, Any]], loc: list[str | int]
) -> list[tuple[list[str | int], str]]:
    """What a version (or a run's effective config) asks of its model that the model does not do."""
    provider, model = config.get("provider"), config.get("model")
    if model_info(str(provider), str(model)) is None:
        return []  # config_problems already names the unknown model
    features = features_of(str(provider), str(model))
    problems: list[tuple[list[str | int], str]] = []

    def lacks(feature: str, where: list[str | int], what: str) -> None:
        if feature not in features:
            problems.append((where, f"{provider}/{model} does not support {what}"))

    if extras.get("tools"):
        lacks("tools", [*loc[:-1], "tools"], "tools")
    if extras.get("output_schema") is not None:
        lacks("structured_output", [*loc[:-1], "output_schema"], "structured output")
    budget = config.get("thinking_budget")
    if budget is not None:
        lacks("thinking", [*loc, "thinking_budget"], "extended thinking")
        max_tokens = config.get("max_tokens")
        if isinstance(max_tokens, int) and budget >= max_tokens:
            problems.append(([*loc, "thinking_budget"], "must be less than max_tokens"))
    for index, message in enumerate(messages):
        content = message.get("content")
        if isinstance(content, list) and any(block.get("type") == "image" for block in content):
            lacks("images", [*loc[:-1], "messages", index, "content"], "images")
    return problems


def price_for(provider: str, model: str) -> dict[str, str] | None:
    """The dated price entry (USD per million tokens, as decimal strings), or None when unknown."""
    entry = catalogue()["providers"].get(provider)
    info = entry["models"].get(model) if entry else None
    return dict(info["price"]) if info and "price" in info else None


def cost_micros(
    price: dict[str, str],
    *,
    input_tokens: int,
    output_tokens: int,
    cache_write_tokens: int = 0,
    cache_read_tokens: int = 0,
) -> int:
    """Exact cost in micro-dollars: $X per million tokens is X micro-dollars per token.

    Computed in Decimal and rounded up once per run, so a run is never billed less than it cost.
    """
    total = (
        Decimal(input_tokens) * Decimal(price["input_per_mtok"])
        + Decimal(output_tokens) * Decimal(price["output_per_mtok"])
        + Decimal(cache_write_tokens) * Decimal(price.get("cache_write_per_mtok", price["input_per_mtok"]))
        + Decimal(cache_read_tokens) * Decimal(price.get("cache_read_per_mtok", price["input_per_mtok"]))
    )
    return int(total.to_integral_value(rounding=ROUND_CEILING))


def micros_to_usd(micros: int) -> str:
    """Micro-dollars as the API's decimal string, e.g. 1234 -> "0.001234"."""
    return str((Decimal(micros) / Decimal(1_000_000)).quantize(Decimal("0.000001")))
