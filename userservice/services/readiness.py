"""Readiness (R10): whether this process should be sent traffic: the database
answers, its schema is at the revision this code expects, and signing keys are
loaded. Where throttle counters are kept is reported beside the checks, never
failing them: while Redis does not answer, counting goes on in process memory
(N2), and taking every replica out of the load balancer would turn a lost
counter store into an outage."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from userservice.errors import ServiceUnavailable
from userservice.security.counters import Counters
from userservice.security.jwt import SIGNING_ALGORITHMS
from userservice.services.keys import KeyStore


class Readiness:
    def __init__(
        self,
        revision: Callable[[], Awaitable[str | None]],
        head: str,
        keys: KeyStore,
        counters: Counters | None = None,
    ) -> None:
        # `revision` reads the schema's current revision, raising ServiceUnavailable
        # when the database does not answer; `head` is the one this code was built for.
        self._revision = revision
        self.head = head
        self._keys = keys
        self._counters = counters if counters is not None else Counters()

    async def checks(self) -> dict[str, str]:
        """Each check's verdict: "ok", or what is wrong."""
        checks: dict[str, str] = {}
        try:
            current = await self._revision()
        except ServiceUnavailable:
            checks["database"] = "unreachable"
            checks["migrations"] = "unknown"
        else:
            checks["database"] = "ok"
            ok = current == self.head
            checks["migrations"] = "ok" if ok else f"at {current}, head is {self.head}"
        ring = self._keys.ring
        have_keys = all(ring.has_signing_key(alg) for alg in SIGNING_ALGORITHMS)
        checks["signing_keys"] = "ok" if have_keys else "missing"
        return checks

    async def counters(self) -> str:
        """Where throttle counters are kept now: "redis", or process memory."""
        return await self._counters.state()
