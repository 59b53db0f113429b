"""Runtime configuration, read from USERSERVICE_* environment variables and `.env`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="USERSERVICE_", env_file=".env", extra="ignore", frozen=True
    )

    data_dir: Path = Path("./data")
    # Empty means: an SQLite file inside data_dir.
    database_url: str = ""
    # Empty means: derived from host/port/TLS by `serve` (https://localhost:8443).
    issuer: str = "https://localhost:8443"

    access_token_ttl_seconds: int = Field(default=900, ge=60, le=86400)
    id_token_ttl_seconds: int = Field(default=3600, ge=60, le=86400)
    # How stale a replica's signing keys may get before it reloads them (rotation).
    signing_key_reload_seconds: float = Field(default=60.0, gt=0, le=3600)
    refresh_token_idle_ttl_seconds: int = Field(default=14 * 86400, ge=60)
    refresh_token_absolute_ttl_seconds: int = Field(default=90 * 86400, ge=60)
    access_token_alg: str = "ES256"  # noqa: S105 - an algorithm name
    # Hosted-page browser sessions (OWASP ASVS V3.3: idle and absolute timeouts).
    session_idle_ttl_seconds: int = Field(default=1800, ge=60)
    session_absolute_ttl_seconds: int = Field(default=43200, ge=60)

    # OWASP's minimum for argon2id (m=19 MiB, t=2, p=1); raising them rehashes on login.
    argon2_memory_kib: int = Field(default=19456, ge=19456)
    argon2_time_cost: int = Field(default=2, ge=2)
    argon2_parallelism: int = Field(default=1, ge=1)
    # How many password hashes may run at once per process; 0 means one per CPU core
    # (`serve --workers N` divides the cores between its workers).
    max_concurrent_hashes: int = Field(default=0, ge=0)

    registration_open: bool = True
    basic_auth_enabled: bool = True
    cors_origins: list[str] = Field(default_factory=list)
    docs_enabled: bool = True

    # Login throttling (limits' rate-limit strings); windows slide, so no permanent lockout.
    login_limit_per_account: str = "10/5minutes"
    login_limit_per_ip: str = "100/5minutes"
    # Peers whose X-Forwarded-* headers are believed (used with `serve --no-tls`).
    trusted_proxies: list[str] = Field(default_factory=list)
    # DNS names / IP addresses the default certificate carries besides localhost,
    # 127.0.0.1 and ::1 (S10); ignored with `serve --cert` or `--no-tls`.
    tls_extra_names: list[str] = Field(default_factory=list)

    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    max_form_body_bytes: int = Field(default=64 * 1024, ge=1024)

    @field_validator("access_token_alg")
    @classmethod
    def _known_alg(cls, value: str) -> str:
        if value not in ("ES256", "RS256"):
            raise ValueError("access_token_alg must be ES256 or RS256")
        return value

    @field_validator("issuer")
    @classmethod
    def _issuer_is_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")) or value.endswith("/"):
            raise ValueError("issuer must be an absolute http(s) URL without a trailing slash")
        return value

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'userservice.db').resolve()}"
