"""Request and response bodies. Unknown fields are refused (mass assignment, G4)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter
from typing_extensions import TypedDict

from userservice.records import UserRecord
from userservice.security.password_policy import MAX_LENGTH


def _encodable(value: str) -> str:
    # JSON may carry lone surrogates ("\ud800") that no database or hash can encode.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_encodable)]
Password = Annotated[Text, Field(min_length=1, max_length=MAX_LENGTH)]
DisplayName = Annotated[
    Text,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$"
    ),
]
Email = Annotated[Text, Field(min_length=3, max_length=320)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(Strict):
    email: Email
    password: Password
    display_name: DisplayName | None = None

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "ada@example.com",
                    "password": "correct horse battery",
                    "display_name": "Ada",
                }
            ]
        },
    )


class ProfileUpdate(Strict):
    display_name: DisplayName | None = None
    email: Email | None = Field(
        default=None,
        description="Not changed here (422): the address changes through `POST /users/me/email`, "
        "once the new one is verified.",
    )
    password: Password | None = Field(default=None, description="The new password.")
    current_password: Password | None = Field(
        default=None, description="Required to change the password."
    )


# The token of a mailed link, as its `token` query parameter carries it. Any string is
# taken and judged by the service: a tampered one of any length gets the same 400
# invalid_token as an expired one, never a 422 (the body size limit bounds it).
LinkToken = Annotated[str, Field(description="The `token` query parameter of the mailed link.")]
_EXAMPLE_LINK_TOKEN = "q3WQm0F2yZ7l0p8t9Xr4cVb6nH1sK5dJ2aE8uY3iO7w"  # noqa: S105 - an example


# A second factor's code: six digits (spaces allowed) or a recovery code (dashes and
# spaces allowed); the bound keeps a huge body from reaching the comparisons.
OneTimeCode = Annotated[Text, Field(min_length=1, max_length=64, examples=["123456"])]


class EmailChangeRequest(Strict):
    email: Email = Field(description="The new sign-in address.")
    current_password: Password
    code: OneTimeCode | None = Field(
        default=None,
        description="With a second factor set up: the authenticator app's current code "
        "or a recovery code (M7).",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"email": "ada@example.org", "current_password": "correct horse battery"}]
        },
    )


class EmailChangeLink(Strict):
    token: LinkToken

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"token": _EXAMPLE_LINK_TOKEN}]}
    )


class AdminUserUpdate(Strict):
    is_active: bool | None = None
    is_admin: bool | None = None
    display_name: DisplayName | None = None


class UserOut(BaseModel):
    id: uuid.UUID
    email: str | None = Field(
        default=None, description="Present when the caller may see it (scope `email`)."
    )
    display_name: str | None
    is_active: bool
    is_admin: bool
    email_verified: bool | None = Field(
        default=None, description="Present when the caller may see it (scope `email`)."
    )
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, user: UserRecord) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            display_name=user.display_name,
            is_active=user.is_active,
            is_admin=user.is_admin,
            email_verified=user.email_verified,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )

    @classmethod
    def json_of(cls, user: UserRecord, *, with_email: bool) -> bytes:
        """The body, serialized once (returning the model would make FastAPI validate
        it again); the email fields only where the caller may see them (S2)."""
        model = cls.of(user)
        return model.model_dump_json(exclude=None if with_email else _EMAIL_FIELDS).encode()


_EMAIL_FIELDS = {"email", "email_verified"}


class UserPage(BaseModel):
    items: list[UserOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class _UserItemJSON(TypedDict):
    id: uuid.UUID
    email: str
    display_name: str | None
    is_active: bool
    is_admin: bool
    email_verified: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class _UserPageJSON(TypedDict):
    items: list[_UserItemJSON]
    next_cursor: str | None


# The bytes UserPage(...).model_dump_json() makes, at a third of its cost: pydantic's
# serializer alone, without validating a UserOut per row (tests compare the bytes).
_USER_PAGE_JSON = TypeAdapter(_UserPageJSON)


def user_page_json(users: Sequence[UserRecord], next_cursor: str | None) -> bytes:
    items: list[_UserItemJSON] = [
        {
            "id": user.id,
            "email": user.email,
            "display_name": user.display_name,
            "is_active": user.is_active,
            "is_admin": user.is_admin,
            "email_verified": user.email_verified,
            "created_at": user.created_at,
            "updated_at": user.updated_at,
        }
        for user in users
    ]
    return _USER_PAGE_JSON.dump_json({"items": items, "next_cursor": next_cursor})


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    code: str = Field(description="Stable machine-readable error code.")
    detail: str


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a route's problem answers."""
    # Problems are sent as application/problem+json: document their schema there too.
    body = {"schema": {"$ref": "#/components/schemas/Problem"}}
    return {
        code: {"model": Problem, "content": {"application/problem+json": body}} for code in codes
    }


class OAuthErrorBody(BaseModel):
    error: str
    error_description: str


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the RFC 6750 type name
    expires_in: int
    scope: str
    refresh_token: str | None = None
