"""/users: registration, own profile, lookup and administration."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from userservice.api.deps import allowed, enforce, user_allowed
from userservice.api.schemas import (
    AdminUserUpdate,
    ProfileUpdate,
    RegisterRequest,
    UserOut,
    UserPage,
    problem_responses,
    user_page_json,
)
from userservice.errors import Forbidden, InvalidInput, NotFound
from userservice.i18n import negotiate
from userservice.records import UserRecord
from userservice.security.response_floor import at_floor
from userservice.services.accounts import UNSET, ProfileChanges
from userservice.services.authn import Principal, ServicePrincipal
from userservice.services.policy import POLICY
from userservice.services.scopes import reveals_email
from userservice.services.user_admin import AdminChanges
from userservice.wiring import ServicesDep, client_ip

# Paths of their own one segment under /users (api/account_mail.py): a request for
# a method they do not serve is a 405 with their Allow (RFC 9110 §15.5.6), not an
# id that is no UUID.
NAMED_PATHS = frozenset({"verification", "password-reset", "email-change"})


class _UserRoute(APIRoute):
    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE and child.get("path_params", {}).get("user_id") in NAMED_PATHS:
            return Match.NONE, {}
        return match, child


router = APIRouter(prefix="/users", tags=["users"], route_class=_UserRoute)
_JSON = "application/json"
SearchText = Annotated[str | None, Query(max_length=320, pattern=r"^[^\x00]*$")]


# L1: in the non-revealing mode every address gets these bytes, taken or not.
SIGNUP_ACCEPTED = (
    b'{"detail":"Check your mail: a message with the next step is on its way to the address."}'
)
_SIGNUP_ACCEPTED_DOC: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "With `registration_reveals_accounts` off: the same answer for every "
        "address, whether it already had an account or not.",
        "content": {
            "application/json": {
                "example": {
                    "detail": "Check your mail: a message with the next step is on its way "
                    "to the address."
                }
            }
        },
    }
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses={**_SIGNUP_ACCEPTED_DOC, **problem_responses(400, 403, 409, 413, 422, 429)},
    summary="Register a new account",
)
async def register(
    body: RegisterRequest, request: Request, svc: ServicesDep, response: Response
) -> UserOut | Response:
    """Creates an unverified account and mails it a verification link. 409 when the
    address has an account; with `registration_reveals_accounts` off, 202 for every
    address instead (the owner of a taken one gets a mail saying so), at one
    response time (L2). Throttled per client network."""
    reveal = svc.settings.registration_reveals_accounts
    ip = client_ip(request)
    locale = negotiate(None, None, request.headers.get("accept-language"))

    def sign_up() -> UserRecord | None:
        return svc.signup.register(
            body.email, body.password, body.display_name, ip=ip, locale=locale, reveal=reveal
        )

    if reveal:
        user = await anyio.to_thread.run_sync(sign_up)
    else:
        user = await at_floor(sign_up, what="POST /users")
    if not reveal or user is None:
        return Response(SIGNUP_ACCEPTED, status_code=202, media_type=_JSON)
    response.headers["Location"] = f"/users/{user.id}"
    return UserOut.of(user)


ReadMe = Annotated[Principal, Depends(user_allowed("read_me"))]
UpdateMe = Annotated[Principal, Depends(user_allowed("update_me"))]
DeleteMe = Annotated[Principal, Depends(user_allowed("delete_me"))]
ReadUser = Annotated[Principal | ServicePrincipal, Depends(allowed("read_user"))]


def _own_profile(principal: Principal) -> Response:
    body = UserOut.json_of(principal.user, with_email=reveals_email(principal.scopes))
    return Response(body, media_type=_JSON)


@router.get("/me", response_model=UserOut, responses=problem_responses(401, 403, 429, 503))
async def read_me(principal: ReadMe) -> Response:
    """Your profile (scope `profile`); the email fields need scope `email`."""
    # The principal was loaded fresh from the database by the auth dependency.
    return _own_profile(principal)


EMAIL_ELSEWHERE = (
    "The address is not changed here: use POST /users/me/email, which mails a link "
    "to the new address (the change takes effect once it is used)."
)


@router.patch("/me", response_model=UserOut, responses=problem_responses(400, 401, 403, 422))
async def update_me(body: ProfileUpdate, principal: UpdateMe, svc: ServicesDep) -> Response:
    """Change your display name (scope `profile:write`). Changing the password is
    account management: the user in person or a first-party client only, with the
    current password; for an account with a second factor, also from a login with
    it at most five minutes old (else 401 `insufficient_user_authentication` with
    `acr_values`, RFC 9470). The address changes through `POST /users/me/email`
    only (422 here, nothing changed)."""
    fields = body.model_fields_set
    if body.email is not None or body.password is not None:
        # M12: the same guard as the routes', on the event loop (it may read the
        # account's second factor).
        await enforce(POLICY["change_credentials"], principal, svc)
    if body.email is not None:
        # L20: an address takes effect only once it proves itself.
        raise InvalidInput(EMAIL_ELSEWHERE)
    changes = ProfileChanges(
        display_name=body.display_name if "display_name" in fields else UNSET,
        new_password=body.password,
        current_password=body.current_password,
    )
    # argon2 and the unit of work run on a worker thread, not on the event loop.
    user = await anyio.to_thread.run_sync(svc.accounts.update_profile, principal.user.id, changes)
    with_email = reveals_email(principal.scopes)
    return Response(UserOut.json_of(user, with_email=with_email), media_type=_JSON)


@router.delete("/me", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(401, 403))
def delete_me(principal: DeleteMe, request: Request, svc: ServicesDep) -> Response:
    """Delete your account and erase your personal data everywhere (L7): the user in
    person or a first-party client, with a login at most five minutes old, and a
    multi-factor one for an account with a second factor (else 401
    `insufficient_user_authentication`, RFC 9470)."""
    svc.privacy.erase(principal.user.id, actor_id=principal.user.id, ip=client_ip(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{user_id}", response_model=UserOut, responses=problem_responses(401, 403, 404, 422))
def read_user(user_id: uuid.UUID, principal: ReadUser, svc: ServicesDep) -> Response:
    """Yourself (as `GET /users/me`), or anyone with scope `users:read` (an
    administrator's token, or a service client granted it)."""
    if isinstance(principal, Principal) and user_id == principal.user.id:
        POLICY["read_me"].check(principal)
        return _own_profile(principal)
    try:
        POLICY["read_other_user"].check(principal)
    except Forbidden:
        if isinstance(principal, ServicePrincipal):
            raise
        # 404, not 403: a user learns nothing of other accounts, not even that
        # they exist (G2).
        raise NotFound("No such user.") from None
    user = svc.accounts.get(user_id)
    return Response(UserOut.json_of(user, with_email=True), media_type=_JSON)


def _decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("The cursor is not valid.") from None
    if "\x00" in decoded:
        raise InvalidInput("The cursor is not valid.")
    return decoded


@router.get("", response_model=UserPage, responses=problem_responses(400, 401, 403, 422))
async def list_users(
    _admin: Annotated[Principal, Depends(user_allowed("list_users"))],
    svc: ServicesDep,
    email: SearchText = None,
    name: SearchText = None,
    cursor: Annotated[str | None, Query(max_length=600, pattern=r"^[A-Za-z0-9_-]*$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """Admin search by email and/or display-name substring, ordered by email, with
    keyset pagination (`next_cursor`)."""
    # async: as a `def` route, threadpool hand-offs and GIL contention set this
    # page's p99 (profiled). The read runs inline only where it takes microseconds
    # (db/user_search.py).
    users = await svc.user_admin.search(
        email=email, name=name, after=_decode_cursor(cursor), limit=limit + 1
    )
    page, more = users[:limit], len(users) > limit
    next_cursor = (
        base64.urlsafe_b64encode(page[-1].email.encode()).decode().rstrip("=") if more else None
    )
    # Serialized once, here: returning a UserPage would make FastAPI validate it again
    # against response_model; building a UserOut per row took 3x as long.
    return Response(user_page_json(page, next_cursor), media_type="application/json")


@router.patch(
    "/{user_id}", response_model=UserOut, responses=problem_responses(400, 401, 403, 404, 422)
)
def admin_update_user(
    user_id: uuid.UUID,
    body: AdminUserUpdate,
    admin: Annotated[Principal, Depends(user_allowed("admin_update_user"))],
    request: Request,
    svc: ServicesDep,
) -> UserOut:
    """Admin: disable/enable (disabling revokes every token), grant or revoke admin."""
    changes = AdminChanges(
        is_active=body.is_active,
        is_admin=body.is_admin,
        display_name=body.display_name if "display_name" in body.model_fields_set else UNSET,
    )
    return UserOut.of(svc.user_admin.update(admin.user.id, user_id, changes, ip=client_ip(request)))


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422),
)
def admin_delete_user(
    user_id: uuid.UUID,
    admin: Annotated[Principal, Depends(user_allowed("admin_delete_user"))],
    request: Request,
    svc: ServicesDep,
) -> Response:
    """Admin: delete an account, erasing its personal data as the user's own
    deletion does (L7)."""
    svc.privacy.erase(user_id, actor_id=admin.user.id, ip=client_ip(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
