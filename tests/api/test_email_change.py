"""The email change as JSON (api/email_change.py): one answer for every address
(L20), single-use confirm and undo links (L21), and no 500 for any input."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, bearer, login, register
from tests.support.callers import (
    assert_first_party_only,
    first_party_headers,
    third_party_token,
)
from tests.support.journeys import last_token, mails
from tests.support.problems import assert_problem
from tests.support.routes import walk_routes
from userservice.security.response_floor import FLOOR_SECONDS

ADA = ("ada@example.com", PASSWORD)
NEW = "ada@example.org"
JSON = {"content-type": "application/json"}


def ask(client: TestClient, email: str, password: str = PASSWORD, **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("auth", ADA)
    body = {"email": email, "current_password": password}
    response: httpx.Response = client.post("/users/me/email", json=body, **kwargs)
    return response


def use(client: TestClient, step: str, token: object) -> httpx.Response:
    response: httpx.Response = client.post(f"/users/email-change/{step}", json={"token": token})
    return response


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert assert_problem(response)["code"] == "invalid_token"


def test_the_whole_change_and_its_undo(client: TestClient, app: FastAPI) -> None:
    register(client, ADA[0])
    asked = ask(client, NEW)
    assert asked.status_code == 202, asked.text
    assert asked.headers["cache-control"] == "no-store"
    assert client.get("/users/me", auth=ADA).json()["email"] == ADA[0]
    change = last_token(app, NEW, "email_change_verify")
    assert use(client, "confirm", change).status_code == 204
    assert_invalid_token(use(client, "confirm", change))
    me = client.get("/users/me", auth=(NEW, PASSWORD)).json()
    assert (me["email"], me["email_verified"]) == (NEW, True)
    undo = last_token(app, ADA[0], "email_change_undo")
    assert use(client, "undo", undo).status_code == 204
    assert_invalid_token(use(client, "undo", undo))
    assert client.get("/users/me", auth=ADA).status_code == 401  # the password is gone too
    reset = last_token(app, ADA[0], "reset_password")
    body = {"token": reset, "password": "a brand new passphrase"}
    assert client.post("/users/password-reset/confirm", json=body).status_code == 204
    login(client, ADA[0], "a brand new passphrase")


def test_a_taken_address_gets_the_same_bytes_at_the_same_floor_l20(
    client: TestClient, app: FastAPI
) -> None:
    register(client, ADA[0])
    register(client, "bob@example.com")
    answers = []
    for email in (NEW, "BOB@example.com", "carol@example.com"):
        start = time.perf_counter()
        answers.append(ask(client, email))
        assert time.perf_counter() - start >= FLOOR_SECONDS
    assert {(a.status_code, a.content, a.headers["content-type"]) for a in answers} == {
        (202, answers[0].content, "application/json")
    }
    assert len(mails(app, "bob@example.com", "email_change_taken")) == 1
    assert not mails(app, "bob@example.com", "email_change_verify")
    assert client.get("/users/me", auth=("bob@example.com", PASSWORD)).status_code == 200


def test_refusals_are_problems_and_change_nothing(client: TestClient, app: FastAPI) -> None:
    register(client, ADA[0])
    assert ask(client, NEW, auth=None).status_code == 401
    wrong = ask(client, NEW, "not the password")
    assert wrong.status_code == 403 and assert_problem(wrong)["code"] == "forbidden"
    for email in ("not an address", "ADA@example.com"):
        refused = ask(client, email)
        assert refused.status_code == 422 and assert_problem(refused)["code"] == "invalid_input"
    for body in (
        {"email": NEW},
        {"email": NEW, "current_password": PASSWORD, "is_admin": True},
        {"email": ["x"], "current_password": PASSWORD},
        {"email": NEW + "\x00", "current_password": PASSWORD},
        {"email": "\ud800@example.org", "current_password": PASSWORD},
        {"email": "a" * 400 + "@example.org", "current_password": PASSWORD},
        {"email": NEW, "current_password": ""},
    ):
        # ASCII-escaped, as a client would send a lone surrogate.
        raw = json.dumps(body).encode()
        refused = client.post("/users/me/email", content=raw, headers=JSON, auth=ADA)
        assert refused.status_code == 422, (body, refused.text)
        assert_problem(refused)
    garbage = client.post("/users/me/email", content=b"{", headers=JSON, auth=ADA)
    assert garbage.status_code in (400, 422) and assert_problem(garbage)
    assert not mails(app, NEW)


def test_no_second_change_while_an_undo_is_pending_409(client: TestClient, app: FastAPI) -> None:
    register(client, ADA[0])
    ask(client, NEW)
    use(client, "confirm", last_token(app, NEW, "email_change_verify"))
    again = ask(client, "ada@example.net", auth=(NEW, PASSWORD))
    assert again.status_code == 409 and assert_problem(again)["code"] == "conflict"


@pytest.mark.parametrize("step", ["confirm", "undo"])
@pytest.mark.parametrize(
    "token",
    ["", "A" * 43, "A" * 10_000, "é" * 43, "\x00" * 43, "../" * 20, 42, None, ["A" * 43]],
)
def test_bad_tokens_are_refused_without_a_500(client: TestClient, step: str, token: object) -> None:
    response = use(client, step, token)
    if isinstance(token, str):
        assert_invalid_token(response)
    else:
        assert response.status_code == 422 and assert_problem(response)


def test_other_purposes_tokens_are_invalid(client: TestClient, app: FastAPI) -> None:
    register(client, ADA[0])
    verify = last_token(app, ADA[0], "verify_email")
    assert_invalid_token(use(client, "confirm", verify))
    assert_invalid_token(use(client, "undo", verify))
    ask(client, NEW)
    assert_invalid_token(use(client, "undo", last_token(app, NEW, "email_change_verify")))


def test_the_change_is_account_management_s2(with_app: TestClient) -> None:
    third = third_party_token(with_app, "openid profile profile:write email offline_access")
    body = {"email": NEW, "current_password": PASSWORD}
    refused = with_app.post("/users/me/email", json=body, headers=bearer(third["access_token"]))
    assert_first_party_only(refused)
    first = with_app.post("/users/me/email", json=body, headers=first_party_headers(with_app))
    assert first.status_code == 202, first.text
    assert mails(with_app.app, NEW, "email_change_verify")  # type: ignore[arg-type]


def test_the_operations_are_documented(client: TestClient, app: FastAPI) -> None:
    # The policy table's operation ids are the route functions' names.
    names = {route.path_format: route.name for route in walk_routes(app.routes)}
    assert names["/users/me/email"] == "change_email"
    spec = client.get("/openapi.json").json()
    change = spec["paths"]["/users/me/email"]["post"]
    assert set(change["responses"]) >= {"202", "400", "401", "403", "409", "422", "429"}
    assert change["responses"]["202"]["content"]["application/json"]["example"]["detail"]
    for path, operation in (
        ("/users/email-change/confirm", "confirm_email_change"),
        ("/users/email-change/undo", "undo_email_change"),
    ):
        assert names[path] == operation
        documented = spec["paths"][path]["post"]
        assert set(documented["responses"]) >= {"204", "400", "422"}
    schemas = spec["components"]["schemas"]
    assert schemas["EmailChangeRequest"]["examples"]
    assert schemas["EmailChangeLink"]["examples"]
