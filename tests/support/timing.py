"""Response times seen from outside (L2): samples of several kinds of request taken
in turns, so that every kind shares the machine's busy and quiet moments, and the
check that none tells its kind by its time."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

from userservice.security.response_floor import FLOOR_SECONDS

# Apart by less than this, medians of a handful of samples tell nothing: the floor's
# own jitter is 10 ms, a busy 2-core machine adds its noise to both alike.
SAME_TIME = 0.015


def interleaved(
    rounds: int, requests: Mapping[str, Callable[[], object]]
) -> dict[str, list[float]]:
    """Seconds each request took, `rounds` times each, one of every kind per round."""
    samples: dict[str, list[float]] = {name: [] for name in requests}
    for _ in range(rounds):
        for name, request in requests.items():
            start = time.perf_counter()
            request()
            samples[name].append(time.perf_counter() - start)
    return samples


def assert_one_response_time(samples: Mapping[str, list[float]]) -> None:
    """Every answer came no earlier than the floor, and no kind's median stands out."""
    for name, seconds in samples.items():
        assert min(seconds) >= FLOOR_SECONDS, (name, samples)
    medians = {name: statistics.median(seconds) for name, seconds in samples.items()}
    assert max(medians.values()) - min(medians.values()) < SAME_TIME, (medians, samples)
