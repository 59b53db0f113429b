"""create_app(settings): the one place that wires the service together."""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from userservice import __version__
from userservice.api import (
    account_mail,
    admin_clients,
    admin_keys,
    docs,
    grants,
    health,
    oauth,
    oidc,
    users,
)
from userservice.api import email_change as email_change_api
from userservice.api import metrics as metrics_api
from userservice.api import privacy as privacy_api
from userservice.api import sessions as sessions_api
from userservice.api.middleware import ScopedCORSMiddleware, SecurityMiddleware
from userservice.api.openapi_security import install_openapi_security
from userservice.api.problems import install_error_handlers
from userservice.api.request_log import RequestLogMiddleware
from userservice.db import migrate
from userservice.db.engine import Database, PoolOptions, build_engine, open_database
from userservice.db.outbox_backlog import outbox_backlog
from userservice.i18n import Catalogs
from userservice.oauth.server import OAuthServer
from userservice.oauth.token_endpoint import TokenEndpoint
from userservice.observability.db_pool import watch_pool
from userservice.observability.metrics import NoMetrics
from userservice.observability.multiprocess import OutboxGauges, forget_this_process
from userservice.observability.prometheus import PrometheusMetrics, metrics_for
from userservice.security.counters import Counters
from userservice.security.mail_limits import MailThrottle
from userservice.security.passwords import PasswordHasher
from userservice.security.throttle import LoginThrottle
from userservice.services.access_tokens import TokenSettings
from userservice.services.account_mail import Mailer
from userservice.services.account_tokens import AccountTokens
from userservice.services.accounts import AccountService
from userservice.services.at_rest import AtRest
from userservice.services.audit_log import AuditLog
from userservice.services.authn import Authenticator
from userservice.services.clients import ClientService
from userservice.services.consents import ConsentService
from userservice.services.devices import DeviceCookies
from userservice.services.email_change import EmailChange
from userservice.services.id_tokens import IdTokenService
from userservice.services.key_refresh import KeyRefresher
from userservice.services.keys import KeyStore
from userservice.services.mail import MailOutbox
from userservice.services.password_reset import PasswordReset
from userservice.services.preferences import PreferenceService
from userservice.services.privacy import Privacy
from userservice.services.pruning import BackgroundPruner
from userservice.services.readiness import Readiness
from userservice.services.sessions import SessionService
from userservice.services.signup import SignUp
from userservice.services.token_status import TokenStatus
from userservice.services.tokens import TokenService
from userservice.services.user_admin import UserAdministration
from userservice.services.verification import Verification
from userservice.settings import Settings
from userservice.web import account, authorize, end_session, journeys, language, pages
from userservice.web import email_change as email_change_pages
from userservice.web.browser import CsrfRejected
from userservice.web.templating import page_templates
from userservice.wiring import Services, install

STATIC_DIR = Path(__file__).parent / "web" / "static"
# Pages people navigate to: their own CSP, and never CORS (A12).
PAGE_PATHS = (
    "/login",
    "/logout",
    "/account",
    "/consent",
    "/oauth/authorize",
    "/oauth/logout",
    "/language",
    "/register",
    "/verify-email",
    "/forgot-password",
    "/reset-password",
    "/confirm-email-change",
    "/undo-email-change",
)
DESCRIPTION = """
User management secured by OAuth 2.0 / OpenID Connect.

**Try it:** register with `POST /users`, then press **Authorize**, enter your email
and password under *OAuth2PasswordBearer* (client id `userservice-frontend`, no
secret) or under *HTTPBasic*, and every protected operation can be called.
"""


def open_counters(settings: Settings) -> Counters:
    url = settings.redis_url.get_secret_value() if settings.redis_url else None
    return Counters(url, settings.redis_timeout_seconds)


def pool_options(settings: Settings) -> PoolOptions:
    return PoolOptions(
        size=settings.database_pool_size,
        timeout_seconds=settings.database_pool_timeout_seconds,
        connect_timeout_seconds=settings.database_connect_timeout_seconds,
        statement_timeout_ms=settings.database_statement_timeout_ms,
    )


def build_account_service(
    settings: Settings,
    db: Database,
    counters: Counters | None = None,
    metrics: NoMetrics | None = None,
) -> AccountService:
    metrics = metrics or NoMetrics()
    hasher = PasswordHasher(
        settings.argon2_memory_kib,
        settings.argon2_time_cost,
        settings.argon2_parallelism,
        settings.max_concurrent_hashes,
        on_wait=metrics.hash_queue_wait if metrics.enabled else None,
    )
    throttle = LoginThrottle(
        settings.login_limit_per_account, settings.login_limit_per_ip, counters
    )
    devices = DeviceCookies(db, AtRest.for_settings(settings))
    return AccountService(
        db,
        hasher,
        throttle,
        devices,
        registration_open=settings.registration_open,
        require_verified_email=settings.require_verified_email,
        metrics=metrics,
    )


def build_services(settings: Settings, db: Database, metrics: NoMetrics | None = None) -> Services:
    metrics = metrics or NoMetrics()
    keys = KeyStore.for_settings(db, settings)
    counters = open_counters(settings)
    accounts = build_account_service(settings, db, counters, metrics)
    tokens = TokenService(
        db,
        keys,
        TokenSettings(
            issuer=settings.issuer,
            access_ttl=settings.access_token_ttl_seconds,
            refresh_idle_ttl=settings.refresh_token_idle_ttl_seconds,
            refresh_absolute_ttl=settings.refresh_token_absolute_ttl_seconds,
            alg=settings.access_token_alg,
        ),
        metrics,
    )
    status = TokenStatus(db, keys, settings.issuer, settings.refresh_token_idle_ttl_seconds)
    id_tokens = IdTokenService(keys, settings.issuer, settings.id_token_ttl_seconds)
    catalogs = Catalogs.load()
    mail = MailOutbox.for_settings(db, settings, catalogs)
    mailer = Mailer(
        AccountTokens(
            verification_ttl=settings.email_verification_ttl_seconds,
            reset_ttl=settings.password_reset_ttl_seconds,
            undo_ttl=settings.email_change_undo_ttl_seconds,
        ),
        mail,
        MailThrottle(
            settings.mail_limit_per_address,
            settings.mail_limit_per_ip,
            counters,
            on_refused=partial(metrics.throttled, "mail"),
        ),
    )
    return Services(
        settings=settings,
        keys=keys,
        counters=counters,
        accounts=accounts,
        user_admin=UserAdministration(db),
        tokens=tokens,
        authenticator=Authenticator(db, keys, accounts, settings.issuer),
        clients=ClientService(db),
        sessions=SessionService(
            db, settings.session_idle_ttl_seconds, settings.session_absolute_ttl_seconds
        ),
        consents=ConsentService(db),
        token_endpoint=TokenEndpoint(db, accounts, tokens, status, id_tokens, metrics),
        oauth_server=OAuthServer(db, settings.issuer),
        readiness=Readiness(
            partial(migrate.revision_of, db), migrate.head_revision(), keys, counters
        ),
        mail=mail,
        signup=SignUp(db, accounts, mailer),
        verification=Verification(db, mailer),
        password_reset=PasswordReset(db, accounts, mailer),
        preferences=PreferenceService(db),
        email_change=EmailChange(db, accounts, mailer),
        privacy=Privacy(db),
        audit_log=AuditLog(db),
        pages=page_templates(catalogs, settings.app_name),
        metrics=metrics,
    )


def create_app(settings: Settings) -> FastAPI:
    db = open_database(build_engine(settings.resolved_database_url(), pool=pool_options(settings)))
    metrics = metrics_for(settings)
    if isinstance(metrics, PrometheusMetrics):
        watch_pool(db, metrics.pool_in_use, metrics.pool_limit)
        metrics.add_collector(OutboxGauges(partial(outbox_backlog, db)))
    services = build_services(settings, db, metrics)
    keys, accounts = services.keys, services.accounts
    pruner = BackgroundPruner(db, settings)
    refresher = KeyRefresher(keys)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Keys are created by `serve` before workers start; ensure() here covers
        # embedded use (tests, other ASGI servers) and is a plain load otherwise.
        keys.ensure()
        accounts.devices.ensure()
        # Everything built so far (modules, routes, models) lives as long as the
        # process: keep it out of the cyclic collector's full passes.
        gc.freeze()
        # L10: mail queued before this start (or by a worker that died) goes out now.
        await services.mail.sender.start()
        pruner.start()
        refresher.start()
        yield
        await refresher.stop()
        await pruner.stop()
        await services.mail.sender.stop()
        await services.counters.close()
        accounts.hasher.close()
        await db.close_async()
        db.dispose()
        # O3: this worker's pool gauges leave the sum the scrape reads.
        forget_this_process()

    app = FastAPI(
        title="userservice",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        swagger_ui_oauth2_redirect_url=None,
    )
    install(app, services)

    install_error_handlers(app)
    _add_routes(app, settings)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    _add_middleware(app, settings, metrics)
    return app


def _add_routes(app: FastAPI, settings: Settings) -> None:
    api_routers = (
        users.router,
        metrics_api.router,
        account_mail.router,
        admin_clients.router,
        admin_keys.router,
        oauth.router,
        oidc.router,
        grants.router,
        sessions_api.router,
        email_change_api.router,
        privacy_api.router,
    )
    for router in api_routers:
        app.include_router(router)
    for router in (
        authorize.router,
        end_session.router,
        health.router,
        pages.router,
        account.router,
        journeys.router,
        email_change_pages.router,
        language.router,
    ):
        app.include_router(router)
    # Before the generic DomainError handler: a refused form gets an HTML page.
    app.add_exception_handler(CsrfRejected, pages.csrf_rejected)
    if settings.docs_enabled:
        app.include_router(docs.router)
        install_openapi_security(app, api_routers, "/oauth/token")


def _add_middleware(app: FastAPI, settings: Settings, metrics: NoMetrics) -> None:
    if settings.cors_origins:
        # A12: CORS only for configured origins, and only where browsers need it.
        app.add_middleware(
            ScopedCORSMiddleware,
            excluded=(*PAGE_PATHS, "/docs"),
            origins=settings.cors_origins,
        )
    app.add_middleware(
        SecurityMiddleware,
        max_body=settings.max_body_bytes,
        max_form_body=settings.max_form_body_bytes,
        form_paths=(
            "/oauth/",
            "/login",
            "/logout",
            "/consent",
            "/language",
            "/register",
            "/verify-email",
            "/forgot-password",
            "/reset-password",
            "/account",
            "/confirm-email-change",
            "/undo-email-change",
        ),
        docs_paths=("/docs",),
        page_paths=PAGE_PATHS,
        hsts=True,
    )
    # Outside the security middleware: its refusals are logged and counted too.
    app.add_middleware(RequestLogMiddleware, metrics=metrics)
    # G6: X-Forwarded-* is believed only from the configured proxies.
    app.add_middleware(
        ProxyHeadersMiddleware,
        trusted_hosts=settings.trusted_proxies or [],
    )


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` and worker processes."""
    return create_app(Settings(_env_file=os.environ.get("USERSERVICE_ENV_FILE", ".env")))
