"""OAuth client registry: register, read, change, rotate the secret, delete."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass

from userservice.db.clients import FIRST_PARTY_CLIENT_ID, ClientRepository
from userservice.db.codec import utc as as_utc
from userservice.db.models import OAuthClient, utcnow
from userservice.db.ports import Storage, UnitOfWork
from userservice.errors import Conflict, InvalidClientMetadata, NotFound
from userservice.records import StoredClient
from userservice.security.secrets import digest, new_token
from userservice.services.audit import record
from userservice.services.client_metadata import (
    UNSET,
    ClientChanges,
    ClientMetadata,
    for_create,
    validate,
)

# What a client_id can look like (ours are 22 URL-safe characters; migrations and
# tests may seed readable ones). Anything else cannot exist: it is not looked up,
# so that NUL or surrogates from a URL never reach the database driver.
_CLIENT_ID = re.compile(r"[\x21-\x7e]{1,64}")


@dataclass(frozen=True)
class ClientRecord:
    """A registered client as the API shows it: never its secret or digest."""

    client_id: str
    client_id_issued_at: int
    metadata: ClientMetadata

    @property
    def client_type(self) -> str:
        return "public" if self.metadata.is_public else "confidential"

    @classmethod
    def of(cls, row: OAuthClient) -> ClientRecord:
        return cls(
            client_id=row.client_id,
            client_id_issued_at=int(as_utc(row.created_at).timestamp()),
            metadata=_metadata(row),
        )


@dataclass(frozen=True)
class IssuedClient:
    """A client together with a secret that was just made: shown this one time."""

    record: ClientRecord
    client_secret: str | None


def _metadata(row: OAuthClient) -> ClientMetadata:
    return ClientMetadata(
        client_name=row.client_name,
        token_endpoint_auth_method=row.token_endpoint_auth_method,
        redirect_uris=list(row.redirect_uris or []),
        post_logout_redirect_uris=list(row.post_logout_redirect_uris or []),
        grant_types=list(row.grant_types or []),
        response_types=list(row.response_types or []),
        scope=row.scope,
        logo_uri=row.logo_uri,
        client_uri=row.client_uri,
        first_party=row.is_first_party,
        resource_server=row.is_resource_server,
    )


def _store(row: OAuthClient, meta: ClientMetadata) -> None:
    row.client_name = meta.client_name
    row.client_type = "public" if meta.is_public else "confidential"
    row.token_endpoint_auth_method = meta.token_endpoint_auth_method
    row.redirect_uris = list(meta.redirect_uris)
    row.post_logout_redirect_uris = list(meta.post_logout_redirect_uris)
    row.grant_types = list(meta.grant_types)
    row.response_types = list(meta.response_types)
    row.scope = meta.scope
    row.logo_uri = meta.logo_uri
    row.client_uri = meta.client_uri
    row.is_first_party = meta.first_party
    row.is_resource_server = meta.resource_server


def _new_client_id() -> str:
    while True:
        client_id = secrets.token_urlsafe(16)
        # A leading "-" would read as an option on command lines (`clients show -x…`).
        if not client_id.startswith("-"):
            return client_id


def _new_secret() -> tuple[str, str]:
    # 256 bits from the CSPRNG; only the SHA-256 is kept (C4).
    secret = new_token(32)
    return secret, digest(secret)


class ClientService:
    def __init__(self, db: Storage) -> None:
        self.db = db

    def create(
        self, changes: ClientChanges, *, actor: object = None, ip: str | None = None
    ) -> IssuedClient:
        meta = for_create(changes)
        secret, secret_digest = (None, None) if meta.is_public else _new_secret()
        with self.db.unit_of_work() as session:
            row = OAuthClient(
                client_id=_new_client_id(),
                secret_digest=secret_digest,
                extra={},
                created_at=utcnow(),
            )
            _store(row, meta)
            ClientRepository(session).add(row)
            created = ClientRecord.of(row)
            _record(
                session,
                "admin.client_created",
                created.client_id,
                actor,
                ip,
                type=created.client_type,
                first_party=meta.first_party,
                resource_server=meta.resource_server,
            )
        return IssuedClient(created, secret)

    def list(self) -> list[ClientRecord]:
        with self.db.unit_of_work(read_only=True) as session:
            return [ClientRecord.of(row) for row in ClientRepository(session).list_all()]

    async def registration(self, client_id: str) -> StoredClient | None:
        """The client as stored, read without blocking the event loop (for the
        pages that check an app's registered URIs); None when there is none."""
        return await self.db.clients.client(client_id)

    def get(self, client_id: str) -> ClientRecord:
        with self.db.unit_of_work(read_only=True) as session:
            return ClientRecord.of(self._find(ClientRepository(session), client_id))

    def update(
        self,
        client_id: str,
        changes: ClientChanges,
        *,
        actor: object = None,
        ip: str | None = None,
    ) -> ClientRecord:
        with self.db.unit_of_work() as session:
            row = self._find(ClientRepository(session), client_id, lock=True)
            current = _metadata(row)
            meta = validate(current.merged(changes))
            if meta.token_endpoint_auth_method != current.token_endpoint_auth_method:
                if row.client_id == FIRST_PARTY_CLIENT_ID:
                    # Every frontend and the docs UI log in through it without a secret.
                    raise Conflict("The built-in client's auth method cannot be changed.")
                if meta.is_public != current.is_public:
                    # A secret would have to appear (or vanish) outside create/rotate.
                    raise InvalidClientMetadata(
                        "A client cannot switch between public ('none') and confidential; "
                        "register a new client instead."
                    )
            _store(row, meta)
            session.flush()
            updated = ClientRecord.of(row)
            _record(session, "admin.client_updated", client_id, actor, ip, fields=_given(changes))
        return updated

    def rotate_secret(
        self, client_id: str, *, actor: object = None, ip: str | None = None
    ) -> IssuedClient:
        with self.db.unit_of_work() as session:
            row = self._find(ClientRepository(session), client_id, lock=True)
            if _metadata(row).is_public:
                raise Conflict("A public client has no secret to rotate.")
            secret, row.secret_digest = _new_secret()
            session.flush()
            rotated = ClientRecord.of(row)
            _record(session, "admin.client_secret_rotated", client_id, actor, ip)
        # Committed above: the old secret is refused from the next request on.
        return IssuedClient(rotated, secret)

    def delete(self, client_id: str, *, actor: object = None, ip: str | None = None) -> None:
        if client_id == FIRST_PARTY_CLIENT_ID:
            raise Conflict("The built-in first-party client cannot be deleted.")
        with self.db.unit_of_work() as session:
            if not _CLIENT_ID.fullmatch(client_id) or not ClientRepository(session).delete(
                client_id
            ):
                raise NotFound("No such client.")
            _record(session, "admin.client_deleted", client_id, actor, ip)

    @staticmethod
    def _find(repo: ClientRepository, client_id: str, *, lock: bool = False) -> OAuthClient:
        found = None
        if _CLIENT_ID.fullmatch(client_id):
            found = repo.get_for_update(client_id) if lock else repo.get(client_id)
        if found is None:
            raise NotFound("No such client.")
        return found


def _record(
    uow: UnitOfWork,
    event: str,
    client_id: str,
    actor: object,
    ip: str | None,
    **details: str | bool,
) -> None:
    """An administrator's change of the registry, stored with it (L25): `user` is
    the administrator's account; a change from the command line names no account."""
    if isinstance(actor, uuid.UUID):
        record(uow, event, user=actor, actor=None, client=client_id, ip=ip, **details)
    elif actor is not None:
        record(
            uow, event, user=None, actor=None, client=client_id, ip=ip, via=str(actor), **details
        )
    else:
        record(uow, event, user=None, actor=None, client=client_id, ip=ip, **details)


def _given(changes: ClientChanges) -> str:
    return ",".join(
        name for name in ClientChanges.__dataclass_fields__ if getattr(changes, name) is not UNSET
    )
