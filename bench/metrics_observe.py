"""What one request observation costs (PrometheusMetrics.observe_request, called
by the request log middleware on every request), in process memory and in
multiprocess mode (per-process files, as under `serve`), against the uncached
`.labels(...).observe()` it replaces.

    python -m bench.metrics_observe

Each mode runs in a fresh interpreter: prometheus_client chooses its value store
when first imported."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import timeit

CALLS = 200_000


def _measure() -> None:
    from userservice.observability.prometheus import PrometheusMetrics

    metrics = PrometheusMetrics()
    observe = metrics.observe_request
    requests = metrics.requests
    cached = timeit.timeit(lambda: observe("GET", "/users/me", 200, 0.0012), number=CALLS)
    uncached = timeit.timeit(
        lambda: requests.labels("GET", "/users/me", "200").observe(0.0012), number=CALLS
    )
    mode = "multiprocess" if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else "in-memory"
    print(
        f"{mode:>12}: observe_request {cached / CALLS * 1e6:.2f} µs/call, "
        f"labels().observe {uncached / CALLS * 1e6:.2f} µs/call"
    )


def main() -> None:
    if "--measure" in sys.argv:
        _measure()
        return
    command = [sys.executable, "-m", "bench.metrics_observe", "--measure"]
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    subprocess.run(command, env=env, check=True)
    with tempfile.TemporaryDirectory() as directory:
        subprocess.run(command, env={**env, "PROMETHEUS_MULTIPROC_DIR": directory}, check=True)


if __name__ == "__main__":
    main()
