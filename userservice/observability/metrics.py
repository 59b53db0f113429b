"""The events the service counts, as one interface.

`NoMetrics` is what a service holds when metrics are off (neither a metrics port
nor a metrics token is set): every call is a no-op, so the hot paths pay one method
call. `userservice.observability.prometheus.PrometheusMetrics` records them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from userservice.settings import Settings

LoginOutcome = Literal["success", "failure", "throttled", "refused", "second_factor"]
Grant = Literal["password", "authorization_code", "refresh_token", "client_credentials"]
ThrottleLimit = Literal[
    "login_account", "login_ip", "current_password", "mail", "attempts", "second_factor"
]
# Where prometheus_client's multiprocess mode keeps every process's values (set by
# serve before anything loads prometheus_client: observability/exposition.py).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def metrics_wanted(settings: Settings) -> bool:
    """Metrics are kept only when someone can read them: a metrics port, or the
    metrics token on the service's port."""
    return settings.metrics_port is not None or settings.metrics_token is not None


class NoMetrics:
    """Metrics off. The names of the series each call feeds are in PrometheusMetrics."""

    enabled = False

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request answered; `route` is the route's template
        (`/users/{user_id}`), never the raw path."""

    def login(self, outcome: LoginOutcome) -> None:
        """A sign-in attempt with a password (page, password grant, Basic) ended."""

    def token_issued(self, grant: Grant) -> None:
        """The token endpoint issued tokens for this grant."""

    def refresh_reuse_detected(self) -> None:
        """A rotated refresh token came back: its family was revoked."""

    def throttled(self, limit: ThrottleLimit) -> None:
        """A request was refused (429/503) by this limit."""

    def hash_queue_wait(self, seconds: float) -> None:
        """How long a password hash waited for a free hashing slot."""
