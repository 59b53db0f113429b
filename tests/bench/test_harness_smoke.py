"""The benchmark harness keeps working: its smoke mode (seconds, tiny data) runs
every scenario for real and reports a number for each. The full run is not a test."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = {
    "ceiling: FastAPI async JSON",
    "service: /users/me Bearer",
    "service: /users/me Basic",
    "argon2id verify limit",
}


@pytest.mark.bench
@pytest.mark.timeout(120)
def test_smoke_run_reports_every_scenario(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        # Never a silent skip: the harness is part of "the tests pass".
        pytest.fail("wrk is not installed: run `make system-deps`", pytrace=False)
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    results = json.loads((out / "results.json").read_text())
    assert results["mode"] == "smoke"
    rows = results["rows"]
    assert {row["scenario"] for row in rows} == SCENARIOS
    for row in rows:
        assert row["rps"] > 0, row
        assert row["errors"] == 0, row
        assert row["peak_rss_mib_per_worker"], row
    table = (out / "results.md").read_text()
    assert all(f"| {name} |" in table for name in SCENARIOS)
