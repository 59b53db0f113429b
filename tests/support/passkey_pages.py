"""Passkey pages for in-process tests (M9): the options a page carries for the
local script, answered by the software authenticator as a browser would."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.factors import verified
from tests.support.pages import csrf_token
from tests.support.soft_authenticator import SoftAuthenticator
from userservice.wiring import wired

# The tests' public URL (tests.support.accounts.ISSUER): the relying party's origin.
ORIGIN = "https://testserver"


def options_in(html: str, element_id: str) -> dict[str, Any]:
    found = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html)
    assert found, html
    loaded: dict[str, Any] = json.loads(found.group(1))
    return loaded


def with_passkey(app: FastAPI, email: str, user_id: str, soft: SoftAuthenticator) -> None:
    """A passkey registered through the service, as the account page would."""
    verified(app, email)
    passkeys, uid = wired(app).passkeys, uuid.UUID(user_id)
    answer = soft.create(passkeys.registration_options(uid), ORIGIN)
    passkeys.register(uid, json.dumps(answer), "Laptop", ip=None, locale="en")


def passwordless(client: TestClient, answer: Callable[[dict[str, Any]], Any]) -> httpx.Response:
    page = client.get("/login?next=/account")
    form = {
        "csrf_token": csrf_token(page.text),
        "next": "/account",
        "response": answer(options_in(page.text, "passkey-sign-in-options")),
    }
    response: httpx.Response = client.post("/login/passkey", data=form, follow_redirects=False)
    return response


def as_json(soft: SoftAuthenticator, **knobs: Any) -> Callable[[dict[str, Any]], str]:
    return lambda options: json.dumps(soft.get(options, ORIGIN, **knobs))
