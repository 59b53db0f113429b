"""A signing key's stored row and what it holds: the private key sealed at rest,
opened only on its own row (S11), and the audit event of a rotation."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

from userservice.db.ports import UnitOfWork
from userservice.db.signing_keys import NewKey, StoredKey
from userservice.security.jwt import KeyMaterial, generate_key
from userservice.services.at_rest import AtRest
from userservice.services.audit import record
from userservice.services.key_schedule import verify_until


def row_name(kid: str) -> str:
    # The envelope's associated data: a sealed key opens only on its own row (S11).
    return f"signing key {kid}"


def material(key: StoredKey, grace: float, at_rest: AtRest) -> KeyMaterial:
    until = verify_until(key, grace)
    return KeyMaterial(
        kid=key.kid,
        alg=key.alg,
        private_pem=at_rest.reveal(key.private_pem, row_name(key.kid)),
        retired=key.retired_at is not None,
        verify_until=until.timestamp() if until is not None else None,
        signs_until=key.retired_at.timestamp() if key.retired_at is not None else None,
    )


def new_key(alg: str, at_rest: AtRest) -> NewKey:
    generated = generate_key(alg, secrets.token_urlsafe(12))
    stored = at_rest.protect(generated.private_pem, row_name(generated.kid))
    return NewKey(generated.kid, alg, stored)


def audit_rotation(
    uow: UnitOfWork,
    actor: uuid.UUID | str | None,
    ip: str | None,
    new: list[NewKey],
    starts: dt.datetime,
) -> None:
    kids = ",".join(k.kid for k in new)
    event = "admin.signing_keys_rotated"
    if isinstance(actor, str):
        record(uow, event, user=None, ip=ip, via=actor, kids=kids, signs_from=starts.isoformat())
    else:
        record(uow, event, user=actor, ip=ip, kids=kids, signs_from=starts.isoformat())
