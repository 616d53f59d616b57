"""Tables of limits, monthly budget accounts, the append-only usage ledger, usage rollups, price overrides."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.database import Base, created_at_column, uuid_pk

DEFAULT_MONTHLY_BUDGET_MICROS = 50_000_000  # $50
DEFAULTS = {
    "monthly_budget_micros": DEFAULT_MONTHLY_BUDGET_MICROS,
    "max_concurrent_runs": 10,
    "max_queued_runs": 1000,
    "runs_per_minute": 600,
    "member_runs_per_minute": 300,
}
# Upper bounds of the rollups' latency histogram buckets, in milliseconds; slower runs count under "inf".
LATENCY_BUCKETS_MS = (50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500, 10000, 20000, 60000)


class WorkspaceLimits(Base):
    """A workspace's limits; no row means every default (the default budget applies from the first run)."""

    __tablename__ = "workspace_limits"

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    # NULL: no budget at all (explicitly chosen by an admin).
    monthly_budget_micros: Mapped[int | None] = mapped_column(BigInteger)
    max_concurrent_runs: Mapped[int] = mapped_column(Integer, nullable=False)
    max_queued_runs: Mapped[int] = mapped_column(Integer, nullable=False)
    runs_per_minute: Mapped[int] = mapped_column(Integer, nullable=False)
    member_runs_per_minute: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("user_account.id", ondelete="SET NULL")
    )
    updated_at: Mapped[datetime] = created_at_column()


class BudgetMonth(Base):
    """One workspace's money for one calendar month (UTC): reserved for running runs, and spent."""

    __tablename__ = "budget_month"

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    reserved_micros: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    spent_micros: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))

    __table_args__ = (
        CheckConstraint("reserved_micros >= 0", name="reserved_not_negative"),
        CheckConstraint("spent_micros >= 0", name="spent_not_negative"),
    )


class UsageLedger(Base):
    """Append-only: every reservation, settlement and release. Outlives the runs it describes."""

    __tablename__ = "usage_ledger"

    id: Mapped[uuid.UUID] = uuid_pk()
    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    run_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    month: Mapped[date] = mapped_column(Date, nullable=False)
    micros: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint("kind IN ('reserve', 'settle', 'release')", name="kind"),
        Index("ix_usage_ledger_run", "run_id"),
        Index("ix_usage_ledger_workspace_month", "workspace_id", "month"),
    )


class UsageRollup(Base):
    """Totals per workspace, day, model, user and prompt, written with each settlement: dashboards read
    these or the coarser day rollups below, never the runs."""

    __tablename__ = "usage_rollup"

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    prompt_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    runs: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    input_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    output_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    cost_micros: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    # Latency histograms (bucket upper bound in ms -> count) for p50/p95 without reading runs.
    ttft_histogram: Mapped[dict[str, int]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    duration_histogram: Mapped[dict[str, int]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )


class UsageModelDay(Base):
    """Totals and latency histograms per workspace, day and model, kept by a trigger on the fine rollup (in
    the statement that writes it): the day and model dashboards read these, a few rows per day whatever the
    number of users and prompts."""

    __tablename__ = "usage_model_day"

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    runs: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    input_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    output_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    cost_micros: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    ttft_histogram: Mapped[dict[str, int]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    duration_histogram: Mapped[dict[str, int]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )


class UsageUserDay(Base):
    """Totals per workspace, day and user (the user dashboard), kept by the fine rollup's trigger."""

    __tablename__ = "usage_user_day"

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    runs: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    input_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    output_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    cost_micros: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))


class UsagePromptDay(Base):
    """Totals and latency histograms per workspace, day and prompt (the prompt dashboards), kept by the fine
    rollup's trigger."""

    __tablename__ = "usage_prompt_day"

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    prompt_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    runs: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    input_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    output_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    cost_micros: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    ttft_histogram: Mapped[dict[str, int]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    duration_histogram: Mapped[dict[str, int]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )


class PriceOverride(Base):
    """An admin's price for a model in one workspace: lets an unpriced model run, or corrects a price."""

    __tablename__ = "price_override"

    id: Mapped[uuid.UUID] = uuid_pk()
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workspace.id", ondelete="CASCADE"), nullable=False
    )
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    price: Mapped[dict[str, str]] = mapped_column(JSONB, nullable=False)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("user_account.id", ondelete="SET NULL")
    )
    updated_at: Mapped[datetime] = created_at_column()

    __table_args__ = (Index("uq_price_override_model", "workspace_id", "provider", "model", unique=True),)
