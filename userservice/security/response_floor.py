"""One response time for the requests that must not tell whether an address has an
account (L2): sign-up without revealing, a new verification mail, a password
reset.

Making their work cost the same is not enough: a known address issues a token,
renders a mail and commits it, an unknown one reads one row, and milliseconds of
difference are measurable from outside over many requests. So such an answer is
held until a fixed time after the request's work began, the same for every
address: FLOOR_SECONDS plus a little random jitter, waited for on the event loop
(no thread is held). If the work itself ever takes longer, the floor no longer
hides it: that is logged, and the floor must be raised.

A module constant, not a setting: lowering it would reopen the leak."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import TypeVar

import anyio

log = logging.getLogger("userservice.security")

# Well above what the slowest of these requests costs (an argon2 hash and a commit
# on a busy machine), well below what a person notices after submitting a form.
FLOOR_SECONDS = 0.25
JITTER_SECONDS = 0.01

T = TypeVar("T")


async def at_floor(work: Callable[[], T], *, what: str) -> T:
    """Run `work` in a worker thread and answer, with its result or its exception,
    no earlier than the floor after it began."""
    began = time.monotonic()
    deadline = began + FLOOR_SECONDS + secrets.randbelow(1001) / 1000 * JITTER_SECONDS
    try:
        result = await anyio.to_thread.run_sync(work)
    except Exception:
        await _hold(began, deadline, what)
        raise
    await _hold(began, deadline, what)
    return result


async def _hold(began: float, deadline: float, what: str) -> None:
    now = time.monotonic()
    if now > deadline:
        log.warning(
            "%s took %.0f ms, more than the response floor of %.0f ms: its time may "
            "tell whether an address has an account; raise FLOOR_SECONDS",
            what,
            (now - began) * 1000,
            FLOOR_SECONDS * 1000,
        )
        return
    await anyio.sleep(deadline - now)
