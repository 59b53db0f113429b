"""JWT signing and verification over our own key ring (joserfc).

Every decode uses an explicit algorithm allowlist, resolves keys only by `kid`
from our store and refuses headers that point elsewhere (RFC 8725 §2.4:
`jku`/`x5u`/`jwk` injection; alg=none and HS256-with-public-key confusion).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeyParameters, RSAKey

SIGNING_ALGORITHMS = ("ES256", "RS256")
MAX_TOKEN_LENGTH = 8192
LEEWAY_SECONDS = 30
_FOREIGN_KEY_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256"})
_KNOWN_HEADERS = frozenset({"alg", "kid", "typ"})

AnyKey = ECKey | RSAKey
# Verified access tokens remembered per key ring (see KeyRing.verify). Bounded, and
# only tokens that passed every check get in, so garbage cannot fill it.
VERIFIED_CACHE_SIZE = 4096


class TokenInvalid(Exception):
    """The token is not one we issued, or no longer valid. Message is safe to log."""


class UnknownKey(TokenInvalid):
    """Signed with a kid we do not hold (maybe one another replica just created)."""

    def __init__(self, kid: str | None) -> None:
        super().__init__("unknown key")
        self.kid = kid


@dataclass(frozen=True)
class KeyMaterial:
    kid: str
    alg: str
    private_pem: str
    # A retired key signs until `signs_until` (Unix time; None: not at all), when
    # its successor takes over, then only verifies (and is published) until
    # `verify_until`, when the last token it signed has expired.
    retired: bool = False
    verify_until: float | None = None
    signs_until: float | None = None

    def signs_at(self, now: float) -> bool:
        """Whether it may sign at `now`, were no older key still signing."""
        return not self.retired or (self.signs_until is not None and now < self.signs_until)


def generate_key(alg: str, kid: str) -> KeyMaterial:
    # RSA >= 3072 bits / P-256 (NIST SP 800-57 strength through 2030).
    params: KeyParameters = {"kid": kid, "alg": alg, "use": "sig"}
    key: AnyKey
    if alg == "ES256":
        key = ECKey.generate_key("P-256", parameters=params)
    elif alg == "RS256":
        key = RSAKey.generate_key(3072, parameters=params)
    else:
        raise ValueError(f"unsupported signing algorithm {alg}")
    return KeyMaterial(kid=kid, alg=alg, private_pem=key.as_pem(private=True).decode())


class KeyRing:
    """Private keys by kid. Materials come oldest first; of each alg the oldest key
    that still signs at a given moment signs, so a new key waits, published, until
    the one before it hands over at its `signs_until` (N4). Pure: no database, and
    every time check takes `now`."""

    def __init__(self, materials: list[KeyMaterial], reuse: KeyRing | None = None) -> None:
        """`reuse`: a ring whose parsed keys may serve again (same kid, alg and PEM):
        importing an RSA key costs about 150 ms of CPU (measured, 3072 bits), so a
        reload after a rotation parses only the new keys."""
        self._keys: dict[str, tuple[KeyMaterial, AnyKey]] = {}
        self._order: dict[str, list[KeyMaterial]] = {}
        for material in materials:
            known = reuse._keys.get(material.kid) if reuse is not None else None
            if known is not None and (known[0].alg, known[0].private_pem) == (
                material.alg,
                material.private_pem,
            ):
                key = known[1]
            else:
                key = _import(material)
            self._keys[material.kid] = (material, key)
            self._order.setdefault(material.alg, []).append(material)
        self._verified: dict[tuple[str, str, str, str], _Verified] = {}
        self._verified_lock = threading.Lock()

    def has_signing_key(self, alg: str, now: float | None = None) -> bool:
        return self.active_kid(alg, now) is not None

    def active_kid(self, alg: str, now: float | None = None) -> str | None:
        current = time.time() if now is None else now
        for material in self._order.get(alg, ()):
            if material.signs_at(current):
                return material.kid
        return None

    def knows(self, kid: str) -> bool:
        return kid in self._keys

    def jwks(self, now: float | None = None) -> dict[str, Any]:
        current = time.time() if now is None else now
        keys = [
            key.as_dict(private=False)
            for material, key in self._keys.values()
            if _usable(material, current)
        ]
        return {"keys": keys}

    def sign(self, claims: Mapping[str, Any], alg: str, typ: str, now: float | None = None) -> str:
        kid = self.active_kid(alg, now)
        if kid is None:
            raise LookupError(f"no active {alg} signing key")
        _, key = self._keys[kid]
        header = {"alg": alg, "kid": kid, "typ": typ}
        return jwt.encode(header, dict(claims), key, algorithms=[alg])

    def verify(
        self,
        token: str,
        *,
        issuer: str,
        audience: str,
        typ: str,
        now: float | None = None,
    ) -> dict[str, Any]:
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise TokenInvalid("malformed token")
        current = int(now if now is not None else time.time())
        # The same bytes checked against the same immutable key ring give the same
        # answer, so a token seen before skips the signature check (ES256 verify is
        # most of a bearer request's CPU). Everything that can change is checked
        # again: the time window and the key's grace. A reload builds a new ring,
        # so a removed key drops its tokens. Revocation and the user's state are the
        # caller's per-request database check, never cached.
        cache_key = (token, issuer, audience, typ)
        hit = self._verified.get(cache_key)
        if hit is not None:
            entry = self._keys.get(hit.kid)
            fresh = hit.valid_from <= current <= hit.valid_until
            if entry is not None and fresh and _usable(entry[0], current):
                return dict(hit.claims)
        claims, kid = self._verify_fully(
            token, issuer=issuer, audience=audience, typ=typ, now=current
        )
        self._remember(cache_key, kid, claims)
        return claims

    def _verify_fully(
        self, token: str, *, issuer: str, audience: str, typ: str, now: int
    ) -> tuple[dict[str, Any], str]:
        current = now

        def resolve(guest: Any) -> AnyKey:
            return self._resolve(guest, current)

        try:
            decoded = jwt.decode(token, resolve, algorithms=list(SIGNING_ALGORITHMS))
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise TokenInvalid(f"bad token: {type(exc).__name__}") from None
        header = decoded.header
        if header.get("typ", "").lower() != typ:
            raise TokenInvalid("wrong token type")
        if _FOREIGN_KEY_HEADERS & header.keys() or not header.keys() <= _KNOWN_HEADERS:
            raise TokenInvalid("unexpected header")
        claims = decoded.claims
        registry = jwt.JWTClaimsRegistry(
            now=current,
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            sub={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise TokenInvalid(f"bad claims: {type(exc).__name__}") from None
        if not isinstance(claims.get("iat"), int):
            raise TokenInvalid("missing iat")
        return claims, str(header["kid"])  # _resolve found the key by this kid

    def _remember(
        self, cache_key: tuple[str, str, str, str], kid: str, claims: dict[str, Any]
    ) -> None:
        exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
        if not isinstance(exp, int) or not isinstance(iat, int):
            return
        if nbf is not None and not isinstance(nbf, int):
            return
        starts = max(iat, nbf) if nbf is not None else iat
        # The window joserfc's registry enforces: iat and nbf <= now + leeway, and
        # exp > now - leeway; in whole seconds, start - leeway <= now <= exp + leeway - 1.
        entry = _Verified(kid, starts - LEEWAY_SECONDS, exp + LEEWAY_SECONDS - 1, dict(claims))
        with self._verified_lock:
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                del self._verified[next(iter(self._verified))]  # oldest first
            self._verified[cache_key] = entry

    def signed_claims(self, token: str) -> dict[str, Any]:
        """Claims of a token we signed, checking the signature and algorithm only:
        for hints such as OIDC's id_token_hint, which may have expired already."""
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise TokenInvalid("malformed token")
        current = time.time()

        def resolve(guest: Any) -> AnyKey:
            return self._resolve(guest, current)

        try:
            decoded = jwt.decode(token, resolve, algorithms=list(SIGNING_ALGORITHMS))
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise TokenInvalid(f"bad token: {type(exc).__name__}") from None
        return dict(decoded.claims)

    def _resolve(self, guest: Any, now: float) -> AnyKey:
        header = guest.headers()
        kid = header.get("kid")
        entry = self._keys.get(kid) if isinstance(kid, str) else None
        # The key's own alg must match the header's: no RS/ES/HS cross-use.
        if entry is None:
            raise UnknownKey(kid if isinstance(kid, str) and len(kid) <= 64 else None)
        if entry[0].alg != header.get("alg"):
            raise TokenInvalid("algorithm does not match the key")
        # Checked here, not only at load: a process that verifies but never signs
        # may hold its ring for long, and a key past its grace must die on time.
        # Not UnknownKey: a reload would not bring it back.
        if not _usable(entry[0], now):
            raise TokenInvalid("retired key")
        return entry[1]


def _import(material: KeyMaterial) -> AnyKey:
    params: KeyParameters = {"kid": material.kid, "alg": material.alg, "use": "sig"}
    if material.alg == "ES256":
        return ECKey.import_key(material.private_pem, parameters=params)
    return RSAKey.import_key(material.private_pem, parameters=params)


@dataclass(frozen=True, slots=True)
class _Verified:
    kid: str
    valid_from: int
    valid_until: int
    claims: Mapping[str, Any]


def _usable(material: KeyMaterial, now: float) -> bool:
    return material.verify_until is None or now < material.verify_until
