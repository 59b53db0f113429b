"""The happy path end to end on both databases: register, log in, look yourself up."""

from __future__ import annotations

import base64
from typing import Any

from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, bearer


def test_register_login_and_read_me_with_bearer_and_basic(
    client: TestClient, user: dict[str, Any]
) -> None:
    me = client.get("/users/me", headers=bearer(user["tokens"]["access_token"]))
    assert me.status_code == 200
    assert me.json()["email"] == "ada@example.com"
    basic = base64.b64encode(f"ada@example.com:{PASSWORD}".encode()).decode()
    me_basic = client.get("/users/me", headers={"Authorization": f"Basic {basic}"})
    assert me_basic.status_code == 200
    assert me_basic.json()["id"] == user["id"]
