"""Accounts for tests: the issuer and password every test app uses, and the HTTP calls
that register a user, sign one in with the password grant and present the token."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from userservice.db.models import User
from userservice.wiring import wired

ISSUER = "https://testserver"
PASSWORD = "correct horse battery staple"


def register(
    client: TestClient, email: str, password: str = PASSWORD, **extra: Any
) -> dict[str, Any]:
    response = client.post("/users", json={"email": email, "password": password, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def login(client: TestClient, email: str, password: str = PASSWORD, **form: str) -> dict[str, Any]:
    response = client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": email, "password": password, **form},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_admin(app: FastAPI, email: str, password: str = PASSWORD) -> None:
    wired(app).accounts.register(email, password, "Admin", admin=True)


def user_count(app: FastAPI) -> int:
    """How many accounts exist: a refused request must not have created one."""
    with wired(app).accounts.db.unit_of_work(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(User)) or 0)
