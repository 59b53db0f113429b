"""The sign-up page and the old address of an email change whose undo link still
works (L21): answered as for any address, no account made, nobody mailed, and the
undo still works afterwards."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, register
from tests.support.journeys import last_token, mails
from tests.support.pages import submit
from userservice.wiring import Services

OLD, NEW = "ada@example.com", "ada@example.org"


def test_the_sign_up_page_cannot_claim_an_address_being_undone_l21(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    ada = uuid.UUID(register(client, OLD)["id"])
    services.email_change.request(ada, NEW, PASSWORD, ip="192.0.2.7", locale="en")
    services.email_change.confirm(last_token(app, NEW, "email_change_verify"), ip="192.0.2.7")
    undo = last_token(app, OLD, "email_change_undo")
    before = len(mails(app))
    answer = submit(client, "/register", email=OLD, password="the attacker's passphrase")
    assert (answer.status_code, answer.headers["location"]) == (303, "/register/sent")
    assert len(mails(app)) == before
    assert client.post("/users/email-change/undo", json={"token": undo}).status_code == 204
    assert last_token(app, OLD, "reset_password")  # the restored address's reset link
