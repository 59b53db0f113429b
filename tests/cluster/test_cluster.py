"""The service as a fleet: PostgreSQL, Redis, three replicas of two workers each and
nginx terminating TLS, all on loopback (tests/support/fleet.py). One fleet serves every
check in this directory; the destructive checks (a replica killed, PostgreSQL
restarted, Redis stopped) come last here and put back what they took away."""

from __future__ import annotations

import statistics
import time

import httpx
import psycopg
import pytest

from tests.support.accounts import PASSWORD
from tests.support.cluster_calls import (
    WRONG,
    guesses,
    guesses_in_turns,
    issue,
    jwks_kids,
    kid_of,
    me_status,
    nginx,
    register,
    stored_keys,
    until,
    warnings_about_redis,
)
from tests.support.cluster_load import (
    FRONTEND,
    Background,
    Outcome,
    call,
    p50_ms,
    password_grant,
    rate,
    sign_ins,
    sign_ups,
    statuses,
)
from tests.support.fleet import Fleet
from tests.support.processes import alive, group
from tests.support.replica import DEFAULT_ENV
from userservice.security.jwt import LEEWAY_SECONDS
from userservice.settings import Settings

pytestmark = pytest.mark.cluster

LIMIT = 5  # USERSERVICE_LOGIN_LIMIT_PER_ACCOUNT of the fleet: 5/minute


def test_the_fleets_settings_exist() -> None:
    """Settings ignores unknown variables: a misspelt one in the fleet's environment
    would leave a default in force and a check passing for the wrong reason."""
    names = {f"USERSERVICE_{name.upper()}" for name in Settings.model_fields}
    assert set(DEFAULT_ENV) <= names, set(DEFAULT_ENV) - names


def test_nginx_terminates_tls_and_forwards_the_scheme(
    fleet: Fleet, figures: dict[str, object]
) -> None:
    """The replicas believe nginx's X-Forwarded-Proto (USERSERVICE_TRUSTED_PROXIES):
    HTTP Basic, HTTPS only, works through nginx and is refused on a replica's plain
    HTTP port."""
    register(fleet, "tls@example.com")
    credentials = ("tls@example.com", PASSWORD)
    with nginx(fleet) as client:
        through = client.get("/users/me", auth=credentials)
        issuer = client.get("/.well-known/openid-configuration").json()["issuer"]
    direct = httpx.get(f"{fleet.replica_urls[0]}/users/me", auth=credentials)
    figures.update(through_nginx=through.status_code, plain_http=direct.status_code)
    assert through.status_code == 200, through.text
    assert direct.status_code == 401, direct.text
    assert issuer == fleet.nginx_url


def test_n9_tokens_and_revocations_agree_across_replicas(
    fleet: Fleet, figures: dict[str, object]
) -> None:
    """N9: a token issued through replica 1 works on replicas 2 and 3; its revocation
    on replica 3 (access token deny-listed, refresh token revoked) holds on replica 1."""
    one, two, three = fleet.replica_urls
    register(fleet, "n9@example.com")
    tokens = issue(one, "n9@example.com")
    assert [me_status(url, tokens["access_token"]) for url in (one, two, three)] == [200, 200, 200]

    for token in (tokens["access_token"], tokens["refresh_token"]):
        revoked = httpx.post(f"{three}/oauth/revoke", data={"token": token, "client_id": FRONTEND})
        assert revoked.status_code == 200, revoked.text

    def refused_on_one() -> bool:
        """the revoked access token refused by replica 1"""
        return me_status(one, tokens["access_token"]) == 401

    figures["deny_seen_on_1_s"] = until(refused_on_one, 10)
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    refresh = httpx.post(f"{one}/oauth/token", data=form)
    assert refresh.status_code == 400, refresh.text
    assert refresh.json()["error"] == "invalid_grant"
    assert me_status(two, tokens["access_token"]) == 401


def test_n1_login_throttle_counts_across_replicas(fleet: Fleet, figures: dict[str, object]) -> None:
    """N1: wrong-password guesses for one account spread over every replica and
    worker hit 429 after exactly the per-account limit, as on a single replica, and
    a guess takes about as long either way."""
    for email in ("n1-one@example.com", "n1-all@example.com"):
        register(fleet, email)
    found, took = guesses_in_turns(fleet.replica_urls, "n1-one@example.com", "n1-all@example.com")
    one, spread = statistics.median(took["one"]), statistics.median(took["all"])
    figures.update(
        one_replica_429_at=len(found["one"]),
        spread_429_at=len(found["all"]),
        one_replica_p50_ms=1000 * one,
        spread_p50_ms=1000 * spread,
    )
    assert found["one"] == [400] * LIMIT + [429], found
    assert found["all"] == [400] * LIMIT + [429], found
    # Shared counting must not make a guess much slower where the guesses spread.
    assert spread < 2 * one + 0.1, took


def test_n9_refresh_token_reuse_across_replicas(fleet: Fleet, figures: dict[str, object]) -> None:
    """N9: 20 concurrent uses of one refresh token spread over the replicas: exactly
    one succeeds, and the family is revoked (the winner's new token is refused)."""
    import concurrent.futures

    register(fleet, "n9-race@example.com")
    refresh = issue(fleet.replica_urls[0], "n9-race@example.com")["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": refresh}

    def use(i: int) -> httpx.Response:
        url = fleet.replica_urls[i % 3]
        return httpx.post(f"{url}/oauth/token", data=form, timeout=30)

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(use, range(20)))
    codes = [a.status_code for a in answers]
    figures.update(uses=20, answers=statuses([Outcome("", 0, 0, c) for c in codes]))
    figures["wall_ms"] = 1000 * (time.monotonic() - started)
    assert sorted(codes) == [200] + [400] * 19, codes
    assert all(a.json()["error"] == "invalid_grant" for a in answers if a.status_code == 400)
    winner = next(a.json() for a in answers if a.status_code == 200)
    after = {"grant_type": "refresh_token", "refresh_token": winner["refresh_token"]}
    for url in fleet.replica_urls:
        again = httpx.post(f"{url}/oauth/token", data=after)
        assert again.status_code == 400, again.text


def test_n4_key_rotation_reaches_every_replica(fleet: Fleet, figures: dict[str, object]) -> None:
    """N4: a key rotated through replica 2 is published by every replica's JWKS
    within seconds, and tokens signed by any replica verify on every replica, from
    before the rotation and after the new key took over."""
    urls = fleet.replica_urls
    register(fleet, "n4@example.com")
    made = fleet.run_cli("create-admin", "n4-admin@example.com", stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    before_keys = stored_keys(fleet)
    old = [issue(url, "n4@example.com")["access_token"] for url in urls]
    admin = issue(urls[1], "n4-admin@example.com")["access_token"]
    rotated = httpx.post(
        f"{urls[1]}/admin/keys/rotate", headers={"Authorization": f"Bearer {admin}"}, timeout=30
    )
    if rotated.status_code in (404, 405):
        # The operator's other way, while the administrators' route is not there.
        result = fleet.run_cli("keys", "rotate")
        assert result.returncode == 0, result.stderr
        figures["via"] = "cli"
    else:
        assert rotated.status_code in (200, 201), rotated.text
        figures["via"] = "route"
    new = {kid: alg for kid, alg in stored_keys(fleet).items() if kid not in before_keys}
    assert sorted(new.values()) == ["ES256", "RS256"], new
    (signer,) = [kid for kid, alg in new.items() if alg == "ES256"]

    def published() -> bool:
        """every replica's JWKS publishes the new keys"""
        return all(set(new) <= jwks_kids(url) for url in urls)

    figures["published_everywhere_s"] = until(published, 10, pause=0.1)

    def signing_with_new() -> bool:
        """every replica signs with the new key"""
        return all(kid_of(issue(url, "n4@example.com")["access_token"]) == signer for url in urls)

    figures["new_key_signs_everywhere_s"] = until(signing_with_new, 20 + LEEWAY_SECONDS, pause=0.2)
    new_tokens = [issue(url, "n4@example.com")["access_token"] for url in urls]
    seen = [me_status(url, token) for token in old + new_tokens for url in urls]
    figures["cross_verifications"] = len(seen)
    assert seen == [200] * len(seen)


def test_n10_replica_killed_under_write_load(fleet: Fleet, figures: dict[str, object]) -> None:
    """N10: a replica SIGKILLed (its whole process group) while 8 clients register and
    sign in through nginx loses no acknowledged write, and nginx routes around it."""

    load = Background(fleet.nginx_url, fleet.ssl_context(), 8, 6.0, sign_ups)
    time.sleep(2.0)  # the load's schedule: the crash comes in its third second
    members = group(fleet.replicas[1].process.pid) if fleet.replicas[1].process else []
    killed_at = time.monotonic()
    try:
        fleet.kill_replica(1)
        left = [pid for pid in members if alive(pid)]
        outcomes = load.join(60)
    finally:
        fleet.start_replica(1)  # the checks after this one need all three
    # The whole replica went, its workers too, not only the process that spawned them.
    assert len(members) > fleet.workers, members
    assert not left, (members, left)
    during = [o for o in outcomes if o.started <= killed_at <= o.ended]
    after = [o for o in outcomes if o.started > killed_at + 1.0]
    figures.update(
        requests=len(outcomes),
        answers=statuses(outcomes),
        in_flight_at_kill=len(during),
        failed_in_flight=sum(not o.ok for o in during),
        error_rate_kill_window=rate([o for o in outcomes if abs(o.started - killed_at) < 1.0]),
        error_rate_after=rate(after),
        p50_ms=p50_ms(outcomes),
    )
    registered = {o.value for o in outcomes if o.kind == "register" and o.status == 201}
    issued = {o.value for o in outcomes if o.kind == "token" and o.status == 200}
    with psycopg.connect(fleet.database_url.replace("+psycopg", "")) as conn:
        users = conn.execute(
            "SELECT email FROM users WHERE email = ANY(%s)", (list(registered),)
        ).fetchall()
        tokens = conn.execute(
            "SELECT digest FROM refresh_tokens WHERE digest = ANY(%s)", (list(issued),)
        ).fetchall()
    figures.update(acknowledged_writes=len(registered) + len(issued))
    assert {row[0] for row in users} == registered
    assert {row[0] for row in tokens} == issued
    assert 500 not in statuses(outcomes)
    assert len(after) >= 10, statuses(outcomes)
    assert all(o.ok for o in after), statuses(after)


def test_n11_postgres_restart_under_load(fleet: Fleet, figures: dict[str, object]) -> None:
    """N11: while PostgreSQL is down the replicas answer 503 with Retry-After, never
    500, and once it is back they recover without being restarted."""
    register(fleet, "n11@example.com")
    access = issue(fleet.replica_urls[0], "n11@example.com")["access_token"]
    pids = [r.process.pid for r in fleet.replicas if r.process is not None]

    load = Background(
        fleet.nginx_url, fleet.ssl_context(), 4, 12.0, sign_ins("n11@example.com", access)
    )
    time.sleep(1.5)  # the load's schedule: PostgreSQL goes in its second second
    down_at, up_at = fleet.restart_postgres(down_seconds=3.0)
    outcomes = load.join(60)
    while_down = [o for o in outcomes if o.started > down_at + 0.2 and o.ended < up_at]
    after = [o for o in outcomes if o.started > up_at]
    failing_after = [o for o in after if not o.ok]
    recovered_s = (max(o.ended for o in failing_after) - up_at) if failing_after else 0.0
    unavailable = [o for o in outcomes if o.status == 503]
    figures.update(
        requests=len(outcomes),
        answers=statuses(outcomes),
        down_s=up_at - down_at,
        answers_while_down=statuses(while_down),
        recovered_after_s=recovered_s,
        retry_after=sorted({o.retry_after for o in unavailable if o.retry_after}),
    )
    assert set(statuses(outcomes)) <= {200, 503}, statuses(outcomes)
    assert unavailable, "no request needed the database while it was down"
    assert all(o.retry_after for o in unavailable)
    assert recovered_s < 5.0, statuses(after)
    assert [o for o in outcomes if o.started > up_at + recovered_s + 0.1 and o.ok]
    # Recovered without a restart: the same processes answer, every replica ready.
    assert [r.process.pid for r in fleet.replicas if r.process is not None] == pids
    for url in fleet.replica_urls:
        assert httpx.get(f"{url}/readyz").status_code == 200


def test_n2_logins_while_redis_is_down(fleet: Fleet, figures: dict[str, object]) -> None:
    """N2: with Redis stopped, logins keep answering (never 500) and guesses are
    still limited, per process, with a WARNING in the log; once Redis is back the
    counting is shared by every replica again."""
    for email in ("n2-ok@example.com", "n2-down@example.com"):
        register(fleet, email)
    warned_before = set(warnings_about_redis(fleet))
    fleet.stop_redis()
    try:
        with nginx(fleet) as client:
            ok = [password_grant(client, "n2-ok@example.com")[0] for _ in range(3)]
        with httpx.Client(base_url=fleet.replica_urls[0], timeout=15) as client:
            form = {"grant_type": "password", "username": "n2-down@example.com"}
            down: list[Outcome] = []
            for _ in range(LIMIT * fleet.workers + 1):
                outcome, _ = call(
                    client, "guess", "POST", "/oauth/token", data={**form, "password": WRONG}
                )
                down.append(outcome)
                if outcome.status == 429:
                    break

        def warned() -> bool:
            """a replica logged a WARNING about Redis"""
            return bool(set(warnings_about_redis(fleet)) - warned_before)

        figures.update(
            logins_while_down=statuses(ok),
            guesses_while_down=statuses(down),
            guess_p50_ms_while_down=p50_ms(down),
        )
        assert [o.status for o in ok] == [200, 200, 200]
        assert set(statuses(down)) <= {400, 429}, statuses(down)
        assert down[-1].status == 429, statuses(down)
        until(warned, 5)
        line = sorted(set(warnings_about_redis(fleet)) - warned_before)[0]
        figures["warning"] = line[line.index("WARNING") :][:160]
    finally:
        fleet.start_redis()
    back_at = time.monotonic()
    rounds: list[list[int]] = []

    def shared_again() -> bool:
        """guesses spread over the replicas hit 429 after exactly the limit"""
        email = f"n2-back-{len(rounds)}@example.com"
        register(fleet, email)
        rounds.append(guesses(fleet.replica_urls, email, LIMIT * 6 + 1))
        return rounds[-1] == [400] * LIMIT + [429]

    figures["shared_again_s"] = until(shared_again, 20, pause=0.5)
    figures["rounds_after_restart"] = len(rounds)
    assert time.monotonic() - back_at < 25
