"""C8 under concurrency, on PostgreSQL: a password change racing a refresh rotation
still ends the family. Under READ COMMITTED, the change's revoking UPDATE takes its
snapshot when it starts; had it started while the rotation's successor was still
uncommitted, the successor would stay alive (a thief refreshing in a loop would
keep access). It cannot: inserting the successor takes a KEY SHARE lock on the
user's row (its foreign key), which the change's SELECT ... FOR UPDATE of that row
waits for, so the change's statements all start after the successor exists. This
test holds a rotation open and checks that order."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD
from userservice.db.postgres.backend import compile_pg, successor_cte
from userservice.db.refresh_tokens import ROTATION
from userservice.security.secrets import digest, new_token
from userservice.services.accounts import ProfileChanges
from userservice.wiring import Services

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
FRONTEND = "userservice-frontend"


def _waiting_on_a_lock(conninfo: str) -> bool:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ).fetchone()
    return bool(row and row[0])


def test_c8_a_password_change_ends_the_successor_of_a_concurrent_rotation(
    db_url: str, client: TestClient, services: Services, user: dict[str, Any]
) -> None:
    conninfo = db_url.replace("postgresql+psycopg://", "postgresql://")
    successor = new_token()
    now = dt.datetime.now(dt.UTC)
    rotation = psycopg.connect(conninfo)  # one transaction, held open below
    try:
        claimed = rotation.execute(
            compile_pg(successor_cte(ROTATION)),
            {
                "token_digest": digest(user["tokens"]["refresh_token"]),
                "successor_digest": digest(successor),
                "client_id": FRONTEND,
                "requested": json.dumps([]),
                "now": now,
                "idle_cutoff": now - dt.timedelta(days=1),
            },
        ).fetchall()
        assert len(claimed) == 1  # the rotation went through; not yet committed

        def change_password() -> None:
            services.accounts.update_profile(
                uuid.UUID(user["id"]),
                ProfileChanges(
                    new_password="another horse battery staple", current_password=PASSWORD
                ),
            )

        changer = threading.Thread(target=change_password)
        changer.start()
        deadline = time.monotonic() + 20
        while not _waiting_on_a_lock(conninfo):
            assert time.monotonic() < deadline, "the password change never waited"
            time.sleep(0.05)
        rotation.commit()
        changer.join(timeout=30)
        assert not changer.is_alive()
    finally:
        rotation.close()

    refused = client.post(
        "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": successor}
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_grant"
