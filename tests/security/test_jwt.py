"""Bearer-token verification against forged and malformed JWTs, JWKS hygiene, and
HTTP Basic parsing (C12, C13, D1-D6, D9, E5).

Forgeries are signed with the service's real private keys (read from the
`signing_keys` table), so each one is wrong in exactly one respect; a control test
shows that the same forging code produces tokens the service accepts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey, RSAKey

from tests.support.accounts import ISSUER, PASSWORD, bearer
from tests.support.server import running_server
from tests.support.wiring import storage_of
from userservice.db.signing_keys import load_stored
from userservice.security.basic import parse_basic
from userservice.security.jwt import KeyMaterial, KeyRing, generate_key
from userservice.settings import Settings

ALGS = ["ES256", "RS256"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jws_input(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"


def sign_raw(header: dict[str, Any], claims: dict[str, Any], pem: str) -> str:
    """Sign exactly the given header and claims (no library checks in the way)."""
    head = jws_input(header, claims).encode()
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(head, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        assert isinstance(key, rsa.RSAPrivateKey)
        signature = key.sign(head, padding.PKCS1v15(), hashes.SHA256())
    return f"{head.decode()}.{b64(signature)}"


@pytest.fixture
def keys(app: FastAPI, client: TestClient) -> dict[str, KeyMaterial]:
    """The service's own signing keys, by algorithm."""
    return {
        k.alg: KeyMaterial(k.kid, k.alg, k.private_pem)
        for k in load_stored(storage_of(app))
        if k.retired_at is None
    }


@pytest.fixture
def claims(user: dict[str, Any]) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "sub": user["id"],
        "aud": ISSUER,
        "client_id": "userservice-frontend",
        "scope": "openid profile email",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }


def me(client: TestClient, token: str) -> int:
    status: int = client.get("/users/me", headers=bearer(token)).status_code
    return status


@pytest.mark.parametrize("alg", ALGS)
def test_control_correctly_forged_tokens_are_accepted(
    client: TestClient, keys: dict[str, KeyMaterial], claims: dict[str, Any], alg: str
) -> None:
    """Control: without it the rejections below could pass for the wrong reason.
    Also D5: clock skew within the leeway (≤ 60 s) is tolerated."""
    material = keys[alg]
    assert me(client, KeyRing([material]).sign(claims, alg, "at+jwt")) == 200
    header = {"alg": alg, "kid": material.kid, "typ": "at+jwt"}
    assert me(client, sign_raw(header, claims, material.private_pem)) == 200
    skewed = {**claims, "nbf": int(time.time()) + 10}
    assert me(client, sign_raw(header, skewed, material.private_pem)) == 200


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_rejected(
    client: TestClient, keys: dict[str, KeyMaterial], claims: dict[str, Any], alg: str
) -> None:
    """D1: an unsigned token is never accepted, with or without a signature part."""
    header = {"alg": alg, "kid": keys["ES256"].kid, "typ": "at+jwt"}
    unsigned = jws_input(header, claims) + "."
    assert me(client, unsigned) == 401
    signed = sign_raw({**header, "alg": "ES256"}, claims, keys["ES256"].private_pem)
    assert me(client, unsigned + signed.rsplit(".", 1)[1]) == 401


def _public_forms(jwk: dict[str, Any]) -> dict[str, bytes]:
    key = ECKey.import_key(jwk) if jwk["kty"] == "EC" else RSAKey.import_key(jwk)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return {
        "pem": key.as_pem(private=False),
        "jwk": json.dumps(jwk).encode(),
        "jwk-compact": json.dumps(jwk, separators=(",", ":")).encode(),
        "der": key.get_op_key("verify").public_bytes(serialization.Encoding.DER, spki),
    }


@pytest.mark.parametrize("form", ["pem", "jwk", "jwk-compact", "der"])
@pytest.mark.parametrize("kty", ["EC", "RSA"])
def test_hs256_signed_with_our_public_key_is_rejected(
    client: TestClient, claims: dict[str, Any], form: str, kty: str
) -> None:
    """D2: algorithm confusion - HMAC keyed with our published public key."""
    jwk = next(k for k in client.get("/oauth/jwks").json()["keys"] if k["kty"] == kty)
    header = {"alg": "HS256", "kid": jwk["kid"], "typ": "at+jwt"}
    head = jws_input(header, claims)
    signature = hmac.new(_public_forms(jwk)[form], head.encode(), hashlib.sha256).digest()
    assert me(client, f"{head}.{b64(signature)}") == 401


BAD_HEADERS: dict[str, dict[str, Any]] = {
    "crit-unknown": {"crit": ["exp-policy"], "exp-policy": 1},
    "crit-b64": {"crit": ["b64"], "b64": True},
    "jku": {"jku": "https://evil.example/jwks.json"},
    "x5u": {"x5u": "https://evil.example/cert.pem"},
    "unknown-kid": {"kid": "no-such-kid"},
    "kid-array": {"kid": ["a", "b"]},
}


@pytest.mark.parametrize("kind", sorted(BAD_HEADERS))
@pytest.mark.parametrize("alg", ALGS)
def test_foreign_key_and_critical_headers_are_rejected(
    client: TestClient,
    keys: dict[str, KeyMaterial],
    claims: dict[str, Any],
    alg: str,
    kind: str,
) -> None:
    """D3/D4: `crit`, remote key URLs and unknown kids are refused even when the
    signature is by our own key."""
    header = {"alg": alg, "kid": keys[alg].kid, "typ": "at+jwt", **BAD_HEADERS[kind]}
    assert me(client, sign_raw(header, claims, keys[alg].private_pem)) == 401


def test_embedded_jwk_and_foreign_signing_key_are_rejected(
    client: TestClient, keys: dict[str, KeyMaterial], claims: dict[str, Any]
) -> None:
    """D4: keys come only from our store - not from a `jwk` header, not by kid."""
    attacker = generate_key("ES256", "attacker")
    public = ECKey.import_key(attacker.private_pem).as_dict(private=False)
    embedded = {"alg": "ES256", "typ": "at+jwt", "jwk": public}
    assert me(client, sign_raw(embedded, claims, attacker.private_pem)) == 401
    ours = {"alg": "ES256", "kid": keys["ES256"].kid, "typ": "at+jwt"}
    assert me(client, sign_raw(ours, claims, attacker.private_pem)) == 401
    # Our own key inside `jwk`, signed by it: still refused (the header is foreign).
    own_public = ECKey.import_key(keys["ES256"].private_pem).as_dict(private=False)
    own = {**ours, "jwk": own_public}
    assert me(client, sign_raw(own, claims, keys["ES256"].private_pem)) == 401


DROP = object()  # the claim is left out
# Time claims are offsets from the moment the test runs.
CLAIM_MUTATIONS: dict[str, dict[str, Any]] = {
    **{f"no-{name}": {name: DROP} for name in ("exp", "iss", "aud", "sub", "jti", "iat")},
    "expired": {"exp": -120, "iat": -1000, "nbf": -1000},
    "nbf-future": {"nbf": 600},
    "iss-prefix": {"iss": ISSUER[:-1]},
    "iss-suffix": {"iss": ISSUER + ".evil.com"},
    "iss-path": {"iss": ISSUER + "/"},
    "iss-substring": {"iss": "https://evil.com/" + ISSUER},
    "iss-array": {"iss": [ISSUER]},
    "iss-http": {"iss": ISSUER.replace("https", "http")},
    "aud-other": {"aud": "https://other.example"},
    "aud-prefix": {"aud": ISSUER[:-1]},
    "aud-array-other": {"aud": ["https://other.example"]},
}


@pytest.mark.parametrize("mutation", sorted(CLAIM_MUTATIONS))
def test_token_with_one_wrong_claim_is_rejected(
    client: TestClient, keys: dict[str, KeyMaterial], claims: dict[str, Any], mutation: str
) -> None:
    """D5/C13: expired, not yet valid, wrong issuer in any form, wrong audience, or a
    required claim missing."""
    now = int(time.time())
    changed = dict(claims)
    for name, value in CLAIM_MUTATIONS[mutation].items():
        if value is DROP:
            del changed[name]
        else:
            changed[name] = now + value if name in ("exp", "iat", "nbf") else value
    assert me(client, KeyRing([keys["ES256"]]).sign(changed, "ES256", "at+jwt")) == 401


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+JWT+x", ""])
def test_token_without_at_jwt_type_is_rejected(
    client: TestClient, keys: dict[str, KeyMaterial], claims: dict[str, Any], typ: str
) -> None:
    """RFC 9068 §4: access tokens are `typ: at+jwt`; others (ID tokens) are refused."""
    assert me(client, KeyRing([keys["ES256"]]).sign(claims, "ES256", typ)) == 401


def test_tampered_signature_and_refresh_token_as_bearer_are_rejected(
    client: TestClient, user: dict[str, Any]
) -> None:
    """C13: a refresh token is not a bearer token; a changed payload fails verification."""
    assert me(client, user["tokens"]["refresh_token"]) == 401
    head, payload, sig = user["tokens"]["access_token"].split(".")
    forged = b64(json.dumps({**json.loads(unb64(payload)), "scope": "admin"}).encode())
    assert me(client, f"{head}.{forged}.{sig}") == 401
    assert me(client, user["tokens"]["access_token"]) == 200


HUGE = 1024 * 1024
HUGE_HEADERS = {
    "opaque": "Bearer " + "a" * HUGE,
    "jwt-shaped": "Bearer " + b64(b'{"alg":"ES256"}') + "." + "A" * HUGE + ".sig",
    "basic": "Basic " + "QUFB" * (HUGE // 4),
}


@pytest.mark.parametrize("kind", sorted(HUGE_HEADERS))
def test_megabyte_authorization_header_is_refused_quickly(client: TestClient, kind: str) -> None:
    """D6: a 1 MB token or header -> 4xx fast (bounded time, never a 5xx)."""
    start = time.perf_counter()
    response = client.get("/users/me", headers={"Authorization": HUGE_HEADERS[kind]})
    assert 400 <= response.status_code < 500
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("backend", ["sqlite"])
def test_megabyte_authorization_header_on_real_server(settings: Settings) -> None:
    """D6 through uvicorn's HTTP parser: 4xx (401/400/431), quickly, server still up."""
    with running_server(settings) as base, httpx.Client(base_url=base, timeout=10) as http:
        for value in HUGE_HEADERS.values():
            start = time.perf_counter()
            response = http.get("/users/me", headers={"Authorization": value})
            assert 400 <= response.status_code < 500
            assert time.perf_counter() - start < 2.0
        assert http.get("/healthz").status_code == 200


def test_access_token_in_query_string_is_never_accepted(
    client: TestClient, user: dict[str, Any]
) -> None:
    """C12: RFC 6750 §2.3 query tokens leak into logs; refused, not honoured."""
    token = user["tokens"]["access_token"]
    response = client.get("/users/me", params={"access_token": token})
    assert 400 <= response.status_code < 500
    assert user["email"] not in response.text
    with_header = client.get("/users/me", params={"access_token": token}, headers=bearer(token))
    assert with_header.status_code == 400


def test_jwks_publishes_only_strong_public_keys(client: TestClient) -> None:
    """D9: no private members; EC keys are P-256, RSA keys ≥ 3072 bits."""
    published = client.get("/oauth/jwks").json()["keys"]
    assert {k["kty"] for k in published} == {"EC", "RSA"}
    for jwk in published:
        assert not {"d", "p", "q", "dp", "dq", "qi", "k", "oth"} & jwk.keys()
        assert jwk["kid"] and jwk["use"] == "sig"
        if jwk["kty"] == "EC":
            assert jwk["crv"] == "P-256" and jwk["alg"] == "ES256"
        else:
            assert int.from_bytes(unb64(jwk["n"]), "big").bit_length() >= 3072


def _basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


MALFORMED_BASIC = {
    "bad-base64": "Basic !!!not-base64!!!",
    "bad-padding": "Basic YWRh=",
    "no-colon": _basic(b"ada@example.com"),
    "non-utf8": _basic(b"ada@example.com:\xff\xfe\xfa"),
    "oversized": _basic(b"ada@example.com:" + b"x" * 8000),
    "empty": "Basic ",
    "empty-user": _basic(b":password"),
    "nul-bytes": "Basic \x00\x00",
}


def test_parse_basic_keeps_colons_and_unicode_in_password() -> None:
    """E5: RFC 7617 §2 - split at the first colon only; UTF-8 credentials."""
    assert parse_basic(_basic(b"ada@example.com:a:b::c")) == ("ada@example.com", "a:b::c")
    assert parse_basic(_basic("zoë@x.org:pässwörd".encode())) == ("zoë@x.org", "pässwörd")
    assert parse_basic("basic " + base64.b64encode(b"u:p").decode()) == ("u", "p")


@pytest.mark.parametrize("kind", sorted(MALFORMED_BASIC))
def test_malformed_basic_header_is_401_with_challenge(
    client: TestClient, user: dict[str, Any], kind: str
) -> None:
    """E5: parse_basic never raises and returns None; the API answers 401 (never 500)
    with `WWW-Authenticate: Basic realm=..., charset="UTF-8"`."""
    assert parse_basic(MALFORMED_BASIC[kind]) is None
    response = client.get("/users/me", headers={"Authorization": MALFORMED_BASIC[kind]})
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert "Basic realm=" in challenge and 'charset="UTF-8"' in challenge


@pytest.mark.parametrize(
    "password", ["with:colons:" + PASSWORD, "pässwörd ünïcødé ✓ 密码"], ids=["colon", "unicode"]
)
def test_colon_or_unicode_in_password_works_over_basic(client: TestClient, password: str) -> None:
    """E5/E2: a password with ':' or any Unicode authenticates through Basic (UTF-8)."""
    assert client.post("/users", json={"email": "c@example.com", "password": password}).is_success
    response = client.get(
        "/users/me", headers={"Authorization": _basic(f"c@example.com:{password}".encode())}
    )
    assert response.status_code == 200


def test_basic_over_plain_http_is_refused(app: FastAPI, user: dict[str, Any]) -> None:
    """E5/DESIGN: Basic carries the password itself; never over cleartext HTTP."""
    plain = TestClient(app, base_url="http://testserver")
    good = _basic(f"{user['email']}:{PASSWORD}".encode())
    response = plain.get("/users/me", headers={"Authorization": good})
    assert response.status_code == 401
    assert "Basic realm=" in response.headers["www-authenticate"]
    assert plain.get("/users/me", headers=bearer(user["tokens"]["access_token"])).status_code == 200
