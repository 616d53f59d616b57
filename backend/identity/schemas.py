"""Bodies of the identity routes: my sessions and password, and instance administration of users."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from backend.workspaces.schemas import Body


class SessionOut(BaseModel):
    id: uuid.UUID
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    user_agent: str | None
    client_address: str | None
    current: bool = Field(description="The session this request came with")


class PasswordChange(Body):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=8, max_length=256)

    @field_validator("current_password", "new_password", mode="before")
    @classmethod
    def _keep_as_given(cls, value: Any) -> Any:
        return value  # never stripped: whitespace is part of a password


class AdminUserOut(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    is_instance_admin: bool
    disabled: bool
    created_at: datetime
    workspaces: int
    live_sessions: int


class AdminUserPatch(Body):
    disabled: bool | None = None
    is_instance_admin: bool | None = None
