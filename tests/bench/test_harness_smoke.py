"""The benchmark harness keeps working: its smoke mode (tiny data, one second per
load point) runs every scenario kind for real, the service on SQLite (all of them)
and on PostgreSQL (the 1M-user set, on 120 users: cluster, COPY seeding, psycopg
and the asyncpg peer), and reports a number for each. The full run is not a test."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.plan import LARGE_SET, SMALL_SET, TITLES

ROOT = Path(__file__).resolve().parents[2]


def _expected() -> set[tuple[str, str, str]]:
    """(system, scenario, backend) of every row the smoke plan must produce."""
    kinds = {"storm": ("storm-login", "storm-me"), "ceiling-beside": ()}
    small = {k for name in SMALL_SET for k in kinds.get(name, (name,))}
    rows = {("ceiling", "ceiling", ""), ("argon2", "argon2", "")}
    # The argon2id limit again right before and after each configuration's logins.
    rows |= {("argon2", "argon2", "sqlite"), ("argon2", "argon2", "postgresql")}
    # And the ceiling right before and after the runs compared with it.
    rows |= {("ceiling", "ceiling", "sqlite"), ("ceiling", "ceiling", "postgresql")}
    rows |= {("service", name, "sqlite") for name in small}
    rows |= {("service", name, "postgresql") for name in LARGE_SET if name != "ceiling-beside"}
    rows |= {("peer", "peer-me", backend) for backend in ("sqlite", "postgresql")}
    # The password grant with throttle counters in memory and in Redis, in turns.
    rows |= {("throttle", f"login-throttle-{side}", "postgresql") for side in ("memory", "redis")}
    # /users/me Bearer with metrics and JSON logs off and on, in turns.
    rows |= {
        ("observability", f"me-bearer-observability-{side}", "sqlite") for side in ("off", "on")
    }
    # The fleet: through nginx to 3 replicas, and directly to one of them.
    rows |= {
        (system, scenario, "postgresql")
        for system in ("fleet", "fleet-replica")
        for scenario in ("me-bearer", "client-credentials")
    }
    return rows


@pytest.mark.bench
@pytest.mark.timeout(540)
def test_smoke_run_reports_every_scenario(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        # Never a silent skip: the harness is part of "the tests pass".
        pytest.fail("wrk is not installed: run `make system-deps`", pytrace=False)
    out = tmp_path / "results"
    with subprocess.Popen(
        [sys.executable, "-m", "bench.run", "--smoke", "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as run:
        try:
            output, _ = run.communicate(timeout=480)
        except subprocess.TimeoutExpired:
            # SIGTERM, not SIGKILL: the harness then stops its servers and the
            # fleet by PID instead of leaving them running.
            run.terminate()
            output, _ = run.communicate(timeout=40)
            pytest.fail(f"bench.run --smoke took over 480 s:\n{output[-4000:]}")
    assert run.returncode == 0, output

    results = json.loads((out / "results.json").read_text())
    assert results["mode"] == "smoke"
    rows = results["rows"]
    assert {(r["system"], r["scenario"], r["backend"]) for r in rows} == _expected()
    assert {r["tls"] for r in rows if r["scenario"] == "me-bearer"} == {False, True}
    for row in rows:
        if row["system"] == "fleet":
            # nginx spread the requests over all three replicas, and its access log
            # accounts for every request wrk counted.
            spread = row["per_replica_requests"]
            assert len(spread) == 3 and min(spread) > 0, row
            assert sum(spread) >= row["requests"], row
        else:
            assert row["per_replica_requests"] == [], row
    for row in rows:
        assert row["rps"] > 0, row
        assert row["errors"] == 0, row
        assert row["peak_rss_mib_per_worker"], row
    paced = [r for r in rows if r["offered_rps"] is not None]
    assert {r["scenario"] for r in paced} == {"me-bearer-paced", "admin-list-paced", "storm-me"}

    startups = results["startups"]
    assert {(s["backend"], s["tls"]) for s in startups} == {
        ("sqlite", False),
        ("sqlite", True),
        ("postgresql", False),
    }
    for start in startups:
        assert min(start["ready_seconds"]) > 0, start
        assert len(start["idle_rss_mib_per_worker"]) == 2, start

    beside = [r for r in rows if r["system"] == "argon2" and r["backend"] == "sqlite"]
    assert [r["label"].split(", ")[1].split(" SQLite")[0] for r in beside] == [
        "right before",
        "right after",
    ]
    ceilings = [r for r in rows if r["system"] == "ceiling" and r["backend"] == "postgresql"]
    assert [r["notes"].split(" the ")[0] for r in ceilings] == ["right before", "right after"]
    goals = results["goals"]
    assert goals and all(g["target"] for g in goals)
    assert any(g["met"] is not None for g in goals)
    throttle = [g for g in goals if "Redis throttle counters" in g["goal"]]
    assert len(throttle) == 1 and throttle[0]["met"] is not None, throttle
    observability = [g for g in goals if "metrics and JSON logs cost" in g["goal"]]
    assert len(observability) == 1 and observability[0]["met"] is not None, observability
    notes = [r["notes"] for r in rows if r["system"] == "observability"]
    assert [n.split("; ")[1].split(" at INFO")[0] for n in notes] == [
        "no metrics, text logs",
        "metrics on, JSON logs",
    ], notes
    table = (out / "results.md").read_text()
    assert all(TITLES[r["scenario"]] in table for r in rows)
    assert "| goal | measured | target | result |" in table
    assert (out / "results.png").read_bytes().startswith(b"\x89PNG")
