"""The harness's side of the peer (standard library only, imported from the main
.venv): build its venv, seed its users, and the argv/env to start it with
`bench.servers.Server`. The peer itself runs in bench/.peer-venv.

    prepare_peer(url, users, password, logs)
    server = Server("peer", peer_server_argv(port, 2), port, READY_PATH,
                    env=peer_env(url), cwd=REPO_ROOT, log=logs / "peer.log")
    token = peer_login(server.base_url, email, password)
"""

from __future__ import annotations

import json
import secrets
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

from bench.peer.venv import peer_python

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_PATH = "/healthz"  # bench/peer/app.py: readiness only, no auth, no database
SEED_TIMEOUT = 600  # seconds; 1,000,000 users take well under 2 minutes
# One secret per harness process, shared by all workers through the environment.
_JWT_SECRET = secrets.token_urlsafe(32)


class PeerError(RuntimeError):
    pass


def _peer(args: list[str], log: Path, timeout: float) -> str:
    """Runs `<peer python> -m bench.peer.seed ARGS` from the repo root; returns stdout."""
    argv = [str(peer_python()), "-m", "bench.peer.seed", *args]
    done = subprocess.run(
        argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    with log.open("a") as out:
        out.write(done.stderr)
    if done.returncode != 0:
        raise PeerError(f"bench.peer.seed failed (exit {done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def prepare_peer(database_url_async: str, users: int, password: str, log_dir: Path) -> None:
    """Builds the peer venv if needed and seeds `users` users sharing one hash of
    `password`, made by fastapi-users' own PasswordHelper."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / "peer-seed.log"
    password_hash = _peer(["--make-hash", password], log, timeout=60).strip()
    args = ["--url", database_url_async, "--users", str(users), "--password-hash", password_hash]
    _peer(args, log, timeout=SEED_TIMEOUT)


def peer_server_argv(port: int, workers: int) -> list[str]:
    # uvicorn with one socket per worker, like the service (bench/balanced.py).
    argv = [str(peer_python()), "-m", "bench.balanced", "bench.peer.app:app", str(port)]
    argv.append(str(workers))
    return argv


def peer_env(database_url_async: str) -> dict[str, str]:
    return {"PEER_DATABASE_URL": database_url_async, "PEER_JWT_SECRET": _JWT_SECRET}


def peer_login(base_url: str, email: str, password: str) -> str:
    """The access token from POST /auth/jwt/login (OAuth2 password form)."""
    body = urllib.parse.urlencode({"username": email, "password": password}).encode()
    request = urllib.request.Request(  # noqa: S310 - the harness's own loopback URL
        base_url + "/auth/jwt/login", data=body, method="POST"
    )
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
            token: str = json.load(reply)["access_token"]
    except (OSError, KeyError, ValueError) as exc:
        raise PeerError(f"peer login as {email} failed: {exc}") from None
    return token
