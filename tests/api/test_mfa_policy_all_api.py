"""/admin/policies/mfa with `all` (M13): set by an administrator with a fresh login
(M12, RFC 9470), audited; every user without a factor is out at once and gets
`mfa_required` from HTTP Basic and the password grant; unknown values are 422;
an unknown stored value reads as `all`; the OpenAPI document says what `all` does
to the password grant."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, bearer
from tests.support.callers import basic_headers
from tests.support.factor_api import events, fresh_token
from tests.support.oauth_clients import assert_oauth_error, password_form
from tests.support.problems import assert_problem
from userservice.db.factors import MFA_REQUIRED_FOR, PolicyRepository
from userservice.wiring import wired

PATH = "/admin/policies/mfa"


def _root(admin: dict[str, Any]) -> dict[str, str]:
    return bearer(admin["tokens"]["access_token"])


def test_m13_all_is_set_audited_and_stops_password_only_sign_in_for_everyone(
    client: TestClient, app: FastAPI, user: dict[str, Any], admin: dict[str, Any]
) -> None:
    ada_token = bearer(user["tokens"]["access_token"])
    assert client.get("/users/me", headers=basic_headers()).status_code == 200
    changed = client.put(PATH, json={"required_for": "all"}, headers=_root(admin))
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"required_for": "all"}
    assert wired(app).mfa_policy.required_for() == "all"
    [event] = events(app, "policy.mfa_changed")
    assert '"after": "all"' in event.details
    # The plain user without a factor: her token ended with the switch, her
    # password signs her in nowhere without a factor.
    assert client.get("/users/me", headers=ada_token).status_code == 401
    refused = client.get("/users/me", headers=basic_headers())
    assert refused.status_code == 401, refused.text
    assert assert_problem(refused)["code"] == "mfa_required"
    assert 'acr_values="urn:userservice:acr:mfa"' in refused.headers["www-authenticate"]
    grant = client.post("/oauth/token", data=password_form(user["email"], PASSWORD))
    assert_oauth_error(grant, 400, "mfa_required")
    signed_out = {str(e.user_id) for e in events(app, "policy.mfa_signed_out")}
    assert user["id"] in signed_out and len(signed_out) == 2  # and the administrator


@pytest.mark.parametrize(
    "body",
    [{"required_for": "everyone"}, {"required_for": "All"}, {"required_for": "all "},
     {"required_for": ["all"]}, {"required_for": 1}, {"required_for": "all", "x": 1}],
)  # fmt: skip
def test_m13_unknown_values_are_422_and_change_nothing(
    client: TestClient, app: FastAPI, admin: dict[str, Any], body: dict[str, Any]
) -> None:
    refused = client.put(PATH, json=body, headers=_root(admin))
    assert refused.status_code == 422, refused.text
    assert_problem(refused)
    assert wired(app).mfa_policy.required_for() == "none"


def test_m12_m13_switching_to_all_needs_a_fresh_login(
    client: TestClient, app: FastAPI, admin: dict[str, Any]
) -> None:
    old = fresh_token(app, _root(admin), age=301)
    refused = client.put(PATH, json={"required_for": "all"}, headers=old)
    assert refused.status_code == 401, refused.text
    challenge = refused.headers["www-authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert "max_age=300" in challenge
    assert wired(app).mfa_policy.required_for() == "none"
    assert events(app, "policy.mfa") == []


def test_m13_an_unknown_stored_value_reads_as_all(
    client: TestClient, app: FastAPI, admin: dict[str, Any]
) -> None:
    # A later version's value, stored by no switch (so nobody was signed out).
    with wired(app).accounts.db.unit_of_work() as uow:
        PolicyRepository(uow).set(MFA_REQUIRED_FOR, "everyone-and-more")
    assert client.get(PATH, headers=_root(admin)).json() == {"required_for": "all"}


def test_m13_the_openapi_document_lists_all_and_what_it_stops(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schema = document["components"]["schemas"]["MfaPolicyBody"]["properties"]["required_for"]
    assert schema["enum"] == ["none", "admins", "all"]
    assert "password grant" in schema["description"] and "PKCE" in schema["description"]
    put = document["paths"][PATH]["put"]["description"]
    assert "`all`" in put and "mfa_required" in put and "PKCE" in put
