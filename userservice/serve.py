"""`userservice serve`: prepare the database, keys and TLS, then run uvicorn."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import logging.config
import os
import signal
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from userservice.cli import CliError, open_database_of
from userservice.db import migrate
from userservice.healthcheck import healthz_url
from userservice.healthcheck import record as record_listener
from userservice.listeners import run_balanced
from userservice.logging_config import log_config
from userservice.observability.exposition import MetricsPortError, serving_metrics
from userservice.security.tls import ensure_local_tls, harden
from userservice.services.at_rest import AtRestError
from userservice.services.keys import KeyStore
from userservice.settings import Settings

_LOCAL_OR_ANY = frozenset({"127.0.0.1", "0.0.0.0", "::", "::1"})  # noqa: S104
logger = logging.getLogger("userservice.tls")


def _tls_files(settings: Settings, args: argparse.Namespace) -> tuple[str, str] | None:
    if args.no_tls or not settings.tls:
        return None
    if bool(args.cert) != bool(args.key):
        raise CliError("--cert and --key go together")
    if args.cert:
        cert, key = Path(args.cert), Path(args.key)
    else:
        directory = settings.data_dir / "tls"
        try:
            local = ensure_local_tls(directory, settings.tls_extra_names)
        except ValueError as exc:
            raise CliError(f"bad setting USERSERVICE_TLS_EXTRA_NAMES: {exc}") from None
        except OSError as exc:
            raise CliError(f"cannot write the certificates in {directory}: {exc}") from None
        for level, note in local.notes:
            logger.log(level, "%s", note)
        cert, key = local.cert, local.key
    try:
        context = harden(ssl.create_default_context(ssl.Purpose.CLIENT_AUTH))
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise CliError(f"cannot use certificate {cert} / key {key}: {exc}") from None
    return str(cert), str(key)


def tls_context(_config: Any, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's SSL context with TLS 1.2 as the floor and AEAD-only TLS 1.2 suites
    (S10); module level, so it pickles into spawned workers by name."""
    return harden(default())


def warn_console_mail(settings: Settings) -> None:
    """JSON logs mean a log pipeline, i.e. production: there, mail on the console
    puts every verification and reset link (each a secret) into the shipped log,
    the one exception to "no secret in the log" (O5). Said once, at start."""
    if settings.mail_url == "console:" and settings.log_format == "json":
        logging.getLogger("userservice.mail").warning(
            "mail goes to the log (USERSERVICE_MAIL_URL is console:): every mail, its "
            "verification and reset links included, is written here; set "
            "USERSERVICE_MAIL_URL to an SMTP server"
        )


def _may_overlap(metrics_host: str, host: str) -> bool:
    """Whether two listeners on one port would collide: the same address, or one
    of them every address (a host name is taken to be any of ours)."""
    wildcard = ("0.0.0.0", "::")  # noqa: S104
    return (
        metrics_host == host
        or metrics_host in wildcard
        or host in wildcard
        or (not _is_address(host))
    )


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def serve(settings: Settings, args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536 or args.workers < 1:
        raise CliError("--port must be 1-65535 and --workers at least 1")
    if settings.metrics_port == args.port and _may_overlap(settings.metrics_host, args.host):
        raise CliError(
            f"USERSERVICE_METRICS_PORT {args.port} is the service's own port: choose another"
        )
    logs = log_config(settings.log_level, settings.log_format)
    # Configured now, so what TLS set-up reports reads like the server's own log.
    logging.config.dictConfig(logs)
    warn_console_mail(settings)
    tls = _tls_files(settings, args)
    _check_port_free(args.host, args.port)
    db = open_database_of(settings)
    try:
        if not args.no_migrate:
            migrate.upgrade(db.engine)
        elif migrate.current_revision(db.engine) != migrate.head_revision():
            raise CliError("the database schema is not at head: run `userservice db upgrade`")
        # Created once here, before workers fork, so they never race to make keys.
        KeyStore.for_settings(db, settings).ensure()
    except AtRestError as exc:
        raise CliError(str(exc)) from None  # S11: a wrong secret, before any worker starts
    except SQLAlchemyError as exc:
        raise CliError(
            f"database error: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        ) from None
    finally:
        db.dispose()

    # Worker processes rebuild Settings from the environment: pass what we resolved.
    os.environ["USERSERVICE_DATABASE_URL"] = settings.resolved_database_url()
    if "max_concurrent_hashes" not in settings.model_fields_set:
        # The cores are shared by the workers: each hashes on its share of them, so
        # the machine runs about one argon2 hash per core (more only adds RSS).
        share = max(1, -(-(os.cpu_count() or 1) // args.workers))
        os.environ["USERSERVICE_MAX_CONCURRENT_HASHES"] = str(share)
    if "issuer" not in settings.model_fields_set:
        scheme = "http" if tls is None else "https"
        host = "localhost" if args.host in _LOCAL_OR_ANY else args.host
        os.environ["USERSERVICE_ISSUER"] = f"{scheme}://{host}:{args.port}"
    # Where `userservice healthcheck` (the Docker HEALTHCHECK) finds this server.
    record_listener(settings.data_dir, healthz_url(args.host, args.port, tls=tls is not None))
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal under the
    # handler that was installed before it: make that a no-op so a clean stop
    # exits 0 (R7) instead of dying by the signal (-15) after the shutdown.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    try:
        with serving_metrics(settings):
            _run(settings, args, tls, logs)
    except MetricsPortError as exc:
        raise CliError(str(exc)) from None
    return 0


def _run(
    settings: Settings, args: argparse.Namespace, tls: tuple[str, str] | None, logs: dict[str, Any]
) -> None:
    # One socket per worker, so connections spread evenly (userservice/listeners.py).
    run_balanced(
        "userservice.app:create_app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
        ssl_context_factory=tls_context if tls else None,
        server_header=False,
        # Forwarded headers are handled in the app, from trusted proxies only (G6).
        proxy_headers=False,
        # R7: on SIGTERM the listener closes at once, requests in flight get this
        # long to finish, then the lifespan's shutdown runs (pruner, mail, pools).
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        log_config=logs,
        # The service writes one access record per request itself (request_log.py).
        access_log=False,
    )
