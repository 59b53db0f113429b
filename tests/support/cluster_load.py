"""Concurrent clients for the cluster checks: each thread runs a step in a loop
until the load's time is up, and every request's outcome (start, end, status,
Retry-After, and a value such as the address registered) is kept."""

from __future__ import annotations

import ssl
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import httpx

from tests.support.accounts import PASSWORD
from userservice.security.secrets import digest

FRONTEND = "userservice-frontend"


@dataclass(frozen=True)
class Outcome:
    kind: str
    started: float
    ended: float
    status: int  # 0: no HTTP answer at all (connection refused, reset, timeout)
    retry_after: str | None = None
    value: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def call(
    client: httpx.Client, kind: str, method: str, url: str, **kwargs: object
) -> tuple[Outcome, httpx.Response | None]:
    started = time.monotonic()
    try:
        response = client.request(method, url, **kwargs)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        return Outcome(kind, started, time.monotonic(), 0, value=type(exc).__name__), None
    outcome = Outcome(
        kind, started, time.monotonic(), response.status_code, response.headers.get("retry-after")
    )
    return outcome, response


Step = Callable[[httpx.Client, int, int], list[Outcome]]


def run_load(
    base_url: str, verify: ssl.SSLContext | bool, clients: int, seconds: float, step: Step
) -> list[Outcome]:
    """`clients` threads, each with its own connection pool, call `step(client,
    thread, round)` until `seconds` have passed; a step always ends in bounded time
    (every request has a timeout)."""
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(index: int) -> None:
        with httpx.Client(base_url=base_url, verify=verify, timeout=15) as client:
            n = 0
            while time.monotonic() < deadline:
                found = step(client, index, n)
                with lock:
                    outcomes.extend(found)
                n += 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    assert not any(t.is_alive() for t in threads), "a load thread did not finish"
    return sorted(outcomes, key=lambda o: o.started)


class Background:
    """run_load in a thread of its own, so that the check acts while it runs."""

    def __init__(self, *args: object) -> None:
        self.outcomes: list[Outcome] = []
        self._thread = threading.Thread(target=self._run, args=args, daemon=True)
        self.started = time.monotonic()
        self._thread.start()

    def _run(self, *args: object) -> None:
        self.outcomes = run_load(*args)  # type: ignore[arg-type]

    def join(self, timeout: float) -> list[Outcome]:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the load did not finish"
        return self.outcomes


def password_grant(
    client: httpx.Client, email: str, password: str = PASSWORD, kind: str = "token"
) -> tuple[Outcome, httpx.Response | None]:
    form = {"grant_type": "password", "username": email, "password": password}
    return call(client, kind, "POST", "/oauth/token", data=form)


def rate(outcomes: Sequence[Outcome]) -> float:
    """The share of requests that got no success answer."""
    return sum(not o.ok for o in outcomes) / len(outcomes) if outcomes else 0.0


def p50_ms(outcomes: Sequence[Outcome]) -> float:
    return statistics.median(o.ended - o.started for o in outcomes) * 1000 if outcomes else 0.0


def statuses(outcomes: Sequence[Outcome]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return dict(sorted(counts.items()))


def sign_ups(client: httpx.Client, thread: int, n: int) -> list[Outcome]:
    """A step of write load: register a new account, then sign it in (a refresh
    token stored); each success keeps what the database must now hold."""
    email = f"load-{thread}-{n}@example.com"
    body = {"email": email, "password": PASSWORD}
    registered, _ = call(client, "register", "POST", "/users", json=body)
    found = [replace(registered, value=email)]
    if registered.status == 201:
        issued, response = password_grant(client, email)
        value = ""
        if response is not None and issued.status == 200:
            value = digest(response.json()["refresh_token"])
        found.append(replace(issued, value=value))
    return found


def sign_ins(email: str, access_token: str) -> Step:
    """A step of mixed load: even threads read /users/me with a Bearer token, odd
    threads sign in with the password grant (a write)."""

    def step(client: httpx.Client, thread: int, n: int) -> list[Outcome]:
        if thread % 2:
            return [password_grant(client, email)[0]]
        headers = {"Authorization": f"Bearer {access_token}"}
        return [call(client, "me", "GET", "/users/me", headers=headers)[0]]

    return step
