"""Signing-key rotation (D4, D9): once the new key takes over, new tokens use it,
tokens of the old key keep working and its kid stays in JWKS until they have all
expired, and past the grace the old key is gone from JWKS and refused. Most tests
here hand over at once (`at_once`); the publication delay before a new key signs,
and replicas following each other, are tests/services/test_keys_fleet.py's."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.support.accounts import ISSUER, bearer, login, register
from tests.support.oauth_clients import kid_of
from tests.support.wiring import engine_of, keys_of, storage_of
from userservice.app import create_app
from userservice.db.engine import build_engine, open_database
from userservice.db.models import SigningKey
from userservice.db.signing_keys import load_stored
from userservice.security.jwt import LEEWAY_SECONDS, TokenInvalid
from userservice.services.key_schedule import settings_grace_seconds
from userservice.services.keys import KeyStore
from userservice.settings import Settings

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def at_once(keys: KeyStore) -> KeyStore:
    """The store's next rotations hand over at once instead of after the JWKS cache
    lifetime (N4), for tests about what follows the hand-over."""
    keys.publication_seconds = 0
    return keys


def jwks_kids(client: TestClient) -> set[str]:
    response = client.get("/oauth/jwks")
    assert response.status_code == 200
    return {key["kid"] for key in response.json()["keys"]}


def me(client: TestClient, token: str) -> int:
    status: int = client.get("/users/me", headers=bearer(token)).status_code
    return status


def age_retired_keys(app: FastAPI, seconds: float) -> None:
    """Pretend the retired keys were retired `seconds` earlier than they were."""
    with engine_of(app).begin() as conn:
        for key in load_stored(storage_of(app)):
            if key.retired_at is not None:
                conn.execute(
                    update(SigningKey)
                    .where(SigningKey.kid == key.kid)
                    .values(retired_at=key.retired_at - dt.timedelta(seconds=seconds))
                )


@contextmanager
def replica(settings: Settings) -> Iterator[tuple[FastAPI, TestClient]]:
    """A second app instance on the same database, as another process would be."""
    app = create_app(settings)
    with TestClient(app, base_url="https://testserver") as client:
        yield app, client


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_rotation_new_tokens_use_new_key_old_tokens_keep_working(
    make_settings: Callable[..., Settings], alg: str
) -> None:
    with replica(make_settings(access_token_alg=alg)) as (app, client):
        register(client, "ada@example.com")
        before = login(client, "ada@example.com")["access_token"]
        old_kid = kid_of(before)
        assert old_kid == keys_of(app).ring.active_kid(alg)

        rotation = at_once(keys_of(app)).rotate()

        created = {k.alg: k.kid for k in rotation.created}
        assert set(created) == {"ES256", "RS256"}
        assert old_kid in {k.kid for k in rotation.retired}
        after = login(client, "ada@example.com")["access_token"]
        assert kid_of(after) == created[alg] != old_kid
        # The token signed before the rotation still works, and its key is published.
        assert me(client, before) == 200
        assert me(client, after) == 200
        assert {old_kid, *created.values()} <= jwks_kids(client)
        # D9: still an active key for each algorithm.
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["signing_keys"] == "ok"


def test_jwks_never_has_private_members(client: TestClient, app: FastAPI) -> None:
    keys_of(app).rotate()
    keys = client.get("/oauth/jwks").json()["keys"]
    assert {k["kty"] for k in keys} == {"EC", "RSA"} and len(keys) == 4
    for key in keys:
        assert not PRIVATE_MEMBERS & key.keys(), key
        assert key["use"] == "sig"
        if key["kty"] == "RSA":
            modulus = base64.urlsafe_b64decode(key["n"] + "=" * (-len(key["n"]) % 4))
            assert len(modulus) * 8 >= 3072
        else:
            assert key["crv"] == "P-256"


def test_replica_verifies_a_new_kid_without_waiting(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(signing_key_reload_seconds=3600)
    with replica(settings) as (first, client), replica(settings) as (second, other):
        register(client, "ada@example.com")
        # The replica's first (and only) load happened before the rotation.
        assert keys_of(second).ring.active_kid("ES256") == keys_of(first).ring.active_kid("ES256")
        at_once(keys_of(first)).rotate()
        token = login(client, "ada@example.com")["access_token"]
        assert not keys_of(second).ring.knows(kid_of(token))
        assert me(other, token) == 200
        assert kid_of(token) in jwks_kids(other)
        # Having reloaded, the replica now signs with the new key as well.
        assert kid_of(login(other, "ada@example.com")["access_token"]) == kid_of(token)


def test_unknown_kid_reloads_are_rate_limited(app: FastAPI, client: TestClient) -> None:
    keys = KeyStore(storage_of(app))
    keys.load()
    assert keys.maybe_reload_for("garbage") is False  # the first miss reloads
    new_kid = keys_of(app).rotate().created[0].kid
    # A second miss within the limit does not reach the database, so the new key
    # stays unknown to this store for now: garbage kids cannot hammer the database.
    assert keys.maybe_reload_for(new_kid) is False
    assert keys_of(app).maybe_reload_for(new_kid) is True


def test_after_the_grace_the_old_key_is_gone_and_refused(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    grace = settings_grace_seconds(settings)
    with replica(settings) as (app, client):
        register(client, "ada@example.com")
        before = login(client, "ada@example.com")["access_token"]
        old_kid = kid_of(before)
        at_once(keys_of(app)).rotate()
        assert me(client, before) == 200

        # Just inside the grace: still published and accepted.
        age_retired_keys(app, grace - 60)
        keys_of(app).load()
        assert old_kid in jwks_kids(client) and me(client, before) == 200

        age_retired_keys(app, 120)
        keys_of(app).load()
        assert old_kid not in jwks_kids(client)
        assert me(client, before) == 401
        assert [k.kid for k in keys_of(app).describe() if k.state == "retired"] != []

        # The next rotation deletes the rows of keys past their grace.
        rotation = keys_of(app).rotate()
        assert old_kid in rotation.removed
        assert old_kid not in {k.kid for k in load_stored(storage_of(app))}
        assert me(client, before) == 401


def test_ring_drops_a_key_at_the_end_of_its_grace_without_a_reload(
    app: FastAPI, client: TestClient
) -> None:
    """A replica that only verifies may hold its ring for long: the grace must end on
    time inside the ring (pure, `now` passed in). The rotation hands over after the
    publication delay (N5: the grace counts from the hand-over)."""
    register(client, "ada@example.com")
    token = login(client, "ada@example.com")["access_token"]
    keys = keys_of(app)
    keys.rotate()
    ring = keys.ring
    retired = next(k for k in load_stored(storage_of(app)) if k.kid == kid_of(token))
    assert retired.retired_at is not None
    end = (retired.retired_at + dt.timedelta(seconds=keys.grace_seconds)).timestamp()
    claims = {"issuer": ISSUER, "audience": ISSUER, "typ": "at+jwt"}

    exp = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["exp"]
    # Every token the key signed has expired (with leeway) before its grace ends,
    # the last one, signed just before the hand-over, too.
    assert exp + LEEWAY_SECONDS < end
    hand_over = retired.retired_at.timestamp()
    assert ring.active_kid("ES256", now=hand_over - 1) == kid_of(token)
    last_exp = hand_over + keys.reload_seconds + max(900, 3600)  # access and ID token TTLs
    assert last_exp + LEEWAY_SECONDS <= end
    assert ring.verify(token, now=exp, **claims)["sub"]
    assert kid_of(token) in {k["kid"] for k in ring.jwks(now=end - 1)["keys"]}
    assert kid_of(token) not in {k["kid"] for k in ring.jwks(now=end)["keys"]}
    with pytest.raises(TokenInvalid):
        ring.verify(token, now=end, **claims)


def test_key_states_and_grace(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(access_token_ttl_seconds=900, id_token_ttl_seconds=3600)
    # Longest token lifetime + a replica's reload interval + the verification leeway.
    assert settings_grace_seconds(settings) == 3600 + 5 + LEEWAY_SECONDS
    longer = make_settings(access_token_ttl_seconds=7200, signing_key_reload_seconds=10)
    assert settings_grace_seconds(longer) == 7200 + 10 + LEEWAY_SECONDS

    db = open_database(build_engine(settings.resolved_database_url()))
    try:
        keys = KeyStore.for_settings(db, settings)
        # JWKS max-age + reload interval + the verification leeway.
        assert keys.publication_seconds == 300 + 5 + LEEWAY_SECONDS
        at = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
        keys.rotate(now=at)
        hand_over = at + dt.timedelta(seconds=keys.publication_seconds)

        def states(when: dt.datetime) -> list[str]:
            return sorted(k.state for k in keys.describe(now=when))

        assert states(at) == ["active", "active", "pending", "pending"]
        assert states(hand_over) == ["active", "active", "retiring", "retiring"]
        edge = hand_over + dt.timedelta(seconds=keys.grace_seconds)
        assert states(edge - dt.timedelta(seconds=1)) == states(hand_over)
        assert states(edge) == ["active", "active", "retired", "retired"]
        # Rotating again at that moment removes exactly the two keys past their grace.
        assert len(keys.rotate(now=edge).removed) == 2
    finally:
        db.dispose()


def test_readyz_needs_an_active_key_for_each_algorithm(app: FastAPI, client: TestClient) -> None:
    keys_of(app).rotate()
    assert client.get("/readyz").status_code == 200
    with engine_of(app).begin() as conn:
        conn.execute(
            update(SigningKey)
            .where(SigningKey.alg == "RS256")
            .values(retired_at=dt.datetime.now(dt.UTC))
        )
    keys_of(app).load()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["signing_keys"] == "missing"
