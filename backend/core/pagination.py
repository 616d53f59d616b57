"""Opaque keyset cursors for newest-first listings."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel

from backend.core.errors import Invalid

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(created, str) or not isinstance(row_id, str):
            raise ValueError("cursor fields must be strings")
        return datetime.fromisoformat(created), uuid.UUID(row_id)
    except (ValueError, TypeError, UnicodeError) as exc:
        raise Invalid(["query", "cursor"], "cursor is not a cursor this API returned") from exc
