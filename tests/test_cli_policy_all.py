"""`userservice policy mfa all` as a real subprocess on the app's database (M13): the
rule for every user, audited as done by the command line; a plain user without a
factor is signed out at once and answered `mfa_required`; the help says what `all`
stops; a wrong spelling is argparse's refusal."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, bearer, login, register
from tests.support.callers import basic_headers
from tests.support.cli import run_cli
from tests.support.factor_api import events
from tests.support.oauth_clients import assert_oauth_error, password_form
from userservice.app import create_app
from userservice.settings import Settings
from userservice.wiring import wired

ADA = "ada@example.com"


def test_m13_the_cli_sets_all_and_a_plain_user_is_out_at_once(
    tmp_path: Path, db_url: str, make_settings: Callable[..., Settings]
) -> None:
    app = create_app(make_settings())
    env = {"USERSERVICE_DATABASE_URL": db_url}
    with TestClient(app, base_url="https://testserver") as client:
        register(client, ADA)
        token = bearer(login(client, ADA)["access_token"])
        assert client.get("/users/me", headers=token).status_code == 200
        done = run_cli(tmp_path, "policy", "mfa", "all", **env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "mfa required for: all"
        assert run_cli(tmp_path, "policy", "mfa", **env).stdout.strip() == "mfa required for: all"
        assert wired(app).mfa_policy.required_for() == "all"
        assert client.get("/users/me", headers=token).status_code == 401
        refused = client.get("/users/me", headers=basic_headers(ADA))
        assert refused.json()["code"] == "mfa_required"
        assert_oauth_error(
            client.post("/oauth/token", data=password_form(ADA, PASSWORD)), 400, "mfa_required"
        )
        [changed] = events(app, "policy.mfa_changed")
        assert json.loads(changed.details) == {"before": "none", "after": "all", "via": "cli"}
        [out] = events(app, "policy.mfa_signed_out")
        details = json.loads(out.details)
        assert (out.actor_id, details["via"], details["rule"]) == (None, "cli", "all")


def test_m13_the_help_names_all_and_what_it_stops(tmp_path: Path) -> None:
    shown = run_cli(tmp_path / "data", "policy", "mfa", "--help")
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert "{none,admins,all}" in text
    assert "password grant" in text and "PKCE" in text and "mfa_required" in text
    wrong = run_cli(tmp_path / "data", "policy", "mfa", "ALL")
    assert wrong.returncode == 2 and "invalid choice" in wrong.stderr
