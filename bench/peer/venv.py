"""Builds the peer's own virtualenv (bench/.peer-venv) from requirements.txt on first
use, with the same uv the Makefile installs. Standard library only: it runs in the
main .venv, which cannot hold the peer's SQLAlchemy <2.1."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
VENV = HERE.parent / ".peer-venv"
STAMP = VENV / ".requirements.sha256"
BUILD_TIMEOUT = 900  # seconds; a cold PyPI download on a slow link, not a normal build


class PeerVenvError(RuntimeError):
    pass


def _uv() -> list[str]:
    # The Makefile installs uv into `python3` (`python3 -m pip install uv==...`), not
    # into .venv, so call it through that interpreter.
    return [shutil.which("python3") or "python3", "-m", "uv"]


def _base_python() -> str:
    """The interpreter running us, outside any venv: the peer gets the same CPython."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidate = Path(sys.base_prefix) / "bin" / version
    return str(candidate) if candidate.exists() else sys.executable


def _run(argv: list[str], what: str) -> str:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    # An activated main venv must not steer uv; every command names its target.
    env.pop("VIRTUAL_ENV", None)
    try:
        done = subprocess.run(
            argv,
            env=env,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PeerVenvError(f"{what} failed: {exc}") from None
    if done.returncode != 0:
        raise PeerVenvError(
            f"{what} failed (exit {done.returncode}): {' '.join(argv)}\n"
            f"{(done.stdout + done.stderr).strip()[-2000:]}"
        )
    return done.stdout + done.stderr


def _fingerprint(base_python: str) -> str:
    # The requirements' hash decides a rebuild; the interpreter too, since a venv
    # pointing at a removed or different Python is as stale as one with old pins.
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    return f"{digest}\n{base_python}\n"


def peer_python() -> Path:
    """The peer venv's python, building or re-syncing the venv when requirements.txt
    (or the base interpreter) changed since the last build. Idempotent and safe to
    call from concurrent processes (a file lock serialises builds)."""
    python = VENV / "bin" / "python"
    base = _base_python()
    wanted = _fingerprint(base)
    VENV.mkdir(parents=True, exist_ok=True)
    with (VENV / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and STAMP.exists() and STAMP.read_text() == wanted:
            return python
        try:
            _run([*_uv(), "--version"], "uv")
        except PeerVenvError as exc:
            raise PeerVenvError(
                f"{exc}\nuv is missing: run `make` once, or `python3 -m pip install uv==0.13.8`"
            ) from None
        STAMP.unlink(missing_ok=True)
        # --allow-existing keeps the lock file; `pip sync` below removes anything
        # that is not pinned, so an old venv converges to requirements.txt exactly.
        _run([*_uv(), "venv", "--allow-existing", "--python", base, str(VENV)], "uv venv")
        _run(
            [
                *_uv(),
                "pip",
                "sync",
                "--require-hashes",
                "--python",
                str(python),
                str(REQUIREMENTS),
            ],
            "uv pip sync (bench/peer/requirements.txt)",
        )
        STAMP.write_text(wanted)
    return python


if __name__ == "__main__":
    print(peer_python())
