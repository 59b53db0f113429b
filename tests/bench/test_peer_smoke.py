"""The benchmark's fastapi-users peer works end to end: its pinned venv builds (once
per machine; a failed build fails this test, never skips it), it seeds users, serves
with 2 workers, logs a user in and answers GET /users/me with that user."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bench.peer.runner import (
    READY_PATH,
    REPO_ROOT,
    peer_env,
    peer_login,
    peer_server_argv,
    prepare_peer,
)
from bench.servers import Server, free_port

PASSWORD = "bench correct horse battery staple"
USERS = 20


def _get(url: str, token: str = "") -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url)  # noqa: S310 - the test's own loopback server
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


@pytest.mark.bench
@pytest.mark.timeout(300)  # the first venv build downloads wheels; later runs take seconds
def test_peer_serves_users_me(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'peer.db'}"
    logs = tmp_path / "logs"
    prepare_peer(url, USERS, PASSWORD, logs)

    port = free_port()
    server = Server(
        "peer",
        peer_server_argv(port, workers=2),
        port,
        READY_PATH,
        env=peer_env(url),
        cwd=REPO_ROOT,
        log=logs / "peer.log",
    )
    server.start(expected_workers=2)
    try:
        email = f"user{USERS - 1}@bench.example"
        token = peer_login(server.base_url, email, PASSWORD)
        status, body = _get(server.base_url + "/users/me", token)
        assert (status, body["email"], body["is_active"]) == (200, email, True), body
        assert _get(server.base_url + "/users/me")[0] == 401
    finally:
        server.stop()
