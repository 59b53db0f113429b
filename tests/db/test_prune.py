"""What `userservice prune` deletes, on SQLite and PostgreSQL: every row past its
purpose, and nothing still in use; in batches, however many there are."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.support.retention import KEYS, seed, stored_keys
from tests.support.storage import add_user
from userservice.db import prune as prune_module
from userservice.db.backend import Database
from userservice.db.models import RevokedAccessToken
from userservice.services.retention import cutoffs, prune_expired
from userservice.settings import Settings


def settings(db_url: str, tmp_path: Path, days: int) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=db_url, data_dir=tmp_path, audit_retention_days=days
    )


def test_prune_deletes_what_is_past_its_purpose_and_keeps_what_is_live(
    database: Database, db_url: str, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    keys = seed(database, now, retention_days=30)
    before = {kind: stored_keys(database, kind) for kind in KEYS}

    counts = prune_expired(database, settings(db_url, tmp_path, 30))

    assert counts is not None
    for kind, (gone, kept) in keys.items():
        assert gone and kept, kind  # the test has both sides of each rule
        assert stored_keys(database, kind) == before[kind] - gone, kind
        assert kept <= stored_keys(database, kind), kind
        assert counts[kind] == len(gone), kind
    assert set(counts) == set(KEYS)
    # Nothing is left to prune: a second run deletes nothing.
    again = prune_expired(database, settings(db_url, tmp_path, 30))
    assert again is not None and set(again.values()) == {0}


def test_the_audit_retention_is_the_setting(db_url: str, tmp_path: Path) -> None:
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    chosen = cutoffs(settings(db_url, tmp_path, 90), now)
    assert chosen.audit_before == now - dt.timedelta(days=90)
    assert chosen.settled_mail_before == now - dt.timedelta(days=1)
    assert chosen.now == now


def test_a_backlog_is_deleted_in_batches(
    database: Database, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prune_module, "BATCH", 3)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    add_user(database)
    with database.unit_of_work() as uow:
        uow.add_all(RevokedAccessToken(jti=f"j{n}", expires_at=past) for n in range(7))
    # A live row among them: each batch starts after the last key of the one before.
    with database.unit_of_work() as uow:
        uow.add(RevokedAccessToken(jti="j3-live", expires_at=past + dt.timedelta(days=2)))
    batches: list[tuple[int, object]] = []
    original = prune_module._batch

    def counted(*args: object) -> tuple[int, object]:
        outcome = original(*args)  # type: ignore[arg-type]
        batches.append(outcome)
        return outcome

    monkeypatch.setattr(prune_module, "_batch", counted)
    counts = prune_expired(database, settings(db_url, tmp_path, 30))
    assert counts is not None and counts["revoked_access_tokens"] == 7
    assert stored_keys(database, "revoked_access_tokens") == {"j3-live"}
    # 3 + 3 + 1 for the deny list, each batch after the last key of the one before;
    # one empty batch for each other kind.
    deny_list = [outcome for outcome in batches if outcome[0]]
    assert deny_list == [(3, "j2"), (3, "j5"), (1, None)]
    assert len(batches) == 3 + len(KEYS) - 1


def test_a_stopping_pass_ends_between_batches(
    database: Database, db_url: str, tmp_path: Path
) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    add_user(database)
    with database.unit_of_work() as uow:
        uow.add(RevokedAccessToken(jti="j", expires_at=past))
    counts = prune_expired(database, settings(db_url, tmp_path, 30), stopping=lambda: True)
    assert counts is not None and set(counts.values()) == {0}
    assert stored_keys(database, "revoked_access_tokens") == {"j"}
