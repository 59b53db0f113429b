"""The settings a deployment of several replicas needs: the shared counter store,
the PostgreSQL pool, background pruning, shutdown and key publication. Part of
Settings (settings.py), kept apart so that each file stays readable."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings

_REDIS_SCHEMES = ("redis", "rediss", "unix")


class FleetSettings(BaseSettings):
    # A URL may carry Redis' password: kept secret in reprs and logs.
    redis_url: SecretStr | None = Field(
        default=None,
        description="shared throttle counters for every worker and replica: "
        "`redis://[:password@]host:6379/0`, `rediss://…` (TLS); unset: each process "
        "counts in its own memory",
    )
    redis_timeout_seconds: float = Field(
        default=0.5,
        gt=0,
        le=10,
        description="how long a throttle check waits for Redis before counting in "
        "process memory instead",
    )
    database_pool_size: int = Field(
        default=16,
        ge=1,
        le=500,
        description="PostgreSQL connections kept per worker process (half as many more for bursts)",
    )
    database_pool_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="how long a request waits for a free pooled connection (then 503)",
    )
    database_connect_timeout_seconds: int = Field(
        default=5, ge=1, le=300, description="PostgreSQL connection attempt limit"
    )
    database_statement_timeout_ms: int = Field(
        default=30000,
        ge=0,
        description="PostgreSQL `statement_timeout` of the serving connections; 0: none",
    )
    prune_interval_seconds: int = Field(
        default=3600,
        ge=0,
        description="how often one replica deletes expired rows in the background "
        "(`userservice prune` runs the same); 0: never",
    )
    shutdown_grace_seconds: int = Field(
        default=20,
        ge=1,
        le=3600,
        description="on SIGTERM, how long in-flight requests may take to finish",
    )
    jwks_max_age_seconds: int = Field(
        default=300,
        ge=0,
        le=86400,
        description="how long clients may cache the JWKS; a new signing key is published "
        "at least this long before it signs",
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in _REDIS_SCHEMES or not (parts.hostname or parts.path):
            # The value itself is not repeated: it may hold a password.
            raise ValueError("must be `redis://host[:port][/db]`, `rediss://…` or `unix:///path`")
        return value
