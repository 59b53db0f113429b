"""Deleting an account leaves none of its personal data in any table (L27): every
column of every table is read back as text and searched for the person's address,
id (both textual forms), name, address and browser, after a deletion by the person
and after one by an administrator. The trail stays, pseudonymised, with a
tombstone; another person's data is untouched. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support.accounts import bearer
from tests.support.personal_data import Person, found, two_people
from tests.support.wiring import storage_of
from userservice.db.models import AuditEvent, User

ADMIN_IP = "testclient"  # the `client` fixture's address, the administrator's


@pytest.fixture
def people(app: FastAPI, client: TestClient, admin: dict[str, Any]) -> tuple[Person, Person]:
    return two_people(app, client, admin["tokens"]["access_token"])


def events(app: FastAPI) -> list[AuditEvent]:
    with storage_of(app).unit_of_work(read_only=True) as uow:
        return list(uow.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def user_ids(app: FastAPI) -> set[uuid.UUID]:
    with storage_of(app).unit_of_work(read_only=True) as uow:
        return set(uow.scalars(select(User.id)))


def assert_erased(app: FastAPI, person: Person, other: Person, other_before: list[Any]) -> None:
    assert found(app, person.needles) == []
    assert sorted(found(app, other.needles)) == sorted(other_before)
    assert other.http.get("/users/me", headers=other.headers()).status_code == 200
    # Access tokens die with the account: their subject no longer resolves.
    assert person.http.get("/users/me", headers=person.headers()).status_code == 401
    refreshed = person.http.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": person.third_party["refresh_token"],
            "client_id": "photo-app",
        },
    )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"


def tombstone_and_trail(app: FastAPI, before: int) -> tuple[AuditEvent, list[AuditEvent]]:
    """The one tombstone, and the events kept under its pseudonym."""
    stored = events(app)
    [tombstone] = [event for event in stored if event.event == "user.deleted"]
    pseudonym = tombstone.user_id
    assert pseudonym is not None and pseudonym not in user_ids(app)
    kept = [event for event in stored if pseudonym in (event.user_id, event.actor_id)]
    # Every event about the person or by them is still there (and the tombstone).
    assert len(kept) == before + 1
    assert all(event.ip is None for event in kept if event is not tombstone)
    # The pseudonym names nothing outside the trail.
    assert {table for table, _, _ in found(app, [str(pseudonym), pseudonym.hex])} == {
        "audit_events"
    }
    return tombstone, kept


def about_or_by(app: FastAPI, person: Person) -> int:
    return sum(person.id in (event.user_id, event.actor_id) for event in events(app))


def test_self_deletion_erases_the_person_from_every_table(
    app: FastAPI, people: tuple[Person, Person]
) -> None:
    person, other = people
    assert {table for table, _, _ in found(app, person.needles)} >= {
        "users",
        "browser_sessions",
        "refresh_tokens",
        "authorization_codes",
        "consents",
        "grant_revocations",
        "account_tokens",
        "mail_outbox",
        "audit_events",
    }, "the scan must see the person's data before it can vouch for its absence"
    assert {needle for _, _, needle in found(app, person.needles)} == set(person.needles)
    other_before = found(app, other.needles)
    trail = about_or_by(app, person)

    deleted = person.http.delete("/users/me", headers=person.headers())

    assert deleted.status_code == 204, deleted.text
    assert_erased(app, person, other, other_before)
    tombstone, kept = tombstone_and_trail(app, trail)
    assert json.loads(tombstone.details) == {"deleted_by": "self"}
    assert (tombstone.actor_id, tombstone.ip) == (tombstone.user_id, None)
    # The person's change of the other account: still about the other, by the pseudonym.
    [change] = [e for e in kept if e.user_id == other.id and e.event == "admin.user_updated"]
    assert change.actor_id == tombstone.user_id


def test_deletion_by_an_administrator_erases_the_person_from_every_table(
    app: FastAPI, client: TestClient, admin: dict[str, Any], people: tuple[Person, Person]
) -> None:
    person, other = people
    other_before = found(app, other.needles)
    trail = about_or_by(app, person)
    token = admin["tokens"]["access_token"]
    root = uuid.UUID(client.get("/users/me", headers=bearer(token)).json()["id"])

    deleted = client.delete(f"/users/{person.id}", headers=bearer(token))

    assert deleted.status_code == 204, deleted.text
    assert_erased(app, person, other, other_before)
    tombstone, _ = tombstone_and_trail(app, trail)
    assert json.loads(tombstone.details) == {"deleted_by": "admin"}
    # The administrator's own id and address: who erased the account is kept.
    assert (tombstone.actor_id, tombstone.ip) == (root, ADMIN_IP)
    again = client.delete(f"/users/{person.id}", headers=bearer(token))
    assert again.status_code == 404
