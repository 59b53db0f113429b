"""`userservice keys rotate|list` as real subprocesses, against a running app on the
same database: the app publishes the new keys at once and signs with them from the
time the rotation gave (N4), old tokens keep working, and old keys leave JWKS (and
are deleted) only once their grace has passed (N5)."""

from __future__ import annotations

import base64
import datetime as dt
import json
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
from userservice.security.jwt import LEEWAY_SECONDS
from userservice.services.key_schedule import settings_grace_seconds
from userservice.settings import Settings

KID = r"[A-Za-z0-9_-]{16}"
WHEN = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
RELOAD = 1.0
# The rotating command's settings: its new keys sign JWKS_MAX_AGE + RELOAD seconds
# after the rotation (N4), instead of five minutes.
FAST = {
    "USERSERVICE_JWKS_MAX_AGE_SECONDS": "1",
    "USERSERVICE_SIGNING_KEY_RELOAD_SECONDS": str(RELOAD),
}


def _at(when: str) -> dt.datetime:
    return dt.datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def _created(stdout: str) -> dict[str, tuple[str, str]]:
    """alg -> (kid, when it signs from)."""
    found = re.findall(rf"^created ({KID}) (ES256|RS256) signs from ({WHEN})$", stdout, re.M)
    return {alg: (kid, when) for kid, alg, when in found}


def _states(stdout: str) -> dict[str, str]:
    """kid -> state from `keys list` (kid, alg, created, state, times; one key a line)."""
    states: dict[str, str] = {}
    for line in stdout.splitlines():
        match = re.fullmatch(rf"({KID})  (ES256|RS256)  {WHEN}  (\w+)  (signs .+)", line)
        assert match, line
        states[match[1]] = match[3]
    return states


def _iat(token: str) -> int:
    payload = token.split(".")[1]
    iat: int = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["iat"]
    return iat


def test_rotate_on_a_fresh_install_migrates_and_creates_keys(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    rotated = run_cli(data_dir, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    created = _created(rotated.stdout)
    assert set(created) == {"ES256", "RS256"}
    assert len(rotated.stdout.splitlines()) == 2  # nothing to retire or remove yet
    listed = run_cli(data_dir, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    # The very first keys sign at once: no relying party can hold an older key set.
    assert _states(listed.stdout) == {kid: "active" for kid, _ in created.values()}
    assert "verifies until rotated out" in listed.stdout


def test_keys_needs_an_action(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "data", "keys")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_rotate_and_list_against_a_running_app(
    tmp_path: Path, db_url: str, make_settings: Callable[..., Settings]
) -> None:
    data_dir = tmp_path / "data"
    settings = make_settings(signing_key_reload_seconds=RELOAD)
    env = {"USERSERVICE_DATABASE_URL": db_url, **FAST}
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
        new_kids = {kid for kid, _ in created.values()}
        retiring = re.findall(
            rf"^retiring ({KID}) signs from {WHEN} until ({WHEN}), verifies until ({WHEN})$",
            rotated.stdout,
            re.M,
        )
        assert {kid for kid, _, _ in retiring} == set(old)
        assert len(rotated.stdout.splitlines()) == 4  # 2 created, 2 retiring
        # The old keys sign until the new ones start, then verify through their grace.
        starts = _at(created["ES256"][1])
        assert {_at(until) for _, until, _ in retiring} == {starts}
        grace = settings_grace_seconds(Settings(_env_file=None, signing_key_reload_seconds=RELOAD))
        assert {_at(end) for _, _, end in retiring} == {starts + dt.timedelta(seconds=grace)}
        publication = 1 + RELOAD + LEEWAY_SECONDS
        assert abs((starts - dt.datetime.now(dt.UTC)).total_seconds() - publication) < 5

        # The app publishes the new keys within its reload interval, and signs with
        # them only from the time the rotation gave; the old token stays good.
        assert client.get("/users/me", headers=bearer(before)).status_code == 200
        deadline = time.monotonic() + RELOAD + 5
        while not new_kids <= _jwks(client):
            assert time.monotonic() < deadline, "new keys not published"
            time.sleep(0.05)
        while True:
            token = login(client, "ada@example.com")["access_token"]
            if kid_of(token) != old_kid:
                break
            assert _iat(token) <= starts.timestamp()
            assert time.monotonic() < deadline + publication, "new key never signed"
            time.sleep(0.1)
        assert kid_of(token) == created["ES256"][0]
        assert _iat(token) >= starts.timestamp()
        assert _jwks(client) == set(old) | new_kids
        assert client.get("/users/me", headers=bearer(before)).status_code == 200

        listed = _states(run_cli(data_dir, "keys", "list", **env).stdout)
        assert {kid: listed[kid] for kid in new_kids} == dict.fromkeys(new_kids, "active")
        assert {listed[kid] for kid in old} == {"retiring"}

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
        assert {listed[kid] for kid in old} == {"retired"}
        # Within its reload interval the app drops them from JWKS and refuses their tokens.
        deadline = time.monotonic() + RELOAD + 5
        while _jwks(client) != new_kids:
            assert time.monotonic() < deadline, "retired keys still published"
            time.sleep(0.05)
        assert client.get("/users/me", headers=bearer(before)).status_code == 401

        again = run_cli(data_dir, "keys", "rotate", **env)
        assert again.returncode == 0, again.stderr
        removed = re.findall(rf"^removed ({KID})$", again.stdout, re.M)
        assert set(removed) == set(old)
        final = _states(run_cli(data_dir, "keys", "list", **env).stdout)
        assert set(final) == new_kids | {kid for kid, _ in _created(again.stdout).values()}


def _jwks(client: TestClient) -> set[str]:
    return {k["kid"] for k in client.get("/oauth/jwks").json()["keys"]}
