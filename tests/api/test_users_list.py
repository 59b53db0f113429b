"""GET /users on the event loop: the same pages, cursors, errors and the
same bytes as the Session + UserPage.model_dump_json() route it replaced, on
SQLite and PostgreSQL; a database failure is a 503, never a 500."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
import zoneinfo
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import bearer
from tests.support.databases import break_database
from tests.support.storage import session_page
from tests.support.wiring import override
from userservice.api.schemas import UserOut, UserPage, user_page_json
from userservice.db.models import User
from userservice.records import UserRecord
from userservice.services.authn import Principal
from userservice.services.policy import Caller
from userservice.wiring import Services, wired

NAMES = [None, "Zoë 🎉", "山田 太郎", 'Quote " back\\slash', "100% _sure_", "tab\there"]
STAMP = dt.datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=dt.UTC)


def record(index: int, name: str | None, stamp: dt.datetime = STAMP) -> UserRecord:
    return UserRecord(
        uuid.uuid4(),
        f"u{index:03d}@example.com",
        name,
        index % 2 == 0,
        index % 3 == 0,
        index % 5 == 0,
        stamp,
        stamp.replace(microsecond=0),
        index,
    )


def old_body(records: list[UserRecord], next_cursor: str | None) -> bytes:
    """What the Session + UserPage.model_dump_json() route sent."""
    page = UserPage(items=[UserOut.of(r) for r in records], next_cursor=next_cursor)
    return page.model_dump_json().encode()


def cursor_of(email: str) -> str:
    return base64.urlsafe_b64encode(email.encode()).decode().rstrip("=")


@pytest.fixture
def people(services: Services, admin: dict[str, Any]) -> list[str]:
    """120 users inserted directly (no argon2 per user), plus the admin: emails in
    the service's order."""
    db = services.accounts.db
    with db.unit_of_work() as session:
        for index in range(120):
            session.add(
                User(
                    id=uuid.uuid4(),
                    email=f"p{index:03d}@example.com",
                    display_name=NAMES[index % len(NAMES)],
                    password_hash="x",
                    is_active=index % 7 != 0,
                    is_admin=False,
                    email_verified=index % 2 == 0,
                    created_at=STAMP if index % 2 else STAMP.replace(microsecond=0),
                    updated_at=STAMP + dt.timedelta(seconds=index),
                    tokens_valid_after=0,
                )
            )
    everyone = session_page(services.accounts.db, email=None, name=None, after=None, limit=1000)
    return [u.email for u in everyone]


def get(client: TestClient, admin: dict[str, Any], **params: Any) -> Any:
    return client.get("/users", params=params, headers=bearer(admin["tokens"]["access_token"]))


# --- the bytes ---------------------------------------------------------------------------


def test_page_json_is_what_the_pydantic_models_made() -> None:
    assert set(UserOut.model_fields) == {
        "id",
        "email",
        "display_name",
        "is_active",
        "is_admin",
        "email_verified",
        "created_at",
        "updated_at",
    }
    # PostgreSQL hands back datetimes in the session's time zone: offsets too.
    paris = STAMP.astimezone(zoneinfo.ZoneInfo("Europe/Paris"))
    kathmandu = STAMP.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=45)))
    records = [record(i, NAMES[i % len(NAMES)]) for i in range(200)]
    records += [record(900, None, paris), record(901, "x", kathmandu)]
    records += [record(902, "\u2028\x7f\x1f</script>", STAMP.replace(microsecond=0))]
    for page in (records, records[:50], records[-3:], []):
        for cursor in (None, "cDE5OUBleGFtcGxlLmNvbQ"):
            assert user_page_json(page, cursor) == old_body(page, cursor)


def test_response_is_byte_identical_to_the_old_route(
    services: Services, client: TestClient, admin: dict[str, Any], people: list[str]
) -> None:
    accounts = services.accounts
    for params, after, limit in [
        ({}, None, 50),
        ({"cursor": cursor_of(people[49]), "limit": 200}, people[49], 200),
        ({"name": "Ë", "limit": 7}, None, 7),
        ({"email": "P01", "limit": 3}, None, 3),
    ]:
        response = get(client, admin, **params)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        email = params.get("email")
        found = session_page(
            accounts.db,
            email=email.lower() if email else None,
            name=params.get("name"),
            after=after,
            limit=limit + 1,
        )
        more = len(found) > limit
        expected = old_body(found[:limit], cursor_of(found[limit - 1].email) if more else None)
        assert response.content == expected
        assert response.headers["content-length"] == str(len(expected))


# --- pages and cursors ---------------------------------------------------------------------


def test_default_pages_follow_cursors_to_the_end(
    client: TestClient, admin: dict[str, Any], people: list[str]
) -> None:
    assert len(people) == 121
    walked: list[str] = []
    sizes: list[int] = []
    params: dict[str, Any] = {}
    while True:
        page = get(client, admin, **params).json()
        sizes.append(len(page["items"]))
        walked.extend(item["email"] for item in page["items"])
        if page["next_cursor"] is None:
            break
        assert page["next_cursor"] == cursor_of(walked[-1])
        params = {"cursor": page["next_cursor"]}
    assert sizes == [50, 50, 21]
    assert walked == people


@pytest.mark.parametrize("limit", [1, 120, 121, 200])
def test_limit_bounds_the_page(
    client: TestClient, admin: dict[str, Any], people: list[str], limit: int
) -> None:
    page = get(client, admin, limit=limit).json()
    assert [item["email"] for item in page["items"]] == people[:limit]
    assert (page["next_cursor"] is None) is (limit >= len(people))


@pytest.mark.parametrize("limit", ["0", "201", "-3", "1.5"])
def test_limit_out_of_bounds_is_422(client: TestClient, admin: dict[str, Any], limit: str) -> None:
    response = get(client, admin, limit=limit)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("cursor", ["a", "AA", "_w", "!!"])
def test_invalid_cursor_is_422(client: TestClient, admin: dict[str, Any], cursor: str) -> None:
    # "a": bad base64 length; "AA": a NUL byte; "_w": not UTF-8; "!!": not base64url.
    response = get(client, admin, cursor=cursor)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_a_cursor_past_the_end_is_an_empty_last_page(
    client: TestClient, admin: dict[str, Any], people: list[str]
) -> None:
    assert get(client, admin, cursor=cursor_of("\U0010ffff")).json() == {
        "items": [],
        "next_cursor": None,
    }


# --- filters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "matches"),
    [
        ({"email": "P11"}, lambda e, n: "p11" in e),
        ({"name": "ZOË"}, lambda e, n: n == "Zoë 🎉"),
        ({"name": "%"}, lambda e, n: n == "100% _sure_"),
        ({"name": "_s"}, lambda e, n: n == "100% _sure_"),
        ({"name": "\\"}, lambda e, n: n == 'Quote " back\\slash'),
        ({"name": "e%_"}, lambda e, n: False),
        ({"email": "%"}, lambda e, n: False),
        ({"email": "_"}, lambda e, n: False),
        ({"name": "e", "email": "p0"}, lambda e, n: e.startswith("p0") and "e" in (n or "")),
    ],
)
def test_filters_match_literally(
    app: FastAPI,
    client: TestClient,
    admin: dict[str, Any],
    people: list[str],
    params: dict[str, str],
    matches: Any,
) -> None:
    names = {"root@example.com": "Admin"}
    names.update({f"p{i:03d}@example.com": NAMES[i % len(NAMES)] for i in range(120)})
    response = get(client, admin, limit=200, **params)
    assert response.status_code == 200
    found = [item["email"] for item in response.json()["items"]]
    assert found == [e for e in people if matches(e, names[e])]


# --- the database fails ---------------------------------------------------------------------


class _Given:
    """Stands in for the authenticator: every bearer token is this principal."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    async def from_bearer(self, _token: str) -> Principal:
        return self.principal


@pytest.mark.parametrize("params", [{}, {"name": "zoë"}, {"email": "p0", "cursor": "cA"}])
def test_a_database_failure_is_503_problem_not_500(
    app: FastAPI,
    client: TestClient,
    admin: dict[str, Any],
    db_url: str,
    request: pytest.FixtureRequest,
    params: dict[str, str],
) -> None:
    """The admin check would fail first with the database gone (503 too): here the
    principal is given, so that the page's own read meets the broken database (an
    inline read, and on SQLite a read in a worker thread when a filter is set)."""
    user = session_page(wired(app).accounts.db, email="root@", name=None, after=None, limit=1)[0]
    principal = Principal(user, frozenset({"admin"}), None, Caller.FIRST_PARTY, None)

    override(app, authenticator=_Given(principal))
    headers = bearer("given")
    assert client.get("/users", params=params, headers=headers).status_code == 200
    break_database(db_url, request)
    response = client.get("/users", params=params, headers=headers)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"]
    assert response.json()["code"] in {"database_error", "database_unavailable"}
