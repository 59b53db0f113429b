"""M12: every sensitive API operation asks for a recent login, and a multi-factor
one where the account has a second factor; the refusal is RFC 9470 §3's 401 with a
WWW-Authenticate challenge, read here with an RFC 9110 §11.6.1 parser. Password
and address changes ask for the step-up only where the account has a factor (S3)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, bearer, login, register
from tests.support.factor_api import enrol
from tests.support.factors import now_code, verified
from tests.support.problems import assert_problem
from tests.support.step_up_api import (
    ALWAYS_STEP_UP,
    bearer_challenge,
    parse_challenges,
    step_up_operations,
    token_like,
    with_claim,
)
from userservice.services.assurance import (
    ACR_MFA,
    HARDWARE_KEY,
    ONE_TIME_CODE,
    PASSWORD_ONLY,
    passkey_amr,
    with_second_factor,
)

ROOT = "root@example.com"
MFA = with_second_factor(ONE_TIME_CODE)
OLD = 301
STEP_UP_ERROR = "insufficient_user_authentication"
WITH_ACR = (
    'Bearer realm="userservice", error="insufficient_user_authentication", '
    'error_description="A more recent login with a second factor is required", '
    'acr_values="urn:userservice:acr:mfa", max_age=300'
)
WITHOUT_ACR = (
    'Bearer realm="userservice", error="insufficient_user_authentication", '
    'error_description="A more recent login is required", max_age=300'
)


def _root(client: TestClient, app: FastAPI, admin: dict[str, Any], *, factor: bool) -> str:
    """The administrator, optionally with an authenticator app: their id."""
    headers = bearer(admin["tokens"]["access_token"])
    if factor:
        verified(app, ROOT)
        enrol(client, headers)
    return str(
        client.get("/users/me", headers=token_like(app, headers, age=0, amr=MFA)).json()["id"]
    )


def _call(
    client: TestClient, method: str, path: str, user_id: str, headers: dict[str, str]
) -> httpx.Response:
    def fill(match: re.Match[str]) -> str:
        return user_id if match[1] == "user_id" else "00000000-0000-4000-8000-000000000000"

    url = re.sub(r"\{([^}]+)\}", fill, path)
    body = {} if method in ("POST", "PUT", "PATCH") else None
    return client.request(method, url, json=body, headers=headers)


def assert_step_up(response: httpx.Response, *, acr: bool) -> None:
    where = f"{response.request.method} {response.request.url.path}"
    assert response.status_code == 401, f"{where}: {response.text}"
    header = response.headers["www-authenticate"]
    assert header == (WITH_ACR if acr else WITHOUT_ACR), where
    # The same, as a client reads it (RFC 9110 §11.6.1, RFC 9470 §3).
    assert [scheme for scheme, _ in parse_challenges(header)] == ["bearer"], where
    params = bearer_challenge(header)
    assert params["error"] == STEP_UP_ERROR
    assert int(params["max_age"]) == 300
    assert params.get("acr_values") == (ACR_MFA if acr else None), where
    assert assert_problem(response)["code"] == STEP_UP_ERROR


def test_m12_the_challenge_parser_reads_rfc_9110_not_substrings() -> None:
    parsed = parse_challenges(
        'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"'
    )
    assert parsed == [
        ("newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}),
        ("basic", {"realm": "simple"}),
    ]
    assert bearer_challenge(WITH_ACR)["acr_values"] == ACR_MFA
    assert "acr_values" not in bearer_challenge(WITHOUT_ACR)
    with pytest.raises(ValueError, match="repeated"):
        parse_challenges('Bearer error="a", error="b"')


def test_m12_the_step_up_covers_every_sensitive_operation(app: FastAPI) -> None:
    found = {operation for _, _, operation in step_up_operations(app)}
    assert found == {*ALWAYS_STEP_UP, "change_email"}


@pytest.mark.parametrize("factor", [False, True], ids=["no-factor", "with-factor"])
def test_m12_an_old_login_is_refused_by_every_sensitive_operation(
    client: TestClient, app: FastAPI, admin: dict[str, Any], factor: bool
) -> None:
    root_id = _root(client, app, admin, factor=factor)
    like = bearer(admin["tokens"]["access_token"])
    old = token_like(app, like, age=OLD, amr=MFA)
    operations = step_up_operations(app)
    for method, path, operation in operations:
        if operation == "change_email" and not factor:
            continue  # the current password alone (S3), below
        assert_step_up(_call(client, method, path, root_id, old), acr=factor)
    # Nothing was done: the account and its factor are still there.
    now = token_like(app, like, age=0, amr=MFA)
    assert client.get("/users/me/factors", headers=now).json()["totp"]["enabled"] is factor


@pytest.mark.parametrize(
    "amr", [PASSWORD_ONLY, (HARDWARE_KEY,)], ids=["password", "passkey-without-uv"]
)
def test_m12_a_recent_single_factor_login_of_an_account_with_a_factor_is_refused(
    client: TestClient, app: FastAPI, admin: dict[str, Any], amr: tuple[str, ...]
) -> None:
    root_id = _root(client, app, admin, factor=True)
    single = token_like(app, bearer(admin["tokens"]["access_token"]), age=0, amr=amr)
    for method, path, _ in step_up_operations(app):
        assert_step_up(_call(client, method, path, root_id, single), acr=True)
    # The password change too, even with the right current password (M12 over S3).
    changed = client.patch(
        "/users/me",
        json={"password": "A new passphrase 42", "current_password": PASSWORD},
        headers=single,
    )
    assert_step_up(changed, acr=True)
    # Unchanged: a step-up login changes it from the same current password.
    now = token_like(app, bearer(admin["tokens"]["access_token"]), age=0, amr=MFA)
    body = {"password": "A new passphrase 42", "current_password": PASSWORD}
    assert client.patch("/users/me", json=body, headers=now).status_code == 200


def test_m12_a_malformed_amr_claim_counts_as_the_password_alone(
    client: TestClient, app: FastAPI, admin: dict[str, Any]
) -> None:
    _root(client, app, admin, factor=True)
    like = token_like(app, bearer(admin["tokens"]["access_token"]), age=0, amr=MFA)
    assert client.get("/users/me/export", headers=like).status_code == 200
    for amr in ("pwd otp mfa", ["mfa", 1], [], {"mfa": True}, None):
        forged = with_claim(app, like, amr=amr)
        assert_step_up(client.get("/users/me/export", headers=forged), acr=True)


def test_m12_a_recent_multi_factor_login_does_each_sensitive_thing(
    client: TestClient, app: FastAPI, admin: dict[str, Any]
) -> None:
    _root(client, app, admin, factor=True)
    like = bearer(admin["tokens"]["access_token"])
    for amr in (MFA, passkey_amr(backup_eligible=True, user_verified=True)):
        now = token_like(app, like, age=290, amr=amr)
        assert client.get("/users/me/export", headers=now).status_code == 200
        regenerated = client.post("/users/me/factors/recovery-codes", headers=now)
        assert regenerated.status_code == 200, regenerated.text
        policy = client.put("/admin/policies/mfa", json={"required_for": "none"}, headers=now)
        assert policy.status_code == 200, policy.text
    now = token_like(app, like, age=0, amr=MFA)
    # The password: the step-up and the current password (S3) together.
    wrong = client.patch(
        "/users/me",
        json={"password": "A new passphrase 42", "current_password": "nope"},
        headers=now,
    )
    assert wrong.status_code == 403, wrong.text
    changed = client.patch(
        "/users/me",
        json={"password": "A new passphrase 42", "current_password": PASSWORD},
        headers=now,
    )
    assert changed.status_code == 200, changed.text


def test_m12_the_address_change_of_an_account_with_a_factor(
    client: TestClient, app: FastAPI, admin: dict[str, Any]
) -> None:
    _root(client, app, admin, factor=True)
    like = bearer(admin["tokens"]["access_token"])
    body = {"email": "root.new@example.com", "current_password": PASSWORD}
    secret_free = token_like(app, like, age=0, amr=PASSWORD_ONLY)
    assert_step_up(client.post("/users/me/email", json=body, headers=secret_free), acr=True)
    old = token_like(app, like, age=OLD, amr=MFA)
    assert_step_up(client.post("/users/me/email", json=body, headers=old), acr=True)
    now = token_like(app, like, age=0, amr=MFA)
    # Past the step-up, M7 still asks for the code.
    assert assert_problem(client.post("/users/me/email", json=body, headers=now))["code"] == (
        "second_factor_required"
    )


def test_m12_without_a_factor_a_recent_login_is_enough_and_the_password_change_needs_no_new_one(
    client: TestClient, app: FastAPI
) -> None:
    register(client, "ada@example.com")
    verified(app, "ada@example.com")
    recent = bearer(login(client, "ada@example.com")["access_token"])  # the password grant
    assert client.get("/users/me/export", headers=recent).status_code == 200
    old = token_like(app, recent, age=86_400, amr=PASSWORD_ONLY)
    assert_step_up(client.get("/users/me/export", headers=old), acr=False)
    # S3: the current password is the proof; an old login may change it.
    body = {"email": "ada.new@example.com", "current_password": PASSWORD}
    assert client.post("/users/me/email", json=body, headers=old).status_code == 202
    changed = client.patch(
        "/users/me",
        json={"password": "A new passphrase 42", "current_password": PASSWORD},
        headers=old,
    )
    assert changed.status_code == 200, changed.text
    # The password change ended every token (S5): a new login, recent, sets up an app.
    fresh = bearer(login(client, "ada@example.com", "A new passphrase 42")["access_token"])
    started = client.post("/users/me/factors/totp", headers=fresh)
    assert started.status_code == 201, started.text
    confirmed = client.post(
        "/users/me/factors/totp/confirm",
        json={"code": now_code(started.json()["secret"])},
        headers=fresh,
    )
    assert confirmed.status_code == 200, confirmed.text
    assert (
        client.delete("/users/me", headers=token_like(app, fresh, age=0, amr=MFA)).status_code
        == 204
    )


def test_m12_the_openapi_document_shows_the_challenge(client: TestClient, app: FastAPI) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for method, path, _ in step_up_operations(app):
        unauthorized = paths[path][method.lower()]["responses"]["401"]
        header = unauthorized["headers"]["WWW-Authenticate"]
        assert bearer_challenge(header["schema"]["example"]) == bearer_challenge(WITH_ACR)
        assert "RFC 9470" in unauthorized["description"]
    assert "WWW-Authenticate" in paths["/users/me"]["patch"]["responses"]["401"]["headers"]
    assert "headers" not in paths["/users/me"]["get"]["responses"]["401"]
