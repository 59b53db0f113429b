"""OAuth HTTP endpoints: token, revocation, JWKS and server metadata."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from userservice.api.problems import NO_STORE, oauth_error
from userservice.api.schemas import OAuthErrorBody, TokenResponse
from userservice.errors import OAuthError, Throttled
from userservice.oauth.params import client_credentials, parse_form, require_secure_transport
from userservice.wiring import ServicesDep, client_ip, services_for

router = APIRouter(tags=["oauth"])

_FORM_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type"],
                    "properties": {
                        "grant_type": {
                            "type": "string",
                            "enum": [
                                "password",
                                "refresh_token",
                                "authorization_code",
                                "client_credentials",
                            ],
                        },
                        "code": {"type": "string"},
                        "redirect_uri": {"type": "string"},
                        "code_verifier": {"type": "string"},
                        "username": {"type": "string", "description": "Email (password grant)"},
                        "password": {"type": "string", "format": "password"},
                        "refresh_token": {"type": "string"},
                        "scope": {"type": "string"},
                        "client_id": {"type": "string"},
                        "client_secret": {"type": "string", "format": "password"},
                    },
                }
            }
        },
    }
}
_REVOKE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["token"],
                    "properties": {
                        "token": {"type": "string"},
                        "token_type_hint": {"type": "string"},
                        "client_id": {"type": "string"},
                        "client_secret": {"type": "string", "format": "password"},
                    },
                }
            }
        },
    }
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": OAuthErrorBody},
    401: {"model": OAuthErrorBody},
    429: {"model": OAuthErrorBody},
}


async def _form(request: Request) -> dict[str, str]:
    return parse_form(request.headers.get("content-type", ""), await request.body())


@router.post(
    "/oauth/token",
    response_model=TokenResponse,
    responses=_ERRORS,
    openapi_extra=_FORM_BODY,
    summary="Token endpoint (RFC 6749): every grant",
)
async def token(request: Request) -> Response:
    # The container without a dependency to resolve: the OAuth endpoints are hot
    # paths, like the bearer guard (wiring.services_for honours overrides).
    svc = await services_for(request)
    endpoint = svc.token_endpoint
    try:
        # C14: credentials and tokens never cross cleartext HTTP (loopback aside).
        require_secure_transport(str(request.url))
        params = await _form(request)
        # S8: the credentials are read (one method only) before any grant is chosen.
        ids = client_credentials(params, request.headers.get("authorization", ""))
        client = await endpoint.authenticate_client(*ids)
        request.scope["state"]["client_id"] = client.client_id  # for the access record
        body = await endpoint.token(client, params, client_ip(request))
    except OAuthError as exc:
        return oauth_error(exc.error, exc.detail, exc.status)
    except Throttled as exc:
        response = oauth_error("slow_down", exc.detail, 429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    return JSONResponse(body, headers=NO_STORE)


@router.post(
    "/oauth/revoke",
    # RFC 7009 §2.2: 200 with an empty body (not JSON).
    response_class=Response,
    responses={200: {"description": "Revoked, or the token was unknown"}, **_ERRORS},
    openapi_extra=_REVOKE_BODY,
    summary="Token revocation (RFC 7009)",
)
async def revoke(request: Request) -> Response:
    # The container without a dependency to resolve: the OAuth endpoints are hot
    # paths, like the bearer guard (wiring.services_for honours overrides).
    svc = await services_for(request)
    endpoint = svc.token_endpoint
    try:
        params = await _form(request)
        ids = client_credentials(params, request.headers.get("authorization", ""))
        client = await endpoint.authenticate_client(*ids)
        request.scope["state"]["client_id"] = client.client_id  # for the access record
        await endpoint.revoke(client, params)
    except OAuthError as exc:
        return oauth_error(exc.error, exc.detail, exc.status)
    return Response(status_code=200, headers=NO_STORE)


class IntrospectionResponse(BaseModel):
    active: bool
    token_type: str | None = None
    scope: str | None = None
    client_id: str | None = None
    username: str | None = None
    sub: str | None = None
    aud: str | None = None
    iss: str | None = None
    exp: int | None = None
    iat: int | None = None
    jti: str | None = None
    auth_time: int | None = Field(
        default=None, description="When the user authenticated (RFC 9470 §6)."
    )


@router.post(
    "/oauth/introspect",
    response_model=IntrospectionResponse,
    response_model_exclude_none=True,
    responses=_ERRORS,
    openapi_extra=_REVOKE_BODY,
    summary="Token introspection (RFC 7662); confidential clients only",
)
async def introspect(request: Request) -> Response:
    # The container without a dependency to resolve: the OAuth endpoints are hot
    # paths, like the bearer guard (wiring.services_for honours overrides).
    svc = await services_for(request)
    endpoint = svc.token_endpoint
    try:
        params = await _form(request)
        ids = client_credentials(params, request.headers.get("authorization", ""))
        body = await endpoint.introspect_request(ids, params)
    except OAuthError as exc:
        return oauth_error(exc.error, exc.detail, exc.status)
    request.scope["state"]["client_id"] = ids[0]  # authenticated: for the access record
    return JSONResponse(body, headers=NO_STORE)


@router.get("/oauth/jwks", summary="JSON Web Key Set: the public keys that sign our tokens")
async def jwks(svc: ServicesDep) -> JSONResponse:
    # N4: a new key signs only once this max-age has passed since every replica
    # published it, so a relying party's cached copy always holds the signing key.
    ring = await svc.keys.published()
    max_age = svc.settings.jwks_max_age_seconds
    return JSONResponse(ring.jwks(), headers={"Cache-Control": f"public, max-age={max_age}"})
