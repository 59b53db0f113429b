"""Review fixes of the passkey ceremonies (services/passkeys.py), on SQLite and
PostgreSQL: the user handle a passwordless answer must carry (WebAuthn L2 §7.2
step 6, M9), answers nested past the parser's depth refused, never an error,
and passwordless attempts charged to the sign-in limits (M9, S12)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.factors import events, verified_user
from tests.support.passkey_service import (
    BOB,
    IP,
    ORIGIN,
    add_passkey,
    login_failures,
    passwordless,
    refused_by_each_ceremony,
    with_passkey,
)
from tests.support.soft_authenticator import SoftAuthenticator, b64url
from userservice.app import create_app
from userservice.errors import InvalidPasskey, Throttled
from userservice.settings import Settings
from userservice.wiring import Services, wired

# Each nests deeper than json.loads recurses (RecursionError, not ValueError).
DEEP = ["[" * 16_000, '{"a":' * 5_000, '{"id":' + "[" * 10_000]


def _without_handle(answer: str, handle: bytes | None) -> str:
    loaded: dict[str, Any] = json.loads(answer)
    if handle is None:
        del loaded["response"]["userHandle"]
    else:
        loaded["response"]["userHandle"] = b64url(handle)
    return json.dumps(loaded)


def test_m9_a_passwordless_answer_without_a_user_handle_is_refused(
    client: TestClient, services: Services
) -> None:
    ada, authenticator = with_passkey(client, services)
    answer = _without_handle(passwordless(services, authenticator), None)
    with pytest.raises(InvalidPasskey):
        services.passkeys.sign_in(answer, ip=IP)
    reasons = login_failures(services, ada)
    assert reasons == ["user_handle"]
    # The same key with its handle signs in: only the handle was missing.
    assert services.passkeys.sign_in(passwordless(services, authenticator), ip=IP).user_id == ada


def test_m9_a_user_handle_naming_another_account_is_refused(
    client: TestClient, services: Services
) -> None:
    ada = verified_user(client, services)
    bob = verified_user(client, services, BOB)
    authenticator = SoftAuthenticator()
    add_passkey(services, ada, authenticator)
    answer = _without_handle(passwordless(services, authenticator), bob.bytes)
    with pytest.raises(InvalidPasskey):
        services.passkeys.sign_in(answer, ip=IP)
    reasons = login_failures(services, ada)
    assert reasons == ["user_handle"]


def test_m6_the_second_step_may_leave_the_user_handle_out(
    client: TestClient, services: Services
) -> None:
    # §7.2 step 6: the account was named before the ceremony (allowCredentials).
    ada, authenticator = with_passkey(client, services)
    half = "h" * 43
    answer = json.dumps(
        authenticator.get(services.passkeys.second_factor_options(ada, half), ORIGIN)
    )
    answer = _without_handle(answer, None)
    assert services.passkeys.verify_second_factor(ada, answer, half, ip=IP) == "hwk"


@pytest.mark.parametrize("deep", DEEP)
def test_m9_deeply_nested_answers_are_refused_not_errors(
    client: TestClient, services: Services, deep: str
) -> None:
    ada = verified_user(client, services)
    refused_by_each_ceremony(services, ada, deep)
    with pytest.raises(InvalidPasskey):
        services.passkeys.verify_confirmation(ada, deep, "s" * 43, ip=IP)


def test_m9_s12_passwordless_refusals_count_per_address_successes_do_not(
    make_settings: Callable[..., Settings],
) -> None:
    limit = 3
    app = create_app(make_settings(login_limit_per_ip=f"{limit}/minute"))
    with TestClient(app, base_url="https://testserver") as client:
        services = wired(app)
        ada, authenticator = with_passkey(client, services)
        # Successes are not charged: more of them than the limit all pass.
        for _ in range(limit + 1):
            assert services.passkeys.sign_in(passwordless(services, authenticator), ip=IP)
        for _ in range(limit):
            with pytest.raises(InvalidPasskey):
                services.passkeys.sign_in("{}", ip=IP)
        before = events(services, ada)
        # Past the limit: refused before anything is read, even a good answer.
        with pytest.raises(Throttled):
            services.passkeys.sign_in(passwordless(services, authenticator), ip=IP)
        assert events(services, ada) == before
        # Another address is not held back by this one's failures.
        assert services.passkeys.sign_in(passwordless(services, authenticator), ip="192.0.2.99")
