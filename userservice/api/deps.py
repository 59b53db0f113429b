"""FastAPI dependencies: the wired services and the calling principal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBasic, OAuth2PasswordBearer

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


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


ServicesDep = Annotated[Services, Depends(services)]

# Declared for the OpenAPI document (Swagger's Authorize button); the parsing
# below is ours, so that both schemes are accepted on the same route.
oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="/oauth/token",
    scopes={
        "openid": "OpenID Connect sign-in",
        "profile": "Your display name",
        "email": "Your email address",
        "offline_access": "Stay signed in (refresh tokens)",
        "users:read": "Look up other users (admins)",
        "users:write": "Change other users (admins)",
        "admin": "Administer users (admins)",
    },
    auto_error=False,
)


class _DeclaredBasic(HTTPBasic):
    """Declares HTTP Basic for OpenAPI only. FastAPI's own parser raises a 401 of its
    own even with auto_error=False (no charset in the challenge) and decodes as ASCII,
    refusing UTF-8 passwords (E5, RFC 7617 §2.1); parse_basic below does the work."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


basic_scheme = _DeclaredBasic(scheme_name="HTTPBasic", auto_error=False, realm="userservice")


def client_ip(request: Request) -> str:
    # The peer address; X-Forwarded-For is honoured only from trusted proxies, by
    # the proxy-headers middleware that rewrites it before we get here (G6).
    return request.client.host if request.client else "unknown"


async def current_principal(
    request: Request,
    svc: ServicesDep,
    _bearer: Annotated[str | None, Depends(oauth2_scheme)],
    _basic: Annotated[object, Depends(basic_scheme)],
) -> Principal:
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
        credentials = parse_basic(header)
        if credentials is None:
            raise AuthenticationFailed("Malformed Basic credentials.")
        return await svc.authenticator.from_basic(*credentials, client_ip(request))
    raise AuthenticationFailed("Authentication required.")


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def user_or_service_principal(
    request: Request,
    svc: ServicesDep,
    _bearer: Annotated[str | None, Depends(oauth2_scheme)],
    _basic: Annotated[object, Depends(basic_scheme)],
) -> Principal | ServicePrincipal:
    """For routes that a client acting for itself may also call (scope-checked)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return await svc.authenticator.from_bearer_any(value.strip())
    return await current_principal(request, svc, _bearer, _basic)


AnyPrincipalDep = Annotated[Principal | ServicePrincipal, Depends(user_or_service_principal)]


async def admin_principal(principal: PrincipalDep) -> Principal:
    if not principal.is_admin:
        raise Forbidden("This operation needs an administrator.")
    return principal


AdminDep = Annotated[Principal, Depends(admin_principal)]
