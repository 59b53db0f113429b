"""The metrics create_app hands to the services: Prometheus series, or NoMetrics.

Each application owns its registry (never prometheus_client's global REGISTRY):
tests build many applications in one process, and two registries never clash.
Under `serve`, PROMETHEUS_MULTIPROC_DIR is set before prometheus_client is first
imported (observability/exposition.py), so every value lives in a per-process
file there and a scrape sums the files of every worker (O3).

Labels take only route templates and fixed words (O2): a client can never make
a new series, so the number of series stays bounded whatever it sends.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from userservice.observability.metrics import (
    MULTIPROC_ENV,
    Grant,
    LoginOutcome,
    NoMetrics,
    ThrottleLimit,
    metrics_wanted,
)
from userservice.observability.multiprocess import scrape_registry
from userservice.settings import Settings

REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HASH_QUEUE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LOGIN_OUTCOMES: tuple[LoginOutcome, ...] = (
    "success",
    "failure",
    "throttled",
    "refused",
    "second_factor",
)
GRANTS: tuple[Grant, ...] = (
    "password",
    "authorization_code",
    "refresh_token",
    "client_credentials",
)
THROTTLE_LIMITS: tuple[ThrottleLimit, ...] = (
    "login_account",
    "login_ip",
    "current_password",
    "mail",
    "attempts",
    "second_factor",
)

RequestKey = tuple[str, str, int]


class PrometheusMetrics(NoMetrics):
    enabled = True

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Histogram(
            "userservice_http_request_duration_seconds",
            "Time from a request's first byte to the end of its response.",
            ("method", "route", "status"),
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.logins = Counter(
            "userservice_logins",
            "Sign-ins with a password (page, password grant, HTTP Basic) by outcome.",
            ("outcome",),
            registry=self.registry,
        )
        self.tokens = Counter(
            "userservice_tokens_issued",
            "Successful token responses of the token endpoint by grant.",
            ("grant",),
            registry=self.registry,
        )
        self.reuse = Counter(
            "userservice_refresh_token_reuse",
            "Rotated refresh tokens presented again (their family revoked).",
            registry=self.registry,
        )
        self.throttles = Counter(
            "userservice_throttled",
            "Requests refused by a limit (429, or 503 for a sign-in that gave up).",
            ("limit",),
            registry=self.registry,
        )
        self.hash_queue = Histogram(
            "userservice_password_hash_queue_seconds",
            "Time a password hash waited for a free hashing thread.",
            buckets=HASH_QUEUE_BUCKETS,
            registry=self.registry,
        )
        # livesum: a worker's connections count while it lives, and leave the sum
        # when it stops (mark_process_dead) or dies (observability/multiprocess.py).
        self.pool_in_use = Gauge(
            "userservice_db_pool_connections_in_use",
            "Database connections checked out of the pools of every live process.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.pool_limit = Gauge(
            "userservice_db_pool_connections_limit",
            "Most connections the pools of every live process may open.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        # Children made once: a labelled child is a dict lookup per event, not
        # `.labels()` with its validation and lock on the hot path.
        self._logins = {outcome: self.logins.labels(outcome) for outcome in LOGIN_OUTCOMES}
        self._tokens = {grant: self.tokens.labels(grant) for grant in GRANTS}
        self._throttles = {limit: self.throttles.labels(limit) for limit in THROTTLE_LIMITS}
        self._request_children: dict[RequestKey, Callable[[float], None]] = {}
        self._extra: list[Collector] = []

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        try:
            observe = self._request_children[key]
        except KeyError:
            # Bounded: methods are the ones routes and the router answer, routes
            # are templates or `unmatched`, statuses are ours (O2).
            observe = self.requests.labels(method, route, str(status)).observe
            self._request_children[key] = observe
        observe(seconds)

    def login(self, outcome: LoginOutcome) -> None:
        self._logins[outcome].inc()

    def token_issued(self, grant: Grant) -> None:
        self._tokens[grant].inc()

    def refresh_reuse_detected(self) -> None:
        self.reuse.inc()

    def throttled(self, limit: ThrottleLimit) -> None:
        self._throttles[limit].inc()

    def hash_queue_wait(self, seconds: float) -> None:
        self.hash_queue.observe(seconds)

    def add_collector(self, collector: Collector) -> None:
        """A collector read at scrape time (the mail outbox's gauges)."""
        self._extra.append(collector)

    def render(self) -> tuple[bytes, str]:
        """One scrape: every worker's values under serve (multiprocess mode), this
        application's own otherwise."""
        if os.environ.get(MULTIPROC_ENV):
            registry = scrape_registry(self._extra)
        else:
            registry = CollectorRegistry(auto_describe=False)
            for collector in (self.registry, *self._extra):
                registry.register(_Reading(collector))
        return generate_latest(registry), CONTENT_TYPE_LATEST


class _Reading:
    """Registers an existing registry or collector into a scrape's registry."""

    def __init__(self, source: Collector) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        return self._source.collect()


def metrics_for(settings: Settings) -> NoMetrics:
    """NoMetrics unless someone can read them: metrics off cost nothing."""
    return PrometheusMetrics() if metrics_wanted(settings) else NoMetrics()
