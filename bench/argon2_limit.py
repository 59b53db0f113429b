"""The hashing limit: raw argon2id verify throughput with the service's exact
parameters (passlib over argon2-cffi), one process per core, for a fixed time.

`measure()` runs `python -m bench.argon2_limit` in a fresh interpreter: spawned
workers re-import their parent's __main__, and the harness's (bench.run, with
matplotlib, SQLAlchemy, psycopg) would inflate their RSS and delay their start."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from userservice.security.passwords import PasswordHasher
from userservice.settings import Settings

PASSWORD = "argon2 bench password"  # noqa: S105 - hashed locally, never stored


@dataclass(frozen=True)
class HashLimit:
    processes: int
    verifies: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    peak_rss_mib: list[float]
    cpu_ms_per_verify: float

    @property
    def rps(self) -> float:
        return self.verifies / self.seconds if self.seconds else 0.0


def _settings() -> Settings:
    return Settings(_env_file=None)


def _worker(password_hash: str, seconds: float, barrier: Barrier, results: Queue[object]) -> None:
    settings = _settings()
    # max_concurrent=1: this process is one core's worth of hashing.
    hasher = PasswordHasher(
        settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism, 1
    )
    hasher.verify(PASSWORD, password_hash)  # warm-up: the first call allocates the memory
    barrier.wait(timeout=120)  # every process starts hashing at the same instant
    durations: list[float] = []
    errors = 0
    cpu_before = time.process_time()
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        start = time.perf_counter()
        ok, _ = hasher.verify(PASSWORD, password_hash)
        durations.append(time.perf_counter() - start)
        errors += 0 if ok else 1
    elapsed = time.monotonic() - began  # the last verify may end past the deadline
    cpu = time.process_time() - cpu_before
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results.put((durations, errors, cpu, peak_mib, elapsed))


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def measure_here(seconds: float, processes: int | None = None) -> HashLimit:
    count = processes or len(os.sched_getaffinity(0))
    settings = _settings()
    password_hash = PasswordHasher(
        settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism
    ).hash(PASSWORD)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(count)
    queue: Queue[object] = context.Queue()
    workers = [
        context.Process(target=_worker, args=(password_hash, seconds, barrier, queue))
        for _ in range(count)
    ]
    for worker in workers:
        worker.start()
    try:
        results: list[tuple[list[float], int, float, float, float]] = [
            queue.get(timeout=seconds + 180)  # type: ignore[misc]
            for _ in workers
        ]
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    durations = [d for result in results for d in result[0]]
    verifies = len(durations)
    return HashLimit(
        processes=count,
        verifies=verifies,
        seconds=max(result[4] for result in results),  # the slowest process sets the span
        errors=sum(result[1] for result in results),
        p50_ms=_percentile(durations, 0.50) * 1000,
        p99_ms=_percentile(durations, 0.99) * 1000,
        peak_rss_mib=[round(result[3], 1) for result in results],
        cpu_ms_per_verify=sum(r[2] for r in results) / verifies * 1000 if verifies else 0.0,
    )


def measure(seconds: float) -> HashLimit:
    done = subprocess.run(
        [sys.executable, "-m", "bench.argon2_limit", "--seconds", str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 240,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.argon2_limit failed: {done.stderr.strip()[-2000:]}")
    return HashLimit(**json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.argon2_limit")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(json.dumps(asdict(measure_here(args.seconds))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
