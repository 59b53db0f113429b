"""The application's own CPU per Bearer `GET /users/me`, without sockets or a load
generator: the ASGI app of a source tree called in a loop on one event loop, on a
fresh SQLite database (best of 7 runs of 3,000 requests). Steadier than req/s on a
machine whose speed drifts, for comparing two trees; run each a few times:

    .venv/bin/python -m bench.app_cost /tmp/before      # then: . (this tree)
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import timeit
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

PASSWORD = "correct horse battery staple"  # noqa: S105 - a throwaway bench account
ORIGIN = "http://127.0.0.1:1"


def main() -> None:
    tree = Path(sys.argv[1]).resolve()
    sys.path.insert(0, str(tree))  # that tree's userservice, not the installed one
    os.environ["USERSERVICE_ENV_FILE"] = os.devnull
    from fastapi.testclient import TestClient

    from userservice.app import create_app
    from userservice.db import migrate
    from userservice.db.engine import build_engine
    from userservice.settings import Settings

    settings = Settings(_env_file=None, data_dir=Path(tempfile.mkdtemp()), issuer=ORIGIN)  # type: ignore[call-arg]
    migrate.upgrade(build_engine(settings.resolved_database_url()))
    app = create_app(settings)
    with TestClient(app, base_url=ORIGIN) as client:
        client.post("/users", json={"email": "bench@example.com", "password": PASSWORD})
        form = {"grant_type": "password", "username": "bench@example.com", "password": PASSWORD}
        token = client.post("/oauth/token", data=form).json()["access_token"]
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/users/me",
            "raw_path": b"/users/me",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"127.0.0.1:1"), (b"authorization", f"Bearer {token}".encode())],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 1),
        }
        statuses: set[int] = set()

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.add(message["status"])

        async def requests(count: int) -> None:
            for _ in range(count):
                await app({**scope, "state": {}}, receive, send)

        loop = asyncio.new_event_loop()
        loop.run_until_complete(requests(300))
        runs = timeit.repeat(lambda: loop.run_until_complete(requests(3000)), number=1, repeat=7)
        if statuses != {200}:
            raise SystemExit(f"unexpected statuses: {statuses}")
        print(f"{tree}: {min(runs) / 3000 * 1e6:.1f} us per Bearer GET /users/me (app only)")


if __name__ == "__main__":
    main()
