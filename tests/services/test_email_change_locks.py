"""An email change request racing the confirmation of its earlier link, on
PostgreSQL (L21): both take the account's row before any link's row, so neither
waits for the other in a cycle (a deadlock, answered 503), and each ends in one of
its ordinary outcomes."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from functools import partial

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import register
from tests.support.journeys import last_token
from userservice.errors import Conflict, InvalidAccountToken
from userservice.wiring import Services

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
IP = "192.0.2.7"
PAIRS, ROUNDS = 8, 4


def outcome(work: Callable[[], object]) -> str:
    try:
        work()
    except (InvalidAccountToken, Conflict) as refused:
        return type(refused).__name__
    except Exception as failed:  # any other end is the failure looked for
        return f"failed: {failed!r}"
    return "ok"


def test_requests_racing_confirmations_never_deadlock_l21(
    client: TestClient, app: FastAPI, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The password check is argon2's time, not a lock: without it the two
    # transactions start together, as a slower machine would line them up.
    monkeypatch.setattr(services.accounts, "require_current_password", lambda *_: None)
    outcomes: list[str] = []
    lock = threading.Lock()
    for round_ in range(ROUNDS):
        work: list[Callable[[], object]] = []
        for pair in range(PAIRS):
            user = uuid.UUID(register(client, f"u{round_}.{pair}@example.com")["id"])
            new = f"u{round_}.{pair}@example.org"
            services.email_change.request(user, new, None, ip=IP, locale="en")
            token = last_token(app, new, "email_change_verify")
            ask = services.email_change.request
            work.append(
                partial(ask, user, f"again.{round_}.{pair}@example.org", None, ip=IP, locale="en")
            )
            work.append(partial(services.email_change.confirm, token, ip=IP))
        barrier = threading.Barrier(len(work))

        def run(step: Callable[[], object], barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            ended = outcome(step)
            with lock:
                outcomes.append(ended)

        threads = [threading.Thread(target=run, args=(step,)) for step in work]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert len(outcomes) == 2 * PAIRS * ROUNDS
    failed = [ended for ended in outcomes if ended.startswith("failed")]
    assert not failed, failed
