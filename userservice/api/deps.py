"""The calling principal: the one place that reads the Authorization header, and
the guards that apply the access policy to it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request

from userservice.errors import AuthenticationFailed, Forbidden, Throttled
from userservice.security.basic import parse_basic
from userservice.services.authn import Principal, ServicePrincipal
from userservice.services.policy import POLICY, Caller, Rule
from userservice.wiring import Services, client_ip, services_for


class CredentialsMissing(AuthenticationFailed):
    """No credentials this resource accepts were presented (RFC 6750 §3.1: the
    challenge then carries no error about a token)."""


class BearerRefused(Exception):
    """A bearer-only resource (userinfo) refuses the call, in RFC 6750 §3's form
    rather than as problem details: api/problems.py renders it."""

    def __init__(self, error: str, description: str, status: int, scope: str = "") -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.scope = scope


async def _caller(request: Request, svc: Services, *, basic: bool) -> Principal | ServicePrincipal:
    """The caller, by a bearer access token or, where `basic`, HTTP Basic."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and value.strip():
        return _noted(request, await svc.authenticator.from_bearer(value.strip()))
    if scheme == "basic" and basic:
        if not svc.settings.basic_auth_enabled:
            raise AuthenticationFailed("HTTP Basic authentication is disabled on this server.")
        if request.url.scheme != "https":
            # Basic sends the password itself: never accept it over cleartext.
            raise AuthenticationFailed("HTTP Basic authentication requires HTTPS.")
        # FastAPI's HTTPBasic decodes as ASCII, refusing UTF-8 passwords (E5, RFC 7617 §2.1).
        credentials = parse_basic(header)
        if credentials is None:
            raise AuthenticationFailed("Malformed Basic credentials.")
        return _noted(request, await svc.authenticator.from_basic(*credentials, client_ip(request)))
    raise CredentialsMissing("Authentication required.")


def _noted(
    request: Request, principal: Principal | ServicePrincipal
) -> Principal | ServicePrincipal:
    # Who called, for the request's access record (api/request_log.py): ids only.
    state = request.scope["state"]
    state["client_id"] = principal.client_id
    if isinstance(principal, Principal):
        state["user_id"] = principal.user.id
    return principal


async def enforce(rule: Rule, principal: Principal | ServicePrincipal, svc: Services) -> None:
    """The one place a rule is applied (S1, M12): what the principal alone decides,
    then, only for a step-up operation whose login is not already recent and
    multi-factor, whether the account has a second factor, read on the event loop."""
    pending = rule.check(principal)
    if pending is not None:
        # A client acting for itself has no account and so no factor: its login
        # (none, so never recent) alone decides.
        user = principal.user if isinstance(principal, Principal) else None
        pending.settle(user is not None and await svc.authenticator.has_second_factor(user.id))


# Each guard names its policy operation, for the OpenAPI document and the policy walk.
OPERATION_ATTRIBUTE = "policy_operation"
Guard = Callable[..., Awaitable[Any]]


def _named(guard: Guard, operation: str) -> Guard:
    guard.__name__ = f"allowed_{operation}"
    setattr(guard, OPERATION_ATTRIBUTE, operation)
    return guard


def allowed(operation: str) -> Guard:
    """The dependency that authenticates the caller and applies the access policy's
    rule for `operation` (services/policy.py): every protected route takes one, so
    that no route is without a rule (S1)."""
    rule = POLICY[operation]

    async def guard(request: Request) -> Principal | ServicePrincipal:
        # One dependency with no sub-dependencies: this runs on every API request.
        svc = await services_for(request)
        principal = await _caller(request, svc, basic=True)
        await enforce(rule, principal, svc)
        return principal

    return _named(guard, operation)


def user_allowed(operation: str) -> Guard:
    """allowed() for operations whose rule admits only users."""
    rule = POLICY[operation]
    if Caller.SERVICE in rule.callers:
        raise ValueError(f"{operation} admits service clients: use allowed()")

    async def guard(request: Request) -> Principal:
        svc = await services_for(request)
        principal = await _caller(request, svc, basic=True)
        await enforce(rule, principal, svc)
        assert isinstance(principal, Principal)  # the rule refused service clients
        return principal

    return _named(guard, operation)


def bearer_allowed(operation: str) -> Guard:
    """user_allowed() for a protected resource of RFC 6750: a bearer token only
    (Basic reads as no token), refusals in that RFC's §3 form."""
    rule = POLICY[operation]
    if Caller.SERVICE in rule.callers:
        raise ValueError(f"{operation} admits service clients: use allowed()")
    if rule.step_up is not None:
        # RFC 6750 §3 has no challenge for it: step-up is for the problem-details API.
        raise ValueError(f"{operation} needs a step-up: use user_allowed()")
    scope = " ".join(rule.scopes)

    async def guard(request: Request) -> Principal:
        try:
            principal = await _caller(request, await services_for(request), basic=False)
        except CredentialsMissing:
            raise BearerRefused(
                "invalid_token", "A bearer access token is required.", 401
            ) from None
        except (AuthenticationFailed, Throttled):
            raise BearerRefused("invalid_token", "The access token is invalid.", 401) from None
        try:
            rule.check(principal)  # no step-up (refused below): the check decides
        except Forbidden:
            # A token without the scope, or one with no user behind it (a client
            # acting for itself).
            raise BearerRefused(
                "insufficient_scope",
                f"A user's token with the {scope} scope is needed.",
                403,
                scope,
            ) from None
        assert isinstance(principal, Principal)  # the rule admits no service client
        return principal

    return _named(guard, operation)
