"""create_app(settings): wires the service together (its services are built in
app_services.py, its database and metrics in app_metrics.py)."""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from userservice import __version__
from userservice.api import (
    account_mail,
    admin_clients,
    admin_factors,
    admin_keys,
    docs,
    factors,
    grants,
    health,
    oauth,
    oidc,
    passkeys,
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
from userservice.app_metrics import open_serving_database, wire_metrics
from userservice.app_metrics import pool_options as pool_options
from userservice.app_services import build_account_service as build_account_service
from userservice.app_services import build_services
from userservice.observability.metrics import NoMetrics
from userservice.observability.multiprocess import forget_this_process
from userservice.services.key_refresh import KeyRefresher
from userservice.services.pruning import BackgroundPruner
from userservice.settings import Settings
from userservice.web import (
    account,
    account_factors,
    account_passkeys,
    authorize,
    end_session,
    journeys,
    language,
    pages,
    passkeys_login,
    second_factor,
)
from userservice.web import email_change as email_change_pages
from userservice.web.browser import CsrfRejected
from userservice.wiring import install

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


def create_app(settings: Settings) -> FastAPI:
    db = open_serving_database(settings)
    metrics = wire_metrics(settings, db)
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
        services.passkeys.ensure()
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
        # Before /users/{user_id}/factors, which refuses "me" anyway (admin_factors).
        factors.router,
        passkeys.router,
        admin_factors.users_router,
        admin_factors.policy_router,
    )
    for router in api_routers:
        app.include_router(router)
    for router in (
        authorize.router,
        end_session.router,
        health.router,
        pages.router,
        second_factor.router,
        account.router,
        account_factors.router,
        passkeys_login.router,
        account_passkeys.router,
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
