"""`python -m bench.ab_redis` keeps working: one tiny round of the password grant with
the throttle counters in memory and in a real Redis, real servers and wrk, medians
printed and written as JSON; plus its arithmetic on its own. The Redis side's
counters really live in Redis (the Redis server served commands during its run,
none during the memory side's). A full comparison is not a test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bench.ab_envs import Comparison, Run, summarise
from bench.throttle_cost import SIDES, TRAFFIC

# The tiny_round fixture (conftest.py): (module, users, arguments) -> (stdout, JSON).
TinyRound = Callable[[str, int, list[str]], tuple[str, dict[str, Any]]]
# The sides and traffic of the Redis stage; its probe needs a running Redis.
REDIS_STAGE = Comparison("throttle", SIDES, lambda _side: {}, TRAFFIC)


def _run(round_: int, side: str, cpu: float, rps: float = 100.0) -> Run:
    return Run(round_, side, "login", rps, 10.0, 20.0, cpu, 0)


def test_sides_alternate_by_round_and_by_scenario() -> None:
    assert REDIS_STAGE.order(0, 0) == ("memory", "redis")
    assert REDIS_STAGE.order(0, 1) == ("redis", "memory")
    assert REDIS_STAGE.order(1, 0) == ("redis", "memory")


def test_the_verdict_is_the_median_of_the_per_round_changes() -> None:
    runs = [
        _run(1, "memory", 40000.0),
        _run(1, "redis", 41000.0),  # +2.5 %
        _run(2, "memory", 30000.0),
        _run(2, "redis", 33000.0),  # +10 %
        _run(3, "memory", 50000.0),
        _run(3, "redis", 53000.0),  # +6 %
    ]
    summary = summarise(REDIS_STAGE, runs, ["login"])["login"]
    assert summary["paired_change_pct"] == [2.5, 10.0, 6.0]
    assert summary["cpu_change_pct"] == 6.0
    assert summary["within_tolerance"] is False
    assert summary["memory"]["cpu_us_per_request"] == 40000.0
    assert summary["redis"]["cpu_us_per_request"] == 41000.0
    within = summarise(REDIS_STAGE, runs[:2], ["login"])["login"]
    assert within["cpu_change_pct"] == 2.5
    assert within["within_tolerance"] is True


@pytest.mark.bench
@pytest.mark.timeout(180)
def test_one_tiny_round_measures_both_sides(tiny_round: TinyRound) -> None:
    _stdout, results = tiny_round("bench.ab_redis", 40, [])
    assert results["backend"] == "sqlite"
    assert list(results["scenarios"]) == ["login"]
    entry = results["scenarios"]["login"]
    assert entry["errors"] == 0
    for side in SIDES:
        assert entry[side]["rps"] > 0, side
        assert entry[side]["cpu_us_per_request"] > 0, side
    assert sorted(r["side"] for r in results["runs"]) == sorted(SIDES)
    # The memory side never talks to Redis; the Redis side counts there, in atomic
    # scripts: an admission and a settlement per login (more where wrk stopped
    # counting requests still in flight at the end of the run: at most 4 here).
    assert entry["memory"]["redis_commands_per_request"] == 0
    assert entry["redis"]["redis_commands_per_request"] > 0
    assert 2 <= entry["redis"]["redis_scripts_per_request"] < 3.5
