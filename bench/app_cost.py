"""The application's own CPU per Bearer `GET /users/me`, without sockets or a load
generator: the ASGI app of a source tree called in a loop on one event loop, on a
fresh SQLite database (best of 7 runs of 3,000 requests). Steadier than req/s on a
machine whose speed drifts, for comparing two trees; run each a few times:

    .venv/bin/python -m bench.app_cost /tmp/before      # then: . (this tree)

With --log-level, the process logs as `serve` configures it (its log_config, to a
file in place of stdout and stderr; without it: no logging configured), and
--json-logs / --metrics turn on JSON logs and the metrics (multiprocess mode, as
under `serve`), so the same tree measured with and without them gives what they
add to a request in the app itself (uvicorn's HTTP work excluded):

    .venv/bin/python -m bench.app_cost . --log-level info
    .venv/bin/python -m bench.app_cost . --log-level info --json-logs --metrics
"""

from __future__ import annotations

import argparse
import asyncio
import logging.config
import os
import sys
import tempfile
import timeit
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

PASSWORD = "correct horse battery staple"  # noqa: S105 - a throwaway bench account
ORIGIN = "http://127.0.0.1:1"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.app_cost")
    parser.add_argument("tree", type=Path)
    parser.add_argument("--log-level", help="configure logging as serve does, at this level")
    parser.add_argument("--json-logs", action="store_true", help="log_format json")
    parser.add_argument("--metrics", action="store_true", help="record metrics (multiprocess)")
    return parser.parse_args()


def _log_to_file(level: str, json_logs: bool, work: Path) -> int:
    """serve's logging at `level`, stdout and stderr sent to a file in `work`;
    returns a descriptor of the original stdout for the result."""
    from userservice.logging_config import log_config

    original = os.dup(1)
    log = os.open(work / "app.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    logging.config.dictConfig(log_config(level, "json" if json_logs else "text"))
    return original


def main() -> None:
    args = _arguments()
    tree = args.tree.resolve()
    sys.path.insert(0, str(tree))  # that tree's userservice, not the installed one
    os.environ["USERSERVICE_ENV_FILE"] = os.devnull
    work = Path(tempfile.mkdtemp())
    if args.metrics:
        # As `serve` gives its workers (prometheus_client reads it at import).
        (work / "metrics").mkdir()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(work / "metrics")
    from fastapi.testclient import TestClient

    from userservice.app import create_app
    from userservice.db import migrate
    from userservice.db.engine import build_engine
    from userservice.settings import Settings

    metrics: dict[str, Any] = {"metrics_port": 9} if args.metrics else {}
    settings = Settings(_env_file=None, data_dir=work, issuer=ORIGIN, **metrics)  # type: ignore[call-arg]
    out = _log_to_file(args.log_level, args.json_logs, work) if args.log_level else 1
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
        what = (
            f"logs {args.log_level} {'json' if args.json_logs else 'text'}"
            if args.log_level
            else "no logging"
        )
        what += ", metrics" if args.metrics else ""
        line = (
            f"{tree} ({what}): {min(runs) / 3000 * 1e6:.1f} us per Bearer GET /users/me (app only)"
        )
        os.write(out, (line + "\n").encode())


if __name__ == "__main__":
    main()
