"""The peer: a standard fastapi-users app as its docs show it (SQLAlchemy adapter,
Bearer transport, JWT strategy with its default HS256), serving its own
GET /users/me. Run by the peer venv's python from the repository root:

    PEER_DATABASE_URL=sqlite+aiosqlite:///... PEER_JWT_SECRET=... \
        bench/.peer-venv/bin/python -m uvicorn bench.peer.app:app

Deviations from the docs' example, each for the benchmark only: the engine and the
JWT strategy are built in the lifespan from the environment (not at import), the
tables are created by `bench.peer.seed` (not at startup), and GET /healthz answers
200 without auth or database so the harness can poll for readiness.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin, schemas
from fastapi_users.authentication import AuthenticationBackend, BearerTransport, JWTStrategy
from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from bench.peer.models import User

TOKEN_LIFETIME_SECONDS = 900  # the service's access-token lifetime
# The service's PostgreSQL pool (userservice/db/engine.py: 10 + 10 overflow), so
# the peer is not throttled by SQLAlchemy's smaller default (5 + 10).
PG_POOL_SIZE = 10


class UserRead(schemas.BaseUser[uuid.UUID]):
    pass


class UserUpdate(schemas.BaseUserUpdate):
    pass


def _require_env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise RuntimeError(f"{name} is not set (see bench/peer/runner.py: peer_env)")
    return value


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    url = _require_env("PEER_DATABASE_URL")
    secret = _require_env("PEER_JWT_SECRET")
    pool = {"pool_size": PG_POOL_SIZE, "max_overflow": PG_POOL_SIZE}
    engine = create_async_engine(url, **(pool if url.startswith("postgresql") else {}))
    app.state.session_maker = async_sessionmaker(engine, expire_on_commit=False)
    app.state.jwt_strategy = JWTStrategy(secret=secret, lifetime_seconds=TOKEN_LIFETIME_SECONDS)
    app.state.secret = secret
    try:
        yield
    finally:
        await engine.dispose()


async def get_async_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.session_maker() as session:
        yield session


async def get_user_db(
    session: AsyncSession = Depends(get_async_session),
) -> AsyncIterator[SQLAlchemyUserDatabase[User, uuid.UUID]]:
    yield SQLAlchemyUserDatabase(session, User)


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    pass


async def get_user_manager(
    request: Request,
    user_db: SQLAlchemyUserDatabase[User, uuid.UUID] = Depends(get_user_db),
) -> AsyncIterator[UserManager]:
    manager = UserManager(user_db)
    # The docs set these as class attributes from a constant; ours come from the env.
    manager.reset_password_token_secret = request.app.state.secret
    manager.verification_token_secret = request.app.state.secret
    yield manager


def get_jwt_strategy(request: Request) -> JWTStrategy[User, uuid.UUID]:
    strategy: JWTStrategy[User, uuid.UUID] = request.app.state.jwt_strategy
    return strategy


auth_backend = AuthenticationBackend(
    name="jwt",
    transport=BearerTransport(tokenUrl="auth/jwt/login"),
    get_strategy=get_jwt_strategy,
)
fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [auth_backend])

app = FastAPI(lifespan=lifespan)
app.include_router(fastapi_users.get_auth_router(auth_backend), prefix="/auth/jwt", tags=["auth"])
app.include_router(
    fastapi_users.get_users_router(UserRead, UserUpdate), prefix="/users", tags=["users"]
)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Readiness only, for the harness: no auth, no database."""
    return {"status": "ok"}
