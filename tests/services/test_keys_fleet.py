"""Signing keys across replicas: two apps (or key stores) on one database, as two
processes would be. A key rotated through one replica is published by every replica
within the reload interval and signs only once it has been published for the JWKS
cache lifetime (N4); a retired key stays published and verifying until the last
token it signed has expired (N5). On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import delete

from tests.support.accounts import ISSUER, bearer, login, register
from tests.support.databases import waiting_on_a_lock
from tests.support.oauth_clients import kid_of
from tests.support.wiring import keys_of
from userservice.app import create_app
from userservice.db.engine import Database, build_engine, open_database
from userservice.db.models import SigningKey
from userservice.db.signing_keys import load_stored, replace_keys
from userservice.security.jwt import LEEWAY_SECONDS, SIGNING_ALGORITHMS, TokenInvalid
from userservice.services.keys import KeyStore
from userservice.settings import Settings

RELOAD = 0.5  # each replica's reload interval in these tests (production: 5 s)


@contextmanager
def replica(settings: Settings) -> Iterator[tuple[FastAPI, TestClient]]:
    """An app instance on the shared database, as another process would be."""
    app = create_app(settings)
    with TestClient(app, base_url="https://testserver") as client:
        yield app, client


@contextmanager
def database(settings: Settings) -> Iterator[Database]:
    db = open_database(build_engine(settings.resolved_database_url()))
    try:
        yield db
    finally:
        db.dispose()


def jwks_kids(client: TestClient) -> set[str]:
    response = client.get("/oauth/jwks")
    assert response.status_code == 200
    return {key["kid"] for key in response.json()["keys"]}


def me(client: TestClient, token: str) -> int:
    status: int = client.get("/users/me", headers=bearer(token)).status_code
    return status


def iat_of(token: str) -> int:
    payload = token.split(".")[1]
    iat: int = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["iat"]
    return iat


def test_n4_a_rotation_through_one_replica_is_published_by_the_other_within_seconds(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(signing_key_reload_seconds=RELOAD)
    with replica(settings) as (first, client), replica(settings) as (_second, other):
        register(client, "ada@example.com")
        old_kid = kid_of(login(other, "ada@example.com")["access_token"])
        assert old_kid in jwks_kids(other)  # the replica's copy is loaded

        rotation = keys_of(first).rotate()
        clock = time.monotonic()  # committed (key generation takes seconds before it)
        new_kids = {key.kid for key in rotation.created}
        while not new_kids <= jwks_kids(other):
            assert time.monotonic() - clock < RELOAD + 2, "not published within the interval"
            time.sleep(0.02)
        assert time.monotonic() - clock < RELOAD + 2

        # Five minutes away from the hand-over: both replicas still sign with the old
        # key, and the tokens of either verify on both.
        tokens = [login(c, "ada@example.com")["access_token"] for c in (client, other)]
        assert {kid_of(token) for token in tokens} == {old_kid}
        for token in tokens:
            assert me(client, token) == 200 and me(other, token) == 200
        assert jwks_kids(client) == jwks_kids(other)


def test_n4_the_new_key_signs_only_after_its_publication_delay(
    make_settings: Callable[..., Settings],
) -> None:
    """A real hand-over across replicas with a two-second JWKS max-age: no token of
    the new key is issued before the moment the rotation gave, every token after it
    is, and tokens signed by either replica with either key verify on both. (The
    delay's leeway is left out of this rotation to keep the test short.)"""
    settings = make_settings(signing_key_reload_seconds=RELOAD, jwks_max_age_seconds=2)
    with replica(settings) as (first, client), replica(settings) as (_second, other):
        register(client, "ada@example.com")
        old_kid = kid_of(login(other, "ada@example.com")["access_token"])
        assert keys_of(first).publication_seconds == 2 + RELOAD + LEEWAY_SECONDS
        keys_of(first).publication_seconds = 2 + RELOAD
        rotation = keys_of(first).rotate()
        new_kid = next(key.kid for key in rotation.created if key.alg == "ES256")
        start = rotation.created[0].signs_from
        assert start is not None
        assert all(key.signs_until == start for key in rotation.retired)
        assert start - rotation.created[0].created_at == dt.timedelta(seconds=2 + RELOAD)

        # Each login is judged by when it ran: wholly before the hand-over, the old
        # key; wholly after, the new one (whatever the machine's speed).
        issued: list[tuple[float, float, str]] = []
        deadline = time.monotonic() + 2 + RELOAD + 10
        while not issued or kid_of(issued[-1][2]) == old_kid:
            assert time.monotonic() < deadline, "the new key never signed"
            for c in (other, client):
                sent = time.time()
                token = login(c, "ada@example.com")["access_token"]
                issued.append((sent, time.time(), token))
            time.sleep(0.05)
        for sent, received, token in issued:
            if received < start.timestamp():
                assert kid_of(token) == old_kid
            if sent >= start.timestamp():
                assert kid_of(token) == new_kid
            if kid_of(token) == old_kid:
                assert iat_of(token) <= start.timestamp()
            else:
                assert kid_of(token) == new_kid and iat_of(token) >= int(start.timestamp())
        for _, _, token in (issued[0], issued[-1]):
            assert me(client, token) == 200 and me(other, token) == 200
        # From now on both sign with the new key.
        assert {kid_of(login(c, "ada@example.com")["access_token"]) for c in (client, other)} == {
            new_kid
        }


def test_n4_the_very_first_keys_sign_at_once(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    with database(settings) as db:
        with db.engine.begin() as conn:
            conn.execute(delete(SigningKey))
        keys = KeyStore.for_settings(db, settings)
        ring = keys.ensure()
        assert all(ring.active_kid(alg) is not None for alg in SIGNING_ALGORITHMS)
        assert {key.state for key in keys.describe()} == {"active"}
        # So does a rotation of an empty store (`userservice keys rotate` on a fresh install).
        with db.engine.begin() as conn:
            conn.execute(delete(SigningKey))
        rotation = keys.rotate()
        assert {key.state for key in rotation.created} == {"active"} and rotation.retired == []
        ring = keys.load()
        assert {ring.active_kid(alg) for alg in SIGNING_ALGORITHMS} == {
            key.kid for key in rotation.created
        }


def test_n4_several_rotations_in_a_row(make_settings: Callable[..., Settings]) -> None:
    """Rotations 10 s apart, each long before the previous hand-over: each key still
    signs for its turn, and only after being published for the whole delay."""
    settings = make_settings()
    with database(settings) as db:
        keys = KeyStore.for_settings(db, settings)
        delay = dt.timedelta(seconds=keys.publication_seconds)
        at = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
        first = keys.load().active_kid("ES256")
        moments = [at + dt.timedelta(seconds=10 * n) for n in range(3)]
        rotations = [keys.rotate(now=when) for when in moments]
        kids = [first] + [
            next(key.kid for key in rotation.created if key.alg == "ES256")
            for rotation in rotations
        ]
        ring = keys.load()
        # Signers in turn: each rotation's key from its own moment + delay.
        expected = [(at, kids[0]), (at + delay - dt.timedelta(seconds=1), kids[0])]
        expected += [(when + delay, kids[n + 1]) for n, when in enumerate(moments)]
        for when, kid in expected:
            assert ring.active_kid("ES256", now=when.timestamp()) == kid, when
            described = [k for k in keys.describe(now=when) if k.alg == "ES256"]
            assert [k.kid for k in described if k.state == "active"] == [kid]
        # Each was published (in the ring, hence in JWKS) from its creation on.
        published = {key["kid"] for key in ring.jwks(now=moments[-1].timestamp())["keys"]}
        assert set(kids) <= published
        for info in keys.describe(now=moments[-1]):
            if info.kid in kids[1:]:
                assert info.signs_from is not None
                assert info.signs_from - info.created_at >= delay


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_n4_concurrent_rotations_leave_one_key_waiting_per_algorithm(
    db_url: str, make_settings: Callable[..., Settings]
) -> None:
    """A rotation through one replica while another's is uncommitted (PostgreSQL, READ
    COMMITTED; SQLite serializes writers): the second waits and then also retires
    the first one's new keys, so no key waits forever behind another never retired."""
    settings = make_settings()
    with database(settings) as one, database(settings) as two:
        held, other = KeyStore.for_settings(one, settings), KeyStore.for_settings(two, settings)
        failures: list[BaseException] = []

        def rotate() -> None:
            try:
                other.rotate()
            except BaseException as exc:  # reported by the main thread
                failures.append(exc)

        thread = threading.Thread(target=rotate)
        now = dt.datetime.now(dt.UTC)
        with one.unit_of_work() as uow:
            new = [held._new_key(alg) for alg in SIGNING_ALGORITHMS]
            replace_keys(uow, new, now, now, now - dt.timedelta(days=1))
            thread.start()
            deadline = time.monotonic() + 60
            while not waiting_on_a_lock(db_url):
                assert time.monotonic() < deadline and thread.is_alive(), failures
                time.sleep(0.02)
        thread.join(timeout=60)
        assert not failures and not thread.is_alive()
        stored = load_stored(one)
        for alg in SIGNING_ALGORITHMS:
            waiting = [key.kid for key in stored if key.alg == alg and key.retired_at is None]
            assert len(waiting) == 1, waiting
        assert len(stored) == 2 * 3


@pytest.mark.parametrize(
    ("alg", "typ", "ttl_setting"),
    [
        ("ES256", "at+jwt", "access_token_ttl_seconds"),
        ("RS256", "JWT", "id_token_ttl_seconds"),
    ],
)
def test_n5_a_retired_key_verifies_on_every_replica_until_its_last_token_expired(
    make_settings: Callable[..., Settings], alg: str, typ: str, ttl_setting: str
) -> None:
    """The last token of the old key is signed at the hand-over itself (a replica
    that saw the rotation late signs no later); it verifies on the other replica,
    whose ring is not reloaded again after it saw the rotation, until it expires, and
    the key stays in that replica's JWKS until then and leaves it at the end of its
    grace, both in the ring's own time."""
    settings = make_settings(signing_key_reload_seconds=3600)
    ttl = getattr(settings, ttl_setting)
    with replica(settings) as (first, _client), replica(settings) as (second, _other):
        old_ring = keys_of(first).ring
        old_kid = old_ring.active_kid(alg)
        rotation = keys_of(first).rotate()
        retired = next(key for key in rotation.retired if key.kid == old_kid)
        assert retired.signs_until is not None and retired.until is not None
        hand_over, end = retired.signs_until.timestamp(), retired.until.timestamp()
        last = int(hand_over) - 1
        claims = {
            "iss": ISSUER,
            "aud": ISSUER,
            "sub": str(uuid.uuid4()),
            "jti": str(uuid.uuid4()),
            "iat": last,
            "exp": last + ttl,
        }
        signer = keys_of(first).ring
        assert signer.active_kid(alg, now=last) == old_kid
        token = signer.sign(claims, alg, typ, now=last)
        assert kid_of(token) == old_kid
        # The replica's one reload after the rotation (within its interval in service).
        ring = keys_of(second).load()
        check = {"issuer": ISSUER, "audience": ISSUER, "typ": typ.lower()}
        accepted_until = last + ttl + LEEWAY_SECONDS - 1
        assert accepted_until < end
        assert ring.verify(token, now=accepted_until, **check)["jti"] == claims["jti"]
        assert old_kid in {key["kid"] for key in ring.jwks(now=end - 1)["keys"]}
        assert old_kid not in {key["kid"] for key in ring.jwks(now=end)["keys"]}
        with pytest.raises(TokenInvalid):
            ring.verify(token, now=end, **check)
