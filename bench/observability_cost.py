"""What metrics and JSON logs cost a request: one tree, one database, two servers of
it as `make bench` serves (`userservice serve --no-tls --workers 2`), both logging
at INFO, measured in turns, round after round (bench/ab_envs.py):

- off: the defaults: no metrics, text logs (one access line per request);
- on: `USERSERVICE_METRICS_PORT` set (the workers record every metric) and
  `USERSERVICE_LOG_FORMAT=json` (one JSON access line per request).

The figure that counts is the server's CPU per request (master, workers and any
process below them, from /proc). Beside it, per request: the log lines each side
wrote (and how many parsed as JSON objects), and on the "on" side what its metrics
port counted (`userservice_http_request_duration_seconds_count` summed over every
label and worker, scraped before and after the run): a side that did not record or
log would measure nothing. Used by `python -m bench.ab_observability` and by
`make bench`'s "observability" stage."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path

from bench.ab_envs import Comparison, Run
from bench.scenarios_service import Service
from bench.servers import HOST, Server, free_port
from bench.wrk import Traffic

SIDES = ("off", "on")
# The bar: metrics and JSON logs may cost /users/me Bearer at most this much more
# server CPU per request than the same build with them off.
CPU_TOLERANCE_PCT = 5.0
SYSTEM = "observability"  # the rows' system: apart from the service's own rows
REQUEST_COUNT = "userservice_http_request_duration_seconds_count"
FIGURES = ("log_lines_per_request", "json_lines_per_request", "metrics_count_per_request")
SCRAPE_TIMEOUT = 5.0

TRAFFIC: dict[str, Callable[[Service], Traffic]] = {"me-bearer": Service.bearer}


# What "on" turns on; both by default, one alone to tell their costs apart.
PARTS = ("metrics", "json")


def side_env(side: str, parts: Sequence[str] = PARTS) -> Mapping[str, str]:
    """Both sides at the default log level (the bench's own is warning: no access
    lines); "on" with a metrics port of its own and JSON logs (or one of them)."""
    env = {"USERSERVICE_LOG_LEVEL": "info"}
    if side == "on" and "metrics" in parts:
        env["USERSERVICE_METRICS_PORT"] = str(free_port())
    if side == "on" and "json" in parts:
        env["USERSERVICE_LOG_FORMAT"] = "json"
    return env


def requests_counted(port: int) -> float | None:
    """The request histogram's count summed over all its series, from the metrics
    port; None when it does not answer."""
    url = f"http://{HOST}:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT) as reply:
            text = reply.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith(REQUEST_COUNT + "{") or line.startswith(REQUEST_COUNT + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _lines(log: Path, offset: int) -> tuple[int, int]:
    """(lines, lines that are JSON objects) written to `log` after `offset`."""
    with log.open("rb") as file:
        file.seek(offset)
        written = file.read().splitlines()
    objects = 0
    for line in written:
        with contextlib.suppress(ValueError):
            objects += isinstance(json.loads(line), dict)
    return len(written), objects


def _probe(server: Server) -> Callable[[int], dict[str, float]]:
    assert server.log is not None
    log = server.log
    offset = log.stat().st_size
    port_text = server.env.get("USERSERVICE_METRICS_PORT")
    port = int(port_text) if port_text else None
    counted = requests_counted(port) if port else None

    def finish(requests: int) -> dict[str, float]:
        lines, objects = _lines(log, offset)
        after = requests_counted(port) if port else None
        metrics = after - counted if after is not None and counted is not None else 0.0
        return {
            "log_lines_per_request": round(lines / requests, 3),
            "json_lines_per_request": round(objects / requests, 3),
            "metrics_count_per_request": round(metrics / requests, 3),
        }

    return finish


def _note(run: Run) -> str:
    extra = run.extra
    on = "metrics on" if extra["metrics_count_per_request"] else "no metrics"
    on += ", JSON logs" if extra["json_lines_per_request"] else ", text logs"
    return (
        f"{on} at INFO; "
        f"{extra['log_lines_per_request']:g} log lines ({extra['json_lines_per_request']:g} "
        f"JSON) and {extra['metrics_count_per_request']:g} counted by /metrics per request"
    )


def comparison(parts: Sequence[str] = PARTS) -> Comparison:
    return Comparison(
        name=SYSTEM,
        sides=SIDES,
        env=partial(side_env, parts=parts),
        traffic=TRAFFIC,
        serve=True,
        tolerance_pct=CPU_TOLERANCE_PCT,
        probe=_probe,
        extra_keys=FIGURES,
        note=_note,
    )


COMPARISON = comparison()
