"""The harness's own HTTP calls to the servers (standard library): minting tokens
before a run and reading the first admin page. Never part of a measurement."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

FIRST_PARTY_CLIENT = "userservice-frontend"


class BenchHttpError(RuntimeError):
    pass


def call(
    url: str,
    *,
    form: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> dict[str, Any]:
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, headers=dict(headers or {}))  # noqa: S310 - loopback URLs we built
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=60, context=context) as reply:  # noqa: S310
            body: dict[str, Any] = json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        raise BenchHttpError(f"{url}: {exc.code} {exc.read()[:300]!r}") from None
    except (OSError, ValueError) as exc:
        raise BenchHttpError(f"{url}: {exc}") from None
    return body


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def password_grant(
    base_url: str, email: str, password: str, context: ssl.SSLContext | None = None
) -> dict[str, Any]:
    """Access and refresh token of one login through the first-party client."""
    form = {
        "grant_type": "password",
        "client_id": FIRST_PARTY_CLIENT,
        "username": email,
        "password": password,
    }
    return call(base_url + "/oauth/token", form=form, context=context)


def in_parallel(task: Callable[[int], str], indexes: Iterable[int], workers: int = 4) -> list[str]:
    # A few at a time: each login is one argon2 verify, bounded by the cores anyway.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(task, indexes))
