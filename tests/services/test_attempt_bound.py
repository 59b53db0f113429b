"""(N12) A password attempt holds its throttle place for HOLD_SECONDS at least; one
that waited longer for the hash pool (a flood queues hashes without limit) would
outlive its hold, and guesses past the limit would be admitted. So an attempt gives
up after its bound, well under HOLD_SECONDS: its hold is given back, its hash is
taken off the pool's queue if it has not started, and the answer is 503
(ServiceUnavailable), never a verdict on the password. On SQLite and PostgreSQL.

The pool is saturated for real: one hashing thread, and argon2 parameters that
make a verify take about a second, far past the injected bound."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import anyio
import pytest

from tests.support.accounts import PASSWORD
from tests.support.event_loop import run
from userservice.app import build_account_service
from userservice.db.backend import Database
from userservice.errors import ServiceUnavailable
from userservice.security.passwords import PasswordHasher
from userservice.services.accounts import AccountService
from userservice.settings import Settings

EMAIL = "ada@example.com"
BOUND = 0.3


class _Pool(ThreadPoolExecutor):
    """The hasher's pool, keeping the futures of what it was given to hash."""

    def __init__(self, threads: int) -> None:
        super().__init__(threads, thread_name_prefix="argon2")
        self.futures: list[Future[Any]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        self.futures.append(future)
        return future


class _Hasher(PasswordHasher):
    """A real argon2 hasher on one thread, whose pool shows what became of each hash."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.argon2_memory_kib, settings.argon2_time_cost, 1, 1)
        self.pool = _Pool(1)

    def _executor(self) -> ThreadPoolExecutor:
        return self.pool


@pytest.fixture
def slow(database: Database, make_settings: Callable[..., Settings]) -> Iterator[AccountService]:
    """Logins limited to one failure a minute, on one hashing thread, with a verify
    of about a second."""
    settings = make_settings(
        login_limit_per_account="1/minute",
        argon2_memory_kib=65536,
        argon2_time_cost=20,
        max_concurrent_hashes=1,
    )
    built = build_account_service(settings, database)
    hasher = _Hasher(settings)
    service = AccountService(
        database, hasher, built.throttle, built.devices, registration_open=True
    )
    service.register(EMAIL, PASSWORD, "Ada")
    yield service
    hasher.pool.shutdown()


def _pool(service: AccountService) -> _Pool:
    assert isinstance(service.hasher, _Hasher)
    return service.hasher.pool


def _bounded(service: AccountService, seconds: float) -> AccountService:
    """The same database, hasher pool and throttle, with another attempt bound."""
    return AccountService(
        service.db,
        service.hasher,
        service.throttle,
        service.devices,
        registration_open=True,
        attempt_seconds=seconds,
    )


def _stored(service: AccountService) -> tuple[uuid.UUID, str]:
    found = run(service.db, lambda: service.db.users.credentials(EMAIL))
    assert found is not None
    return found[0].id, found[1]


async def _timed_verify(hasher: PasswordHasher, password_hash: str) -> float:
    began = time.monotonic()
    await hasher.verify_async(PASSWORD, password_hash)
    return time.monotonic() - began


async def _blocker(hasher: PasswordHasher, password_hash: str) -> asyncio.Task[float]:
    """A verify that holds the pool's only thread; submitted before this returns
    (run_in_executor submits at once), so whatever comes next waits in the queue."""
    task = asyncio.ensure_future(_timed_verify(hasher, password_hash))
    await asyncio.sleep(0)
    return task


def test_n12_a_login_waiting_past_its_bound_gives_its_hold_back_and_gets_503(
    slow: AccountService, database: Database
) -> None:
    _, password_hash = _stored(slow)
    bounded = _bounded(slow, BOUND)
    patient = _bounded(slow, 60)

    async def scenario() -> tuple[float, bool]:
        blocker = await _blocker(slow.hasher, password_hash)
        began = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            # A wrong password: were it hashed and counted, the 1/minute window
            # would refuse the right one below.
            await bounded.authenticate(EMAIL, "not the password", "192.0.2.1")
        gave_up = time.monotonic() - began
        busy = not blocker.done()  # the pool was still hashing for someone else
        await blocker
        # The hold was given back and nothing was counted: admitted, and right.
        user = await patient.authenticate(EMAIL, PASSWORD, "192.0.2.1")
        assert user.email == EMAIL
        return gave_up, busy

    submitted = len(_pool(slow).futures)
    gave_up, busy = run(database, scenario)
    assert gave_up < BOUND + 0.5, gave_up  # not the pool's queue
    assert busy
    blocker, abandoned, admitted = _pool(slow).futures[submitted:]
    assert abandoned.cancelled()  # queued behind the blocker: never hashed
    assert not blocker.cancelled() and not admitted.cancelled()


def test_n12_a_current_password_check_past_its_bound_gives_its_hold_back_and_gets_503(
    slow: AccountService, database: Database
) -> None:
    user_id, password_hash = _stored(slow)
    bounded = _bounded(slow, BOUND)
    patient = _bounded(slow, 60)

    async def scenario() -> tuple[float, bool]:
        blocker = await _blocker(slow.hasher, password_hash)
        began = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            # In a worker thread, as the account routes call it.
            await anyio.to_thread.run_sync(
                bounded.require_current_password, user_id, "not the password"
            )
        gave_up = time.monotonic() - began
        busy = not blocker.done()  # the pool was still hashing for someone else
        await blocker
        # Admitted (the hold is back, no failure counted) and right.
        await anyio.to_thread.run_sync(patient.require_current_password, user_id, PASSWORD)
        return gave_up, busy

    submitted = len(_pool(slow).futures)
    gave_up, busy = run(database, scenario)
    assert gave_up < BOUND + 0.5, gave_up
    assert busy
    blocker, abandoned, admitted = _pool(slow).futures[submitted:]
    assert abandoned.cancelled()
    assert not blocker.cancelled() and not admitted.cancelled()
