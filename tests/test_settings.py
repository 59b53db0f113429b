"""Settings from the environment: list syntax, address and origin checks, one-line
errors naming the variable for every bad value (exit status 2, as README says), and
README's settings table kept equal to the Settings class."""

from __future__ import annotations

import argparse
import importlib.util
import types
import typing
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
from pydantic import ValidationError

from tests.support.cli import assert_one_line_error, run_cli
from userservice import cli
from userservice.settings import Settings

ROOT = Path(__file__).resolve().parent.parent

# A bad value for each string setting; other types get one from their annotation.
BAD_TEXT = {
    "issuer": "ftp://id.example.com",
    "access_token_alg": "HS256",
    "login_limit_per_account": "ten a minute",
    "login_limit_per_ip": "10/fortnight",
    "key_encryption_secret": "too-short",
    "app_name": "",
    "mail_limit_per_address": "3 an hour",
    "mail_limit_per_ip": "30/eon",
    "second_factor_limit": "five per minute",
    "totp_issuer": "Acme: sign-in",
    "passkey_rp_name": "   ",
    "mail_url": "gopher://mail.example.com",
    "mail_from": "nobody",
    "redis_url": "memcached://cache.example.com",
    "metrics_host": "metrics.example.com",
    "metrics_token": "short",
    "metrics_port": "70000",
}
# Values checked where they are used, with their own one-line error.
CHECKED_ON_USE = {
    # build_engine names the unsupported driver (tests/test_cli.py).
    "database_url",
    # A directory that cannot be made is reported by the command that makes it.
    "data_dir",
}
# Every command, with the arguments it requires; a new command must be added here.
COMMANDS = [
    ["serve"],
    ["db", "upgrade"],
    ["create-admin", "root@example.com"],
    ["clients", "list"],
    ["keys", "list"],
    ["healthcheck"],
    ["prune"],
    ["backup", "copy.db"],
    ["factors", "reset", "root@example.com"],
    ["policy", "mfa"],
]


def _bad_value(name: str, annotation: Any) -> str:
    if name in BAD_TEXT:
        return BAD_TEXT[name]
    origin = get_origin(annotation)
    if origin is typing.Literal:
        return "not-one-of-them"
    if origin is list:
        return '["unclosed'
    if annotation is bool:
        return "maybe"
    if annotation in (int, float):
        return "twelve"
    raise AssertionError(f"no bad value for setting {name}: add one to BAD_TEXT")


def _bad_settings() -> list[tuple[str, str]]:
    return [
        (name, _bad_value(name, field.annotation))
        for name, field in Settings.model_fields.items()
        if name not in CHECKED_ON_USE
    ]


def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in [k for k in os.environ if k.startswith("USERSERVICE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("USERSERVICE_ENV_FILE", "/dev/null")
    monkeypatch.setenv("USERSERVICE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)


def _settings(**env: str) -> Settings:
    return Settings(_env_file=None, **env)  # type: ignore[arg-type]


# --- list settings: JSON or comma-separated -------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "https://app.example.com, http://127.0.0.1:8765",
        '["https://app.example.com", "http://127.0.0.1:8765"]',
    ],
)
def test_cors_origins_accept_json_or_commas(
    text: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv("USERSERVICE_CORS_ORIGINS", text)
    assert Settings(_env_file=None).cors_origins == [
        "https://app.example.com",
        "http://127.0.0.1:8765",
    ]


def test_an_empty_list_setting_is_an_empty_list(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv("USERSERVICE_TRUSTED_PROXIES", "")
    assert Settings(_env_file=None).trusted_proxies == []


def test_origins_are_written_as_browsers_send_them() -> None:
    """A12: Starlette compares the Origin header as a string; an origin in another
    spelling would silently never match."""
    settings = _settings(cors_origins="HTTPS://App.Example.com:443, http://[::1]:8080")
    assert settings.cors_origins == ["https://app.example.com", "http://[::1]:8080"]


@pytest.mark.parametrize(
    "origin",
    [
        "*",
        "app.example.com",
        "https://app.example.com/",
        "https://app.example.com/callback",
        "https://app.example.com?x=1",
        "https://user@app.example.com",
        "ftp://app.example.com",
        "https://app.example.com:99999",
        "https://",
    ],
)
def test_cors_origins_refuse_anything_but_an_origin(origin: str) -> None:
    """A12: CORS only for named origins; no wildcard."""
    with pytest.raises(ValidationError) as caught:
        _settings(cors_origins=f'["{origin}"]')
    assert "cors_origins" in str(caught.value)


def test_trusted_proxies_accept_addresses_networks_or_a_lone_star() -> None:
    settings = _settings(trusted_proxies="10.0.0.5, 10.1.0.0/16, ::1, fd00::/8")
    assert settings.trusted_proxies == ["10.0.0.5", "10.1.0.0/16", "::1", "fd00::/8"]
    assert _settings(trusted_proxies="*").trusted_proxies == ["*"]


@pytest.mark.parametrize(
    "value",
    ['["notanip"]', "localhost", "10.0.0.1/24", "10.0.0.300", "*, 10.0.0.1", "unix:/run/x"],
)
def test_trusted_proxies_refuse_what_is_not_an_address(value: str) -> None:
    """G6: an entry uvicorn would keep as a literal name trusts nobody, silently."""
    with pytest.raises(ValidationError) as caught:
        _settings(trusted_proxies=value)
    assert "trusted_proxies" in str(caught.value)


@pytest.mark.parametrize("token", ["é" * 30, "a" * 23 + "\u00a0" + "b", "a" * 20 + " " + "b" * 10])
def test_o1_metrics_token_must_be_printable_ascii(token: str) -> None:
    """O1: the presented header is compared as bytes; a token outside printable
    ASCII could never match, so it is refused at start, not silently useless."""
    with pytest.raises(ValidationError) as caught:
        _settings(metrics_token=token)
    assert "metrics_token" in str(caught.value)
    assert "printable ASCII" in str(caught.value)
    token = "A-z0-9_~!" * 3
    assert _settings(metrics_token=token).metrics_token is not None


def test_login_limits_must_parse() -> None:
    with pytest.raises(ValidationError):
        _settings(login_limit_per_ip="lots")
    assert _settings(login_limit_per_ip="20 per minute").login_limit_per_ip == "20 per minute"


# --- one line and exit status 2 for every bad value, from every command -----------------


def test_every_command_is_covered() -> None:
    parser = cli._parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {argv[0] for argv in COMMANDS} == set(sub.choices)


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda argv: " ".join(argv))
@pytest.mark.parametrize(("name", "value"), _bad_settings(), ids=lambda v: str(v)[:20])
def test_every_bad_setting_is_one_line_naming_it(
    name: str,
    value: str,
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _clean_env(monkeypatch, tmp_path)
    variable = f"USERSERVICE_{name.upper()}"
    monkeypatch.setenv(variable, value)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"userservice: error: bad setting {variable}: "), lines[0]
    assert not (tmp_path / "data").exists(), "the command went on with a bad setting"


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["db", "upgrade"], {"USERSERVICE_CORS_ORIGINS": "a,b"}),
        (["serve"], {"USERSERVICE_CORS_ORIGINS": "[a,b"}),
        (["serve", "--no-tls"], {"USERSERVICE_TRUSTED_PROXIES": '["notanip"]'}),
        (["db", "current"], {"USERSERVICE_LOG_LEVEL": "loud"}),
    ],
)
def test_the_real_command_prints_one_line_for_bad_settings(
    argv: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    result = run_cli(tmp_path / "data", *argv, **env)
    assert_one_line_error(result, *env)
    assert not (tmp_path / "data").exists()


def test_a_named_env_file_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.env"
    result = run_cli(tmp_path / "data", "db", "current", USERSERVICE_ENV_FILE=str(missing))
    assert_one_line_error(result, "USERSERVICE_ENV_FILE", str(missing))


def test_a_bad_data_dir_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_cli(tmp_path / "data", "db", "upgrade", USERSERVICE_DATA_DIR=str(blocker / "x"))
    assert_one_line_error(result, "USERSERVICE_DATA_DIR")


# --- README's table is the Settings class -----------------------------------------------


def _table_script() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(
        "settings_table", ROOT / "scripts" / "settings_table.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_setting_is_described() -> None:
    undescribed = [n for n, f in Settings.model_fields.items() if not f.description]
    assert not undescribed, f"add Field(description=...) to {undescribed}"


def test_readme_settings_table_matches_the_settings_class() -> None:
    script = _table_script()
    readme = (ROOT / "README.md").read_text()
    current = script.readme_table(readme)
    documented = set(script.variables(current))
    existing = {f"USERSERVICE_{name.upper()}" for name in Settings.model_fields}
    assert not documented - existing, (
        f"README names settings that do not exist: {documented - existing}"
    )
    assert not existing - documented, f"README misses settings: {existing - documented}"
    assert current == script.table(), "run `.venv/bin/python scripts/settings_table.py --write`"


def test_defaults_in_the_table_are_the_class_defaults() -> None:
    script = _table_script()
    rows = {row[0]: row[1] for row in script.rows()}
    assert rows["`USERSERVICE_ACCESS_TOKEN_TTL_SECONDS`"] == "`900`"
    assert rows["`USERSERVICE_REGISTRATION_OPEN`"] == "`true`"
    assert rows["`USERSERVICE_DATA_DIR`"] == "`./data`"
    assert rows["`USERSERVICE_CORS_ORIGINS`"] == "(none)"
    assert get_args(Settings.model_fields["log_level"].annotation)
