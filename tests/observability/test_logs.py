"""JSON logs in the app (O4, O6): every line of a request carries its request id and
trace id, the access record names the route template and the caller, and no value
from a client can forge a line or a field."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, bearer, login, register
from tests.support.log_capture import Captured, captured_logs
from userservice.app import create_app
from userservice.settings import Settings

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
O4_KEYS = {"time", "level", "logger", "message"}
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def backend() -> str:
    # Logging does not depend on the database: one backend is enough.
    return "sqlite"


@pytest.fixture
def json_log() -> Iterator[Captured]:
    with captured_logs("json") as log:
        yield log


@pytest.fixture
def text_log() -> Iterator[Captured]:
    with captured_logs("text") as log:
        yield log


def _access(log: Captured) -> list[dict[str, Any]]:
    return [line for line in log.records() if line["logger"] == "userservice.access"]


def test_o4_every_line_is_one_json_object_with_the_o4_keys(
    json_log: Captured, client: TestClient
) -> None:
    register(client, "ada@example.com")
    login(client, "ada@example.com")
    records = json_log.records()
    assert len(records) >= 3
    for record in records:
        assert record.keys() >= O4_KEYS
        assert TIME.fullmatch(record["time"])


def test_o4_a_well_formed_request_id_is_kept_and_on_every_line_of_the_request(
    json_log: Captured, client: TestClient
) -> None:
    register(client, "ada@example.com")
    json_log.clear()
    response = client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "ada@example.com", "password": PASSWORD},
        headers={"X-Request-ID": "edge-7f.3:a_b", "traceparent": TRACEPARENT},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "edge-7f.3:a_b"
    records = json_log.records()
    (audit,) = [r for r in records if r.get("event") == "login.succeeded"]
    (access,) = _access(json_log)
    for line in (audit, access):
        assert line["request_id"] == "edge-7f.3:a_b"
        assert line["trace_id"] == TRACE_ID
        assert line["parent_id"] == PARENT_ID
    # Audit fields are keys of their own, not a key=value string to parse.
    assert audit["user"] and audit["ip"] == "testclient"
    assert access["route"] == "/oauth/token"
    assert access["client_id"] == "userservice-frontend"
    assert access["status"] == 200


@pytest.mark.parametrize(
    "sent",
    [b"a\r\nb", b"", b"x" * 129, b'id"}', b"two words", "ü-id".encode()],
)
def test_o6_a_malformed_request_id_is_replaced(
    json_log: Captured, client: TestClient, sent: bytes
) -> None:
    response = client.get("/healthz", headers={b"X-Request-ID": sent})
    made = response.headers["x-request-id"]
    assert made.encode() != sent and re.fullmatch(r"[0-9a-f]{16}", made)
    (access,) = _access(json_log)
    assert access["request_id"] == made
    assert len(json_log.text().splitlines()) == len(json_log.records())


def test_o4_each_request_without_an_id_gets_a_new_one(client: TestClient) -> None:
    ids = {client.get("/healthz").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.parametrize(
    "traceparent",
    [
        f"01-{TRACE_ID}-{PARENT_ID}-01",  # a version we do not know
        f"00-{TRACE_ID.upper()}-{PARENT_ID}-01",  # hex must be lower case
        f"00-{'0' * 32}-{PARENT_ID}-01",
        f"00-{TRACE_ID}-{'0' * 16}-01",
        f"00-{TRACE_ID}-{PARENT_ID}-01-extra",
        f'00-{TRACE_ID}-{PARENT_ID}-0"}}',
        "junk\r\nlevel=CRITICAL",
    ],
)
def test_o6_an_invalid_traceparent_is_ignored(
    json_log: Captured, client: TestClient, traceparent: str
) -> None:
    assert client.get("/healthz", headers={"traceparent": traceparent}).status_code == 200
    (access,) = _access(json_log)
    assert "trace_id" not in access and "parent_id" not in access


def test_o6_client_values_cannot_forge_a_json_line_or_field(
    json_log: Captured, client: TestClient
) -> None:
    agent = 'x"}\n{"level":"CRITICAL","message":"forged'
    client.get("/users/%0d%0a%22forged", headers={"User-Agent": agent})
    lines = json_log.text().splitlines()
    assert len(lines) == len(json_log.records()) == 1
    (access,) = _access(json_log)
    assert access["level"] == "INFO"
    assert access["user_agent"] == agent
    assert "\n" not in access["path"] and "\r" not in access["path"]
    assert access["path"] == "/users/%0D%0A%22forged"


def test_o6_client_values_cannot_forge_a_text_line(text_log: Captured, client: TestClient) -> None:
    client.get("/users/%0d%0a2026-12-03T00:00:00.000Z%20CRITICAL%20forged?q=%22x%0a")
    (line,) = text_log.text().splitlines()
    assert re.fullmatch(r'\S+Z INFO access testclient "GET /users/%0D%0A\S+ HTTP/1.1" 401 .*', line)
    assert "\r" not in line


def test_the_access_record_names_the_route_template_and_the_caller(
    json_log: Captured, client: TestClient
) -> None:
    register(client, "ada@example.com")
    tokens = login(client, "ada@example.com")
    me = client.get("/users/me", headers=bearer(tokens["access_token"])).json()
    client.get(f"/users/{me['id']}", headers=bearer(tokens["access_token"]))
    client.get("/no/such/path/123")
    client.get("/static/does-not-exist.css")
    records = _access(json_log)
    by_path = {r["path"]: r for r in records}
    assert by_path["/users/me"]["route"] == "/users/me"
    assert by_path["/users/me"]["user_id"] == me["id"]
    assert by_path["/users/me"]["client_id"] == "userservice-frontend"
    assert by_path[f"/users/{me['id']}"]["route"] == "/users/{user_id}"
    assert by_path["/no/such/path/123"]["route"] == "unmatched"
    assert by_path["/no/such/path/123"]["status"] == 404
    assert by_path["/static/does-not-exist.css"]["route"] == "/static"
    for record in records:
        assert record["duration_ms"] >= 0
        assert record["method"] in {"GET", "POST"}
        assert record["client"] == "testclient"


def test_l16_the_access_record_redacts_query_secrets_in_both_formats(
    client: TestClient,
) -> None:
    secret = "hVRxHE3XEXsecretTOKENvalue"
    for log_format in ("json", "text"):
        with captured_logs(log_format) as log:
            client.get(f"/reset-password?lang=en&token={secret}")
            client.get(f"/verify-email?token={secret}")
        assert secret not in log.text()
        assert "/reset-password?lang=en&token=REDACTED" in log.text()
        assert "/verify-email?token=REDACTED" in log.text()


def test_the_text_access_line_reads_as_before(text_log: Captured, client: TestClient) -> None:
    response = client.get("/healthz?lang=en", headers={"X-Request-ID": "abc-1"})
    (line,) = text_log.text().splitlines()
    pattern = r'\S+Z INFO access testclient "GET /healthz\?lang=en HTTP/1.1" 200 [\d.]+ms abc-1'
    assert re.fullmatch(pattern, line), line
    assert response.headers["x-request-id"] == "abc-1"


def test_h1_the_error_line_of_a_500_carries_the_request_id_of_its_body(
    json_log: Captured, make_settings: Callable[..., Settings]
) -> None:
    app: FastAPI = create_app(make_settings())

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as c:
        response = c.get("/boom", headers={"traceparent": TRACEPARENT})
    request_id = response.json()["request_id"]
    records = json_log.records()
    (error,) = [r for r in records if r["level"] == "ERROR"]
    assert error["request_id"] == request_id and error["trace_id"] == TRACE_ID
    assert "RuntimeError" in error["exception"]
    (access,) = _access(json_log)
    assert access["status"] == 500 and access["request_id"] == request_id


def test_lines_outside_a_request_carry_no_request_id(json_log: Captured) -> None:
    logging.getLogger("userservice.mail").warning("background %s", "work")
    (record,) = json_log.records()
    assert record["message"] == "background work"
    assert "request_id" not in record


def test_o6_a_forwarded_address_cannot_forge_the_text_line(
    text_log: Captured, make_settings: Callable[..., Settings]
) -> None:
    """Behind a trusted proxy the client address comes from X-Forwarded-For, which
    the proxy may pass on from the client."""
    app = create_app(make_settings(trusted_proxies=["10.0.0.5"]))
    forged = '203.0.113.9 "GET /admin HTTP/1.1" 200'
    with TestClient(app, base_url="https://testserver", client=("10.0.0.5", 5000)) as client:
        client.get("/healthz", headers={"X-Forwarded-For": forged})
    (line,) = text_log.text().splitlines()
    assert line.count('"') == 2 and "/admin" in line
    assert re.fullmatch(
        r'\S+Z INFO access 203\.0\.113\.9%20%22GET%20/admin\S+ "GET /healthz .*', line
    )
