"""The hashing limit: raw argon2id verify throughput with the service's exact
parameters (passlib over argon2-cffi), one process per core, for a fixed time."""

from __future__ import annotations

import multiprocessing
import os
import resource
import time
from dataclasses import dataclass

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


def _worker(args: tuple[str, float, float]) -> tuple[list[float], int, float, float, float]:
    password_hash, start_at, seconds = args
    settings = Settings()
    # max_concurrent=1: this process is one core's worth of hashing.
    hasher = PasswordHasher(
        settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism, 1
    )
    hasher.verify(PASSWORD, password_hash)  # warm-up: first call allocates the memory
    while time.monotonic() < start_at:
        time.sleep(0.001)
    durations: list[float] = []
    errors = 0
    cpu_before = time.process_time()
    deadline = start_at + seconds
    while time.monotonic() < deadline:
        began = time.perf_counter()
        ok, _ = hasher.verify(PASSWORD, password_hash)
        durations.append(time.perf_counter() - began)
        errors += 0 if ok else 1
    elapsed = time.monotonic() - start_at  # the last verify may end past the deadline
    cpu = time.process_time() - cpu_before
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return durations, errors, cpu, peak_mib, elapsed


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def measure(seconds: float, processes: int | None = None) -> HashLimit:
    count = processes or os.cpu_count() or 1
    settings = Settings()
    password_hash = PasswordHasher(
        settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism
    ).hash(PASSWORD)
    context = multiprocessing.get_context("spawn")
    start_at = time.monotonic() + 3.0  # time for every process to start and warm up
    with context.Pool(count) as pool:
        results = pool.map_async(_worker, [(password_hash, start_at, seconds)] * count).get(
            timeout=seconds + 60
        )
    durations = [d for result in results for d in result[0]]
    verifies = len(durations)
    # Every process started at the same instant; the slowest to finish sets the span.
    elapsed = max(result[4] for result in results)
    return HashLimit(
        processes=count,
        verifies=verifies,
        seconds=elapsed,
        errors=sum(result[1] for result in results),
        p50_ms=_percentile(durations, 0.50) * 1000,
        p99_ms=_percentile(durations, 0.99) * 1000,
        peak_rss_mib=[round(result[3], 1) for result in results],
        cpu_ms_per_verify=sum(result[2] for result in results) / verifies * 1000
        if verifies
        else 0.0,
    )
