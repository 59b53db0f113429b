"""OAuth client metadata (RFC 7591 §2 names): defaults, and the rules a
registration must satisfy before anything is stored."""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from userservice.errors import InvalidClientMetadata
from userservice.services import scopes
from userservice.services.redirect_uris import check_redirect_uris, check_web_uri

AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials", "password")
# A client may register any scope the server knows (one catalogue: services/scopes.py).
SCOPES = tuple(scopes.SCOPES)
DEFAULT_AUTH_METHOD = "client_secret_basic"  # RFC 7591 §2
DEFAULT_GRANT_TYPES = ("authorization_code",)
DEFAULT_SCOPE = "openid profile email"
MAX_NAME_LENGTH = 200
# Bidirectional overrides and isolates: a client name is shown on the consent page,
# and these can make "evil" read as "live" ("Trojan Source", CVE-2021-42574).
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e") | frozenset(
    "\u2066\u2067\u2068\u2069"
)


class Unset(enum.Enum):
    UNSET = "unset"


UNSET = Unset.UNSET


@dataclass(frozen=True)
class ClientChanges:
    """Fields given by the caller. UNSET means "the default" on create and
    "unchanged" on update; None is an explicit null (it clears logo/client URIs)."""

    client_name: str | Unset | None = UNSET
    redirect_uris: list[str] | Unset | None = UNSET
    post_logout_redirect_uris: list[str] | Unset | None = UNSET
    grant_types: list[str] | Unset | None = UNSET
    response_types: list[str] | Unset | None = UNSET
    token_endpoint_auth_method: str | Unset | None = UNSET
    scope: str | Unset | None = UNSET
    logo_uri: str | Unset | None = UNSET
    client_uri: str | Unset | None = UNSET
    first_party: bool | Unset | None = UNSET
    resource_server: bool | Unset | None = UNSET


@dataclass(frozen=True)
class ClientMetadata:
    """A complete, validated registration."""

    client_name: str
    token_endpoint_auth_method: str = DEFAULT_AUTH_METHOD
    redirect_uris: list[str] = field(default_factory=list)
    post_logout_redirect_uris: list[str] = field(default_factory=list)
    grant_types: list[str] = field(default_factory=lambda: list(DEFAULT_GRANT_TYPES))
    response_types: list[str] = field(default_factory=list)
    scope: str = DEFAULT_SCOPE
    logo_uri: str | None = None
    client_uri: str | None = None
    first_party: bool = False
    resource_server: bool = False

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"  # noqa: S105 (a method name)

    def merged(self, changes: ClientChanges) -> dict[str, Any]:
        """This registration's fields with the given changes applied (unvalidated)."""
        values: dict[str, Any] = dict(self.__dict__)
        for name in ClientChanges.__dataclass_fields__:
            value = getattr(changes, name)
            if value is not UNSET:
                values[name] = value
        if changes.response_types is UNSET:
            values["response_types"] = None  # derived from grant_types unless given
        return values


def _name(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidClientMetadata("client_name is required and must be a string.")
    name = value.strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise InvalidClientMetadata(f"client_name must be 1 to {MAX_NAME_LENGTH} characters.")
    for char in name:
        if unicodedata.category(char) in ("Cc", "Cs") or char in _BIDI_CONTROLS:
            raise InvalidClientMetadata(
                "client_name must not contain control, bidirectional or surrogate characters."
            )
    return name


def _string_list(value: object, name: str) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise InvalidClientMetadata(f"{name} must be a list of strings.")
    if len(set(value)) != len(value):
        raise InvalidClientMetadata(f"{name} lists the same value twice.")
    return list(value)


def _auth_method(value: object) -> str:
    if value not in AUTH_METHODS:
        raise InvalidClientMetadata(
            f"token_endpoint_auth_method must be one of: {', '.join(AUTH_METHODS)}."
        )
    return str(value)


def _grant_types(value: object, *, public: bool, first_party: bool) -> list[str]:
    grants = _string_list(value, "grant_types")
    unknown = [g for g in grants if g not in GRANT_TYPES]
    if unknown:
        # The implicit grant is deliberately absent (RFC 9700 §2.1.2).
        raise InvalidClientMetadata(
            f"grant_types: unsupported {unknown[0][:60]!r}; allowed: {', '.join(GRANT_TYPES)}."
        )
    if not grants:
        raise InvalidClientMetadata("grant_types must name at least one grant type.")
    if "client_credentials" in grants and public:
        raise InvalidClientMetadata(
            "client_credentials needs a confidential client (an auth method with a secret)."
        )
    if "password" in grants and not first_party:
        # RFC 9700 §2.4: the password grant is only tolerated for our own frontends.
        raise InvalidClientMetadata("the password grant is allowed only for first-party clients.")
    if "refresh_token" in grants and not {"authorization_code", "password"} & set(grants):
        raise InvalidClientMetadata(
            "refresh_token needs a grant that issues refresh tokens "
            "(authorization_code or password)."
        )
    return grants


def _scope(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidClientMetadata("scope must be a space-separated string.")
    names = value.split(" ")
    if not value or "" in names:
        raise InvalidClientMetadata("scope must be scope names separated by single spaces.")
    unknown = [s for s in names if s not in SCOPES]
    if unknown:
        raise InvalidClientMetadata(
            f"scope: unknown {unknown[0][:60]!r}; allowed: {', '.join(SCOPES)}."
        )
    if len(set(names)) != len(names):
        raise InvalidClientMetadata("scope lists the same scope twice.")
    return value


def _optional_uri(value: object, name: str) -> str | None:
    return None if value is None else check_web_uri(value, name)


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidClientMetadata(f"{name} must be true or false.")
    return value


def _resource_server(value: object, *, public: bool) -> bool:
    flag = _flag(value, "resource_server")
    if flag and public:
        # S4: the mark lets a caller learn about every token, so the caller must
        # prove who it is (RFC 7662 §2.1); a public client has no secret.
        raise InvalidClientMetadata(
            "resource_server needs a confidential client (an auth method with a secret)."
        )
    return flag


def validate(values: dict[str, Any]) -> ClientMetadata:
    """Check a full set of fields (defaults already filled in) as one registration."""
    method = _auth_method(values["token_endpoint_auth_method"])
    first_party = _flag(values["first_party"], "first_party")
    resource_server = _resource_server(values["resource_server"], public=method == "none")
    grants = _grant_types(values["grant_types"], public=method == "none", first_party=first_party)
    redirect_uris = check_redirect_uris(values["redirect_uris"], "redirect_uris")
    logout_uris = check_redirect_uris(
        values["post_logout_redirect_uris"], "post_logout_redirect_uris"
    )
    if "authorization_code" in grants and not redirect_uris:
        raise InvalidClientMetadata("authorization_code needs at least one redirect URI.")
    response_types = ["code"] if "authorization_code" in grants else []
    given = values.get("response_types")
    if given is not None and _string_list(given, "response_types") != response_types:
        # Only the code flow exists here (no implicit or hybrid, RFC 9700 §2.1.2).
        raise InvalidClientMetadata(
            f"response_types must be {response_types} for these grant_types."
        )
    return ClientMetadata(
        client_name=_name(values["client_name"]),
        token_endpoint_auth_method=method,
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=logout_uris,
        grant_types=grants,
        response_types=response_types,
        scope=_scope(values["scope"]),
        logo_uri=_optional_uri(values["logo_uri"], "logo_uri"),
        client_uri=_optional_uri(values["client_uri"], "client_uri"),
        first_party=first_party,
        resource_server=resource_server,
    )


def for_create(changes: ClientChanges) -> ClientMetadata:
    return validate(ClientMetadata(client_name="").merged(changes))
