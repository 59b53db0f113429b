"""Registering passkeys (services/passkeys.py) with a software authenticator with
real keys: several named passkeys by verified accounts only, every change revoking
and mailed, origin and RP ID from the configured public URL (M9); recovery codes
with the first factor only (M2)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.support.accounts import login, register
from tests.support.factors import events, verified_user
from tests.support.journeys import mails, text_of
from tests.support.passkey_service import (
    ADA,
    BOB,
    IP,
    ORIGIN,
    add_passkey,
    login_failures,
    with_passkey,
)
from tests.support.soft_authenticator import SoftAuthenticator, b64url
from userservice.app import create_app
from userservice.errors import (
    Conflict,
    EmailNotVerified,
    InvalidInput,
    InvalidPasskey,
    PasskeysUnavailable,
)
from userservice.settings import Settings
from userservice.wiring import Services, wired


def test_m9_several_named_passkeys_codes_with_the_first_only(
    client: TestClient, services: Services
) -> None:
    ada = verified_user(client, services)
    first = add_passkey(services, ada, SoftAuthenticator(), "Laptop")
    second = add_passkey(services, ada, SoftAuthenticator(), "  Phone   key ", backup_eligible=True)
    # M2: ten codes with the first factor, shown once; none with the second.
    assert first is not None and len(set(first)) == 10
    assert second is None
    listed = services.passkeys.list(ada)
    assert [(view.name, view.synced) for view in listed] == [
        ("Laptop", False),
        ("Phone key", True),
    ]
    assert all(view.last_used_at is None for view in listed)
    added = [details for event, details in events(services, ada) if event == "factor.added"]
    assert [item["kind"] for item in added] == ["passkey", "passkey"]
    notices = mails(client.app, ADA, "passkey_added")  # type: ignore[arg-type]
    assert len(notices) == 2
    assert "A passkey was added to your" in text_of(notices[0])
    assert IP in text_of(notices[0])


def test_m9_registration_ends_every_session_and_token(
    client: TestClient, services: Services
) -> None:
    ada = verified_user(client, services)
    tokens = login(client, ADA)
    add_passkey(services, ada, SoftAuthenticator())
    refreshed = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 400
    assert (
        client.get(
            "/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        ).status_code
        == 401
    )


def test_m9_the_same_authenticator_twice_is_excluded_or_a_conflict(
    client: TestClient, services: Services
) -> None:
    ada, authenticator = with_passkey(client, services)
    options = json.loads(services.passkeys.registration_options(ada))
    # excludeCredentials names the stored one: a browser refuses to make another.
    excluded = [item["id"] for item in options["excludeCredentials"]]
    assert excluded == [b64url(authenticator.credentials[0].id)]
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["attestation"] == "none"
    assert options["rp"] == {"id": "testserver", "name": services.settings.app_name}


def test_m9_a_credential_already_registered_is_a_conflict(
    client: TestClient, services: Services
) -> None:
    ada = verified_user(client, services)
    bob = verified_user(client, services, BOB)
    authenticator = SoftAuthenticator()
    answer = authenticator.create(services.passkeys.registration_options(ada), ORIGIN)
    services.passkeys.register(ada, json.dumps(answer), "Key", ip=IP, locale="en")
    # The same credential id answered to a fresh challenge of another account.
    same = authenticator.credentials[0].id
    again = SoftAuthenticator().create(
        services.passkeys.registration_options(bob), ORIGIN, credential_id=same
    )
    with pytest.raises(Conflict):
        services.passkeys.register(bob, json.dumps(again), "Key", ip=IP, locale="en")
    assert services.passkeys.list(bob) == []
    assert [view.name for view in services.passkeys.list(ada)] == ["Key"]


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, "tab\x07bell"])
def test_m9_a_name_is_one_to_64_printable_characters(
    client: TestClient, services: Services, name: str
) -> None:
    ada = verified_user(client, services)
    with pytest.raises(InvalidInput):
        add_passkey(services, ada, SoftAuthenticator(), name)
    assert services.passkeys.list(ada) == []


def test_m3_unverified_address_gets_no_passkey(client: TestClient, services: Services) -> None:
    ada = uuid.UUID(register(client, ADA)["id"])
    with pytest.raises(EmailNotVerified):
        services.passkeys.registration_options(ada)


@pytest.mark.parametrize("where", ["origin", "rp_id"])
def test_m9_origin_and_rp_id_come_from_the_public_url(
    client: TestClient, services: Services, where: str
) -> None:
    ada = verified_user(client, services)
    options = services.passkeys.registration_options(ada)
    elsewhere = {"origin": "https://evil.test"} if where == "origin" else {"rp_id": "evil.test"}
    origin = elsewhere.pop("origin", ORIGIN)
    answer = SoftAuthenticator().create(options, origin, **elsewhere)
    with pytest.raises(InvalidPasskey):
        services.passkeys.register(ada, json.dumps(answer), "Key", ip=IP, locale="en")
    # And at sign-in, with a passkey registered properly.
    authenticator = SoftAuthenticator()
    add_passkey(services, ada, authenticator)
    request = services.passkeys.sign_in_options()
    answer = authenticator.get(
        request, origin, credential=authenticator.credentials[0], **elsewhere
    )
    with pytest.raises(InvalidPasskey):
        services.passkeys.sign_in(json.dumps(answer), ip=IP)
    reasons = login_failures(services, ada)
    assert reasons == ["verification"]


def test_m9_public_url_with_an_ip_host_offers_no_passkeys(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(issuer="https://127.0.0.1:8443"))
    with TestClient(app, base_url="https://127.0.0.1:8443"):
        services = wired(app)
        assert not services.passkeys.available
        with pytest.raises(PasskeysUnavailable):
            services.passkeys.sign_in_options()
