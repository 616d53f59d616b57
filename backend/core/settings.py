"""Process-wide settings, read once from the environment (PLAYGROUND_*)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OidcRoleGrant(BaseModel):
    """What one value of the SSO role claim grants: a role in a workspace (named by id or slug)."""

    workspace: str = Field(min_length=1, max_length=120)
    role: Literal["admin", "editor", "viewer"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PLAYGROUND_", extra="ignore", populate_by_name=True)

    database_url: str | None = None
    redis_url: str | None = None
    # Every Redis key this process writes starts with this, so tests and tenants of one server never mix.
    redis_prefix: str = "pp:"
    # base64 of 32 bytes; absent: the key file in the data dir (created by `up`).
    master_key: str | None = None
    # Comma-separated base64 keys still accepted for unwrapping while a master rotation is under way.
    master_keys_previous: str | None = None
    key_cache_seconds: float = 30.0
    data_dir: Path = Path("data")

    signup: Literal["open", "invite", "closed"] = "open"
    public_url: str | None = Field(
        default=None, description="Base URL used in invite links; defaults to the request's own base URL."
    )
    # Cookies get the Secure flag when the request arrived over https; force it behind a TLS proxy.
    secure_cookies: bool = False

    # Database connections per process: the pool, and how many more it may open in a burst. Size them so
    # that every api and worker process together stay under the server's max_connections.
    db_pool_size: int | None = Field(default=None, ge=1, description="Default: 10 (api), by concurrency (worker)")
    db_max_overflow: int | None = Field(default=None, ge=0, description="Default: twice the pool")

    max_body_bytes: int = 2 * 1024 * 1024
    session_idle_days: int = 7
    session_absolute_days: int = 30
    invite_days: int = 7

    # Login throttling: failures per account and attempts per client address in a sliding window.
    login_failures_per_account: int = 10
    login_attempts_per_address: int = 60
    login_window_seconds: int = 900

    # Hosts a workspace may point a provider base_url at even though they resolve to private addresses.
    provider_hosts: str = ""
    share_server_keys: bool = False
    anthropic_api_key: str | None = Field(default=None, validation_alias="ANTHROPIC_API_KEY")
    openai_api_key: str | None = Field(default=None, validation_alias="OPENAI_API_KEY")

    # Workers: how long a claimed run's lease lasts without renewal, how often the reconciler looks for
    # lost runs, after how long a dispatched-but-unclaimed run counts as lost by the queue, and how long
    # SIGTERM waits for in-flight runs.
    worker_lease_seconds: float = 30.0
    reconcile_seconds: float = 5.0
    lost_dispatch_seconds: float = 30.0
    worker_grace_seconds: float = 20.0

    # Single sign-on with OpenID Connect: on when an issuer and a client id are set.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_allowed_domains: str = Field(default="", description="Comma-separated; empty: any verified email")
    oidc_name: str = "SSO"  # what the login page's button says
    # Claim-to-role mapping, applied at every SSO sign-in: the ID token claim that holds group names (a string
    # or a list), and JSON mapping a group to {"workspace": "<id or slug>", "role": "editor"} (or a list).
    oidc_role_claim: str = "groups"
    oidc_role_map: dict[str, OidcRoleGrant | list[OidcRoleGrant]] = Field(default_factory=dict)

    # Password reset by email: on when a host and a sender are set (port 465 means implicit TLS).
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_from: str | None = None
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True

    mock_ttft_ms: int = 150
    mock_token_ms: int = 15
    worker_metrics_port: int = 9464
    # Where the worker's /metrics listens: loopback by default; 0.0.0.0 in a container that is scraped.
    worker_metrics_host: str = "127.0.0.1"
    # When set, /metrics (api and worker) wants `Authorization: Bearer <token>`.
    metrics_token: str | None = None


@lru_cache
def get_settings() -> Settings:
    return Settings()
