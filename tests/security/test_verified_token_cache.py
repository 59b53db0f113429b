"""The key ring remembers tokens whose signature it verified (profiled: ES256 verify
was most of a bearer request's CPU). Remembering must never extend what a token may
do: the time window, the key's grace and the caller's per-request checks
(revocation, disabled user, password change) still apply to a remembered token."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, bearer
from userservice.security import jwt as jwt_module
from userservice.security.jwt import (
    LEEWAY_SECONDS,
    KeyMaterial,
    KeyRing,
    TokenInvalid,
    generate_key,
)

ISS = "https://issuer.example"
NOW = 1_900_000_000


def claims(**changes: Any) -> dict[str, Any]:
    base = {
        "iss": ISS,
        "aud": ISS,
        "sub": str(uuid.uuid4()),
        "client_id": "app",
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 600,
        "jti": uuid.uuid4().hex,
    }
    return {**base, **changes}


def verify(ring: KeyRing, token: str, now: int, typ: str = "at+jwt") -> dict[str, Any]:
    return ring.verify(token, issuer=ISS, audience=ISS, typ=typ, now=now)


@pytest.fixture
def material() -> KeyMaterial:
    return generate_key("ES256", "k1")


@pytest.fixture
def signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts real signature verifications (joserfc's decode)."""
    seen: list[str] = []
    real_decode = jwt_module.jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt_module.jwt, "decode", counting_decode)
    return seen


def test_second_verification_of_the_same_token_skips_the_signature_check(
    material: KeyMaterial, signature_checks: list[str]
) -> None:
    ring = KeyRing([material])
    token = ring.sign(claims(), "ES256", "at+jwt")
    first = verify(ring, token, NOW)
    second = verify(ring, token, NOW + 1)
    assert first == second
    assert len(signature_checks) == 1
    # Callers get their own copy: changing it cannot poison the remembered claims.
    second["sub"] = "someone else"
    assert verify(ring, token, NOW + 2)["sub"] == first["sub"]


def test_remembered_token_still_expires_on_time(
    material: KeyMaterial, signature_checks: list[str]
) -> None:
    ring = KeyRing([material])
    token = ring.sign(claims(), "ES256", "at+jwt")
    verify(ring, token, NOW)
    last_valid = NOW + 600 + LEEWAY_SECONDS - 1
    assert verify(ring, token, last_valid)["jti"]
    with pytest.raises(TokenInvalid):
        verify(ring, token, last_valid + 1)


def test_remembered_token_is_not_valid_before_its_window(material: KeyMaterial) -> None:
    ring = KeyRing([material])
    token = ring.sign(claims(nbf=NOW + 100), "ES256", "at+jwt")
    verify(ring, token, NOW + 100)
    with pytest.raises(TokenInvalid):
        verify(ring, token, NOW + 100 - LEEWAY_SECONDS - 1)


def test_remembered_token_dies_with_its_retired_key_grace(material: KeyMaterial) -> None:
    token = KeyRing([material]).sign(claims(), "ES256", "at+jwt")
    retired = KeyMaterial(
        material.kid, "ES256", material.private_pem, retired=True, verify_until=NOW + 60
    )
    ring = KeyRing([retired, generate_key("ES256", "k2")])
    assert verify(ring, token, NOW)["jti"]
    with pytest.raises(TokenInvalid):
        verify(ring, token, NOW + 60)


def test_a_reloaded_ring_without_the_key_refuses_remembered_tokens(
    material: KeyMaterial,
) -> None:
    ring = KeyRing([material])
    token = ring.sign(claims(), "ES256", "at+jwt")
    verify(ring, token, NOW)
    reloaded = KeyRing([generate_key("ES256", "k2")])
    with pytest.raises(TokenInvalid):
        verify(reloaded, token, NOW)


def test_remembered_token_is_checked_again_for_another_type_or_audience(
    material: KeyMaterial,
) -> None:
    ring = KeyRing([material])
    token = ring.sign(claims(), "ES256", "at+jwt")
    verify(ring, token, NOW)
    with pytest.raises(TokenInvalid):
        verify(ring, token, NOW, typ="jwt")
    with pytest.raises(TokenInvalid):
        ring.verify(token, issuer=ISS, audience="https://other.example", typ="at+jwt", now=NOW)


def test_only_verified_tokens_are_remembered_and_the_memory_is_bounded(
    material: KeyMaterial, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jwt_module, "VERIFIED_CACHE_SIZE", 3)
    ring = KeyRing([material])
    forged = ring.sign(claims(), "ES256", "at+jwt")[:-4] + "AAAA"
    with pytest.raises(TokenInvalid):
        verify(ring, forged, NOW)
    tokens = [ring.sign(claims(), "ES256", "at+jwt") for _ in range(5)]
    for token in tokens:
        verify(ring, token, NOW)
    assert len(ring._verified) == 3
    remembered = {key[0] for key in ring._verified}
    assert remembered == set(tokens[2:])  # oldest evicted first; the forgery never got in


def test_revocation_and_password_change_stop_a_token_used_before(
    client: TestClient, user: dict[str, Any]
) -> None:
    """The signature check is remembered; the deny list and the user row are read on
    every request (C8, C9: revocation takes effect at once)."""
    access = user["tokens"]["access_token"]
    assert client.get("/users/me", headers=bearer(access)).status_code == 200
    assert client.get("/users/me", headers=bearer(access)).status_code == 200
    assert client.post("/oauth/revoke", data={"token": access}).status_code == 200
    assert client.get("/users/me", headers=bearer(access)).status_code == 401

    fresh = client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": user["email"], "password": PASSWORD},
    ).json()["access_token"]
    assert client.get("/users/me", headers=bearer(fresh)).status_code == 200
    time.sleep(1.1)  # password change revokes tokens issued before it (whole seconds)
    changed = client.patch(
        "/users/me",
        json={"password": "a brand new passphrase", "current_password": PASSWORD},
        headers=bearer(fresh),
    )
    assert changed.status_code == 200
    assert client.get("/users/me", headers=bearer(fresh)).status_code == 401
