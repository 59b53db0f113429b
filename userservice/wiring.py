"""What create_app builds, and the one dependency that hands it to routes.

api/ and web/ both take their collaborators from here, through `Depends`, so that
neither imports the other and tests swap a part with `app.dependency_overrides`
instead of reaching into the application's state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from userservice.i18n import Templates
from userservice.oauth.server import OAuthServer
from userservice.oauth.token_endpoint import TokenEndpoint
from userservice.observability.metrics import NoMetrics
from userservice.security.counters import Counters
from userservice.services.accounts import AccountService
from userservice.services.audit_log import AuditLog
from userservice.services.authn import Authenticator
from userservice.services.clients import ClientService
from userservice.services.consents import ConsentService
from userservice.services.email_change import EmailChange
from userservice.services.factors import SecondFactors
from userservice.services.half_logins import HalfLogins
from userservice.services.keys import KeyStore
from userservice.services.mail import MailOutbox
from userservice.services.mfa_policy import MfaPolicy
from userservice.services.passkeys import Passkeys
from userservice.services.password_reset import PasswordReset
from userservice.services.preferences import PreferenceService
from userservice.services.privacy import Privacy
from userservice.services.readiness import Readiness
from userservice.services.sessions import SessionService
from userservice.services.signup import SignUp
from userservice.services.tokens import TokenService
from userservice.services.user_admin import UserAdministration
from userservice.services.verification import Verification
from userservice.settings import Settings


@dataclass(frozen=True, slots=True)
class Services:
    """Every collaborator a route may need, built once per application. One
    container rather than a provider per part: a route that needs three parts
    resolves one dependency, and a test swaps any part with one override."""

    settings: Settings
    keys: KeyStore
    # Throttle counters: process memory, or Redis shared by the fleet.
    counters: Counters
    accounts: AccountService
    user_admin: UserAdministration
    tokens: TokenService
    authenticator: Authenticator
    clients: ClientService
    sessions: SessionService
    consents: ConsentService
    token_endpoint: TokenEndpoint
    oauth_server: OAuthServer
    readiness: Readiness
    mail: MailOutbox
    # The mail journeys: sign-up, address verification, password reset.
    signup: SignUp
    verification: Verification
    password_reset: PasswordReset
    preferences: PreferenceService
    # The account page's operations: a new address, the user's data, the audit trail.
    email_change: EmailChange
    privacy: Privacy
    audit_log: AuditLog
    # The hosted pages in every language (web/templating.py renders them).
    pages: Templates
    # Prometheus metrics, or NoMetrics when no metrics port or token is set.
    metrics: NoMetrics
    # Second factors (M1-M3, M8), the half-login between password and code (M6),
    # and whether administrators must have one (M8).
    factors: SecondFactors
    half_logins: HalfLogins
    mfa_policy: MfaPolicy
    # Passkeys (M9, M10): registration, passwordless sign-in, the second step.
    passkeys: Passkeys


def install(app: FastAPI, built: Services) -> None:
    """create_app's side: the container goes where `services` finds it."""
    app.state.services = built


def wired(app: FastAPI) -> Services:
    """The container create_app built for `app`, for tests that need a wired part
    itself (routes take `ServicesDep`, which a test overrides instead), and for
    web/templating.render, which exception handlers call too (no Depends there)."""
    found: Services = app.state.services
    return found


async def services(request: Request) -> Services:
    # async: a plain `def` dependency would cost a threadpool round trip per request.
    return wired(request.app)


async def services_for(request: Request) -> Services:
    """What `services` gives this request, for a dependency that needs it itself.
    The bearer guard runs on every API request: taking the container as a
    sub-dependency would add a second dependency's resolution to each (about
    9 µs of CPU, measured). An override of `services` is honoured; it takes the
    request, as tests.support.wiring.override's does."""
    provide = request.app.dependency_overrides.get(services, services)
    found: Services = await provide(request)
    return found


ServicesDep = Annotated[Services, Depends(services)]


def client_ip(request: Request) -> str:
    # The peer address; X-Forwarded-For is honoured only from trusted proxies, by
    # the proxy-headers middleware that rewrites it before we get here (G6).
    return request.client.host if request.client else "unknown"
