"""OpenID Connect: discovery (RFC 8414 / OIDC Discovery) and userinfo (OIDC §5.3)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from userservice.api.deps import ServicesDep
from userservice.api.schemas import OAuthErrorBody
from userservice.errors import AuthenticationFailed, Forbidden, Throttled
from userservice.oauth.errors import error_description
from userservice.services.authn import Principal
from userservice.services.id_tokens import claims_for_scope
from userservice.services.policy import POLICY
from userservice.services.scopes import SCOPES

router = APIRouter(tags=["openid connect"])
PUBLIC_CACHE = {"Cache-Control": "public, max-age=300"}


def server_metadata(issuer: str) -> dict[str, Any]:
    """One description for both discovery documents, so they can never disagree."""
    auth_methods = ["client_secret_basic", "client_secret_post"]
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "jwks_uri": f"{issuer}/oauth/jwks",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "end_session_endpoint": f"{issuer}/oauth/logout",
        "scopes_supported": sorted(SCOPES),
        # Implicit and hybrid flows are not offered (RFC 9700 §2.1.2): code only.
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        # S6: exactly the grants the token endpoint serves (a test tries each).
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "password",
            "client_credentials",
        ],
        # S6: request objects are refused (OIDC Core §3.1.2.6).
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["none", *auth_methods],
        "revocation_endpoint_auth_methods_supported": ["none", *auth_methods],
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "at_hash",
            "name",
            "updated_at",
            "email",
            "email_verified",
        ],
        "service_documentation": f"{issuer}/docs",
    }


@router.get("/.well-known/openid-configuration", summary="OpenID Connect discovery")
async def openid_configuration(svc: ServicesDep) -> JSONResponse:
    return JSONResponse(server_metadata(svc.settings.issuer), headers=PUBLIC_CACHE)


@router.get(
    "/.well-known/oauth-authorization-server",
    summary="Authorization server metadata (RFC 8414)",
)
async def oauth_metadata(svc: ServicesDep) -> JSONResponse:
    return JSONResponse(server_metadata(svc.settings.issuer), headers=PUBLIC_CACHE)


def _bearer_error(error: str, description: str, status: int, scope: str = "") -> Response:
    # RFC 6750 §3: errors of a protected resource go in WWW-Authenticate.
    description = error_description(error, description)  # S7
    challenge = f'Bearer realm="userservice", error="{error}", error_description="{description}"'
    if scope:
        challenge += f', scope="{scope}"'
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"WWW-Authenticate": challenge, "Cache-Control": "no-store"},
    )


# RFC 6750 §3: a missing/invalid token is a 401, a token without openid a 403.
_USERINFO_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": OAuthErrorBody},
    403: {"model": OAuthErrorBody},
}


@router.post(
    "/oauth/userinfo",
    summary="OpenID Connect userinfo (POST form, OIDC Core §5.3.1)",
    responses=_USERINFO_ERRORS,
    operation_id="userinfo_post",
)
async def userinfo_post(request: Request, svc: ServicesDep) -> Response:
    return await _userinfo(request, svc, "userinfo_post")


@router.get(
    "/oauth/userinfo",
    summary="OpenID Connect userinfo: the claims the user consented to",
    responses=_USERINFO_ERRORS,
    operation_id="userinfo_get",
)
async def userinfo_get(request: Request, svc: ServicesDep) -> Response:
    return await _userinfo(request, svc, "userinfo_get")


async def _userinfo(request: Request, svc: ServicesDep, operation: str) -> Response:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _bearer_error("invalid_token", "A bearer access token is required.", 401)
    try:
        principal = await svc.authenticator.from_bearer(token.strip())
    except (AuthenticationFailed, Throttled):
        return _bearer_error("invalid_token", "The access token is invalid.", 401)
    try:
        POLICY[operation].check(principal)
    except Forbidden:
        # A token without `openid`, or one with no user behind it (a client acting
        # for itself): userinfo needs a user's token with that scope.
        return _bearer_error(
            "insufficient_scope", "A user's token with the openid scope is needed.", 403, "openid"
        )
    assert isinstance(principal, Principal)  # the rule admits no service client
    claims = claims_for_scope(principal.user, " ".join(principal.scopes))
    return JSONResponse(claims, headers={"Cache-Control": "no-store"})
