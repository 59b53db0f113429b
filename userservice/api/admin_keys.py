"""/admin/keys: the signing keys every replica shares, and their rotation (admins only)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from userservice.api.deps import user_allowed
from userservice.api.schemas import problem_responses
from userservice.errors import Conflict
from userservice.services.at_rest import AtRestError
from userservice.services.authn import Principal
from userservice.services.key_schedule import KeyInfo, KeyState
from userservice.wiring import ServicesDep, client_ip

router = APIRouter(prefix="/admin/keys", tags=["admin: signing keys"])


class SigningKeyOut(BaseModel):
    kid: str
    alg: str
    state: KeyState = Field(
        description="pending: published in JWKS, not signing yet; active: signing; "
        "retiring: published and verifying its tokens, no longer signing; retired: "
        "past its grace, neither (deleted by the next rotation)."
    )
    created: dt.datetime
    signs_from: dt.datetime | None = Field(
        description="When it starts (or started) signing; null while an older key that "
        "no rotation has retired yet still signs."
    )
    signs_until: dt.datetime | None = Field(
        description="When its successor takes over; null while no rotation has retired it."
    )
    verify_until: dt.datetime | None = Field(
        description="When it leaves JWKS and its tokens are refused: every token it "
        "signed has expired by then. Null while no rotation has retired it."
    )

    @classmethod
    def of(cls, info: KeyInfo) -> SigningKeyOut:
        return cls(
            kid=info.kid,
            alg=info.alg,
            state=info.state,
            created=info.created_at,
            signs_from=info.signs_from,
            signs_until=info.signs_until,
            verify_until=info.until,
        )


class SigningKeyList(BaseModel):
    items: list[SigningKeyOut]


class RotationOut(BaseModel):
    created: list[SigningKeyOut] = Field(
        description="The new keys, one per algorithm, published at once; each signs from "
        "its signs_from, when cached copies of the JWKS have expired."
    )
    retiring: list[SigningKeyOut] = Field(
        description="The keys they replace: signing until signs_until, then verifying "
        "until verify_until."
    )
    removed: list[str] = Field(description="kids of keys past their grace, deleted now.")


@router.get("", response_model=SigningKeyList, responses=problem_responses(401, 403))
def list_signing_keys(
    _admin: Annotated[Principal, Depends(user_allowed("list_signing_keys"))], svc: ServicesDep
) -> SigningKeyList:
    """Every stored key, oldest first, with its state and times."""
    return SigningKeyList(items=[SigningKeyOut.of(info) for info in svc.keys.describe()])


@router.post(
    "/rotate",
    response_model=RotationOut,
    responses=problem_responses(401, 403, 409),
    summary="Rotate the signing keys (new keys sign once cached key sets have expired)",
)
def rotate_signing_keys(
    admin: Annotated[Principal, Depends(user_allowed("rotate_signing_keys"))],
    request: Request,
    svc: ServicesDep,
) -> RotationOut:
    """A new key per algorithm, published by every replica within the reload interval;
    it signs from `jwks_max_age_seconds` + `signing_key_reload_seconds` + the
    verification leeway (30 s) after now, and
    the keys it replaces keep verifying until their last token has expired. Rotating
    again before then is safe: the pending key hands over in turn."""
    try:
        rotation = svc.keys.rotate(actor=admin.user.id, ip=client_ip(request))
    except AtRestError:
        # S11: never new keys beside ones this server cannot read (the message names
        # the setting; the operator fixes the secret, then rotates).
        raise Conflict(
            "A stored signing key does not open with this server's key encryption "
            "secret; nothing was rotated."
        ) from None
    return RotationOut(
        created=[SigningKeyOut.of(info) for info in rotation.created],
        retiring=[SigningKeyOut.of(info) for info in rotation.retired],
        removed=rotation.removed,
    )
