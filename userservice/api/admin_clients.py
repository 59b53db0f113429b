"""/admin/clients: the OAuth client registry (RFC 7591 metadata names), admins only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from userservice.api.deps import user_allowed
from userservice.api.schemas import problem_responses
from userservice.services.authn import Principal
from userservice.services.client_metadata import (
    AUTH_METHODS,
    GRANT_TYPES,
    SCOPES,
    ClientChanges,
)
from userservice.services.clients import ClientRecord, IssuedClient
from userservice.wiring import ServicesDep, client_ip

router = APIRouter(prefix="/admin/clients", tags=["admin: OAuth clients"])


# Generous size bounds only (memory); the service applies the real rules and answers
# with invalid_redirect_uri / invalid_client_metadata.
Bounded = Annotated[str, Field(max_length=4096)]
BoundedList = Annotated[list[Bounded], Field(max_length=100)]
EXAMPLE: dict[str, JsonValue] = {
    "client_name": "Example web app",
    "redirect_uris": ["https://app.example.com/callback"],
    "grant_types": ["authorization_code", "refresh_token"],
    "token_endpoint_auth_method": "client_secret_basic",
    "scope": "openid profile email offline_access",
}


class ClientUpdate(BaseModel):
    """Fields to change; those left out stay as they are. `null` clears the URIs."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE]})

    client_name: Bounded | None = Field(default=None, description="1-200 characters.")
    redirect_uris: BoundedList | None = Field(
        default=None,
        description="Exact URIs: https, or http://127.0.0.1 / http://[::1] (any port). "
        "No fragments, wildcards or user information; at most 20.",
    )
    post_logout_redirect_uris: BoundedList | None = Field(
        default=None, description="Same rules as redirect_uris."
    )
    grant_types: BoundedList | None = Field(
        default=None, description=f"Any of: {', '.join(GRANT_TYPES)}."
    )
    response_types: BoundedList | None = Field(
        default=None, description='Derived: ["code"] with authorization_code, else [].'
    )
    token_endpoint_auth_method: Bounded | None = Field(
        default=None, description=f"One of: {', '.join(AUTH_METHODS)} (none = public)."
    )
    scope: Bounded | None = Field(
        default=None, description=f"Space-separated, from: {' '.join(SCOPES)}."
    )
    logo_uri: Bounded | None = Field(default=None, description="https only.")
    client_uri: Bounded | None = Field(default=None, description="https only.")
    first_party: bool | None = Field(
        default=None, description="Ours: may use the password grant and skip consent."
    )
    resource_server: bool | None = Field(
        default=None,
        description="May introspect the access tokens of every client, not only its own "
        "(RFC 7662 §4). Confidential clients only.",
    )

    def changes(self) -> ClientChanges:
        return ClientChanges(**{name: getattr(self, name) for name in self.model_fields_set})


class ClientCreate(ClientUpdate):
    client_name: Bounded = Field(description="1-200 characters, shown on the consent page.")


class ClientOut(BaseModel):
    client_id: str
    client_id_issued_at: int
    client_name: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    grant_types: list[str]
    response_types: list[str]
    token_endpoint_auth_method: str
    scope: str
    logo_uri: str | None
    client_uri: str | None
    first_party: bool
    resource_server: bool

    @classmethod
    def of(cls, record: ClientRecord) -> ClientOut:
        meta = record.metadata
        return cls(
            client_id=record.client_id,
            client_id_issued_at=record.client_id_issued_at,
            client_name=meta.client_name,
            redirect_uris=meta.redirect_uris,
            post_logout_redirect_uris=meta.post_logout_redirect_uris,
            grant_types=meta.grant_types,
            response_types=meta.response_types,
            token_endpoint_auth_method=meta.token_endpoint_auth_method,
            scope=meta.scope,
            logo_uri=meta.logo_uri,
            client_uri=meta.client_uri,
            first_party=meta.first_party,
            resource_server=meta.resource_server,
        )


class ClientIssued(ClientOut):
    """RFC 7591 §3.2.1 client information response."""

    client_secret: str | None = Field(
        default=None,
        description="Confidential clients only. Shown this once: only its hash is stored.",
    )
    client_secret_expires_at: int | None = Field(
        default=None, description="0: the secret does not expire (with client_secret)."
    )

    @classmethod
    def issued(cls, issued: IssuedClient) -> ClientIssued:
        fields = ClientOut.of(issued.record).model_dump()
        if issued.client_secret is not None:
            fields.update(client_secret=issued.client_secret, client_secret_expires_at=0)
        return cls(**fields)


class ClientList(BaseModel):
    items: list[ClientOut]


def _no_store(response: Response) -> None:
    # The body carries a secret: no cache may keep it (RFC 7591 §3.2.1 by analogy
    # with RFC 6749 §5.1).
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ClientIssued,
    response_model_exclude_unset=True,
    responses=problem_responses(400, 401, 403, 422),
    summary="Register a client (the secret is shown once)",
)
def create_client(
    body: ClientCreate,
    admin: Annotated[Principal, Depends(user_allowed("create_client"))],
    request: Request,
    svc: ServicesDep,
    response: Response,
) -> ClientIssued:
    issued = svc.clients.create(body.changes(), actor=admin.user.id, ip=client_ip(request))
    response.headers["Location"] = f"/admin/clients/{issued.record.client_id}"
    _no_store(response)
    return ClientIssued.issued(issued)


@router.get("", response_model=ClientList, responses=problem_responses(401, 403))
def list_clients(
    _admin: Annotated[Principal, Depends(user_allowed("list_clients"))], svc: ServicesDep
) -> ClientList:
    return ClientList(items=[ClientOut.of(record) for record in svc.clients.list()])


@router.get("/{client_id}", response_model=ClientOut, responses=problem_responses(401, 403, 404))
def read_client(
    client_id: str,
    _admin: Annotated[Principal, Depends(user_allowed("read_client"))],
    svc: ServicesDep,
) -> ClientOut:
    return ClientOut.of(svc.clients.get(client_id))


@router.patch(
    "/{client_id}",
    response_model=ClientOut,
    responses=problem_responses(400, 401, 403, 404, 409, 422),
)
def update_client(
    client_id: str,
    body: ClientUpdate,
    admin: Annotated[Principal, Depends(user_allowed("update_client"))],
    request: Request,
    svc: ServicesDep,
) -> ClientOut:
    """Partial update with the same rules as registration. The auth method may change
    between the two secret methods, never between public and confidential."""
    return ClientOut.of(
        svc.clients.update(client_id, body.changes(), actor=admin.user.id, ip=client_ip(request))
    )


@router.post(
    "/{client_id}/secret",
    response_model=ClientIssued,
    response_model_exclude_unset=True,
    responses=problem_responses(401, 403, 404, 409),
    summary="Rotate the secret (the old one stops working at once)",
)
def rotate_client_secret(
    client_id: str,
    admin: Annotated[Principal, Depends(user_allowed("rotate_client_secret"))],
    request: Request,
    svc: ServicesDep,
    response: Response,
) -> ClientIssued:
    issued = svc.clients.rotate_secret(client_id, actor=admin.user.id, ip=client_ip(request))
    _no_store(response)
    return ClientIssued.issued(issued)


@router.delete(
    "/{client_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 409),
)
def delete_client(
    client_id: str,
    admin: Annotated[Principal, Depends(user_allowed("delete_client"))],
    request: Request,
    svc: ServicesDep,
) -> Response:
    """Its refresh tokens, codes and consents go with it."""
    svc.clients.delete(client_id, actor=admin.user.id, ip=client_ip(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
