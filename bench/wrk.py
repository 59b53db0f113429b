"""Load from wrk (Debian package `wrk`), summarised by report.lua."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).with_name("report.lua")


class WrkFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise WrkFailed("wrk is not installed: run `make system-deps` (Debian package wrk)")
    return found


def run_wrk(
    url: str,
    *,
    connections: int,
    seconds: int,
    authorization: str = "",
    forwarded_proto: str = "",
) -> Load:
    # One wrk thread: on a 2-core machine every core wrk takes is one the server loses.
    argv = [
        wrk_path(),
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url,
    ]
    env = {
        **os.environ,
        "BENCH_AUTHORIZATION": authorization,
        "BENCH_FORWARDED_PROTO": forwarded_proto,
    }
    try:
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=seconds + 30, check=False
        )
    except subprocess.TimeoutExpired:
        raise WrkFailed(f"wrk did not finish within {seconds + 30} s") from None
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise WrkFailed(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    errors = sum(raw[key] for key in ("connect", "read", "write", "status", "timeout"))
    return Load(
        requests=int(raw["requests"]),
        seconds=raw["duration_us"] / 1e6,
        errors=int(errors),
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
    )
