"""Where throttle counters live: this process's memory, or Redis shared by every
worker and replica. One port, two backends, chosen once from the settings."""

from __future__ import annotations


class Counters:
    """The counter store the throttles count in (security/throttle.py,
    security/mail_limits.py)."""

    def __init__(self, redis_url: str | None = None, timeout_seconds: float = 0.5) -> None:
        self.redis_url = redis_url
        self.timeout_seconds = timeout_seconds

    async def close(self) -> None:
        """Release the connections this process opened (at shutdown)."""
