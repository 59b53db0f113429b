"""A person with data in every table that can hold some (for the export and erasure
tests): an account registered and verified, signed in on the pages from its own
address and browser, an app authorised with tokens and a code left unredeemed, a
withdrawn app, a pending reset link and queued mail, and an administrator's change
of the account, each leaving its audit events. Also: every row of every table, as
text, to scan for what must (not) be there."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support.accounts import PASSWORD, bearer, login, register
from tests.support.callers import THIRD_PARTY, add_third_party
from tests.support.journeys import last_token
from tests.support.oauth_flow import obtain_code, redeem, sign_in
from tests.support.wiring import storage_of
from userservice.db.models import Base, GrantRevocation, OutboxMail

APP_SCOPE = "openid profile email offline_access"
# A client that exists for every test app (migration 0001): the withdrawn one.
WITHDRAWN = "userservice-frontend"


@dataclass
class Person:
    id: uuid.UUID
    email: str
    display_name: str
    ip: str
    user_agent: str
    pending_email: str
    http: TestClient
    first_party: dict[str, Any]
    third_party: dict[str, Any]
    # Every credential the test was handed: none may appear in an export.
    raw_secrets: list[str] = field(default_factory=list)

    @property
    def needles(self) -> list[str]:
        """What identifies the person, in lower case: none of it may survive erasure."""
        return [
            self.email.lower(),
            self.pending_email,
            str(self.id),
            self.id.hex,
            self.display_name.lower(),
            self.ip,
            self.user_agent.lower(),
        ]

    def headers(self) -> dict[str, str]:
        return bearer(self.first_party["access_token"])


def browser(app: FastAPI, ip: str, user_agent: str | None = None) -> TestClient:
    """A client calling from its own address (the `client` fixture runs the
    lifespan)."""
    headers = {"User-Agent": user_agent} if user_agent else None
    return TestClient(app, base_url="https://testserver", client=(ip, 50000), headers=headers)


def populate(
    app: FastAPI,
    admin: TestClient,
    admin_token: str,
    *,
    email: str,
    display_name: str,
    ip: str,
    user_agent: str,
) -> Person:
    """The person, with data everywhere; the third-party app THIRD_PARTY must exist."""
    http = browser(app, ip, user_agent)
    created = register(http, email, display_name=display_name)
    person_id = uuid.UUID(created["id"])
    stored = str(created["email"])  # in lower case
    verified = http.post(
        "/users/verification/confirm", json={"token": last_token(app, stored, "verify_email")}
    )
    assert verified.status_code == 204, verified.text
    sign_in(http, email=email)
    code, verifier = obtain_code(http, THIRD_PARTY, scope=APP_SCOPE)
    exchanged = redeem(http, code, verifier, THIRD_PARTY)
    assert exchanged.status_code == 200, exchanged.text
    unredeemed, _ = obtain_code(http, THIRD_PARTY, scope=APP_SCOPE)
    first_party = login(http, email)
    asked = http.post("/users/password-reset", json={"email": email})
    assert asked.status_code == 202, asked.text
    reset = last_token(app, stored, "reset_password")
    # An address change waiting for its link: the new address is the person's too.
    pending = f"pending.{stored}"
    moving = http.post(
        "/users/me/email",
        json={"email": pending, "current_password": PASSWORD},
        headers=bearer(first_party["access_token"]),
    )
    assert moving.status_code == 202, moving.text
    changed = admin.patch(
        f"/users/{person_id}", json={"display_name": display_name}, headers=bearer(admin_token)
    )
    assert changed.status_code == 200, changed.text
    now = dt.datetime.now(dt.UTC)
    with storage_of(app).unit_of_work() as uow:
        uow.add(GrantRevocation(user_id=person_id, client_id=WITHDRAWN, not_before=1))
        # Mail to the address filed under no account: erasure must find it too.
        uow.add(
            OutboxMail(
                message_id=f"<{uuid.uuid4().hex}@testserver>",
                user_id=None,
                recipient=email.upper(),
                kind="notice",
                content=f"To: {email}\r\n\r\nHello {display_name}",
                created_at=now,
                next_attempt_at=now + dt.timedelta(days=1),
            )
        )
    tokens = [first_party, exchanged.json()]
    raw = [t[k] for t in tokens for k in ("access_token", "refresh_token", "id_token") if k in t]
    raw += [code, unredeemed, reset, PASSWORD, http.cookies.get("__Host-session") or ""]
    return Person(
        person_id,
        email,
        display_name,
        ip,
        user_agent,
        pending,
        http,
        first_party,
        exchanged.json(),
        [secret for secret in raw if secret],
    )


def every_row(app: FastAPI) -> Iterator[tuple[str, str, str]]:
    """(table, column, value as lower-case text) of every non-null value stored."""
    with storage_of(app).unit_of_work(read_only=True) as uow:
        for table in Base.metadata.sorted_tables:
            for row in uow.execute(select(table)):
                for column, value in cast(Any, row)._mapping.items():
                    if value is not None:
                        yield table.name, str(column), _text(value)


def _text(value: object) -> str:
    if isinstance(value, uuid.UUID):
        # Both forms: PostgreSQL's and SQLite's (32 hex digits).
        return f"{value} {value.hex}"
    return str(value).lower()


def found(app: FastAPI, needles: list[str]) -> list[tuple[str, str, str]]:
    """Where any of `needles` (lower case) is stored."""
    return [
        (table, column, needle)
        for table, column, text in every_row(app)
        for needle in needles
        if needle in text
    ]


def two_people(app: FastAPI, admin: TestClient, admin_token: str) -> tuple[Person, Person]:
    """A person with data everywhere who, as an administrator, changed the other
    person's account (so their id is an actor's too), and that other person, with
    data alike."""
    add_third_party(admin)
    person = populate(
        app,
        admin,
        admin_token,
        email="Quorvyn.Erasure@example.com",
        display_name="Adalinde Quorvyn",
        ip="203.0.113.77",
        user_agent="ProbeBrowser/7.3 (ErasureScan; Quux)",
    )
    other = populate(
        app,
        admin,
        admin_token,
        email="bartholomew.kept@example.com",
        display_name="Bartholomew Kept",
        ip="198.51.100.23",
        user_agent="OtherBrowser/2.0 (Kept)",
    )
    promoted = admin.patch(
        f"/users/{person.id}", json={"is_admin": True}, headers=bearer(admin_token)
    )
    assert promoted.status_code == 200, promoted.text
    # A token with the admin scope, which only an administrator's login is granted.
    person.first_party = login(person.http, person.email)
    person.raw_secrets += [person.first_party["access_token"], person.first_party["refresh_token"]]
    acted = person.http.patch(
        f"/users/{other.id}", json={"display_name": other.display_name}, headers=person.headers()
    )
    assert acted.status_code == 200, acted.text
    return person, other
