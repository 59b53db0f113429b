"""When a replica reads its signing keys and when a rotation reads the clock (N4):
signing never reads the database on the calling thread (token issuance runs on the
event loop), an idle replica's copy is kept fresh in the background, and a rotation
that waited behind another counts its publication delay from when it got the keys.
On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from tests.support.accounts import ISSUER
from tests.support.databases import waiting_on_a_lock
from tests.support.oauth_clients import kid_of
from tests.support.wiring import keys_of
from userservice.app import create_app
from userservice.db.engine import Database, build_engine, open_database
from userservice.db.signing_keys import lock_keys
from userservice.security.jwt import SIGNING_ALGORITHMS
from userservice.services.keys import KeyStore, Rotation
from userservice.settings import Settings

RELOAD = 0.5  # the reload interval in these tests (production: 5 s)


@contextmanager
def database(settings: Settings) -> Iterator[Database]:
    db = open_database(build_engine(settings.resolved_database_url()))
    try:
        yield db
    finally:
        db.dispose()


def claims() -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": ISSUER,
        "sub": str(uuid.uuid4()),
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 60,
    }


def test_n4_signing_with_a_stale_copy_never_reads_the_database_on_the_calling_thread(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(signing_key_reload_seconds=0.2)
    with database(settings) as db:
        keys = KeyStore.for_settings(db, settings)
        keys.ensure()
        statements: list[int] = []

        def record(*_args: object) -> None:
            statements.append(threading.get_ident())

        event.listen(db.engine, "before_cursor_execute", record)
        deadline = time.monotonic() + 10
        while keys.age() < keys.reload_seconds:
            assert time.monotonic() < deadline
            time.sleep(0.02)

        token = keys.sign(claims(), "ES256", "at+jwt")

        assert kid_of(token) == keys.cached.active_kid("ES256")
        assert threading.get_ident() not in statements
        # The stale copy is reloaded, by another thread.
        while not statements:
            assert time.monotonic() < deadline, "the stale copy was never reloaded"
            time.sleep(0.02)
        assert threading.get_ident() not in statements


def test_n4_an_idle_replica_keeps_its_copy_fresh(make_settings: Callable[..., Settings]) -> None:
    """No request reaches the replica, yet a rotation made elsewhere (handing over at
    once here) is in its copy within the interval: it will not sign with a key
    another replica has retired."""
    settings = make_settings(signing_key_reload_seconds=RELOAD)
    app = create_app(settings)
    with TestClient(app, base_url="https://testserver"), database(settings) as db:
        other = KeyStore.for_settings(db, settings)
        other.publication_seconds = 0
        rotation = other.rotate()
        clock = time.monotonic()
        new_kid = next(key.kid for key in rotation.created if key.alg == "ES256")
        keys = keys_of(app)
        while keys.cached.active_kid("ES256") != new_kid:
            assert time.monotonic() - clock < RELOAD + 2, "the idle replica's copy went stale"
            time.sleep(0.02)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_n4_a_rotation_behind_another_counts_its_delay_from_when_it_got_the_keys(
    db_url: str, make_settings: Callable[..., Settings]
) -> None:
    """A rotation that waited for another one's transaction (PostgreSQL's row locks;
    SQLite serializes writers before the clock is read as well) hands over the whole
    publication delay after that wait ended, not after it began."""
    settings = make_settings()
    with database(settings) as one, database(settings) as two:
        keys = KeyStore.for_settings(two, settings)
        rotations: list[Rotation] = []
        failures: list[BaseException] = []

        def rotate() -> None:
            try:
                rotations.append(keys.rotate())
            except BaseException as exc:  # reported by the main thread
                failures.append(exc)

        thread = threading.Thread(target=rotate)
        with one.unit_of_work() as uow:
            lock_keys(uow, SIGNING_ALGORITHMS)
            thread.start()
            deadline = time.monotonic() + 60
            while not waiting_on_a_lock(db_url):
                assert time.monotonic() < deadline and thread.is_alive(), failures
                time.sleep(0.02)
            released = dt.datetime.now(dt.UTC)
        thread.join(timeout=60)
        assert not failures and not thread.is_alive() and len(rotations) == 1
        delay = dt.timedelta(seconds=keys.publication_seconds)
        (rotation,) = rotations
        assert rotation.retired and rotation.created
        for key in rotation.created:
            assert key.signs_from is not None and key.signs_from >= released + delay
        for key in rotation.retired:
            assert key.signs_until is not None and key.signs_until >= released + delay
