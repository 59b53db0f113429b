"""M8, M3: while administrators must have a second factor, the account page does not
turn an administrator's app off: 409 and the section's refusal, the app kept."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.support.accounts import PASSWORD
from tests.support.factors import enable, post, verified
from tests.support.pages import EMAIL
from tests.support.wiring import engine_of
from userservice.db.models import User
from userservice.wiring import wired

REMOVE = "/account/two-factor/remove"


def test_m8_m3_an_admin_under_the_policy_cannot_turn_the_app_off(
    client: TestClient, app: FastAPI, user: dict[str, Any], signed_in: str
) -> None:
    verified(app, EMAIL)
    with engine_of(app).begin() as conn:
        conn.execute(update(User).where(User.email == EMAIL).values(is_admin=True))
    enable(client)
    wired(app).mfa_policy.set_required_for("admins", actor_id=uuid.uuid4(), ip=None)
    refused = post(client, REMOVE, current_password=PASSWORD)
    assert refused.status_code == 409, refused.text
    assert "Administrators must keep two-step verification on." in refused.text
    assert client.get("/account").status_code == 200  # still signed in
    assert wired(app).factors.summary(uuid.UUID(user["id"])).enrolled
