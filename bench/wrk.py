"""Load from wrk (Debian package `wrk`): bench/lua/request.lua builds the requests,
bench/report.lua prints the summary this module parses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "lua" / "request.lua"
TIMEOUT_SECONDS = 10  # wrk's --timeout: a slower response counts as an error
ERROR_KINDS = ("connect", "read", "write", "status", "timeout", "bad", "empty")


class WrkFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Traffic:
    """What every connection sends; `{line}`, `{rand}`, `{seq}` are filled per request
    (see lua/request.lua)."""

    path: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str = ""
    lines: Sequence[str] = ()
    rand_max: int = 0
    expect: str = ""
    queue_pattern: str = ""


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    detail: dict[str, int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def mean_ms(self) -> float:
        return self.detail["mean_us"] / 1000


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise WrkFailed("wrk is not installed: run `make system-deps` (Debian package wrk)")
    return found


class WrkRun:
    """One wrk process, started now and read by result(): two can run at once (storm)."""

    def __init__(
        self,
        base_url: str,
        traffic: Traffic,
        *,
        connections: int,
        seconds: float,
        delay_ms: float = 0.0,
    ) -> None:
        self.seconds = seconds
        self._lines = tempfile.NamedTemporaryFile("w", suffix=".lines", delete=False)  # noqa: SIM115
        self._lines.write("\n".join(traffic.lines) + "\n")
        self._lines.close()
        headers = "\n".join(f"{name}: {value}" for name, value in traffic.headers.items())
        env = {
            **os.environ,
            "BENCH_LUA_DIR": str(HERE),
            "BENCH_METHOD": traffic.method,
            "BENCH_BODY": traffic.body,
            "BENCH_HEADERS": headers,
            "BENCH_LINES_FILE": self._lines.name,
            "BENCH_RAND_MAX": str(traffic.rand_max),
            # {seq} values must never repeat across runs on one database (warm-up,
            # then each load point): a repeated e-mail is a 409, not a registration.
            "BENCH_PREFIX": uuid.uuid4().hex[:12] + "x",
            "BENCH_EXPECT": traffic.expect,
            "BENCH_QUEUE_PATTERN": traffic.queue_pattern,
            "BENCH_DELAY_MS": f"{delay_ms:.3f}",
        }
        # One wrk thread: on a 2-core machine every core wrk takes is one the server loses.
        argv = [wrk_path(), "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
        argv += ["--timeout", f"{TIMEOUT_SECONDS}s", "-s", str(SCRIPT), base_url + traffic.path]
        self._process = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def result(self) -> Load:
        limit = self.seconds + TIMEOUT_SECONDS + 20
        try:
            stdout, stderr = self._process.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.communicate()
            raise WrkFailed(f"wrk did not finish within {limit:.0f} s") from None
        finally:
            Path(self._lines.name).unlink(missing_ok=True)
        line = next((ln for ln in stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
        if self._process.returncode != 0 or line is None:
            raise WrkFailed(f"wrk failed ({self._process.returncode}): {stderr.strip() or stdout}")
        raw: dict[str, int] = json.loads(line.removeprefix("BENCH_JSON "))
        return Load(
            requests=int(raw["requests"]),
            seconds=raw["duration_us"] / 1e6,
            errors=int(sum(raw[key] for key in ERROR_KINDS)),
            p50_ms=raw["p50_us"] / 1000,
            p99_ms=raw["p99_us"] / 1000,
            detail=raw,
        )


def run_wrk(
    base_url: str,
    traffic: Traffic,
    *,
    connections: int,
    seconds: float,
    delay_ms: float = 0.0,
) -> Load:
    run = WrkRun(base_url, traffic, connections=connections, seconds=seconds, delay_ms=delay_ms)
    return run.result()
