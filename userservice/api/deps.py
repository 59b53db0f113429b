"""FastAPI dependencies: the wired services and the calling principal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from userservice.errors import AuthenticationFailed, Forbidden
from userservice.security.basic import parse_basic
from userservice.services.accounts import AccountService
from userservice.services.authn import Authenticator, Principal, ServicePrincipal
from userservice.services.clients import ClientService
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

# The security schemes, for the OpenAPI document (Swagger's Authorize button) only:
# see api/openapi_security.py. Parsing is ours (current_principal), so that both
# schemes are accepted on one route and the bearer path costs one dependency.
SCOPES = {
    "openid": "OpenID Connect sign-in",
    "profile": "Your display name",
    "email": "Your email address",
    "offline_access": "Stay signed in (refresh tokens)",
    "users:read": "Look up other users (admins)",
    "users:write": "Change other users (admins)",
    "admin": "Administer users (admins)",
}


def client_ip(request: Request) -> str:
    # The peer address; X-Forwarded-For is honoured only from trusted proxies, by
    # the proxy-headers middleware that rewrites it before we get here (G6).
    return request.client.host if request.client else "unknown"


async def current_principal(request: Request) -> Principal:
    # One dependency with no sub-dependencies: this runs on every API request.
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


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def user_or_service_principal(request: Request) -> Principal | ServicePrincipal:
    """For routes that a client acting for itself may also call (scope-checked)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        svc: Services = request.app.state.services
        return await svc.authenticator.from_bearer_any(value.strip())
    return await current_principal(request)


AnyPrincipalDep = Annotated[Principal | ServicePrincipal, Depends(user_or_service_principal)]


async def admin_principal(principal: PrincipalDep) -> Principal:
    if not principal.is_admin:
        raise Forbidden("This operation needs an administrator.")
    return principal


AdminDep = Annotated[Principal, Depends(admin_principal)]
