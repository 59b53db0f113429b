"""Runtime configuration, read from USERSERVICE_* environment variables and `.env`.

Every field carries a description: README's settings table is generated from them
(scripts/settings_table.py) and a test keeps the two equal."""

from __future__ import annotations

import ipaddress
import json
import re
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Literal, get_origin
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import SettingsConfigDict

from userservice.security.smtp_url import smtp_server
from userservice.settings_factors import FactorSettings
from userservice.settings_fleet import FleetSettings
from userservice.settings_operations import OperationsSettings

LIST_SYNTAX = "a JSON list or comma-separated values"
# An origin as browsers send it in the Origin header (RFC 6454 section 6.2).
_ORIGIN = re.compile(r"(https?)://([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _list_from_text(text: str) -> list[Any]:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            parsed = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg}); write {LIST_SYNTAX}") from None
        if not isinstance(parsed, list):
            raise ValueError(f"write {LIST_SYNTAX}")
        return parsed
    return [item.strip() for item in stripped.split(",") if item.strip()]


def _origin(value: str) -> str:
    match = _ORIGIN.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not an origin: scheme://host[:port], no path or slash")
    scheme, host, port = match.group(1).lower(), match.group(2).lower(), match.group(3)
    if port is None or int(port) == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    if not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} has a port outside 1-65535")
    return f"{scheme}://{host}:{int(port)}"


def _proxy(value: str) -> str:
    try:
        if "/" in value:
            return str(ipaddress.ip_network(value))
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IP address or network (host bits of a network must be 0)"
        ) from None


class Settings(FleetSettings, OperationsSettings, FactorSettings):
    model_config = SettingsConfigDict(
        env_prefix="USERSERVICE_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        # Lists are parsed by _lists below, which also accepts comma-separated values.
        enable_decoding=False,
    )

    data_dir: Path = Field(
        default=Path("./data"),
        description="SQLite database, TLS certificate and key (made 0700)",
    )
    database_url: str = Field(
        default="",
        description="empty: SQLite in the data directory; "
        "or e.g. `postgresql+psycopg://user:pass@host/db`",
    )
    # S11: kept outside the database, so a dump or backup alone reveals no key.
    key_encryption_secret: SecretStr | None = Field(
        default=None,
        description="encrypts the private signing keys and shared server secrets stored in "
        "the database (AES-256-GCM); at least 32 random characters "
        "(`openssl rand -base64 32`); keep it out of the database's backups",
    )
    issuer: str = Field(
        default="https://localhost:8443",
        description="public base URL, `iss` and `aud` of tokens; when unset, `serve` "
        "derives it from its scheme and port",
    )
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = Field(
        default="info", description="`serve`'s log level"
    )

    access_token_ttl_seconds: int = Field(
        default=900, ge=60, le=86400, description="access token lifetime"
    )
    id_token_ttl_seconds: int = Field(
        default=3600, ge=60, le=86400, description="ID token lifetime"
    )
    signing_key_reload_seconds: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="how often a replica reloads its signing keys: a key rotated in "
        "elsewhere is published here this soon, and signs this much (plus 30 s of "
        "leeway) later than `jwks_max_age_seconds` after the rotation",
    )
    refresh_token_idle_ttl_seconds: int = Field(
        default=14 * 86400, ge=60, description="refresh token idle expiry (14 days)"
    )
    refresh_token_absolute_ttl_seconds: int = Field(
        default=90 * 86400, ge=60, description="refresh token family's absolute expiry (90 days)"
    )
    access_token_alg: Literal["ES256", "RS256"] = Field(
        default="ES256",
        description="access token signature (both keys always exist; ID tokens are RS256)",
    )
    # OWASP ASVS V3.3: idle and absolute timeouts.
    session_idle_ttl_seconds: int = Field(
        default=1800, ge=60, description="hosted-page browser session idle timeout (30 min)"
    )
    session_absolute_ttl_seconds: int = Field(
        default=43200, ge=60, description="hosted-page browser session absolute timeout (12 h)"
    )

    # OWASP's minimum for argon2id (m=19 MiB, t=2, p=1); raising them rehashes on login.
    argon2_memory_kib: int = Field(
        default=19456, ge=19456, description="argon2id memory (raise only; rehashed at login)"
    )
    argon2_time_cost: int = Field(default=2, ge=2, description="argon2id iterations")
    argon2_parallelism: int = Field(default=1, ge=1, description="argon2id lanes")
    max_concurrent_hashes: int = Field(
        default=0,
        ge=0,
        description="password hashes in flight at once per process, on a pool of that many "
        "threads; 0: the cores divided by `serve --workers`",
    )

    registration_open: bool = Field(default=True, description="self-registration")
    registration_reveals_accounts: bool = Field(
        default=True,
        description="`POST /users` answers 409 for an address that has an account (frontends "
        "can say so); false: 202 for every address, with the same mails (the hosted "
        "`/register` page never reveals it)",
    )
    require_verified_email: bool = Field(
        default=False,
        description="refuse sign-in until the account's address is verified (false: "
        "unverified accounts sign in, with `email_verified` false)",
    )
    app_name: str = Field(
        default="userservice",
        min_length=1,
        max_length=100,
        description="the name shown on the hosted pages and in mails",
    )
    email_verification_ttl_seconds: int = Field(
        default=24 * 3600, ge=300, description="lifetime of an email verification link"
    )
    password_reset_ttl_seconds: int = Field(
        default=30 * 60, ge=300, le=24 * 3600, description="lifetime of a password reset link"
    )
    email_change_undo_ttl_seconds: int = Field(
        default=7 * 86400,
        ge=3600,
        le=30 * 86400,
        description="lifetime of the undo link mailed to the old address after an email change",
    )
    audit_retention_days: int = Field(
        default=400,
        ge=1,
        description="days an audit event is kept before `userservice prune` deletes it",
    )
    mail_limit_per_address: str = Field(
        default="3/hour",
        description="verification and reset mails asked for one address per window",
    )
    mail_limit_per_ip: str = Field(
        default="30/hour",
        description="verification, reset and sign-up requests per client address per window",
    )
    mail_url: str = Field(
        default="console:",
        description="where mail goes: `console:` (the service's log), "
        "`smtp://user:password@host:587` (STARTTLS) or `smtps://…:465` (implicit TLS); "
        "`?tls=none` for a loopback relay only",
    )
    mail_from: str = Field(
        default="userservice <no-reply@localhost>",
        description="the From header of every mail",
    )
    basic_auth_enabled: bool = Field(
        default=True, description="HTTP Basic fallback on protected routes"
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="origins (`https://app.example.com`) allowed to call the API from "
        f"browsers: {LIST_SYNTAX}",
    )
    docs_enabled: bool = Field(default=True, description="`/docs` and `/openapi.json`")

    # Sliding windows (`limits`), so no permanent lockout.
    login_limit_per_account: str = Field(
        default="10/5minutes",
        description="failed logins per window before 429 (plus attempts still being checked): "
        "per account from browsers without its device cookie, per device cookie, and per "
        "account and network (/24, /64) for the password grant and Basic; counted per "
        "process, or in Redis for the whole fleet (`USERSERVICE_REDIS_URL`)",
    )
    login_limit_per_ip: str = Field(
        default="100/5minutes", description="the same per client address"
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="proxy addresses or networks (`10.0.0.5`, `10.0.0.0/8`) whose "
        f"`X-Forwarded-For/Proto` are believed, as {LIST_SYNTAX}; `*` alone trusts every "
        "peer (only when nothing but the proxy can reach the port)",
    )
    tls_extra_names: list[str] = Field(
        default_factory=list,
        description="DNS names or IP addresses that the default certificate carries besides "
        f"localhost, 127.0.0.1 and ::1, as {LIST_SYNTAX}; not used with `serve --cert`",
    )

    max_body_bytes: int = Field(
        default=2 * 1024 * 1024, ge=1024, description="request body limit (413 beyond)"
    )
    max_form_body_bytes: int = Field(
        default=64 * 1024, ge=1024, description="form body limit on OAuth and page routes"
    )

    @field_validator("*", mode="before")
    @classmethod
    def _lists(cls, value: object, info: ValidationInfo) -> object:
        # Every list setting, present or future: `a,b` as well as `["a", "b"]`.
        field = cls.model_fields[info.field_name or ""]
        if isinstance(value, str) and get_origin(field.annotation) in (list, set, tuple):
            return _list_from_text(value)
        return value

    @field_validator("key_encryption_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # HKDF adds no work factor: the secret itself must be hard to guess.
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (`openssl rand -base64 32`)")
        return value

    @field_validator("issuer")
    @classmethod
    def _issuer_is_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")) or value.endswith("/"):
            raise ValueError("must be an absolute http(s) URL without a trailing slash")
        return value

    @field_validator(
        "login_limit_per_account",
        "login_limit_per_ip",
        "mail_limit_per_address",
        "mail_limit_per_ip",
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate limit such as 10/5minutes") from None
        return value

    @field_validator("mail_url")
    @classmethod
    def _mail_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if value == "console:":
            return value
        if parts.scheme in ("smtp", "smtps") and parts.hostname:
            smtp_server(value)  # L15: no clear text beyond this machine
            return value
        raise ValueError("must be `console:`, `smtp://[user:password@]host[:port]` or `smtps://…`")

    @field_validator("mail_from")
    @classmethod
    def _mail_from(cls, value: str) -> str:
        _name, address = parseaddr(value)
        if "@" not in address or any(c in value for c in "\r\n"):
            raise ValueError("must be an address, such as `Example <no-reply@example.com>`")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        # A12: named origins only; a wildcard would let any site script the API.
        return [_origin(item) for item in value]

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        # G6: uvicorn keeps an entry that is not an address as a name no peer ever
        # has, so a typo would silently trust nobody.
        if value == ["*"]:
            return value
        return [_proxy(item) for item in value]

    @field_validator("tls_extra_names")
    @classmethod
    def _tls_names(cls, value: list[str]) -> list[str]:
        from userservice.security.tls import server_names

        server_names(value)  # S10: a ValueError names the value that is no name
        return value

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'userservice.db').resolve()}"
