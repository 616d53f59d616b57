"""Prompts, their immutable versions, labels with history, and comments. Contents are sealed per workspace."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.database import Base, created_at_column, uuid_pk
from backend.crypto.models import encrypted_column


def _workspace_fk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), ForeignKey("workspace.id", ondelete="CASCADE"), nullable=False)


def _user_fk() -> Mapped[uuid.UUID | None]:
    return mapped_column(UUID(as_uuid=True), ForeignKey("user_account.id", ondelete="SET NULL"))


class Prompt(Base):
    __tablename__ = "prompt"

    id: Mapped[uuid.UUID] = uuid_pk()
    workspace_id: Mapped[uuid.UUID] = _workspace_fk()
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    archived: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    # The highest version number handed out; bumped under the prompt's row lock, so numbers never gap or repeat.
    version_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    created_by: Mapped[uuid.UUID | None] = _user_fk()
    updated_by: Mapped[uuid.UUID | None] = _user_fk()
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()

    __table_args__ = (UniqueConstraint("workspace_id", "name", name="uq_prompt_workspace_name"),)


class PromptVersion(Base):
    """Immutable once written: a trigger refuses UPDATE and DELETE outside the two sanctioned paths."""

    __tablename__ = "prompt_version"

    id: Mapped[uuid.UUID] = uuid_pk()
    workspace_id: Mapped[uuid.UUID] = _workspace_fk()
    prompt_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("prompt.id", ondelete="CASCADE"), nullable=False
    )
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    # HMAC of the canonical content under a workspace key: equal content, equal hash; reveals nothing.
    content_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    system: Mapped[bytes] = encrypted_column()
    messages: Mapped[bytes] = encrypted_column()  # sealed JSON: a list of {role, content}
    # Sealed JSON {tools?, tool_choice?, output_schema?}; NULL when the version has none of them.
    extras: Mapped[bytes | None] = encrypted_column(nullable=True)
    model_config: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    variables: Mapped[list[str]] = mapped_column(JSONB, nullable=False)
    message: Mapped[str] = mapped_column(String(500), nullable=False, server_default="")
    parent_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("prompt_version.id"))
    created_by: Mapped[uuid.UUID | None] = _user_fk()
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        UniqueConstraint("prompt_id", "number", name="uq_prompt_version_prompt_number"),
        UniqueConstraint("prompt_id", "content_hash", name="uq_prompt_version_prompt_content_hash"),
        Index("ix_prompt_version_workspace", "workspace_id"),
    )


class PromptLabel(Base):
    __tablename__ = "prompt_label"

    id: Mapped[uuid.UUID] = uuid_pk()
    workspace_id: Mapped[uuid.UUID] = _workspace_fk()
    prompt_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("prompt.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(40), nullable=False)
    version_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("prompt_version.id", ondelete="CASCADE"), nullable=False
    )
    updated_by: Mapped[uuid.UUID | None] = _user_fk()
    updated_at: Mapped[datetime] = created_at_column()

    __table_args__ = (UniqueConstraint("prompt_id", "name", name="uq_prompt_label_prompt_name"),)


class PromptLabelMove(Base):
    """Every move of a label, kept: who pointed it where, and when."""

    __tablename__ = "prompt_label_move"

    id: Mapped[uuid.UUID] = uuid_pk()
    workspace_id: Mapped[uuid.UUID] = _workspace_fk()
    prompt_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("prompt.id", ondelete="CASCADE"), nullable=False
    )
    label: Mapped[str] = mapped_column(String(40), nullable=False)
    from_number: Mapped[int | None] = mapped_column(Integer)
    to_number: Mapped[int] = mapped_column(Integer, nullable=False)
    moved_by: Mapped[uuid.UUID | None] = _user_fk()
    moved_at: Mapped[datetime] = created_at_column()

    __table_args__ = (Index("ix_prompt_label_move_prompt", "prompt_id", "label", text("moved_at DESC")),)


class VersionComment(Base):
    __tablename__ = "version_comment"

    id: Mapped[uuid.UUID] = uuid_pk()
    workspace_id: Mapped[uuid.UUID] = _workspace_fk()
    version_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("prompt_version.id", ondelete="CASCADE"), nullable=False, index=True
    )
    author_id: Mapped[uuid.UUID | None] = _user_fk()
    body: Mapped[bytes] = encrypted_column()
    resolved: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    resolved_by: Mapped[uuid.UUID | None] = _user_fk()
    created_at: Mapped[datetime] = created_at_column()
    edited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
