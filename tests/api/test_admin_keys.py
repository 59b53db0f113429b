"""/admin/keys: an administrator lists the signing keys and rotates them through any
replica (N4); the rotation is audited; the new keys are published at once and sign
after the JWKS cache lifetime; the JWKS max-age follows the setting. On SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import insert

from tests.support.accounts import PASSWORD, bearer
from tests.support.oauth_clients import kid_of, user_basic
from tests.support.wiring import engine_of, keys_of
from userservice.app import create_app
from userservice.db.models import SigningKey
from userservice.security.jwt import LEEWAY_SECONDS
from userservice.services.key_schedule import settings_grace_seconds
from userservice.settings import Settings

ADMIN_IP = "testclient"  # the `client` fixture's address
FIELDS = {"kid", "alg", "state", "created", "signs_from", "signs_until", "verify_until"}


def _at(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _auth(admin: dict[str, Any]) -> dict[str, str]:
    return bearer(admin["tokens"]["access_token"])


def _jwks(client: TestClient) -> set[str]:
    return {key["kid"] for key in client.get("/oauth/jwks").json()["keys"]}


def test_n4_only_an_administrator_lists_and_rotates(
    client: TestClient, user: dict[str, Any], admin: dict[str, Any]
) -> None:
    before = client.get("/admin/keys", headers=_auth(admin)).json()["items"]
    for method, path in (("GET", "/admin/keys"), ("POST", "/admin/keys/rotate")):
        anonymous = client.request(method, path)
        assert anonymous.status_code == 401, anonymous.text
        # A user's token lacks the admin scope; in person, the user lacks the role.
        for headers, code in (
            (bearer(user["tokens"]["access_token"]), "insufficient_scope"),
            (user_basic(user["email"], PASSWORD), "forbidden"),
        ):
            refused = client.request(method, path, headers=headers)
            assert refused.status_code == 403, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["code"] == code
    # Nothing was rotated by the refused calls.
    assert client.get("/admin/keys", headers=_auth(admin)).json()["items"] == before


def test_n4_list_shows_the_active_keys(client: TestClient, admin: dict[str, Any]) -> None:
    response = client.get("/admin/keys", headers=_auth(admin))
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert {item["alg"] for item in items} == {"ES256", "RS256"} and len(items) == 2
    for item in items:
        assert set(item) == FIELDS
        assert item["state"] == "active"
        assert item["signs_until"] is None and item["verify_until"] is None
        assert _at(item["signs_from"]) == _at(item["created"])
    assert {item["kid"] for item in items} == _jwks(client)


def test_n4_rotation_publishes_at_once_and_signs_after_the_jwks_max_age(
    client: TestClient, app: FastAPI, admin: dict[str, Any], settings: Settings
) -> None:
    auth = _auth(admin)
    old = {item["kid"]: item for item in client.get("/admin/keys", headers=auth).json()["items"]}
    clock = dt.datetime.now(dt.UTC)
    response = client.post("/admin/keys/rotate", headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    created, retiring = body["created"], body["retiring"]
    assert {item["alg"] for item in created} == {"ES256", "RS256"}
    assert {item["kid"] for item in retiring} == set(old) and body["removed"] == []

    # The new keys start when relying parties' cached key sets have expired: the
    # JWKS max-age, one reload interval and the verification leeway after the
    # rotation (N4).
    delay = settings.jwks_max_age_seconds + settings.signing_key_reload_seconds + LEEWAY_SECONDS
    starts = {_at(item["signs_from"]) for item in created}
    assert len(starts) == 1
    start = starts.pop()
    assert clock + dt.timedelta(seconds=delay) <= start
    assert start <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)
    assert {item["state"] for item in created} == {"pending"}
    # The old keys sign until then, and verify until their last token has expired.
    grace = dt.timedelta(seconds=settings_grace_seconds(settings))
    for item in retiring:
        assert item["state"] == "active"
        assert _at(item["signs_until"]) == start
        assert _at(item["verify_until"]) == start + grace

    new_kids = {item["kid"] for item in created}
    assert _jwks(client) == set(old) | new_kids  # published at once
    listed = {item["kid"]: item for item in client.get("/admin/keys", headers=auth).json()["items"]}
    assert {listed[kid]["state"] for kid in new_kids} == {"pending"}
    assert {listed[kid]["state"] for kid in old} == {"active"}
    # Tokens are still signed with the old key.
    token = client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": admin["email"], "password": PASSWORD},
    ).json()["access_token"]
    assert kid_of(token) in old
    # At the hand-over the new key signs (time passed to the ring, not waited for).
    ring = keys_of(app).ring
    assert ring.active_kid("ES256", now=start.timestamp() - 1) in old
    assert ring.active_kid("ES256", now=start.timestamp()) in new_kids


def test_n4_rotating_again_before_the_hand_over(
    client: TestClient, admin: dict[str, Any], settings: Settings
) -> None:
    auth = _auth(admin)
    first = client.post("/admin/keys/rotate", headers=auth).json()
    second = client.post("/admin/keys/rotate", headers=auth).json()
    pending = {item["kid"] for item in first["created"]}
    # The still pending keys hand over in turn, after their own publication delay.
    assert {item["kid"] for item in second["retiring"]} == pending
    first_start = _at(first["created"][0]["signs_from"])
    second_start = _at(second["created"][0]["signs_from"])
    assert second_start > first_start
    for item in second["retiring"]:
        assert _at(item["signs_from"]) == first_start
        assert _at(item["signs_until"]) == second_start
    listed = client.get("/admin/keys", headers=auth).json()["items"]
    assert [item["state"] for item in listed] == ["active"] * 2 + ["pending"] * 4
    assert len(_jwks(client)) == 6


def test_n4_rotation_is_in_the_administrators_trail(
    client: TestClient, admin: dict[str, Any]
) -> None:
    auth = _auth(admin)
    rotated = client.post("/admin/keys/rotate", headers=auth).json()
    me = client.get("/users/me", headers=auth).json()["id"]
    events = client.get(f"/users/{me}/events", headers=auth).json()["items"]
    found = [event for event in events if event["event"] == "admin.signing_keys_rotated"]
    assert len(found) == 1
    event = found[0]
    assert event["ip"] == ADMIN_IP
    kids = {item["kid"] for item in rotated["created"]}
    assert set(event["details"]["kids"].split(",")) == kids
    assert _at(event["details"]["signs_from"]) == _at(rotated["created"][0]["signs_from"])


def test_n4_jwks_max_age_follows_the_setting(make_settings: Callable[..., Settings]) -> None:
    for max_age in (42, 0):
        app = create_app(make_settings(jwks_max_age_seconds=max_age))
        with TestClient(app, base_url="https://testserver") as client:
            response = client.get("/oauth/jwks")
            assert response.status_code == 200
            assert response.headers["cache-control"] == f"public, max-age={max_age}"
            # The keys sign that much (and one reload interval, and the leeway)
            # after a rotation.
            assert keys_of(app).publication_seconds == max_age + 5 + LEEWAY_SECONDS


def test_n4_a_key_that_does_not_open_stops_the_rotation(
    client: TestClient, app: FastAPI, admin: dict[str, Any]
) -> None:
    """S11: a stored key sealed under another secret: a problem, and no new keys."""
    with engine_of(app).begin() as conn:
        conn.execute(
            insert(SigningKey).values(
                kid="sealed-elsewhere",
                alg="ES256",
                private_key_pem="enc:v1:" + "A" * 80,
                created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
                retired_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
            )
        )
    before = len(client.get("/admin/keys", headers=_auth(admin)).json()["items"])
    refused = client.post("/admin/keys/rotate", headers=_auth(admin))
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "conflict"
    assert len(client.get("/admin/keys", headers=_auth(admin)).json()["items"]) == before
