"""Pruning and refresh-token reuse detection (N6): a family's rows go only once the
whole family is over, so the replay of a rotated token of a live family is still
caught after a prune, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.support.oauth_clients import assert_oauth_error, refresh
from userservice.db.models import RefreshToken
from userservice.services.retention import prune_expired
from userservice.settings import Settings
from userservice.wiring import Services


def _rows(services: Services) -> int:
    with services.accounts.db.unit_of_work(read_only=True) as uow:
        return int(uow.scalar(select(func.count()).select_from(RefreshToken)) or 0)


def test_n6_a_replay_after_a_prune_still_revokes_the_live_family(
    client: TestClient, user: dict[str, Any], services: Services, settings: Settings
) -> None:
    rt1 = user["tokens"]["refresh_token"]
    second = refresh(client, rt1)
    assert second.status_code == 200, second.text
    rt2 = second.json()["refresh_token"]
    assert _rows(services) == 2  # rt1 rotated away (revoked), rt2 current

    counts = prune_expired(services.accounts.db, settings)
    assert counts is not None and counts["refresh_tokens"] == 0
    assert _rows(services) == 2

    # The replay is recognised and ends the family: rt2 no longer works.
    assert_oauth_error(refresh(client, rt1), 400, "invalid_grant")
    assert_oauth_error(refresh(client, rt2), 400, "invalid_grant")

    # Now wholly revoked, the family can never be used again: pruned as a whole.
    counts = prune_expired(services.accounts.db, settings)
    assert counts is not None and counts["refresh_tokens"] == 2
    assert _rows(services) == 0
    assert_oauth_error(refresh(client, rt1), 400, "invalid_grant")
