"""S11: with a key-encryption secret configured, the private signing keys and the
server's shared secrets are stored encrypted (a dump or backup of the database
alone does not leak them); rows written before the secret was set still load and
are sealed at start; a wrong or missing secret stops the start with one line."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.support.accounts import bearer, login, register
from tests.support.cli import assert_one_line_error, run_cli
from tests.support.oauth_clients import kid_of
from tests.support.server import free_port
from tests.support.wiring import engine_of, keys_of
from userservice.app import create_app
from userservice.settings import Settings

SECRET = "a-long-random-key-encryption-secret-0123456789"
OTHER_SECRET = "another-long-random-secret-for-the-test-98765"
SETTING = "USERSERVICE_KEY_ENCRYPTION_SECRET"


def _dump(client: TestClient) -> list[str]:
    """What a database dump shows of the secret columns."""
    with engine_of(client.app).connect() as conn:  # type: ignore[arg-type]
        keys = conn.execute(text("SELECT private_key_pem FROM signing_keys")).scalars().all()
        shared = conn.execute(text("SELECT value FROM server_secrets")).scalars().all()
    return [*keys, *shared]


def test_a_dump_shows_no_private_key_when_a_secret_is_set(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(key_encryption_secret=SECRET)
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        register(client, "ada@example.com")
        before = login(client, "ada@example.com")["access_token"]
        keys = keys_of(client.app)  # type: ignore[arg-type]
        keys.publication_seconds = 0  # the new key signs at once (N4's delay is not tested here)
        keys.rotate()
        after = login(client, "ada@example.com")["access_token"]
        assert kid_of(before) != kid_of(after)
        for token in (before, after):
            assert client.get("/users/me", headers=bearer(token)).status_code == 200
        dumped = _dump(client)
    assert len(dumped) >= 5  # two keys per rotation, and the device-cookie key
    assert all(value.startswith("enc:v1:") for value in dumped), dumped
    assert not [value for value in dumped if "PRIVATE KEY" in value]


def test_keys_stored_before_the_secret_keep_working_and_are_sealed(
    make_settings: Callable[..., Settings],
) -> None:
    with TestClient(create_app(make_settings()), base_url="https://testserver") as plain:
        register(plain, "ada@example.com")
        token = login(plain, "ada@example.com")["access_token"]
        assert any("PRIVATE KEY" in value for value in _dump(plain))
    sealed_settings = make_settings(key_encryption_secret=SECRET)
    with TestClient(create_app(sealed_settings), base_url="https://testserver") as sealed:
        assert sealed.get("/users/me", headers=bearer(token)).status_code == 200
        assert login(sealed, "ada@example.com")["access_token"]
        dumped = _dump(sealed)
    assert all(value.startswith("enc:v1:") for value in dumped), dumped


def _key_rows(data_dir: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(data_dir / "userservice.db") as conn:
        return [row[0] for row in conn.execute("SELECT private_key_pem FROM signing_keys")]


def test_rotation_works_with_a_secret_and_a_wrong_one_stops_with_one_line(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    for _ in range(2):
        rotated = run_cli(data_dir, "keys", "rotate", **{SETTING: SECRET})
        assert rotated.returncode == 0, rotated.stderr
        assert rotated.stdout.count("created ") == 2
    listed = run_cli(data_dir, "keys", "list", **{SETTING: SECRET})
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 4, listed.stderr
    rows = _key_rows(data_dir)
    assert all(row.startswith("enc:v1:") for row in rows)

    wrong = run_cli(data_dir, "keys", "rotate", **{SETTING: OTHER_SECRET})
    assert_one_line_error(wrong, SETTING)
    missing = run_cli(data_dir, "keys", "list")
    assert_one_line_error(missing, SETTING)
    port = str(free_port())
    serve = run_cli(data_dir, "serve", "--no-tls", "--port", port, **{SETTING: OTHER_SECRET})
    assert_one_line_error(serve, SETTING)
    # Nothing was replaced or added behind the operator's back.
    assert _key_rows(data_dir) == rows


def test_a_key_that_does_not_open_does_not_break_a_running_server(
    make_settings: Callable[..., Settings],
) -> None:
    """A key another replica sealed under another secret (a misconfiguration) must
    not turn this one's requests into 500s: it keeps its ring and logs the fault."""
    settings = make_settings(key_encryption_secret=SECRET)
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        register(client, "ada@example.com")
        token = login(client, "ada@example.com")["access_token"]
        with engine_of(client.app).begin() as conn:  # type: ignore[arg-type]
            conn.execute(
                text(
                    "INSERT INTO signing_keys (kid, alg, private_key_pem, created_at)"
                    " VALUES ('foreign', 'ES256', 'enc:v1:AAAAAAAAAAAAAAAA:AAAA', :now)"
                ),
                {"now": dt.datetime.now(dt.UTC)},
            )
        keys = keys_of(client.app)  # type: ignore[arg-type]
        keys._loaded_at = 0.0  # due for its periodic reload
        assert login(client, "ada@example.com")["access_token"]
        assert client.get("/users/me", headers=bearer(token)).status_code == 200
        assert keys.maybe_reload_for("foreign") is False
