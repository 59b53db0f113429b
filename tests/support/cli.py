"""The real `userservice` command as a subprocess, for the tests of the CLI, its
settings and `serve`: an environment of our own, a run, and the one-line error shape."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TIMEOUT = 60


def command_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without its USERSERVICE_* settings: the command reads
    only what a test passes, and no settings file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("USERSERVICE_")}
    env.update(
        USERSERVICE_DATA_DIR=str(data_dir),
        USERSERVICE_ENV_FILE="/dev/null",
        USERSERVICE_LOG_LEVEL="warning",
    )
    env.update(extra)
    return env


def run_cli(
    data_dir: Path, *args: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    # cwd is the data directory's parent: no stray .env from the repository is read.
    return subprocess.run(
        [sys.executable, "-m", "userservice", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=command_env(data_dir, **env),
        cwd=data_dir.parent,
        timeout=TIMEOUT,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit status 2 and one `userservice: error:` line naming the problem, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("userservice: error:")
    for needle in needles:
        assert needle in lines[0], lines[0]
