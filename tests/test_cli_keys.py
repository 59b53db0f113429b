"""`userservice keys rotate|list` as real subprocesses, against a running app on the
same database: the app follows the rotation, old tokens keep working, and old keys
leave JWKS (and are deleted) only once their grace has passed."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.support.accounts import bearer, login, register
from tests.support.cli import run_cli
from tests.support.oauth_clients import kid_of
from userservice.app import create_app
from userservice.db.engine import build_engine
from userservice.db.models import SigningKey
from userservice.services.keys import settings_grace_seconds
from userservice.settings import Settings

KID = r"[A-Za-z0-9_-]{16}"
WHEN = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
RELOAD = 1.0


def _created(stdout: str) -> dict[str, str]:
    return {alg: kid for kid, alg in re.findall(rf"^created ({KID}) (ES256|RS256)$", stdout, re.M)}


def _states(stdout: str) -> dict[str, str]:
    """kid -> state from `keys list` (kid, alg, created, state; one key a line)."""
    states: dict[str, str] = {}
    for line in stdout.splitlines():
        match = re.fullmatch(rf"({KID})  (ES256|RS256)  {WHEN}  (.+)", line)
        assert match, line
        states[match[1]] = match[3]
    return states


def test_rotate_on_a_fresh_install_migrates_and_creates_keys(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    rotated = run_cli(data_dir, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    created = _created(rotated.stdout)
    assert set(created) == {"ES256", "RS256"}
    assert len(rotated.stdout.splitlines()) == 2  # nothing to retire or remove yet
    listed = run_cli(data_dir, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    assert _states(listed.stdout) == dict.fromkeys(created.values(), "active")


def test_keys_needs_an_action(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "data", "keys")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_rotate_and_list_against_a_running_app(
    tmp_path: Path, db_url: str, make_settings: Callable[..., Settings]
) -> None:
    data_dir = tmp_path / "data"
    settings = make_settings(signing_key_reload_seconds=RELOAD)
    env = {"USERSERVICE_DATABASE_URL": db_url}
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        register(client, "ada@example.com")
        before = login(client, "ada@example.com")["access_token"]
        old_kid = kid_of(before)

        initial = run_cli(data_dir, "keys", "list", **env)
        assert initial.returncode == 0, initial.stderr
        old = _states(initial.stdout)
        assert old[old_kid] == "active" and list(old.values()) == ["active"] * 2

        rotated = run_cli(data_dir, "keys", "rotate", **env)
        assert rotated.returncode == 0, rotated.stderr
        created = _created(rotated.stdout)
        retiring = re.findall(rf"^retiring ({KID}) until ({WHEN})$", rotated.stdout, re.M)
        assert {kid for kid, _ in retiring} == set(old)
        assert len(rotated.stdout.splitlines()) == 4  # 2 created, 2 retiring
        until = dt.datetime.strptime(retiring[0][1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        expected_until = dt.datetime.now(dt.UTC) + dt.timedelta(
            seconds=settings_grace_seconds(Settings(_env_file=None))
        )
        assert abs((until - expected_until).total_seconds()) < 30

        # The app picks the new key up within its reload interval; the old token and
        # the old key stay good meanwhile.
        assert client.get("/users/me", headers=bearer(before)).status_code == 200
        time.sleep(RELOAD + 0.2)
        after = login(client, "ada@example.com")["access_token"]
        assert kid_of(after) == created["ES256"]
        jwks = {k["kid"] for k in client.get("/oauth/jwks").json()["keys"]}
        assert jwks == set(old) | set(created.values())
        assert client.get("/users/me", headers=bearer(before)).status_code == 200

        listed = _states(run_cli(data_dir, "keys", "list", **env).stdout)
        assert {kid: listed[kid] for kid in created.values()} == dict.fromkeys(
            created.values(), "active"
        )
        assert all(re.fullmatch(f"retiring until {WHEN}", listed[kid]) for kid in old)

        # Their grace passes (moved into the past rather than waited for).
        engine = build_engine(db_url)
        try:
            with engine.begin() as conn:
                conn.execute(
                    update(SigningKey)
                    .where(SigningKey.kid.in_(list(old)))
                    .values(retired_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
                )
        finally:
            engine.dispose()
        listed = _states(run_cli(data_dir, "keys", "list", **env).stdout)
        assert all(re.fullmatch(f"retired since {WHEN}", listed[kid]) for kid in old)
        time.sleep(RELOAD + 0.2)
        login(client, "ada@example.com")  # signing reloads the app's stale copy
        assert client.get("/users/me", headers=bearer(before)).status_code == 401
        jwks = {k["kid"] for k in client.get("/oauth/jwks").json()["keys"]}
        assert jwks == set(created.values())

        again = run_cli(data_dir, "keys", "rotate", **env)
        assert again.returncode == 0, again.stderr
        removed = re.findall(rf"^removed ({KID})$", again.stdout, re.M)
        assert set(removed) == set(old)
        final = _states(run_cli(data_dir, "keys", "list", **env).stdout)
        assert set(final) == set(created.values()) | set(_created(again.stdout).values())
