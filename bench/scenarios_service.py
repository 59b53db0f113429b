"""The service's scenarios: `userservice serve --no-tls --workers 2` (and once with
TLS) on one seeded database, each scenario a kind of request wrk repeats."""

from __future__ import annotations

import base64
import json
import random
import sys
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import seed
from bench.http import FIRST_PARTY_CLIENT, basic, call, in_parallel, password_grant
from bench.plan import WORKERS, Plan
from bench.report import Report
from bench.scenarios import (
    TOKEN_USERS,
    Target,
    ceiling,
    concurrent,
    hashing_limit,
    measure,
    paced,
)
from bench.servers import Server, free_port
from bench.wrk import Traffic

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
STORM_ME_FRACTION = 0.10  # the "moderate" /users/me load beside the storm: 10 % of its max
REGISTER_PASSWORD = "bench registration staple horse 42"  # noqa: S105 - throwaway accounts
# The refresh token issued in place of the one used (lua/request.lua's queue).
REFRESH_PATTERN = '"refresh_token"%s*:%s*"([^"]+)"'
REFRESH_SPARES = 16


@dataclass
class Service:
    """The service on one database, and what its scenarios need."""

    report: Report
    plan: Plan
    target: Target
    client_id: str
    client_secret: str
    logs: Path
    ceilings_beside: int = 0
    maxima: dict[str, float] = field(default_factory=dict)
    _tokens: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.target.server.base_url

    def login(self, index: int) -> dict[str, str]:
        context = self.target.server.ssl_context()
        return password_grant(self.base_url, seed.user_email(index), seed.PASSWORD, context)

    def access_tokens(self) -> list[str]:
        if not self._tokens:
            picked = random.sample(range(self.target.users), min(TOKEN_USERS, self.target.users))
            self._tokens = in_parallel(lambda i: self.login(i)["access_token"], picked)
        return self._tokens

    def bearer(self) -> Traffic:
        lines = self.access_tokens()
        return Traffic("/users/me", headers={"Authorization": "Bearer {line}"}, lines=lines)

    def login_traffic(self) -> Traffic:
        password = urllib.parse.quote(seed.PASSWORD)
        body = f"grant_type=password&client_id={FIRST_PARTY_CLIENT}"
        body += f"&username=user{{rand}}%40bench.example&password={password}"
        return Traffic(
            "/oauth/token", "POST", FORM, body, rand_max=self.target.users, expect="access_token"
        )

    def run(self, scenario: str) -> None:
        SCENARIOS[scenario](self)

    def hashing_limit(self, when: str) -> None:
        """The argon2id limit beside this configuration's logins (the server idle)."""
        self.target.server.wait_idle()
        seconds = self.plan.hash_seconds / 2
        backend, users = self.target.backend, self.target.users
        hashing_limit(
            self.report, self.plan, backend=backend, users=users, seconds=seconds, when=when
        )

    def measure(self, scenario: str, make: Callable[[int], Traffic], notes: str = "") -> None:
        self.maxima[scenario] = measure(
            self.report, self.plan, self.target, scenario, make, notes=notes
        )


def _ceiling_beside(svc: Service) -> None:
    # The service idles meanwhile (it uses no CPU), as during the first ceiling run.
    svc.target.server.wait_idle()
    svc.ceilings_beside += 1
    when = "right before" if svc.ceilings_beside == 1 else "right after"
    backend, users = svc.target.backend, svc.target.users
    notes = f"{when} the {svc.target.name} runs compared with it"
    ceiling(svc.report, svc.plan, svc.logs, backend=backend, users=users, notes=notes)


def _me_bearer(svc: Service) -> None:
    traffic = svc.bearer()
    notes = f"ES256 access tokens of {len(traffic.lines)} users in rotation"
    svc.measure("me-bearer", lambda _c: traffic, notes)


def _me_bearer_paced(svc: Service) -> None:
    paced(
        svc.report, svc.plan, svc.target, "me-bearer-paced", svc.bearer(), svc.maxima["me-bearer"]
    )


def _me_basic(svc: Service) -> None:
    headers = {
        "Authorization": basic(seed.user_email(0), seed.PASSWORD),
        # As behind a TLS-terminating proxy (USERSERVICE_TRUSTED_PROXIES): Basic is
        # refused over cleartext.
        "X-Forwarded-Proto": "https",
    }
    notes = "one argon2id verify per request, by design; X-Forwarded-Proto: https"
    svc.measure("me-basic", lambda _c: Traffic("/users/me", headers=headers), notes)


def _login(svc: Service) -> None:
    traffic = svc.login_traffic()
    notes = f"first-party client, a random one of {svc.target.users:,} users per request"
    svc.hashing_limit("right before")
    svc.measure("login", lambda _c: traffic, notes)
    svc.hashing_limit("right after")


def _refresh(svc: Service) -> None:
    def make(connections: int) -> Traffic:
        # One unused refresh token per connection (a used one revokes its family);
        # every response's new token goes back into the queue. Plus one: wrk calls
        # request() once before the run to check it (script_verify_request), and
        # that call pops a token that is never sent. Plus spares: a failed refresh
        # loses its token, and without a spare its connection would send empty ones
        # (each one more error) for the rest of the run.
        count = connections + 1 + REFRESH_SPARES
        indexes = [i % svc.target.users for i in range(count)]
        tokens = in_parallel(lambda i: svc.login(i)["refresh_token"], indexes)
        body = f"grant_type=refresh_token&client_id={FIRST_PARTY_CLIENT}&refresh_token={{line}}"
        return Traffic("/oauth/token", "POST", FORM, body, tokens, queue_pattern=REFRESH_PATTERN)

    svc.measure("refresh", make, "each token used once; its replacement is queued for reuse")


def _client_credentials(svc: Service) -> None:
    headers = {**FORM, "Authorization": basic(svc.client_id, svc.client_secret)}
    traffic = Traffic(
        "/oauth/token", "POST", headers, "grant_type=client_credentials", expect="access_token"
    )
    svc.measure("client-credentials", lambda _c: traffic, "client_secret_basic")


def _introspect(svc: Service) -> None:
    headers = {**FORM, "Authorization": basic(svc.client_id, svc.client_secret)}
    traffic = Traffic(
        "/oauth/introspect",
        "POST",
        headers,
        "token={line}",
        svc.access_tokens(),
        expect='"active":true',
    )
    notes = "confidential client (Basic); user access tokens; active:false counts as an error"
    svc.measure("introspect", lambda _c: traffic, notes)


def _storm(svc: Service) -> None:
    plan = svc.plan
    me_rate = STORM_ME_FRACTION * svc.maxima["me-bearer"]
    # Closed loop as in paced(): without calibration, since the storm sets latency.
    delay_ms = plan.storm_me_connections / max(1.0, me_rate) * 1000
    rows = concurrent(
        svc.target,
        [
            ("storm-login", svc.login_traffic(), plan.storm_connections, 0.0),
            ("storm-me", svc.bearer(), plan.storm_me_connections, delay_ms),
        ],
        plan.seconds,
    )
    rows[0].notes = f"{plan.storm_connections} connections of logins, unpaced, beside the next row"
    rows[1].notes = (
        f"{plan.storm_me_connections} connections pausing {delay_ms:.1f} ms (about "
        f"{STORM_ME_FRACTION:.0%} of the /users/me max) while the storm runs"
    )
    for row in rows:
        row.offered_rps = round(me_rate, 1) if row.scenario == "storm-me" else None
        svc.report.add(row)


def _register(svc: Service) -> None:
    body = json.dumps(
        {"email": "r{seq}@bench.example", "password": REGISTER_PASSWORD, "display_name": "B"}
    )
    headers = {"Content-Type": "application/json"}
    traffic = Traffic("/users", "POST", headers, body)
    notes = "a unique e-mail per request; one argon2id hash + password policy each"
    svc.measure("register", lambda _c: traffic, notes)


def _admin_traffic(svc: Service, deep: bool) -> Traffic:
    context = svc.target.server.ssl_context()
    token = password_grant(svc.base_url, seed.ADMIN_EMAIL, seed.ADMIN_PASSWORD, context)
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    first = call(svc.base_url + "/users?limit=50", headers=auth, context=context)
    if not deep:
        return Traffic("/users?limit=50", headers=auth)
    # The cursor is opaque to clients; the service makes it as base64url(last e-mail
    # of the page) (userservice/api/users.py). Check that against page 1's, then make
    # the one the page ending at the middle user would hand out: reaching it by
    # following next_cursor would take 10,000 requests at 1M users.
    last = first["items"][-1]["email"]
    if first["next_cursor"] != _cursor(last):
        raise RuntimeError("GET /users: the service's cursor format changed; fix bench")
    cursor = _cursor(seed.user_email(svc.target.users // 2))
    return Traffic(f"/users?limit=50&cursor={cursor}", headers=auth)


def _cursor(email: str) -> str:
    return base64.urlsafe_b64encode(email.encode()).decode().rstrip("=")


def _admin_first(svc: Service) -> None:
    traffic = _admin_traffic(svc, deep=False)
    svc.measure("admin-list-first", lambda _c: traffic, "admin token; 50 users per page")


def _admin_deep(svc: Service) -> None:
    traffic = _admin_traffic(svc, deep=True)
    notes = "cursor after the middle user in e-mail order; 50 users per page"
    svc.measure("admin-list-deep", lambda _c: traffic, notes)


def _admin_paced(svc: Service) -> None:
    traffic = _admin_traffic(svc, deep=True)
    paced(
        svc.report, svc.plan, svc.target, "admin-list-paced", traffic, svc.maxima["admin-list-deep"]
    )


SCENARIOS: dict[str, Callable[[Service], None]] = {
    "ceiling-beside": _ceiling_beside,
    "me-bearer": _me_bearer,
    "me-bearer-paced": _me_bearer_paced,
    "me-basic": _me_basic,
    "login": _login,
    "refresh": _refresh,
    "client-credentials": _client_credentials,
    "introspect": _introspect,
    "storm": _storm,
    "register": _register,
    "admin-list-first": _admin_first,
    "admin-list-deep": _admin_deep,
    "admin-list-paced": _admin_paced,
}


def service_server(env: dict[str, str], work: Path, log: Path, tls_dir: Path | None) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "userservice.cli", "serve", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--workers", str(WORKERS)]
    if tls_dir is None:
        argv.append("--no-tls")
    cafile = tls_dir / "ca.crt" if tls_dir else None
    # `serve` makes its local CA and a certificate for localhost and 127.0.0.1 itself.
    return Server("userservice", argv, port, "/readyz", env=env, cwd=work, log=log, cafile=cafile)
