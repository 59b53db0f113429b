"""`python -m bench.ab` keeps working: one tiny round of every scenario against this
tree on both sides (SQLite), real servers and wrk, medians printed and written as
JSON; plus its arithmetic (order of the sides, medians, the CPU change) on its own.
A full A/B run is not a test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench.ab import SCENARIOS, SIDES, Run, order, summarise

ROOT = Path(__file__).resolve().parents[2]
# The tiny_round fixture (conftest.py): (module, users, arguments) -> (stdout, JSON).
TinyRound = Callable[[str, int, list[str]], tuple[str, dict[str, Any]]]


def test_sides_alternate_by_round_and_by_scenario() -> None:
    assert order(0, 0) == ("before", "after")
    assert order(0, 1) == ("after", "before")
    assert order(1, 0) == ("after", "before")
    assert order(1, 1) == ("before", "after")


def test_summary_takes_medians_and_flags_more_than_five_percent_cpu() -> None:
    runs = [
        Run(1, "before", "me-bearer", 1000.0, 100.0, 0),
        Run(2, "before", "me-bearer", 900.0, 120.0, 0),
        Run(3, "before", "me-bearer", 1100.0, 110.0, 0),
        Run(1, "after", "me-bearer", 950.0, 115.0, 0),
        Run(2, "after", "me-bearer", 1200.0, 190.0, 1),
        Run(3, "after", "me-bearer", 1000.0, 116.0, 0),
        Run(1, "before", "login", 20.0, 40000.0, 0),
        Run(1, "after", "login", 21.0, 41000.0, 0),
    ]
    summary = summarise(runs, ["me-bearer", "login"])
    bearer = summary["me-bearer"]
    assert bearer["before"] == {"cpu_us_per_request": 110.0, "rps": 1000.0}
    assert bearer["after"] == {"cpu_us_per_request": 116.0, "rps": 1000.0}
    assert bearer["cpu_change_pct"] == 5.5
    # Per round +15.0 %, +58.3 %, +5.5 %: the verdict follows the pairs' median.
    assert bearer["paired_change_pct"] == 15.0
    assert bearer["within_tolerance"] is False
    assert bearer["errors"] == 1
    assert summary["login"]["cpu_change_pct"] == 2.5
    assert summary["login"]["paired_change_pct"] == 2.5
    assert summary["login"]["within_tolerance"] is True


@pytest.mark.bench
@pytest.mark.timeout(240)
def test_one_tiny_round_measures_every_scenario_on_both_sides(tiny_round: TinyRound) -> None:
    stdout, results = tiny_round("bench.ab", 60, [str(ROOT), str(ROOT)])
    assert results["before"] == results["after"] == str(ROOT)
    assert results["backend"] == "sqlite"
    assert list(results["scenarios"]) == list(SCENARIOS)
    for scenario, entry in results["scenarios"].items():
        assert entry["errors"] == 0, scenario
        for side in SIDES:
            assert entry[side]["rps"] > 0, (scenario, side)
            assert entry[side]["cpu_us_per_request"] > 0, (scenario, side)
    measured = sorted((r["scenario"], r["side"]) for r in results["runs"])
    assert measured == sorted((s, side) for s in SCENARIOS for side in SIDES)
    medians = stdout.split("medians over 1 rounds")[1]
    assert all(f"\n{scenario} " in medians for scenario in SCENARIOS)
