"""Fixtures of the hosted-page tests."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.pages import SESSION, web_login


@pytest.fixture
def signed_in(client: TestClient, user: dict[str, Any]) -> str:
    response = web_login(client)
    assert response.status_code == 303, response.text
    raw_id: str | None = client.cookies.get(SESSION)
    assert raw_id
    return raw_id
