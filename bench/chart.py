"""The PNG chart: req/s and p99 latency per scenario, one bar each, taken at the
largest connection count the scenario ran with (paced and storm rows as run).
`python -m bench.chart results.json [out.png]` redraws it from a results file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only

import matplotlib.pyplot as plt

COLOURS = {"service": "#1f77b4", "ceiling": "#7f7f7f", "peer": "#ff7f0e", "argon2": "#2ca02c"}


def _bars(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    chosen: dict[str, dict[str, Any]] = {}
    for row in rows:
        current = chosen.get(row["label"])
        if current is None or (row["connections"] or 0) >= (current["connections"] or 0):
            chosen[row["label"]] = row
    return list(chosen.values())


def draw(results: dict[str, Any], out: Path) -> Path:
    bars = _bars(results["rows"])
    labels = [
        f"{r['label']} (c={r['connections']})" if r["connections"] else r["label"] for r in bars
    ]
    colours = [COLOURS.get(r["system"], "#9467bd") for r in bars]
    height = max(4.0, 0.28 * len(bars) + 1.5)
    figure, (left, right) = plt.subplots(1, 2, figsize=(16, height), sharey=True)
    positions = range(len(bars))
    left.barh(positions, [max(r["rps"], 0.1) for r in bars], color=colours)
    left.set_xscale("log")
    left.set_xlabel("requests/s (log scale)")
    left.set_yticks(list(positions), labels, fontsize=8)
    left.invert_yaxis()
    right.barh(positions, [max(r["p99_ms"], 0.01) for r in bars], color=colours)
    right.set_xscale("log")
    right.set_xlabel("p99 latency, ms (log scale)")
    for axis in (left, right):
        axis.grid(axis="x", which="both", alpha=0.3)
    for row, y in zip(bars, positions, strict=True):
        left.annotate(
            f"{row['rps']:,.0f}",
            (max(row["rps"], 0.1), y),
            fontsize=7,
            xytext=(3, -3),
            textcoords="offset points",
        )
        right.annotate(
            f"{row['p99_ms']:,.1f}",
            (max(row["p99_ms"], 0.01), y),
            fontsize=7,
            xytext=(3, -3),
            textcoords="offset points",
        )
    figure.suptitle(
        f"userservice bench ({results['mode']}): {results['machine'].get('nproc')} cores, "
        "2 workers per server; blue service, grey ceiling, orange fastapi-users, "
        "green raw argon2id"
    )
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def main(argv: list[str]) -> int:
    source = Path(argv[0])
    out = Path(argv[1]) if len(argv) > 1 else source.with_name("results.png")
    draw(json.loads(source.read_text()), out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
