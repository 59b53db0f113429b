"""The settings an operator watches the service with: metrics, log format, and
whether `serve` speaks TLS itself. Part of Settings (settings.py), kept apart so
that each file stays readable."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings

MIN_TOKEN_LENGTH = 24


class OperationsSettings(BaseSettings):
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="serve Prometheus metrics (`GET /metrics`, plain HTTP) on this port, "
        "summed over every worker; unset: no metrics port",
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="address the metrics port listens on (`0.0.0.0` where Prometheus "
        "scrapes from another host or container)",
    )
    # Kept secret in reprs and logs: whoever holds it reads the metrics.
    metrics_token: SecretStr | None = Field(
        default=None,
        description="also answer `GET /metrics` on the service's own port to "
        "`Authorization: Bearer <this token>`; unset: `/metrics` there is 404",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="`text`: one readable line per event (for a terminal); `json`: one "
        "JSON object per line with request id, trace id, route, status and duration",
    )
    tls: bool = Field(
        default=True,
        description="`serve` speaks HTTPS itself; `false`: plain HTTP behind a proxy "
        "that terminates TLS (as `serve --no-tls`)",
    )

    @field_validator("metrics_host")
    @classmethod
    def _an_address(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None

    @field_validator("metrics_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # A guessable token would make the metrics public in all but name.
        if value is None:
            return value
        token = value.get_secret_value()
        if len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(f"use at least {MIN_TOKEN_LENGTH} characters")
        # The presented header is compared as bytes: a token outside printable
        # ASCII could never match it (and a space or control character could not
        # even be sent in a header).
        if not all("!" <= char <= "~" for char in token):
            raise ValueError("use printable ASCII characters only (no spaces)")
        return value
