"""`userservice clients create|update|list|show|rotate-secret|delete`: the OAuth client
registry from the command line. Output is JSON on stdout."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from userservice.cli import CliError, load_settings, open_database_of
from userservice.errors import DomainError
from userservice.services.client_metadata import AUTH_METHODS, UNSET, ClientChanges
from userservice.services.clients import ClientRecord, ClientService, IssuedClient

ACTOR = "cli"


def register(sub: Any) -> None:
    """Add the `clients` command to the top-level subparsers (`sub`)."""
    clients = sub.add_parser("clients", help="OAuth clients: create, list, show, …")
    actions = clients.add_subparsers(dest="clients_action", required=True)

    create = actions.add_parser("create", help="register a client; prints its secret once")
    create.add_argument("--name", required=True, help="client_name, shown on consent")
    _metadata_options(create)
    create.set_defaults(func=_cmd_create)

    update = actions.add_parser(
        "update", help="change the given fields; a list given replaces the stored one"
    )
    update.add_argument("client_id")
    update.add_argument("--name", help="client_name, shown on consent")
    _metadata_options(update)
    update.set_defaults(func=_cmd_update)

    actions.add_parser("list", help="every client (never secrets)").set_defaults(func=_cmd_list)
    for name, func, text in (
        ("show", _cmd_show, "one client (never its secret)"),
        ("rotate-secret", _cmd_rotate, "new secret, printed once; the old one stops working"),
        ("delete", _cmd_delete, "delete a client and its refresh tokens"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("client_id")
        action.set_defaults(func=func)


def _metadata_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redirect-uri",
        action="append",
        dest="redirect_uris",
        help="exact redirect URI (https, or http://127.0.0.1 / http://[::1]); repeatable",
    )
    parser.add_argument(
        "--post-logout-redirect-uri",
        action="append",
        dest="post_logout_redirect_uris",
        help="repeatable",
    )
    parser.add_argument(
        "--grant-type",
        action="append",
        dest="grant_types",
        help="authorization_code (default), refresh_token, client_credentials, password",
    )
    parser.add_argument("--scope", help='space-separated (default "openid profile email")')
    parser.add_argument(
        "--auth-method", choices=AUTH_METHODS, help="default client_secret_basic; none = public"
    )
    parser.add_argument(
        "--first-party", action=argparse.BooleanOptionalAction, help="our own frontend"
    )
    parser.add_argument(
        "--resource-server",
        action=argparse.BooleanOptionalAction,
        help="may introspect every client's access tokens (confidential clients only)",
    )
    parser.add_argument("--logo-uri")
    parser.add_argument("--client-uri")


def _changes(args: argparse.Namespace) -> ClientChanges:
    """The options given on the command line; those left out are UNSET."""

    def given(value: Any) -> Any:
        return UNSET if value is None else value

    return ClientChanges(
        client_name=given(args.name),
        redirect_uris=given(args.redirect_uris),
        post_logout_redirect_uris=given(args.post_logout_redirect_uris),
        grant_types=given(args.grant_types),
        scope=given(args.scope),
        token_endpoint_auth_method=given(args.auth_method),
        first_party=given(args.first_party),
        resource_server=given(args.resource_server),
        logo_uri=given(args.logo_uri),
        client_uri=given(args.client_uri),
    )


def _with_service(action: Callable[[ClientService], object]) -> int:
    from userservice.db import migrate

    db = open_database_of(load_settings())
    try:
        # Like create-admin: a fresh install can register clients before `serve`.
        migrate.upgrade(db.engine)
        result = action(ClientService(db))
    except DomainError as exc:
        raise CliError(exc.detail.replace("\n", " ")) from None
    except SQLAlchemyError as exc:
        raise CliError(f"database error: {type(exc).__name__}") from None
    finally:
        db.dispose()
    print(json.dumps(result, indent=2))
    return 0


def client_json(record: ClientRecord) -> dict[str, Any]:
    meta = record.metadata
    return {
        "client_id": record.client_id,
        "client_id_issued_at": record.client_id_issued_at,
        "client_name": meta.client_name,
        "client_type": record.client_type,
        "redirect_uris": meta.redirect_uris,
        "post_logout_redirect_uris": meta.post_logout_redirect_uris,
        "grant_types": meta.grant_types,
        "response_types": meta.response_types,
        "token_endpoint_auth_method": meta.token_endpoint_auth_method,
        "scope": meta.scope,
        "logo_uri": meta.logo_uri,
        "client_uri": meta.client_uri,
        "first_party": meta.first_party,
        "resource_server": meta.resource_server,
    }


def _issued_json(issued: IssuedClient) -> dict[str, Any]:
    body = client_json(issued.record)
    if issued.client_secret is not None:
        body.update(client_secret=issued.client_secret, client_secret_expires_at=0)
    return body


def _cmd_create(args: argparse.Namespace) -> int:
    changes = _changes(args)
    return _with_service(lambda svc: _issued_json(svc.create(changes, actor=ACTOR)))


def _cmd_update(args: argparse.Namespace) -> int:
    changes = _changes(args)
    return _with_service(lambda svc: client_json(svc.update(args.client_id, changes, actor=ACTOR)))


def _cmd_list(args: argparse.Namespace) -> int:
    return _with_service(lambda svc: [client_json(r) for r in svc.list()])


def _cmd_show(args: argparse.Namespace) -> int:
    return _with_service(lambda svc: client_json(svc.get(args.client_id)))


def _cmd_rotate(args: argparse.Namespace) -> int:
    return _with_service(lambda svc: _issued_json(svc.rotate_secret(args.client_id, actor=ACTOR)))


def _cmd_delete(args: argparse.Namespace) -> int:
    def delete(svc: ClientService) -> dict[str, Any]:
        svc.delete(args.client_id, actor=ACTOR)
        return {"deleted": args.client_id}

    return _with_service(delete)
