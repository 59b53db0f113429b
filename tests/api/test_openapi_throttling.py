"""The OpenAPI document tells clients where they may be throttled: every
operation that checks a password (the password grant, and every operation that
accepts HTTP Basic, which is throttled like a login) documents `429` with a
`Retry-After` header, and so does every other 429 it documents."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.support.accounts import register
from tests.support.oauth_clients import user_basic
from userservice.app import create_app
from userservice.settings import Settings


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in doc["paths"].items()
        for method, operation in operations.items()
    ]


def _accepts_basic(doc: dict[str, Any], operation: dict[str, Any]) -> bool:
    schemes = doc["components"]["securitySchemes"]
    return any(
        schemes[name].get("scheme") == "basic"
        for requirement in operation.get("security", [])
        for name in requirement
    )


def _assert_documents_retry_after(label: str, operation: dict[str, Any]) -> None:
    responses = operation.get("responses", {})
    assert "429" in responses, label
    header = responses["429"].get("headers", {}).get("Retry-After")
    assert header is not None, (label, responses["429"])
    assert header["schema"]["type"] == "integer", header
    assert responses["429"].get("content"), (label, "no body documented")


def test_throttled_operations_document_429_with_retry_after(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    operations = _operations(doc)
    throttled = [
        (f"{method} {path}", op)
        for method, path, op in operations
        if _accepts_basic(doc, op) or (method, path) == ("POST", "/oauth/token")
    ]
    assert ("POST /oauth/token", doc["paths"]["/oauth/token"]["post"]) in throttled
    assert len(throttled) >= 10, [label for label, _ in throttled]
    for label, operation in throttled:
        _assert_documents_retry_after(label, operation)
    for method, path, operation in operations:
        if "429" in operation.get("responses", {}):
            _assert_documents_retry_after(f"{method} {path}", operation)


def test_documented_429_matches_what_basic_answers(make_settings: Callable[..., Settings]) -> None:
    """The documented form is the real one: a throttled Basic caller gets problem
    details and Retry-After."""
    app = create_app(make_settings(login_limit_per_account="3/minute"))
    with TestClient(app, base_url="https://testserver") as client:
        register(client, "ada@example.com")
        wrong = user_basic("ada@example.com", "not the password")
        statuses = [client.get("/users/me", headers=wrong).status_code for _ in range(4)]
        response = client.get("/users/me", headers=wrong)
        doc = client.get("/openapi.json").json()
    assert statuses[:3] == [401, 401, 401] and response.status_code == 429, statuses
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["content-type"] == "application/problem+json"
    documented = doc["paths"]["/users/me"]["get"]["responses"]["429"]
    assert "application/problem+json" in documented["content"]
