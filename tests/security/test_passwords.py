"""E1 / E2: argon2id hashes with OWASP parameters, rehash on login when the
parameters are raised, hashing bounded to a few at once, NFKC normalization."""

from __future__ import annotations

import asyncio
import threading
import unicodedata
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.support.accounts import ISSUER, PASSWORD, login, register
from userservice.app import create_app
from userservice.db.engine import build_engine
from userservice.security.passwords import PasswordHasher, normalize_password
from userservice.settings import Settings

OWASP_PREFIX = "$argon2id$v=19$m=19456,t=2,p=1$"


def stored_hash(db_url: str, email: str) -> str:
    engine = build_engine(db_url)
    try:
        with engine.connect() as connection:
            value = connection.execute(
                text("SELECT password_hash FROM users WHERE email = :email"), {"email": email}
            ).scalar_one()
    finally:
        engine.dispose()
    return str(value)


def test_stored_hash_is_argon2id_with_owasp_minimum_parameters(
    client: TestClient, db_url: str
) -> None:
    """E1: `$argon2id$`, m=19 MiB, t=2, p=1 by default; never the password itself."""
    register(client, "hash@example.com")
    value = stored_hash(db_url, "hash@example.com")
    assert value.startswith(OWASP_PREFIX), value
    assert PASSWORD not in value


def test_login_rehashes_after_the_memory_cost_is_raised(
    client: TestClient, db_url: str, make_settings: Callable[..., Settings]
) -> None:
    """E1: a login on a server with stronger parameters upgrades the stored hash,
    and the password keeps working."""
    register(client, "rehash@example.com")
    before = stored_hash(db_url, "rehash@example.com")
    assert before.startswith(OWASP_PREFIX)

    stronger = create_app(make_settings(argon2_memory_kib=24576))
    with TestClient(stronger, base_url=ISSUER) as strong_client:
        login(strong_client, "rehash@example.com")
        after = stored_hash(db_url, "rehash@example.com")
        assert after.startswith("$argon2id$v=19$m=24576,t=2,p=1$"), after
        assert after != before
        login(strong_client, "rehash@example.com")
        wrong = strong_client.post(
            "/oauth/token",
            data={"grant_type": "password", "username": "rehash@example.com", "password": "x" * 12},
        )
        assert wrong.status_code in (400, 401)
    # A server still on the old parameters verifies the upgraded hash (no lock-out
    # during a rolling upgrade or a rollback) and does not weaken it again.
    login(client, "rehash@example.com")
    assert stored_hash(db_url, "rehash@example.com") == after


class _OverlapMeter:
    """Wraps passlib's CryptContext (not our code) and records how many hashes run
    at the same moment."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.calls = 0
        self.thread_ids: set[int] = set()
        self.thread_names: set[str] = set()

    def _measured(self, func: Callable[..., Any], *args: Any) -> Any:
        with self._lock:
            self.active += 1
            self.calls += 1
            self.peak = max(self.peak, self.active)
            self.thread_ids.add(threading.get_ident())
            self.thread_names.add(threading.current_thread().name)
        try:
            return func(*args)
        finally:
            with self._lock:
                self.active -= 1

    def hash(self, secret: str) -> Any:
        return self._measured(self._inner.hash, secret)

    def verify_and_update(self, secret: str, stored: str) -> Any:
        return self._measured(self._inner.verify_and_update, secret, stored)


class MeteredHasher(PasswordHasher):
    def __init__(self, max_concurrent: int) -> None:
        super().__init__(19456, 2, 1, max_concurrent)
        self.meter = _OverlapMeter(self._context)
        self._context = self.meter


def _hash_and_verify_at_once(hasher: PasswordHasher, threads: int) -> None:
    start = threading.Barrier(threads)
    stored = hasher.hash("a fine long passphrase")
    failures: list[BaseException] = []

    def work(index: int) -> None:
        try:
            start.wait(timeout=30)
            if index % 2:
                assert hasher.verify("a fine long passphrase", stored)[0]
            else:
                hasher.hash(f"another passphrase {index}")
        except BaseException as exc:  # reported to the test thread below
            failures.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not any(worker.is_alive() for worker in workers)
    assert failures == []


def test_hasher_never_runs_more_hashes_at_once_than_allowed() -> None:
    """E1 / DESIGN: argon2 is memory-hard; with max_concurrent=1, eight threads
    hashing and verifying at once never overlap."""
    bounded = MeteredHasher(max_concurrent=1)
    _hash_and_verify_at_once(bounded, threads=8)
    assert bounded.meter.calls == 9
    assert bounded.meter.peak == 1


def test_overlap_meter_sees_parallel_hashes_when_the_bound_allows_them() -> None:
    """The meter can fail: with a bound of 3, hashes do overlap, up to 3."""
    wider = MeteredHasher(max_concurrent=3)
    _hash_and_verify_at_once(wider, threads=8)
    assert wider.meter.peak in (2, 3)


def test_async_verifies_run_on_the_pool_never_on_the_event_loop() -> None:
    """E1: the event loop hands each verify (and the
    dummy verify for unknown accounts) straight to the hasher's pool. Thirteen at
    once give the right answers, overlap no more than the bound, and none of them
    runs on the loop's own thread."""
    hasher = MeteredHasher(max_concurrent=2)
    stored = hasher.hash("a fine long passphrase")

    async def logins() -> tuple[int, list[tuple[bool, str | None]]]:
        attempts = [
            hasher.verify_async("a fine long passphrase" if i % 2 else "not the passphrase", stored)
            for i in range(12)
        ]
        outcomes = await asyncio.gather(*attempts, hasher.verify_dummy_async("anything"))
        return threading.get_ident(), list(outcomes[:12])

    loop_thread, outcomes = asyncio.run(logins())
    assert outcomes == [(bool(i % 2), None) for i in range(12)]
    assert hasher.meter.calls == 1 + 12 + 2  # the hash, the verifies, dummy hash + verify
    assert hasher.meter.peak == 2
    assert loop_thread not in hasher.meter.thread_ids
    assert all(name.startswith("argon2") for name in hasher.meter.thread_names)
    hasher.close()


def _fullwidth(text: str) -> str:
    """ASCII letters and digits as their full-width forms (U+FF01..U+FF5E)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def test_password_in_one_unicode_form_logs_in_with_its_nfkc_form(client: TestClient) -> None:
    """E2: any Unicode is allowed and normalized (NFKC) before hashing, so the same
    password typed on another keyboard or OS still matches."""
    # A ligature, full-width letters, combining accents (NFD) and the numero sign.
    typed = "\ufb01" + _fullwidth("ne") + " Cafe\u0301 cre\u0300me bru\u0302le\u0301e \u211642"
    canonical = unicodedata.normalize("NFKC", typed)
    assert canonical == "fine Café crème brûlée No42"
    assert normalize_password(typed) == canonical
    register(client, "unicode@example.com", password=typed)
    login(client, "unicode@example.com", password=canonical)
    login(client, "unicode@example.com", password=typed)
    refused = client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": "unicode@example.com",
            "password": canonical.replace("42", "43"),
        },
    )
    assert refused.status_code in (400, 401)


def test_nfkc_registered_password_accepts_the_compatibility_form(client: TestClient) -> None:
    """E2: the reverse direction: registered in ASCII, typed in full-width forms."""
    register(client, "fullwidth@example.com", password="Passphrase with spaces")
    login(client, "fullwidth@example.com", password=_fullwidth("Passphrase with spaces"))
