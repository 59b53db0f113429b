"""OpenID Connect: discovery (RFC 8414 / OIDC Discovery) and userinfo (OIDC §5.3)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from userservice.api.deps import bearer_allowed
from userservice.api.schemas import OAuthErrorBody
from userservice.services.assurance import ACR_VALUES
from userservice.services.authn import Principal
from userservice.services.id_tokens import claims_for_scope
from userservice.services.scopes import SCOPES
from userservice.wiring import ServicesDep

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
        # M5 (OIDC Discovery §3): the two levels an ID token's acr can name.
        "acr_values_supported": list(ACR_VALUES),
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "acr",
            "amr",
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


# RFC 6750 §3: a missing/invalid token is a 401, a token without openid a 403.
_USERINFO_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": OAuthErrorBody},
    403: {"model": OAuthErrorBody},
}

UserinfoGet = Annotated[Principal, Depends(bearer_allowed("userinfo_get"))]
UserinfoPost = Annotated[Principal, Depends(bearer_allowed("userinfo_post"))]


@router.post(
    "/oauth/userinfo",
    summary="OpenID Connect userinfo (POST form, OIDC Core §5.3.1)",
    responses=_USERINFO_ERRORS,
    operation_id="userinfo_post",
)
async def userinfo_post(principal: UserinfoPost) -> Response:
    return _userinfo(principal)


@router.get(
    "/oauth/userinfo",
    summary="OpenID Connect userinfo: the claims the user consented to",
    responses=_USERINFO_ERRORS,
    operation_id="userinfo_get",
)
async def userinfo_get(principal: UserinfoGet) -> Response:
    return _userinfo(principal)


def _userinfo(principal: Principal) -> Response:
    claims = claims_for_scope(principal.user, " ".join(principal.scopes))
    return JSONResponse(claims, headers={"Cache-Control": "no-store"})
