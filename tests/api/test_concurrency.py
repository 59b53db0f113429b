"""R1: concurrent registrations of one address over a real server, both databases."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.support.server import running_server
from userservice.settings import Settings

PASSWORD = "correct horse battery staple"


def _case_variants(count: int) -> list[str]:
    base = "grace.hopper@example.com"
    variants = []
    for i in range(count):
        # Flip the case of a different set of letters each time.
        variants.append("".join(c.upper() if (i >> (j % 6)) & 1 else c for j, c in enumerate(base)))
    return variants


def test_fifty_concurrent_registrations_of_one_email_give_one_201(settings: Settings) -> None:
    """R1: exactly one 201, the rest 409, zero 5xx, one row."""
    with running_server(settings) as base_url, httpx.Client(base_url=base_url, timeout=60) as http:

        def attempt(email: str) -> int:
            body = {"email": email, "password": PASSWORD}
            return http.post("/users", json=body).status_code

        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(attempt, _case_variants(50)))
        token = http.post(
            "/oauth/token",
            data={
                "grant_type": "password",
                "username": "GRACE.hopper@example.com",
                "password": PASSWORD,
            },
        )
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == 49, statuses
    assert token.status_code == 200
