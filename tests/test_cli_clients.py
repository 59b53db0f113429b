"""`userservice clients …` as a real subprocess against the same database as an app
(SQLite and PostgreSQL): the printed secret works at /oauth/token, list and show
never print it, rotation and deletion take effect, errors are one line, exit 2."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.support.accounts import ISSUER
from tests.support.cli import assert_one_line_error, run_cli
from tests.support.oauth_clients import assert_oauth_error, basic_auth
from userservice.app import create_app
from userservice.cli import main as cli_main
from userservice.db.clients import FIRST_PARTY_CLIENT_ID
from userservice.settings import Settings

BACKEND_ARGS = (
    "--name",
    "CLI backend",
    "--grant-type",
    "password",
    "--grant-type",
    "refresh_token",
    "--auth-method",
    "client_secret_post",
    "--first-party",
    "--scope",
    "openid profile",
)


@pytest.fixture
def cli(db_url: str, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    data_dir = tmp_path / "cli-data"
    data_dir.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(data_dir, "clients", *args, USERSERVICE_DATABASE_URL=db_url)

    return run


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def main(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Outcome]:
    """The same entry point in this process: the subprocess test above proves the
    installed command; the rest need not pay an interpreter start per call."""
    monkeypatch.setenv("USERSERVICE_DATABASE_URL", db_url)
    monkeypatch.setenv("USERSERVICE_DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.setenv("USERSERVICE_ENV_FILE", "/dev/null")

    def run(*args: str) -> Outcome:
        capsys.readouterr()
        code = cli_main(["clients", *args])
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run


@pytest.fixture
def web(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings()), base_url=ISSUER) as client:
        yield client


def ok_json(result: subprocess.CompletedProcess[str] | Outcome) -> Any:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert result.stderr == "", result.stderr
    return json.loads(result.stdout)


def try_secret(web: TestClient, client_id: str, secret: str) -> httpx.Response:
    """Bogus refresh token: 401 invalid_client if the secret is refused, else 400."""
    form = {
        "grant_type": "refresh_token",
        "refresh_token": "bogus",
        "client_id": client_id,
        "client_secret": secret,
    }
    return web.post("/oauth/token", data=form)


def test_create_list_show_rotate_delete_end_to_end(
    cli: Callable[..., subprocess.CompletedProcess[str]], web: TestClient
) -> None:
    created = ok_json(cli("create", *BACKEND_ARGS))
    client_id, secret = created["client_id"], created["client_secret"]
    assert created["client_secret_expires_at"] == 0
    assert created["grant_types"] == ["password", "refresh_token"]
    assert created["token_endpoint_auth_method"] == "client_secret_post"
    assert created["first_party"] is True and created["scope"] == "openid profile"

    # The printed secret authenticates at the token endpoint; a wrong one does not.
    assert_oauth_error(try_secret(web, client_id, secret), 400, "invalid_grant")
    assert_oauth_error(try_secret(web, client_id, secret[:-1]), 401, "invalid_client")
    # Registered for client_secret_post: Basic is refused (C3, its method only).
    basic = web.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": "bogus"},
        headers=basic_auth(client_id, secret),
    )
    assert_oauth_error(basic, 401, "invalid_client")

    listing = cli("list")
    shown = cli("show", client_id)
    for result in (listing, shown):
        assert secret not in result.stdout and '"client_secret"' not in result.stdout
    ids = [c["client_id"] for c in ok_json(listing)]
    assert set(ids) == {FIRST_PARTY_CLIENT_ID, client_id}
    assert ok_json(shown) == {
        k: v for k, v in created.items() if k not in ("client_secret", "client_secret_expires_at")
    }

    rotated = ok_json(cli("rotate-secret", client_id))
    new = rotated["client_secret"]
    assert new != secret and rotated["client_id"] == client_id
    assert_oauth_error(try_secret(web, client_id, secret), 401, "invalid_client")
    assert_oauth_error(try_secret(web, client_id, new), 400, "invalid_grant")

    assert ok_json(cli("delete", client_id)) == {"deleted": client_id}
    assert_oauth_error(try_secret(web, client_id, new), 401, "invalid_client")
    assert_one_line_error(cli("show", client_id), "No such client")
    assert_one_line_error(cli("delete", client_id), "No such client")


def test_third_party_web_app_and_public_native_app(main: Callable[..., Outcome]) -> None:
    web_app = ok_json(
        main(
            "create",
            "--name",
            "Third-party web app",
            "--redirect-uri",
            "https://app.example.com/callback",
            "--redirect-uri",
            "https://app.example.com/other",
            "--post-logout-redirect-uri",
            "https://app.example.com/bye",
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
        )
    )
    assert web_app["redirect_uris"] == [
        "https://app.example.com/callback",
        "https://app.example.com/other",
    ]
    assert web_app["post_logout_redirect_uris"] == ["https://app.example.com/bye"]
    assert web_app["response_types"] == ["code"] and web_app["first_party"] is False
    assert web_app["token_endpoint_auth_method"] == "client_secret_basic"
    assert web_app["client_secret"]

    native = ok_json(
        main(
            "create",
            "--name",
            "Native",
            "--auth-method",
            "none",
            "--redirect-uri",
            "http://127.0.0.1/callback",
        )
    )
    assert "client_secret" not in native and native["client_type"] == "public"
    refused = main("rotate-secret", native["client_id"])
    assert refused.returncode == 2 and "public client" in refused.stderr


ERRORS = [
    (("create", "--name", "x", "--redirect-uri", "https://a.example/cb#f"), "fragment"),
    (("create", "--name", "x", "--redirect-uri", "javascript:alert(1)"), "javascript"),
    (("create", "--name", "x", "--redirect-uri", "http://evil.example/cb"), "loopback"),
    (("create", "--name", "x", "--redirect-uri", "https://a.example/cb\nX"), "ASCII"),
    (("create", "--name", "x"), "redirect URI"),
    (("create", "--name", "x", "--grant-type", "password"), "first-party"),
    (("create", "--name", "x", "--grant-type", "implicit"), "implicit"),
    (("delete", FIRST_PARTY_CLIENT_ID), "cannot be deleted"),
    (("show", "no-such-client"), "No such client"),
    (("rotate-secret", FIRST_PARTY_CLIENT_ID), "public client"),
    (
        (
            *("create", "--name", "x", "--auth-method", "none"),
            *("--redirect-uri", "http://127.0.0.1/cb", "--resource-server"),
        ),
        "confidential",
    ),
    (("update", FIRST_PARTY_CLIENT_ID, "--resource-server"), "confidential"),
    (("update", "no-such-client", "--name", "y"), "No such client"),
]


def test_errors_are_one_line_exit_2_and_store_nothing(main: Callable[..., Outcome]) -> None:
    for args, needle in ERRORS:
        result = main(*args)
        assert result.returncode == 2, (args, result)
        assert result.stdout == "", (args, result)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("userservice: error:"), (args, result)
        assert needle in lines[0], (args, lines)
    assert [c["client_id"] for c in ok_json(main("list"))] == [FIRST_PARTY_CLIENT_ID]


def test_a_bad_database_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "data", "clients", "list", USERSERVICE_DATABASE_URL="mysql://x")
    assert_one_line_error(result, "mysql")


def test_s4_resource_server_mark_from_the_command_line(main: Callable[..., Outcome]) -> None:
    """S4: the administrator marks a confidential client as a resource server (it may
    introspect any token) and takes the mark back."""
    created = ok_json(
        main(
            *("create", "--name", "API gateway", "--grant-type", "client_credentials"),
            *("--scope", "openid", "--resource-server"),
        )
    )
    assert created["resource_server"] is True and created["client_secret"]
    client_id = created["client_id"]
    shown = {k: v for k, v in created.items() if not k.startswith("client_secret")}
    assert ok_json(main("show", client_id)) == shown

    unmarked = ok_json(main("update", client_id, "--no-resource-server"))
    assert unmarked == {**shown, "resource_server": False}
    assert ok_json(main("show", client_id))["resource_server"] is False
    renamed = ok_json(main("update", client_id, "--name", "Gateway"))
    assert renamed == {**shown, "resource_server": False, "client_name": "Gateway"}
    marked = ok_json(main("update", client_id, "--resource-server"))
    assert marked["resource_server"] is True and "client_secret" not in marked

    plain = ok_json(main("create", "--name", "Plain", "--redirect-uri", "https://a.example/cb"))
    assert plain["resource_server"] is False
