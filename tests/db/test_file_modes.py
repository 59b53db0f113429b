"""S11: the data directory is 0700 and the SQLite files in it 0600, whoever's
umask made them: the database holds password hashes and the signing keys."""

from __future__ import annotations

import stat
from pathlib import Path

from fastapi.testclient import TestClient

from tests.support.accounts import ISSUER, register
from tests.support.cli import run_cli
from userservice.app import create_app
from userservice.settings import Settings

SIDE_FILES = ("userservice.db-wal", "userservice.db-shm", "userservice.db.writer-lock")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _files(data_dir: Path) -> dict[str, int]:
    return {p.name: _mode(p) for p in data_dir.iterdir() if p.name.startswith("userservice.db")}


def test_db_upgrade_makes_a_private_data_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = run_cli(data_dir, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert _mode(data_dir) == 0o700
    files = _files(data_dir)
    assert "userservice.db" in files
    assert files == dict.fromkeys(files, 0o600)


def test_a_served_request_leaves_every_database_file_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert run_cli(data_dir, "db", "upgrade").returncode == 0
    settings = Settings(_env_file=None, data_dir=data_dir, issuer=ISSUER)
    with TestClient(create_app(settings), base_url=ISSUER) as client:
        register(client, "ada@example.com")  # a write: WAL, shared memory, writer lock
        files = _files(data_dir)
        assert set(SIDE_FILES) <= set(files), files
        assert files == dict.fromkeys(files, 0o600)
    assert _mode(data_dir) == 0o700


def test_looser_modes_from_before_are_tightened_and_logged(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert run_cli(data_dir, "db", "upgrade").returncode == 0
    data_dir.chmod(0o755)
    (data_dir / "userservice.db").chmod(0o644)
    (data_dir / "userservice.db.writer-lock").touch(mode=0o666)
    (data_dir / "userservice.db.writer-lock").chmod(0o666)
    result = run_cli(data_dir, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert _mode(data_dir) == 0o700
    files = _files(data_dir)
    assert files == dict.fromkeys(files, 0o600)
    assert str(data_dir) in result.stderr and "0755" in result.stderr, result.stderr
    assert "userservice.db" in result.stderr and "0644" in result.stderr, result.stderr
