"""The one scope policy and the one refresh-issuance rule on their own (C2, C13);
no database needed. tests/oauth/test_token_endpoint.py checks them per grant."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

import pytest

from userservice.errors import OAuthError
from userservice.records import StoredClient, UserRecord
from userservice.services.scopes import PRIVILEGED, consent_scope, granted_scope
from userservice.services.tokens import gets_refresh_token

REGISTERED = "openid profile offline_access users:read admin"
NOW = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _client(
    scope: str = REGISTERED,
    grant_types: Sequence[str] = ("authorization_code", "refresh_token"),
    first_party: bool = False,
) -> StoredClient:
    return StoredClient(
        "app", "App", "public", None, "none", [], [], list(grant_types), ["code"],
        scope, first_party, False, None, None, {}, NOW, NOW,
    )  # fmt: skip


def _user(admin: bool) -> UserRecord:
    return UserRecord(uuid.uuid4(), "a@example.com", None, True, admin, True, NOW, NOW, 0)


def test_c13_asking_beyond_the_registration_is_invalid_scope_for_everyone() -> None:
    for user in (None, _user(admin=False), _user(admin=True)):
        with pytest.raises(OAuthError) as refused:
            granted_scope(_client(), "openid email", user)
        assert refused.value.error == "invalid_scope"
    with pytest.raises(OAuthError):
        consent_scope(_client(), "openid email")


def test_nothing_asked_is_the_whole_registration() -> None:
    """RFC 6749 §3.3: a client acting for itself and an admin get all of it."""
    whole = " ".join(sorted(REGISTERED.split()))
    assert granted_scope(_client(), None, None) == whole
    assert granted_scope(_client(), None, _user(admin=True)) == whole


def test_c2_a_users_token_holds_privileged_scopes_only_for_admins() -> None:
    asked = "openid users:read admin"
    assert granted_scope(_client(), asked, _user(admin=False)) == "openid"
    assert granted_scope(_client(), None, _user(admin=False)) == "offline_access openid profile"
    assert granted_scope(_client(), asked, _user(admin=True)) == "admin openid users:read"
    # A client acting for itself holds what it is registered for.
    assert granted_scope(_client(), asked, None) == "admin openid users:read"


def test_a_consent_page_never_offers_privileged_scopes_unasked() -> None:
    offered = set(consent_scope(_client(), None).split())
    assert offered == set(REGISTERED.split()) - PRIVILEGED
    assert consent_scope(_client(), "profile openid") == "openid profile"


@pytest.mark.parametrize(
    ("grant_types", "first_party", "scope", "expected"),
    [
        (("authorization_code", "refresh_token"), False, "openid offline_access", True),
        (("authorization_code", "refresh_token"), False, "openid", False),
        (("password", "refresh_token"), True, "openid", True),
        (("password",), True, "openid offline_access", False),
        (("client_credentials",), False, "offline_access", False),
    ],
)
def test_refresh_tokens_need_the_grant_and_first_party_or_offline_access(
    grant_types: Sequence[str], first_party: bool, scope: str, expected: bool
) -> None:
    client = _client(grant_types=grant_types, first_party=first_party)
    assert gets_refresh_token(client, scope) is expected
