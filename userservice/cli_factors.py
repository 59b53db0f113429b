"""`userservice factors reset EMAIL` and `userservice policy mfa [none|admins|all]`:
the way back in for an administrator who lost the phone and the recovery codes,
when administrators must sign in with a second factor and no other one can reset
theirs (M8), and the rule itself (M13). Whoever runs it holds the server, which is
the trust it rests on."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from userservice.cli import CliError, load_settings, open_database_of
from userservice.errors import DomainError, NotFound
from userservice.services.mfa_policy import REQUIRED_FOR
from userservice.wiring import Services

# Audited like the admin API's reset, naming the tool instead of an account.
ACTOR = "cli"


def register(sub: Any) -> None:
    """Add the `factors` and `policy` commands to the top-level subparsers (`sub`)."""
    factors = sub.add_parser("factors", help="second factors: reset a user's")
    actions = factors.add_subparsers(dest="factors_action", required=True)
    reset = actions.add_parser(
        "reset",
        help="remove the user's authenticator app, passkeys and recovery codes, end every "
        "session and token of theirs, and mail them a notice",
    )
    reset.add_argument("email")
    reset.set_defaults(func=_cmd_reset)

    policy = sub.add_parser("policy", help="sign-in policies")
    rules = policy.add_subparsers(dest="policy_name", required=True)
    mfa = rules.add_parser(
        "mfa",
        help="who must sign in with a second factor; prints it, or sets it",
        description="none: each user chooses. admins: every administrator. all: every "
        "user. Whoever the rule covers and has no second factor is signed out at once "
        "and sets one up at the next sign-in. The password grant and HTTP Basic answer "
        "mfa_required to everyone the rule covers: under `all` they stop for every user, "
        "so first-party frontends must use the authorization code flow with PKCE.",
    )
    mfa.add_argument("required_for", nargs="?", choices=REQUIRED_FOR)
    mfa.set_defaults(func=_cmd_mfa)


def _with_services(action: Callable[[Services], str]) -> int:
    from userservice.app_services import build_services
    from userservice.db import migrate

    settings = load_settings()
    db = open_database_of(settings)
    try:
        migrate.upgrade(db.engine)
        print(action(build_services(settings, db)))
        return 0
    except DomainError as exc:
        raise CliError(exc.detail) from None
    except SQLAlchemyError as exc:
        raise CliError(f"database error: {type(exc).__name__}") from None
    finally:
        db.dispose()


def _reset(email: str, svc: Services) -> str:
    try:
        user = svc.factors.reset_by_email(email, via=ACTOR)
    except NotFound:
        raise CliError(f"no user {email}") from None
    return f"reset the second factors of {user.email} ({user.id}); every session ended"


def _cmd_reset(args: argparse.Namespace) -> int:
    email: str = args.email
    return _with_services(lambda svc: _reset(email, svc))


def _mfa(value: str | None, svc: Services) -> str:
    if value is not None:
        svc.mfa_policy.set_required_for(value, actor_id=None, ip=None, via=ACTOR)
    return f"mfa required for: {svc.mfa_policy.required_for()}"


def _cmd_mfa(args: argparse.Namespace) -> int:
    value: str | None = args.required_for
    return _with_services(lambda svc: _mfa(value, svc))
