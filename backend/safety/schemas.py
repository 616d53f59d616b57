"""Bodies of the safety routes: policy, flags, summary."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from backend.workspaces.schemas import Body

Action = Literal["off", "flag", "block"]


class PolicyOut(BaseModel):
    pii: Action
    secret: Action
    injection: Action


class PolicyIn(Body):
    pii: Action | None = None
    secret: Action | None = None
    injection: Action | None = None


class FlagOut(BaseModel):
    id: uuid.UUID
    run_id: uuid.UUID
    kind: Literal["pii", "secret", "injection", "refusal"]
    detector: str
    where: Literal["input", "output"]
    field: str | None = Field(description="Where in the input: system, messages.N.content, variables.NAME")
    excerpt: str = Field(description="The finding in context, masked: never the matched value in the clear")
    status: Literal["open", "resolved"]
    note: str | None
    resolved_by: uuid.UUID | None
    resolved_at: datetime | None
    created_at: datetime


class FlagPatch(Body):
    status: Literal["open", "resolved"]
    note: str | None = Field(default=None, max_length=5000)


class DayCount(BaseModel):
    day: date
    kind: str
    count: int


class RefusalRate(BaseModel):
    provider: str
    model: str
    runs: int
    refusals: int
    rate: float


class SummaryOut(BaseModel):
    days: int
    by_day: list[DayCount]
    open: dict[str, int]
    refusal_rate: list[RefusalRate]
