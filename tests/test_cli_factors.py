"""`userservice factors reset EMAIL` and `userservice policy mfa` as real
subprocesses on the app's database: the way back in for an administrator who lost
the phone while administrators must have a second factor (M8), audited as done by
the command line, mailed, every token ended."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from tests.support.accounts import make_admin
from tests.support.callers import basic_headers, first_party_headers
from tests.support.cli import assert_one_line_error, run_cli
from tests.support.factor_api import enrol, events, fresh_token, mails
from tests.support.factors import verified
from tests.support.oauth_clients import jwt_claims
from userservice.app import create_app
from userservice.settings import Settings
from userservice.wiring import wired

ROOT = "root@example.com"


def test_m8_the_cli_resets_an_admins_factors_under_the_admins_policy(
    tmp_path: Path, db_url: str, make_settings: Callable[..., Settings]
) -> None:
    app = create_app(make_settings())
    env = {"USERSERVICE_DATABASE_URL": db_url}
    with TestClient(app, base_url="https://testserver") as client:
        make_admin(app, ROOT)
        verified(app, ROOT)
        headers = first_party_headers(client, ROOT)
        enrol(client, headers)
        token = fresh_token(app, headers)
        set_policy = run_cli(tmp_path, "policy", "mfa", "admins", **env)
        assert set_policy.returncode == 0, set_policy.stderr
        assert set_policy.stdout.strip() == "mfa required for: admins"
        assert run_cli(tmp_path, "policy", "mfa", **env).stdout.strip() == (
            "mfa required for: admins"
        )
        time.sleep(1.1)  # JWT iat counts whole seconds (see test_factors_api)

        reset = run_cli(tmp_path, "factors", "reset", ROOT.upper(), **env)
        assert reset.returncode == 0, reset.stderr
        assert reset.stdout.startswith(f"reset the second factors of {ROOT} (")
        assert client.get("/users/me", headers=token).status_code == 401
        root_id = uuid.UUID(jwt_claims(token["Authorization"][7:])["sub"])
        assert wired(app).factors.summary(root_id).enrolled is False
        # Still an administrator without a factor under `admins`: the password
        # alone gets mfa_required until the next sign-in sets one up.
        refused = client.get("/users/me", headers=basic_headers(ROOT))
        assert refused.json()["code"] == "mfa_required"
        [event] = events(app, "factors.reset")
        assert event.actor_id is None and json.loads(event.details)["via"] == "cli"
        [changed] = events(app, "policy.mfa_changed")
        assert json.loads(changed.details)["via"] == "cli"
        assert mails(app, ROOT)[-1] == "factors_reset"


def test_unknown_users_and_values_are_one_line_errors(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert_one_line_error(run_cli(data_dir, "factors", "reset", "nobody@example.com"), "nobody")
    assert_one_line_error(run_cli(data_dir, "factors", "reset", "not an address"), "no user")
    bad = run_cli(data_dir, "policy", "mfa", "everyone")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
