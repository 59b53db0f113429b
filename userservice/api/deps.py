"""FastAPI dependencies: the wired services and the calling principal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from userservice.errors import AuthenticationFailed
from userservice.security.basic import parse_basic
from userservice.services.accounts import AccountService
from userservice.services.authn import Authenticator, Principal, ServicePrincipal
from userservice.services.clients import ClientService
from userservice.services.policy import POLICY, Caller
from userservice.services.sessions import SessionService
from userservice.services.tokens import TokenService
from userservice.settings import Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    accounts: AccountService
    tokens: TokenService
    authenticator: Authenticator
    clients: ClientService
    sessions: SessionService


async def services(request: Request) -> Services:
    # async: a plain `def` dependency would cost a threadpool round trip per request.
    found: Services = request.app.state.services
    return found


ServicesDep = Annotated[Services, Depends(services)]


def client_ip(request: Request) -> str:
    # The peer address; X-Forwarded-For is honoured only from trusted proxies, by
    # the proxy-headers middleware that rewrites it before we get here (G6).
    return request.client.host if request.client else "unknown"


async def authenticated(request: Request) -> Principal | ServicePrincipal:
    """The caller, by a bearer access token or, as a fallback, HTTP Basic."""
    svc: Services = request.app.state.services
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return await svc.authenticator.from_bearer(value.strip())
    if scheme.lower() == "basic":
        if not svc.settings.basic_auth_enabled:
            raise AuthenticationFailed("HTTP Basic authentication is disabled on this server.")
        if request.url.scheme != "https":
            # Basic sends the password itself: never accept it over cleartext.
            raise AuthenticationFailed("HTTP Basic authentication requires HTTPS.")
        # FastAPI's HTTPBasic decodes as ASCII, refusing UTF-8 passwords (E5, RFC 7617 §2.1).
        credentials = parse_basic(header)
        if credentials is None:
            raise AuthenticationFailed("Malformed Basic credentials.")
        return await svc.authenticator.from_basic(*credentials, client_ip(request))
    raise AuthenticationFailed("Authentication required.")


# Each guard names its policy operation, for the OpenAPI document and the policy walk.
OPERATION_ATTRIBUTE = "policy_operation"
Guard = Callable[[Request], Awaitable[Principal | ServicePrincipal]]


def allowed(operation: str) -> Guard:
    """The dependency that authenticates the caller and applies the access policy's
    rule for `operation` (services/policy.py): every protected route takes one, so
    that no route is without a rule (S1)."""
    rule = POLICY[operation]

    async def guard(request: Request) -> Principal | ServicePrincipal:
        # One dependency with no sub-dependencies: this runs on every API request.
        principal = await authenticated(request)
        rule.check(principal)
        return principal

    guard.__name__ = f"allowed_{operation}"
    setattr(guard, OPERATION_ATTRIBUTE, operation)
    return guard


def user_allowed(operation: str) -> Callable[[Request], Awaitable[Principal]]:
    """allowed() for operations whose rule admits only users."""
    rule = POLICY[operation]
    if Caller.SERVICE in rule.callers:
        raise ValueError(f"{operation} admits service clients: use allowed()")

    async def guard(request: Request) -> Principal:
        principal = await authenticated(request)
        rule.check(principal)
        assert isinstance(principal, Principal)  # the rule refused service clients
        return principal

    guard.__name__ = f"allowed_{operation}"
    setattr(guard, OPERATION_ATTRIBUTE, operation)
    return guard
