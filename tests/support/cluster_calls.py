"""The requests the cluster checks make again and again: accounts registered
through nginx, tokens asked of one replica, guesses spread over replicas, the keys
in the database and in each replica's JWKS, and the replicas' warnings."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest

from tests.support.accounts import PASSWORD
from tests.support.fleet import Fleet

WRONG = "not the password at all"


def nginx(fleet: Fleet) -> httpx.Client:
    return httpx.Client(base_url=fleet.nginx_url, verify=fleet.ssl_context(), timeout=15)


def register(fleet: Fleet, email: str) -> dict[str, Any]:
    with nginx(fleet) as client:
        response = client.post("/users", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def issue(url: str, email: str, password: str = PASSWORD) -> dict[str, Any]:
    form = {"grant_type": "password", "username": email, "password": password}
    response = httpx.post(f"{url}/oauth/token", data=form, timeout=15)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def me_status(url: str, access_token: str) -> int:
    headers = {"Authorization": f"Bearer {access_token}"}
    return httpx.get(f"{url}/users/me", headers=headers, timeout=15).status_code


def until(condition: Callable[[], bool], seconds: float, pause: float = 0.05) -> float:
    """Seconds until `condition()` held; fails the check past the deadline."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > seconds:
            pytest.fail(f"not within {seconds} s: {getattr(condition, '__doc__', '')}")
        time.sleep(pause)
    return time.monotonic() - start


def guesses(urls: list[str], email: str, most: int) -> list[int]:
    """Wrong-password guesses for one account, in turns over `urls`, each on a new
    connection (so over the workers too), until the first 429 or `most` guesses."""
    found: list[int] = []
    form = {"grant_type": "password", "username": email, "password": WRONG}
    for i in range(most):
        found.append(httpx.post(f"{urls[i % len(urls)]}/oauth/token", data=form).status_code)
        if found[-1] == 429:
            break
    return found


def kid_of(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def stored_keys(fleet: Fleet) -> dict[str, str]:
    with psycopg.connect(fleet.database_url.replace("+psycopg", "")) as conn:
        return dict(conn.execute("SELECT kid, alg FROM signing_keys").fetchall())


def jwks_kids(url: str) -> set[str]:
    return {key["kid"] for key in httpx.get(f"{url}/oauth/jwks").json()["keys"]}


def warnings_about_redis(fleet: Fleet) -> list[str]:
    return [
        line
        for replica in fleet.replicas
        for line in replica.log().splitlines()
        if "WARNING" in line and "redis" in line.lower()
    ]


def guesses_in_turns(
    urls: list[str], one: str, spread: str
) -> tuple[dict[str, list[int]], dict[str, list[float]]]:
    """Guesses for account `one` on the first replica and for account `spread` in
    turns over all of them, one of each at a time so that both share the machine's
    busy moments, until both met 429: their statuses and seconds ("one", "all")."""
    found: dict[str, list[int]] = {"one": [], "all": []}
    took: dict[str, list[float]] = {"one": [], "all": []}
    for i in range(10 * len(urls) * 2 + 1):
        for name, email, url in (("one", one, urls[0]), ("all", spread, urls[i % len(urls)])):
            if found[name][-1:] != [429]:
                started = time.perf_counter()
                found[name] += guesses([url], email, 1)
                took[name].append(time.perf_counter() - started)
        if found["one"][-1:] == found["all"][-1:] == [429]:
            break
    return found, took
