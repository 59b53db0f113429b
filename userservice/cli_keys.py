"""`userservice keys rotate|list`: signing-key rotation from the command line."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from userservice.cli import CliError, load_settings, open_database_of
from userservice.services.at_rest import AtRestError
from userservice.services.key_schedule import KeyInfo
from userservice.services.keys import KeyStore, Rotation

ACTOR = "cli"


def register(sub: Any) -> None:
    """Add the `keys` command to the top-level subparsers (`sub`)."""
    keys = sub.add_parser("keys", help="signing keys: rotate, list")
    actions = keys.add_subparsers(dest="keys_action", required=True)
    rotate = actions.add_parser(
        "rotate",
        help="add a new key per algorithm, published at once, signing once cached key "
        "sets have expired; old keys verify until their tokens expire",
    )
    rotate.set_defaults(func=_cmd_rotate)
    listing = actions.add_parser(
        "list", help="kid, algorithm, creation time, state, signing and verification times"
    )
    listing.set_defaults(func=_cmd_list)


def _with_store(action: Callable[[KeyStore], int]) -> int:
    from userservice.db import migrate

    settings = load_settings()
    db = open_database_of(settings)
    try:
        # Like create-admin: a fresh install can rotate before the first `serve`.
        migrate.upgrade(db.engine)
        store = KeyStore.for_settings(db, settings)
        store.load()  # S11: a key that does not open stops here, before any change
        return action(store)
    except AtRestError as exc:
        raise CliError(str(exc)) from None
    except SQLAlchemyError as exc:
        raise CliError(f"database error: {type(exc).__name__}") from None
    finally:
        db.dispose()


def _when(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rotation_lines(rotation: Rotation) -> list[str]:
    lines = [f"created {k.kid} {k.alg} {_signing(k)}" for k in rotation.created]
    lines += [f"retiring {k.kid} {_signing(k)}, {_verifying(k)}" for k in rotation.retired]
    lines += [f"removed {kid}" for kid in rotation.removed]
    return lines


def _signing(info: KeyInfo) -> str:
    if info.signs_from is None:
        return "signs after the key before it is rotated out"
    start = f"signs from {_when(info.signs_from)}"
    return start if info.signs_until is None else f"{start} until {_when(info.signs_until)}"


def _verifying(info: KeyInfo) -> str:
    return (
        "verifies until rotated out"
        if info.until is None
        else f"verifies until {_when(info.until)}"
    )


def info_line(info: KeyInfo) -> str:
    """kid, alg, created, state, then when it signs and until when it verifies."""
    state = f"{info.state}  {_signing(info)}, {_verifying(info)}"
    return f"{info.kid}  {info.alg}  {_when(info.created_at)}  {state}"


def _rotate(store: KeyStore) -> int:
    # Audited like the admin API's rotation, naming the tool instead of an account.
    for line in rotation_lines(store.rotate(actor=ACTOR)):
        print(line)
    return 0


def _list(store: KeyStore) -> int:
    for info in store.describe():
        print(info_line(info))
    return 0


def _cmd_rotate(args: argparse.Namespace) -> int:
    return _with_store(_rotate)


def _cmd_list(args: argparse.Namespace) -> int:
    return _with_store(_list)
