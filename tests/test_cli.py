"""The real `userservice` command as a subprocess: version, migrations, first admin
(E6), and one-line errors with exit status 2 for bad settings (no tracebacks)."""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.support.accounts import ISSUER, PASSWORD, bearer
from tests.support.cli import TIMEOUT, assert_one_line_error, command_env, run_cli
from tests.support.server import free_port
from userservice import __version__, cli
from userservice.app import create_app
from userservice.db import migrate
from userservice.healthcheck import LISTENER_FILE, healthz_url
from userservice.settings import Settings


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def _db_file(data_dir: Path) -> Path:
    return data_dir / "userservice.db"


def test_version_prints_the_package_version(data_dir: Path) -> None:
    result = run_cli(data_dir, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"userservice {__version__}"


def test_console_script_is_installed(data_dir: Path) -> None:
    script = Path(sys.executable).parent / "userservice"
    result = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert result.returncode == 0 and __version__ in result.stdout


def test_db_upgrade_then_current_reports_head(data_dir: Path) -> None:
    head = migrate.head_revision()
    upgraded = run_cli(data_dir, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert _db_file(data_dir).exists()
    current = run_cli(data_dir, "db", "current")
    assert current.returncode == 0, current.stderr
    assert current.stdout.strip() == f"current: {head} (head: {head})"


def test_db_downgrade_steps_back_one_revision(data_dir: Path) -> None:
    assert run_cli(data_dir, "db", "upgrade").returncode == 0
    result = run_cli(data_dir, "db", "downgrade")
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(_db_file(data_dir)) as conn:
        rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    head = migrate.head_revision()
    assert (head,) not in rows
    assert "current: " in result.stdout and f"(head: {head})" in result.stdout


def test_fresh_install_has_no_default_admin(data_dir: Path) -> None:
    """E6: after `db upgrade` the users table is empty: no default admin exists."""
    assert run_cli(data_dir, "db", "upgrade").returncode == 0
    with sqlite3.connect(_db_file(data_dir)) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)


def test_create_admin_has_no_password_option() -> None:
    """The password never goes on argv (visible in ps and /proc)."""
    parser = cli._parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    create_admin = subparsers.choices["create-admin"]
    options = [opt for action in create_admin._actions for opt in action.option_strings]
    dests = [action.dest for action in create_admin._actions]
    assert not [o for o in options if "pass" in o.lower()], options
    assert not [d for d in dests if "pass" in d.lower()], dests


def test_create_admin_from_stdin_can_log_in_and_reach_admin_routes(data_dir: Path) -> None:
    """E6: the first admin is made with the CLI, password on stdin."""
    result = run_cli(data_dir, "create-admin", "Boss@Example.com", stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert "boss@example.com" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr

    settings = Settings(
        _env_file=None,
        database_url=f"sqlite:///{_db_file(data_dir)}",
        data_dir=data_dir,
        issuer=ISSUER,
    )
    with TestClient(create_app(settings), base_url=ISSUER) as client:
        token = client.post(
            "/oauth/token",
            data={"grant_type": "password", "username": "boss@example.com", "password": PASSWORD},
        )
        assert token.status_code == 200, token.text
        users = client.get("/users", headers=bearer(token.json()["access_token"]))
        assert users.status_code == 200, users.text
        assert "boss@example.com" in users.text
        wrong = client.post(
            "/oauth/token",
            data={"grant_type": "password", "username": "boss@example.com", "password": "nope" * 3},
        )
        assert wrong.status_code in (400, 401)


def test_create_admin_refuses_a_weak_password(data_dir: Path) -> None:
    """E2: the CLI applies the same password policy as registration."""
    result = run_cli(data_dir, "create-admin", "weak@example.com", stdin="password\n")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    with sqlite3.connect(_db_file(data_dir)) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)


def test_bad_database_url_is_a_one_line_error(data_dir: Path) -> None:
    result = run_cli(data_dir, "db", "upgrade", USERSERVICE_DATABASE_URL="mysql://x")
    assert_one_line_error(result, "mysql")


def test_bad_setting_value_is_a_one_line_error(data_dir: Path) -> None:
    result = run_cli(data_dir, "db", "current", USERSERVICE_ACCESS_TOKEN_TTL_SECONDS="abc")
    assert_one_line_error(result, "USERSERVICE_ACCESS_TOKEN_TTL_SECONDS")


def test_env_file_named_by_userservice_env_file_is_read(data_dir: Path, tmp_path: Path) -> None:
    """README: USERSERVICE_ENV_FILE names the settings file; the CLI reads it too."""
    env_file = tmp_path / "custom.env"
    env_file.write_text("USERSERVICE_DATABASE_URL=mysql://from-env-file\n")
    result = run_cli(data_dir, "db", "current", USERSERVICE_ENV_FILE=str(env_file))
    assert_one_line_error(result, "mysql")


def test_serve_with_unreadable_certificate_is_a_one_line_error(data_dir: Path) -> None:
    result = run_cli(data_dir, "serve", "--cert", "/nonexistent", "--key", "/nonexistent")
    assert_one_line_error(result, "/nonexistent")


def test_serve_on_a_port_in_use_is_a_one_line_error(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(data_dir, "serve", "--host", "127.0.0.1", "--port", str(port))
    assert_one_line_error(result, str(port))


# --- `userservice healthcheck` and the Docker image that uses it ---------------------


@contextmanager
def _serving(data_dir: Path, *args: str) -> Iterator[int]:
    """`userservice serve` on a free port until the block ends; stopped by its PID."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "userservice", "serve", "--port", str(port), *args],
        env=command_env(data_dir),
        cwd=data_dir.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=TIMEOUT)


def _healthy_within(data_dir: Path, seconds: float) -> subprocess.CompletedProcess[str]:
    deadline = time.monotonic() + seconds
    while True:
        result = run_cli(data_dir, "healthcheck", "--timeout", "2")
        if result.returncode == 0 or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


def test_healthcheck_without_a_server_is_unhealthy(data_dir: Path) -> None:
    result = run_cli(data_dir, "healthcheck")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("userservice: unhealthy:"), lines


@pytest.mark.parametrize("tls", [True, False], ids=["https", "http"])
def test_healthcheck_follows_the_scheme_and_port_serve_uses(data_dir: Path, tls: bool) -> None:
    """The Docker HEALTHCHECK is `userservice healthcheck`: it must find the server
    on whatever port and scheme `serve` was given, and fail once it is gone."""
    with _serving(data_dir, *([] if tls else ["--no-tls"])) as port:
        result = _healthy_within(data_dir, TIMEOUT)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "healthy"
        recorded = (data_dir / LISTENER_FILE).read_text()
        assert f"{'https' if tls else 'http'}://127.0.0.1:{port}/healthz" in recorded
        assert stat.S_IMODE((data_dir / LISTENER_FILE).stat().st_mode) == 0o600
    gone = run_cli(data_dir, "healthcheck", "--timeout", "2")
    assert gone.returncode == 1, gone.stdout
    assert str(port) in gone.stderr


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "https://127.0.0.1:8443/healthz"),  # noqa: S104
        ("::", "https://[::1]:8443/healthz"),
        ("10.1.2.3", "https://10.1.2.3:8443/healthz"),
        ("fd00::1", "https://[fd00::1]:8443/healthz"),
    ],
)
def test_healthcheck_reaches_a_wildcard_listener_over_loopback(host: str, url: str) -> None:
    assert healthz_url(host, 8443, tls=True) == url


ROOT = Path(__file__).resolve().parent.parent


def _dockerfile() -> list[str]:
    # Continuation lines joined: one instruction per entry.
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def test_docker_healthcheck_is_the_cli_probe() -> None:
    checks = [line for line in _dockerfile() if line.startswith("HEALTHCHECK")]
    assert len(checks) == 1, checks
    command = json.loads(checks[0].split(" CMD ", 1)[1])
    assert command == ["userservice", "healthcheck"]


def test_docker_image_keeps_data_in_its_volume_and_serves_on_all_addresses() -> None:
    lines = _dockerfile()
    assert "USERSERVICE_DATA_DIR=/data" in " ".join(lines)
    assert 'VOLUME ["/data"]' in lines
    cmd = json.loads(next(line for line in lines if line.startswith("CMD "))[4:])
    assert cmd[:2] == ["userservice", "serve"] and "0.0.0.0" in cmd  # noqa: S104


def test_dockerignore_keeps_local_state_out_of_the_build() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", "data", ".git", ".env", "bench/results"} <= ignored
    copied = [line.split()[1:-1] for line in _dockerfile() if line.startswith("COPY ")]
    for sources in copied:
        assert not set(sources) & ignored, sources
