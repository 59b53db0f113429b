"""GET /users/me/export (L26): every category of the person's data, nobody else's,
and no secret or digest, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support.accounts import PASSWORD, bearer, register
from tests.support.callers import third_party_token
from tests.support.oauth_clients import user_basic
from tests.support.personal_data import WITHDRAWN, Person, two_people
from tests.support.wiring import storage_of
from userservice.db.models import (
    AccountToken,
    AuthorizationCode,
    BrowserSession,
    OAuthClient,
    RefreshToken,
    User,
)

ADMIN_IP = "testclient"  # the `client` fixture's address, the administrator's


@pytest.fixture
def people(app: FastAPI, client: TestClient, admin: dict[str, Any]) -> tuple[Person, Person]:
    return two_people(app, client, admin["tokens"]["access_token"])


def stored_secrets(app: FastAPI) -> set[str]:
    """Every digest, hash and grant id the database holds, whoever's."""
    columns = (
        BrowserSession.id_digest,
        RefreshToken.digest,
        RefreshToken.family_id,
        AuthorizationCode.digest,
        AuthorizationCode.code_challenge,
        AuthorizationCode.token_family_id,
        AuthorizationCode.access_jti,
        AccountToken.digest,
        OAuthClient.secret_digest,
        User.password_hash,
    )
    found: set[str] = set()
    with storage_of(app).unit_of_work(read_only=True) as uow:
        for column in columns:
            for value in uow.scalars(select(column)):
                if value is not None:
                    found |= {str(value), getattr(value, "hex", str(value))}
    return found


def export(person: Person) -> tuple[Any, str]:
    response = person.http.get("/users/me/export", headers=person.headers())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"] == (
        'attachment; filename="userservice-export.json"'
    )
    assert response.headers["cache-control"] == "no-store"  # S9
    return response.json(), response.text.lower()


def test_the_export_holds_every_category_of_the_persons_data(
    app: FastAPI, people: tuple[Person, Person]
) -> None:
    person, _ = people
    data, _ = export(person)

    assert (data["format"], data["version"]) == ("userservice-export", 1)
    assert data["profile"]["id"] == str(person.id)
    assert data["profile"]["email"] == person.email.lower()
    assert data["profile"]["display_name"] == person.display_name
    assert data["profile"]["email_verified"] is True and data["profile"]["is_admin"] is True
    assert [(a["client_id"], a["client_name"]) for a in data["apps"]] == [
        ("photo-app", "Photo App")
    ]
    assert [w["client_id"] for w in data["withdrawn_apps"]] == [WITHDRAWN]
    [session] = data["sessions"]
    assert (session["ip"], session["user_agent"]) == (person.ip, person.user_agent)
    assert session["device"] == "Unknown device"  # no browser ua-parser knows
    assert {"created_at", "last_seen_at", "expires_at", "handle"} <= session.keys()
    assert {t["client_id"] for t in data["tokens"]} == {"photo-app", "userservice-frontend"}
    assert [c["used_at"] is None for c in data["authorization_codes"]] == [False, True]
    assert {(link["purpose"], link["address"]) for link in data["links"]} >= {
        ("verify_email", person.email.lower()),
        ("reset_password", person.email.lower()),
    }
    assert person.pending_email in {link["address"] for link in data["links"]}
    assert {m["kind"] for m in data["mail"]} >= {"verify_email", "reset_password"}
    # The pending change is in `links`; its mail only goes to a free address, and
    # would say that the address was free (L20).
    assert {m["recipient"] for m in data["mail"]} == {person.email.lower()}
    kinds = {(e["event"], e["by"]) for e in data["events"]}
    assert {("user.registered", "self"), ("admin.user_updated", "administrator")} <= kinds
    moments = [e["occurred_at"] for e in data["events"]]
    assert moments == sorted(moments)


def test_the_export_holds_nothing_of_anyone_else_and_no_secret(
    app: FastAPI, people: tuple[Person, Person]
) -> None:
    person, other = people
    _, text = export(person)

    for needle in other.needles:
        assert needle not in text, needle
    # Nor the address the administrator acted from, though the events are listed.
    assert ADMIN_IP not in text
    # The person's own change of the other account is the other's data.
    assert "bartholomew" not in text
    for secret in stored_secrets(app) | set(person.raw_secrets):
        assert secret.lower() not in text, secret


def test_only_the_person_may_export(
    app: FastAPI, client: TestClient, people: tuple[Person, Person]
) -> None:
    person, _ = people
    assert client.get("/users/me/export").status_code == 401
    # The user in person, by password, may.
    basic = person.http.get("/users/me/export", headers=user_basic(person.email, PASSWORD))
    assert basic.status_code == 200, basic.text
    # A third-party app, whatever its scopes, may not (account management).
    app_token = third_party_token(person.http, "openid profile email")["access_token"]
    refused = person.http.get("/users/me/export", headers=bearer(app_token))
    assert refused.status_code == 403, refused.text
    assert json.loads(refused.text)["code"] in {"first_party_only", "insufficient_scope"}


_MOMENT = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+(\+00:00|Z)")
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# Whether the background sender has delivered a mail yet is a matter of moments.
_DELIVERY = {"sent_at", "failed_at"}


def masked(value: Any, names: dict[str, str]) -> Any:
    """The export with every time, id and the given addresses replaced by placeholders."""
    if isinstance(value, dict):
        return {
            key: "<delivery>" if key in _DELIVERY else masked(item, names)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [masked(item, names) for item in value]
    if isinstance(value, str):
        if value in names:
            return names[value]
        if _MOMENT.fullmatch(value):
            return "<time>"
        if _ID.fullmatch(value):
            return "<id>"
    return value


def test_asking_for_a_taken_address_leaves_the_same_data_as_a_free_one_l20(
    app: FastAPI, client: TestClient
) -> None:
    # The export must not tell the asker what the answer does not (L20, L26): that
    # bob@example.com has an account.
    register(client, "bob@example.com")
    exports = []
    for me, asked in (
        ("carol@example.com", "bob@example.com"),
        ("dave@example.com", "nobody@example.com"),
    ):
        register(client, me)
        body = {"email": asked, "current_password": PASSWORD}
        answer = client.post("/users/me/email", json=body, auth=(me, PASSWORD))
        assert answer.status_code == 202, answer.text
        response = client.get("/users/me/export", headers=user_basic(me, PASSWORD))
        assert response.status_code == 200, response.text
        exports.append(masked(response.json(), {me: "<me>", asked: "<asked>"}))
    taken, free = exports
    assert taken == free
    assert [link["purpose"] for link in taken["links"]] == ["verify_email", "change_email"]
    assert "email_change.requested" in [event["event"] for event in taken["events"]]
