"""The parts create_app wired, for tests: read them, or swap one for a request.

Routes receive the container through `Depends(services)`; a test that needs a
different part overrides that dependency instead of changing the application's
state, and the override is gone with the app."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import FastAPI, Request
from sqlalchemy import Engine

from userservice.db.ports import Storage
from userservice.services.keys import KeyStore
from userservice.wiring import Services, services, wired


def engine_of(app: FastAPI) -> Engine:
    """The engine behind the app's storage, for tests that arrange or inspect rows."""
    return wired(app).accounts.db.engine


def storage_of(app: FastAPI) -> Storage:
    """The storage ports behind the app, for tests that arrange or inspect rows."""
    return wired(app).accounts.db


def keys_of(app: FastAPI) -> KeyStore:
    """The app's signing keys, for tests that rotate them or read their state."""
    keys: KeyStore = wired(app).authenticator.keys
    return keys


def override(app: FastAPI, **parts: Any) -> Services:
    """Routes of `app` receive the container with `parts` replaced; returns it."""
    replaced = dataclasses.replace(wired(app), **parts)

    async def provide(request: Request) -> Services:
        return replaced

    app.dependency_overrides[services] = provide
    return replaced
