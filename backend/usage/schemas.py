"""Request and response bodies of limits, usage, models and price overrides."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from backend.usage.models import LATENCY_BUCKETS_MS
from backend.workspaces.schemas import Body, OptionalJsonInt

MAX_BUDGET_USD = Decimal("10000000")  # ten million dollars a month: anything above is a typo
MAX_PRICE_PER_MTOK = Decimal("1000")


def _decimal_string(value: Any, *, maximum: Decimal, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f'{what} must be a decimal string such as "12.50"')
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f'{what} must be a decimal string such as "12.50"') from exc
    if not number.is_finite() or number < 0:
        raise ValueError(f"{what} must be a finite, non-negative amount")
    if number > maximum:
        raise ValueError(f"{what} must be at most {maximum}")
    if number != number.quantize(Decimal("0.000001")):
        raise ValueError(f"{what} has more than 6 decimal places (micro-dollars)")
    return str(value)


class LimitsIn(Body):
    """Any subset; `monthly_budget_usd: null` removes the budget."""

    monthly_budget_usd: str | None = Field(default=None, description="Decimal string, or null for no budget")
    max_concurrent_runs: OptionalJsonInt = Field(default=None, ge=1, le=10_000)
    max_queued_runs: OptionalJsonInt = Field(default=None, ge=0, le=1_000_000)
    runs_per_minute: OptionalJsonInt = Field(default=None, ge=1, le=1_000_000)
    member_runs_per_minute: OptionalJsonInt = Field(default=None, ge=1, le=1_000_000)

    @field_validator("monthly_budget_usd", mode="before")
    @classmethod
    def _budget(cls, value: Any) -> Any:
        return None if value is None else _decimal_string(value, maximum=MAX_BUDGET_USD, what="monthly_budget_usd")


class LimitsOut(BaseModel):
    monthly_budget_usd: str | None
    max_concurrent_runs: int
    max_queued_runs: int
    runs_per_minute: int
    member_runs_per_minute: int


class UsageRow(BaseModel):
    key: str
    runs: int
    input_tokens: int
    output_tokens: int
    cost_usd: str


class UsageTotal(BaseModel):
    runs: int
    input_tokens: int
    output_tokens: int
    cost_usd: str


class BudgetState(BaseModel):
    month: date
    monthly_budget_usd: str | None
    spent_usd: str
    reserved_usd: str


class UsageOut(BaseModel):
    from_: date = Field(alias="from")
    to: date
    group_by: Literal["day", "model", "user", "prompt"]
    rows: list[UsageRow]
    total: UsageTotal
    budget: BudgetState

    model_config = {"populate_by_name": True, "serialize_by_alias": True}


BUCKET_NOTE = (
    "Not an exact percentile: the upper bound, in milliseconds, of the latency histogram bucket that holds it "
    f"(bounds {', '.join(map(str, LATENCY_BUCKETS_MS))}), so the true value is at most this and above the next "
    f"lower bound; null when it lies beyond {LATENCY_BUCKETS_MS[-1]} ms or nothing was measured."
)


class Percentiles(BaseModel):
    """Percentiles read from histograms kept in the usage rollups: bucket upper bounds, not exact values."""

    p50: int | None = Field(description=f"Median. {BUCKET_NOTE}")
    p95: int | None = Field(description=f"95th percentile. {BUCKET_NOTE}")


class LatencyRow(BaseModel):
    """One model's or prompt's latency; each value is a histogram bucket's upper bound (see Percentiles)."""

    key: str = Field(description="provider/model, or the prompt id")
    ttft_ms: Percentiles = Field(description="Time to first token, as bucket upper bounds in ms")
    duration_ms: Percentiles = Field(description="Whole run duration, as bucket upper bounds in ms")


class PriceIn(Body):
    input_per_mtok: str
    output_per_mtok: str
    cache_write_per_mtok: str | None = None
    cache_read_per_mtok: str | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _price(cls, value: Any) -> Any:
        return None if value is None else _decimal_string(value, maximum=MAX_PRICE_PER_MTOK, what="price")


class ModelOut(BaseModel):
    provider: str
    model: str
    label: str
    max_output_tokens: int | None
    context_window: int | None
    price: dict[str, str] | None


class WorkspaceModelOut(ModelOut):
    price_overridden: bool
    available: bool
