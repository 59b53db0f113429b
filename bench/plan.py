"""What a run measures: the full plan (about 25 minutes) and the smoke plan
(tiny data, one second per load point, every scenario kind once)."""

from __future__ import annotations

from dataclasses import dataclass

WORKERS = 2

# Scenario ids (stable: goals and tests look rows up by them) and their titles.
TITLES = {
    "ceiling": "FastAPI async JSON",
    "argon2": "argon2id verify limit",
    "me-bearer": "/users/me Bearer",
    "me-bearer-paced": "/users/me Bearer at ~70 % of max",
    "me-basic": "/users/me Basic",
    "login": "password-grant login",
    "refresh": "refresh_token (rotation)",
    "client-credentials": "client_credentials",
    "introspect": "introspection",
    "register": "registration",
    "admin-list-first": "GET /users first page",
    "admin-list-deep": "GET /users deep page (keyset)",
    "admin-list-paced": "GET /users deep page at ~70 % of max",
    "storm-login": "login storm",
    "storm-me": "/users/me Bearer during the login storm",
    "peer-me": "/users/me Bearer (fastapi-users)",
}
# The same requests with the throttle counters in process memory or in Redis
# (bench/throttle_cost.py), measured in turns.
TITLES |= {
    f"{scenario}-throttle-{side}": f"{TITLES[scenario]}, counters in {where}"
    for scenario in ("login", "me-basic", "me-bearer", "client-credentials")
    for side, where in (("memory", "memory"), ("redis", "Redis"))
}
# /users/me Bearer with metrics and JSON logs on and off (bench/observability_cost.py).
TITLES |= {
    "me-bearer-observability-off": f"{TITLES['me-bearer']}, no metrics, text logs",
    "me-bearer-observability-on": f"{TITLES['me-bearer']}, metrics and JSON logs",
}

# Everything at the small user count; only what the 1M goals compare at the large.
# "ceiling-beside" runs the bare FastAPI ceiling again (the service idle) right
# before and after the scenarios the goals compare with the ceiling.
SMALL_SET = (
    "ceiling-beside",
    "me-bearer",
    "introspect",
    "ceiling-beside",
    "me-bearer-paced",
    "refresh",
    "client-credentials",
    "storm",
    "login",
    "me-basic",
    "register",  # last: it adds users, which the other scenarios should not see
)
LARGE_SET = (
    "ceiling-beside",
    "me-bearer",
    "ceiling-beside",
    "login",
    "admin-list-first",
    "admin-list-deep",
    "admin-list-paced",
)


@dataclass(frozen=True)
class Config:
    """One seeded database and the service (and peer) runs on it."""

    backend: str  # sqlite | postgresql
    users: int
    scenarios: tuple[str, ...]
    tls_scenarios: tuple[str, ...] = ()  # run again on a TLS server over the same database
    peer: bool = True


@dataclass(frozen=True)
class Plan:
    mode: str
    connections: tuple[int, ...]  # load points of every unpaced scenario
    seconds: int  # each measured wrk run
    warmup_seconds: int  # one discarded run at the largest connection count; 0: none
    hash_seconds: float
    cold_starts: int  # extra start/stop cycles per small config, for the cold-start figure
    paced_connections: int
    storm_connections: int
    storm_me_connections: int
    configs: tuple[Config, ...]
    # The fleet (bench/cluster.py) on this many users; 0: no fleet stage.
    cluster_users: int = 0
    # Rounds of the password grant with throttle counters in memory and in Redis, in
    # turns (bench/throttle_cost.py), on PostgreSQL; 0: none.
    throttle_rounds: int = 0
    # Rounds of /users/me Bearer with metrics and JSON logs on and off, in turns
    # (bench/observability_cost.py), on SQLite; 0: none.
    observability_rounds: int = 0


def users_label(users: int) -> str:
    if users >= 1_000_000 and users % 1_000_000 == 0:
        return f"{users // 1_000_000}M"
    if users >= 1_000 and users % 1_000 == 0:
        return f"{users // 1_000}k"
    return str(users)


FULL = Plan(
    mode="full",
    connections=(16, 64, 256),
    seconds=10,
    warmup_seconds=3,
    hash_seconds=10.0,
    cold_starts=2,
    paced_connections=64,
    storm_connections=64,
    storm_me_connections=16,
    configs=(
        Config("sqlite", 1_000, SMALL_SET, tls_scenarios=("me-bearer",)),
        Config("sqlite", 1_000_000, LARGE_SET),
        Config("postgresql", 1_000, SMALL_SET),
        Config("postgresql", 1_000_000, LARGE_SET),
    ),
    cluster_users=1_000,
    throttle_rounds=4,
    observability_rounds=6,
)
# PostgreSQL gets only the large set, on 120 users: its code paths (cluster, COPY,
# psycopg, asyncpg peer) run, at a few seconds' cost instead of doubling the smoke.
SMOKE = Plan(
    mode="smoke",
    connections=(4,),
    seconds=1,
    warmup_seconds=0,
    hash_seconds=1.0,
    cold_starts=0,
    paced_connections=4,
    storm_connections=4,
    storm_me_connections=2,
    configs=(
        Config("sqlite", 50, SMALL_SET, tls_scenarios=("me-bearer",)),
        Config("postgresql", 120, LARGE_SET),
    ),
    cluster_users=50,
    throttle_rounds=1,
    observability_rounds=1,
)
