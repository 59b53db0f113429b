"""`userservice` command line: serve, db, create-admin, prune, backup, healthcheck,
factors, policy."""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import ValidationError
from pydantic_settings import SettingsError
from sqlalchemy.exc import SQLAlchemyError

from userservice import __version__
from userservice.settings import Settings

if TYPE_CHECKING:
    from userservice.db.backend import Database


class CliError(Exception):
    """A problem the operator can fix; printed as one line, exit status 2."""


def load_settings() -> Settings:
    """The settings every command runs with (the env file, then the environment);
    a bad value is a CliError naming its variable. Shared by the command modules."""
    env_file = os.environ.get("USERSERVICE_ENV_FILE")
    if env_file is not None and not os.path.exists(env_file):
        raise CliError(f"bad setting USERSERVICE_ENV_FILE: {env_file} does not exist")
    try:
        # Same file as the app factory (workers) reads, so both see one configuration.
        return Settings(_env_file=env_file or ".env")
    except ValidationError as exc:
        problems = (_setting_problem(e["loc"], e["msg"]) for e in exc.errors())
        raise CliError("; ".join(problems)) from None
    except SettingsError as exc:
        # A value the settings source could not even decode (before validation).
        field = re.search(r'field "(\w+)"', str(exc))
        raise CliError(
            _setting_problem((field[1] if field else "?",), "cannot be parsed")
        ) from None


def _setting_problem(loc: tuple[int | str, ...], message: str) -> str:
    # Named as the operator wrote it. pydantic's messages leave the value out, which
    # matters: it may be a password inside a URL.
    prefix = Settings.model_config.get("env_prefix", "")
    message = message.removeprefix("Value error, ").replace("\n", " ")
    return f"bad setting {prefix}{str(loc[0]).upper()}: {message}"


def open_database_of(settings: Settings) -> Database:
    """The configured database, its data directory made private first (S11); a
    bad URL is a CliError. Shared by the command modules."""
    from userservice.db.engine import DatabaseConfigError, build_engine, open_database
    from userservice.security.files import private_directory

    if not settings.database_url:
        try:
            private_directory(settings.data_dir)  # S11
        except OSError as exc:
            raise CliError(
                f"bad setting USERSERVICE_DATA_DIR: cannot create {settings.data_dir}: "
                f"{exc.strerror}"
            ) from None
    try:
        return open_database(build_engine(settings.resolved_database_url()))
    except DatabaseConfigError as exc:
        raise CliError(str(exc)) from None


def _cmd_db(args: argparse.Namespace) -> int:
    from userservice.db import migrate

    db = open_database_of(load_settings())
    try:
        if args.action == "upgrade":
            migrate.upgrade(db.engine, args.revision or "head")
        elif args.action == "downgrade":
            migrate.downgrade(db.engine, args.revision or "-1")
        print(f"current: {migrate.current_revision(db.engine)} (head: {migrate.head_revision()})")
    except SQLAlchemyError as exc:
        raise CliError(
            f"database error: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        ) from None
    finally:
        db.dispose()
    return 0


def _read_password(prompt: str) -> str:
    # Never from argv: command lines are visible to every user through ps/proc.
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("Repeat: ") != first:
            raise CliError("the passwords do not match")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _cmd_create_admin(args: argparse.Namespace) -> int:
    from userservice.app import build_account_service
    from userservice.db import migrate
    from userservice.errors import DomainError

    settings = load_settings()
    db = open_database_of(settings)
    try:
        migrate.upgrade(db.engine)
        password = _read_password(f"Password for {args.email}: ")
        user = build_account_service(settings, db).register(
            args.email, password, args.display_name, admin=True
        )
    except DomainError as exc:
        raise CliError(exc.detail) from None
    except SQLAlchemyError as exc:
        raise CliError(f"database error: {type(exc).__name__}") from None
    finally:
        db.dispose()
    print(f"created admin {user.email} ({user.id})")
    return 0


def _cmd_prune(args: argparse.Namespace) -> int:
    from userservice.db import migrate
    from userservice.services.retention import prune_expired

    settings = load_settings()
    db = open_database_of(settings)
    try:
        # Deleting by the rules of one schema from another could delete the wrong rows.
        current, head = migrate.current_revision(db.engine), migrate.head_revision()
        if current != head:
            raise CliError(
                f"the database schema is at {current or 'no revision'}, not {head}: "
                "run `userservice db upgrade`"
            )
        counts = prune_expired(db, settings)
    except SQLAlchemyError as exc:
        raise CliError(f"database error: {type(exc).__name__}") from None
    finally:
        db.dispose()
    if counts is None:
        # Not an error: what this run would delete, the other pass deletes (N6).
        print("another process is pruning this database now: nothing done")
        return 0
    for kind, count in counts.items():
        print(f"{kind}: {count} deleted")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from userservice.serve import serve

    return serve(load_settings(), args)


def _cmd_healthcheck(args: argparse.Namespace) -> int:
    from userservice.healthcheck import probe

    problem = probe(load_settings().data_dir, timeout=args.timeout)
    if problem is not None:
        # Exit status 1 is "unhealthy" to Docker's HEALTHCHECK.
        print(f"userservice: unhealthy: {problem}", file=sys.stderr)
        return 1
    print("healthy")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="userservice", description=__doc__)
    parser.add_argument("--version", action="version", version=f"userservice {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate, create keys, and serve HTTPS")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8443)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--cert", help="PEM certificate chain (default: one from the local CA in DATA_DIR/tls)"
    )
    serve.add_argument("--key", help="PEM private key for --cert")
    serve.add_argument(
        "--no-tls",
        action="store_true",
        help="plain HTTP, for running behind a TLS-terminating proxy",
    )
    serve.add_argument("--no-migrate", action="store_true", help="do not upgrade the schema")
    serve.set_defaults(func=_cmd_serve)

    db = sub.add_parser("db", help="database schema migrations")
    db.add_argument("action", choices=["upgrade", "downgrade", "current"])
    db.add_argument("revision", nargs="?", help="target (default: head / -1)")
    db.set_defaults(func=_cmd_db)

    admin = sub.add_parser("create-admin", help="create an administrator (password on stdin)")
    admin.add_argument("email")
    admin.add_argument("--display-name", default=None)
    admin.set_defaults(func=_cmd_create_admin)

    prune = sub.add_parser(
        "prune",
        help="delete expired sessions, links, codes and tokens, settled mail, and audit "
        "events older than USERSERVICE_AUDIT_RETENTION_DAYS",
    )
    prune.set_defaults(func=_cmd_prune)

    health = sub.add_parser(
        "healthcheck", help="exit 0 if the local `serve` answers /healthz (Docker HEALTHCHECK)"
    )
    health.add_argument("--timeout", type=float, default=4.0, help="seconds (default 4)")
    health.set_defaults(func=_cmd_healthcheck)
    from userservice.cli_keys import register as register_keys  # imports this module

    register_keys(sub)
    from userservice.cli_clients import register as register_clients  # imports this module

    register_clients(sub)
    from userservice.cli_backup import register as register_backup  # imports this module

    register_backup(sub)
    from userservice.cli_factors import register as register_factors  # imports this module

    register_factors(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except CliError as exc:
        print(f"userservice: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    os._exit(main())
