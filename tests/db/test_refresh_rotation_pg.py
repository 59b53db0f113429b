"""The one-statement refresh rotation on PostgreSQL (db/refresh_tokens.py rotate_pg):
what it writes when a rotation goes through, and that every refusal the full path
(TokenService.refresh) would make leaves the stored token untouched."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import login
from tests.oauth.clients import EMAIL, refresh_row, set_refresh_times, set_user
from tests.support.event_loop import run
from userservice.db.clients import FIRST_PARTY_CLIENT_ID
from userservice.db.engine import Database
from userservice.db.refresh_rotation_pg import Rotated, rotate_pg
from userservice.security.secrets import digest, new_token

IDLE = dt.timedelta(days=30)


@pytest.fixture(params=["postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _db(app: FastAPI) -> Database:
    db: Database = app.state.services.accounts.db
    return db


def _rotate(
    app: FastAPI,
    token: str,
    *,
    client_id: str = FIRST_PARTY_CLIENT_ID,
    requested: tuple[str, ...] = (),
    successor: str | None = None,
    now: dt.datetime | None = None,
) -> Rotated | None:
    db = _db(app)
    at = now or dt.datetime.now(dt.UTC)
    return run(
        db,
        lambda: rotate_pg(
            db,
            token_digest=digest(token),
            successor_digest=digest(successor or new_token()),
            client_id=client_id,
            requested=list(requested),
            now=at,
            idle_cutoff=at - IDLE,
        ),
    )


def test_rotation_retires_the_token_and_inserts_its_successor(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    token = login(client, EMAIL, scope="openid profile")["refresh_token"]
    old = refresh_row(app, token)
    assert old is not None
    successor = new_token()
    now = dt.datetime.now(dt.UTC)
    rotated = _rotate(app, token, requested=("openid",), successor=successor, now=now)
    assert rotated == Rotated(old.family_id, old.user_id, "openid profile", 0, old.auth_time)
    retired, new = refresh_row(app, token), refresh_row(app, successor)
    assert retired is not None and retired.revoked_at == now and retired.last_used_at == now
    assert new is not None and new.revoked_at is None and new.last_used_at is None
    assert (new.family_id, new.user_id, new.client_id, new.scope) == (
        old.family_id,
        old.user_id,
        old.client_id,
        "openid profile",  # the family keeps its grant when the request narrows it
    )
    assert new.issued_at == now and new.expires_at == old.expires_at
    # Retired: a second presentation is refused here (reuse is the full path's job).
    assert _rotate(app, token) is None


def test_user_revocation_mark_comes_back(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    set_user(app, tokens_valid_after=1_900_000_000)
    rotated = _rotate(app, user["tokens"]["refresh_token"])
    assert rotated is not None and rotated.tokens_valid_after == 1_900_000_000


@pytest.mark.parametrize(
    "refusal",
    ["other client", "wider scope", "unknown scope", "inactive user", "expired", "idle"],
)
def test_refusals_change_nothing(
    app: FastAPI, client: TestClient, user: dict[str, Any], refusal: str
) -> None:
    token = user["tokens"]["refresh_token"]
    granted = refresh_row(app, token)
    assert granted is not None
    kwargs: dict[str, Any] = {}
    if refusal == "other client":
        kwargs["client_id"] = "someone-else"
    elif refusal == "wider scope":
        kwargs["requested"] = (*granted.scope.split(), "admin-extra")
    elif refusal == "unknown scope":
        kwargs["requested"] = ("o",)  # a substring of "openid" is not a scope of it
    elif refusal == "inactive user":
        set_user(app, is_active=False)
    elif refusal == "expired":
        set_refresh_times(app, token, expires_at=dt.datetime.now(dt.UTC))
    else:
        set_refresh_times(app, token, issued_at=dt.datetime.now(dt.UTC) - IDLE)
    before = refresh_row(app, token)
    assert _rotate(app, token, **kwargs) is None
    after = refresh_row(app, token)
    assert after is not None and before is not None
    assert (after.revoked_at, after.last_used_at) == (None, None)
    with Session(_db(app).engine) as session:
        assert session.query(type(after)).count() == 1  # no successor written


def test_concurrent_rotations_of_one_token_have_one_winner(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    db = _db(app)
    token = user["tokens"]["refresh_token"]
    now = dt.datetime.now(dt.UTC)

    async def both() -> list[Rotated | None]:
        attempts = [
            rotate_pg(
                db,
                token_digest=digest(token),
                successor_digest=digest(new_token()),
                client_id=FIRST_PARTY_CLIENT_ID,
                requested=[],
                now=now,
                idle_cutoff=now - IDLE,
            )
            for _ in range(4)
        ]
        return list(await asyncio.gather(*attempts))

    results = run(db, both)
    assert sum(result is not None for result in results) == 1
