"""Results as a JSON file and a Markdown table."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    scenario: str
    connections: int | None
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    peak_rss_mib_per_worker: list[float]
    cpu_ms_per_request: float | None
    notes: str = ""


@dataclass
class Report:
    mode: str
    machine: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(
            f"  {row.scenario:<28} c={row.connections or '-':<4} {row.rps:>10.1f} req/s  "
            f"p50 {row.p50_ms:7.2f} ms  p99 {row.p99_ms:7.2f} ms  errors {row.errors}",
            flush=True,
        )

    def write(self, out: Path) -> tuple[Path, Path]:
        out.mkdir(parents=True, exist_ok=True)
        json_path, md_path = out / "results.json", out / "results.md"
        data = {"mode": self.mode, "machine": self.machine, "rows": [asdict(r) for r in self.rows]}
        json_path.write_text(json.dumps(data, indent=2) + "\n")
        md_path.write_text(self.markdown())
        return json_path, md_path

    def markdown(self) -> str:
        facts = ", ".join(f"{key}: {value}" for key, value in self.machine.items())
        lines = [
            f"Mode: {self.mode}. Machine: {facts}.",
            "",
            "| scenario | conns | req/s | p50 ms | p99 ms | errors "
            "| peak RSS/worker MiB | CPU ms/req |",
            "|---|---:|---:|---:|---:|---:|---|---:|",
        ]
        for r in self.rows:
            cpu = f"{r.cpu_ms_per_request:.3f}" if r.cpu_ms_per_request is not None else "-"
            rss = " / ".join(f"{v:.0f}" for v in r.peak_rss_mib_per_worker)
            lines.append(
                f"| {r.scenario} | {r.connections or '-'} | {r.rps:,.0f} | {r.p50_ms:.2f} "
                f"| {r.p99_ms:.2f} | {r.errors} | {rss} | {cpu} |"
            )
        notes = [f"- {r.scenario}: {r.notes}" for r in self.rows if r.notes]
        if notes:
            lines += ["", *dict.fromkeys(notes)]
        return "\n".join(lines) + "\n"


def machine_facts() -> dict[str, Any]:
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }
