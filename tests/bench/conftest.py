"""Running one tiny round of a `python -m bench.ab*` command for real."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--rounds", "1", "--seconds", "1", "--warmup", "0", "--connections", "4"]

# (module, users, extra arguments) -> (its stdout, its JSON document)
TinyRound = Callable[[str, int, list[str]], tuple[str, dict[str, Any]]]


@pytest.fixture
def tiny_round(tmp_path: Path) -> TinyRound:
    if shutil.which("wrk") is None:
        # Never a silent skip: the harness is part of "the tests pass".
        pytest.fail("wrk is not installed: run `make system-deps`", pytrace=False)

    def run(module: str, users: int, extra: list[str]) -> tuple[str, dict[str, Any]]:
        out = tmp_path / f"{module}.json"
        arguments = [*TINY, "--users", str(users), "--json", str(out), *extra]
        done = subprocess.run(
            [sys.executable, "-m", module, *arguments],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=230,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "medians over 1 rounds" in done.stdout
        return done.stdout, json.loads(out.read_text())

    return run
