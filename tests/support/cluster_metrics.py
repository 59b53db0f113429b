"""What the metrics checks of the cluster test do through nginx, and read back from
the Prometheus scraping every replica: sign-ins with known outcomes, a workload that
touches every dashboard panel, and counters read after a scrape round."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tests.support.accounts import PASSWORD
from tests.support.cluster_calls import WRONG, nginx, register
from tests.support.fleet import Fleet
from tests.support.prometheus import Prometheus

LOGINS = "userservice_logins_total"


@dataclass(frozen=True)
class Logins:
    """Sign-in counts summed over every replica and worker, as Prometheus has them."""

    by_outcome: dict[str, float]
    by_instance: dict[str, float]

    def since(self, before: Logins) -> Logins:
        return Logins(
            _delta(self.by_outcome, before.by_outcome), _delta(self.by_instance, before.by_instance)
        )


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    found = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after.keys() | before.keys()}
    return {k: v for k, v in sorted(found.items()) if v}


def logins(prometheus: Prometheus) -> Logins:
    """The counts once every replica was scraped after this moment (so every sign-in
    answered before the call is in them)."""
    prometheus.scraped_since(time.time())
    return Logins(
        prometheus.values(f"sum by (outcome) ({LOGINS})", "outcome"),
        prometheus.values(f"sum by (instance) ({LOGINS})", "instance"),
    )


def password_logins(fleet: Fleet, emails: list[str], right: int, wrong: int) -> dict[str, int]:
    """`right` password-grant sign-ins and `wrong` wrong-password ones per account,
    in turns through nginx (which spreads them over the replicas): the count of each
    answer, by whether the password was right."""
    answers: dict[str, int] = {}
    with nginx(fleet) as client:
        for turn in range(max(right, wrong)):
            for email in emails:
                for password, n in ((PASSWORD, right), (WRONG, wrong)):
                    if turn < n:
                        form = {"grant_type": "password", "username": email, "password": password}
                        status = client.post("/oauth/token", data=form).status_code
                        key = f"{'right' if password == PASSWORD else 'wrong'}:{status}"
                        answers[key] = answers.get(key, 0) + 1
    return dict(sorted(answers.items()))


def exercise(fleet: Fleet, tag: str, limit: int) -> dict[str, int]:
    """Through nginx, a little of everything the dashboard shows: a sign-up (a mail
    in the outbox), a password grant, a refresh, a Bearer read, the rotated refresh
    token replayed (reuse detected), guesses past the per-account `limit` (throttled)
    and a path no route matches; the count of each answer by step."""
    email, guessed = f"{tag}@example.com", f"{tag}-guessed@example.com"
    register(fleet, email)
    register(fleet, guessed)
    answers: dict[str, int] = {}

    def seen(step: str, status: int) -> None:
        answers[f"{step}:{status}"] = answers.get(f"{step}:{status}", 0) + 1

    with nginx(fleet) as client:
        form = {"grant_type": "password", "username": email, "password": PASSWORD}
        issued = client.post("/oauth/token", data=form)
        seen("password", issued.status_code)
        old = issued.json()["refresh_token"]
        refresh = {"grant_type": "refresh_token", "refresh_token": old}
        renewed = client.post("/oauth/token", data=refresh)
        seen("refresh", renewed.status_code)
        bearer = {"Authorization": f"Bearer {renewed.json()['access_token']}"}
        seen("me", client.get("/users/me", headers=bearer).status_code)
        seen("replay", client.post("/oauth/token", data=refresh).status_code)
        guess = {"grant_type": "password", "username": guessed, "password": WRONG}
        for _ in range(limit + 1):
            seen("guess", client.post("/oauth/token", data=guess).status_code)
        seen("unmatched", client.get(f"/no-such-page/{tag}").status_code)
    return dict(sorted(answers.items()))
