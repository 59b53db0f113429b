"""The fleet stage: PostgreSQL, Redis, 3 replicas x 2 workers and nginx terminating
TLS on loopback (tests/support/fleet.py), one seeded database; `/users/me` Bearer and
client_credentials through nginx and, in the same run, directly to one replica.

CPU per request is the replicas' (masters and workers, every replica the traffic
can reach), as for one server elsewhere; nginx's own CPU per request is in the
notes. Requests per replica come from nginx's access log: the shipped
configuration's JSON lines name the upstream; a configuration whose log does not
is switched to a format naming it (`$upstream_addr`) by a reload. The check that
the proxy spreads the load, not that the fleet scales, since on a 2-core machine
the replicas, nginx, PostgreSQL and wrk share the same two cores."""

from __future__ import annotations

import collections
import json
import re
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import seed
from bench.plan import Plan
from bench.report import Report
from bench.scenarios import Target, one_run
from bench.scenarios_service import Service
from bench.servers import HOST, Server, _children, _cmdline, cpu_seconds
from bench.stages import SERVICE_SETTINGS
from bench.throttle_cost import TRAFFIC
from bench.wrk import run_wrk
from tests.support.fleet import Fleet
from userservice.settings import Settings

REPLICAS = 3
WORKERS = 2
SCENARIOS = ("me-bearer", "client-credentials")
# The fleet launcher's defaults are for its tests (keys reloaded every second, a
# per-account login limit of 5): a deployment's values, and the bench's own.
FLEET_ENV = {**SERVICE_SETTINGS, "USERSERVICE_SIGNING_KEY_RELOAD_SECONDS": "60"}
UPSTREAM_FORMAT = "log_format bench_upstream '$upstream_addr $status';"
UPSTREAM_LINE = re.compile(r"^127\.0\.0\.1:(\d+) (\d{3})$")


@dataclass
class ProcessGroup(Server):
    """Running processes this harness did not start (the fleet's): their CPU, the
    masters' and every child's, and their workers' RSS."""

    masters: list[int] = field(default_factory=list)

    def _all(self) -> list[int]:
        return [pid for master in self.masters for pid in (master, *_children(master))]

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self._all())

    def reset_peak_rss(self) -> None:
        self.workers = [
            pid
            for master in self.masters
            for pid in _children(master)
            if "multiprocessing" in _cmdline(pid) and "resource_tracker" not in _cmdline(pid)
        ]
        super().reset_peak_rss()


def _log_upstreams(fleet: Fleet) -> Path | None:
    """The access log naming each request's upstream: as configured when its format
    names it already (the shipped JSON format), else after switching it (reload,
    SIGHUP); None where the fleet's configuration has no access_log line to change."""
    log = fleet.nginx.directory / "access.log"
    # The shipped configuration: the main file includes the server's own.
    for shipped in (fleet.nginx.conf, fleet.nginx.server_conf):
        text = shipped.read_text() if shipped.exists() else ""
        if "$upstream_addr" in text and f"access_log {log} " in text:
            return log
    conf = fleet.nginx.conf
    text = conf.read_text()
    line = f"access_log {log};"
    if line not in text or fleet.nginx.process is None:
        return None
    conf.write_text(text.replace(line, f"{UPSTREAM_FORMAT}\n    access_log {log} bench_upstream;"))
    fleet.nginx.process.send_signal(signal.SIGHUP)
    # New workers take new connections once the reload is done: poll until one logs
    # in the new format.
    context = fleet.ssl_context()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(fleet.nginx_url + "/healthz", timeout=2, context=context):  # noqa: S310
                pass
        except (urllib.error.URLError, OSError):
            pass
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        if lines and _upstream_port(lines[-1]) is not None:
            return log
        time.sleep(0.1)
    return None


def _spread(log: Path | None, offset: int, ports: Sequence[int]) -> list[int]:
    if log is None:
        return []
    with log.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    counts = collections.Counter(_upstream_port(line) for line in text.splitlines())
    return [counts.get(port, 0) for port in ports]


def _upstream_port(line: str) -> int | None:
    """The port of the upstream that answered, from a line of the bench's format or
    of the shipped JSON one (after a retry nginx lists each upstream tried: the last
    one answered)."""
    if match := UPSTREAM_LINE.match(line):
        return int(match.group(1))
    try:
        upstream = json.loads(line).get("upstream", "") if line.startswith("{") else ""
    except ValueError:
        return None
    port = str(upstream).rsplit(",", 1)[-1].strip().rpartition(":")[2]
    return int(port) if port.isdigit() else None


def _run(
    report: Report,
    plan: Plan,
    svc: Service,
    scenario: str,
    nginx: list[int],
    log: Path | None,
    ports: Sequence[int],
    others: ProcessGroup,
) -> None:
    """As `measure`: a discarded warm-up, then one run per connection count; each
    row with nginx's CPU per request and the requests each replica served."""
    traffic = TRAFFIC[scenario](svc)
    server = svc.target.server
    if plan.warmup_seconds:
        server.wait_idle()
        top = max(plan.connections)
        run_wrk(server.base_url, traffic, connections=top, seconds=plan.warmup_seconds)
    for connections in plan.connections:
        server.wait_idle()
        offset = log.stat().st_size if log is not None else 0
        nginx_before = sum(cpu_seconds(pid) for pid in nginx)
        others_before = others.cpu_seconds()
        row = one_run(svc.target, scenario, traffic, connections, plan.seconds)
        nginx_cpu = sum(cpu_seconds(pid) for pid in nginx) - nginx_before
        others_cpu = others.cpu_seconds() - others_before
        if nginx:
            spread = _spread(log, offset, ports)
            row.per_replica_requests = spread
            row.notes = (
                f"{connections} connections through nginx (TLS) to {REPLICAS} replicas x "
                f"{WORKERS} workers; "
                f"nginx {nginx_cpu / max(1, row.requests) * 1000:.3f} ms CPU/request; "
                f"requests per replica {' / '.join(f'{n:,}' for n in spread) or 'unknown'}"
            )
        else:
            # The replicas wrk does not reach still work (key reloads, pool checks):
            # what they spend is not in this row's CPU but is in the nginx rows'.
            row.notes = (
                f"{connections} connections directly to replica 0 of the fleet "
                f"({WORKERS} workers), no proxy; the other replicas meanwhile "
                f"{others_cpu / max(row.seconds, 0.001) * 1000:.0f} ms CPU/s"
            )
        report.add(row)


def run_cluster(
    report: Report,
    plan: Plan,
    work: Path,
    logs: Path,
    users: int,
    progress: Callable[[str], None],
) -> None:
    (work / "fleet").mkdir(parents=True, exist_ok=True)
    fleet = Fleet(replicas=REPLICAS, workers=WORKERS, env=FLEET_ENV, directory=work / "fleet")
    try:
        fleet.start()
        env = {**fleet.env(), "USERSERVICE_DATA_DIR": str(work / "fleet-cli")}
        url = fleet.database_url
        seed.seed_users(url, users, seed.precomputed_hash(Settings(_env_file=None)))
        seed.create_admin(env)
        client_id, client_secret = seed.create_confidential_client(env)
        log = _log_upstreams(fleet)
        ports = [replica.port for replica in fleet.replicas]
        masters = [r.process.pid for r in fleet.replicas if r.process is not None]
        assert fleet.nginx.process is not None
        nginx_pids = [fleet.nginx.process.pid, *_children(fleet.nginx.process.pid)]
        proxy = ProcessGroup(
            "fleet", [], fleet.nginx.port, "/readyz", cafile=fleet.ca_path, masters=masters
        )
        direct = ProcessGroup("replica", [], ports[0], "/readyz", masters=masters[:1])
        others = ProcessGroup("others", [], 0, "", masters=masters[1:])
        targets = {
            "direct": Target(direct, "fleet-replica", "postgresql", users),
            "nginx": Target(proxy, "fleet", "postgresql", users, tls=True),
        }
        services = {
            name: Service(report, plan, target, client_id, client_secret, logs)
            for name, target in targets.items()
        }
        progress(
            f"fleet of {REPLICAS} replicas x {WORKERS} workers on {HOST}: "
            f"{', '.join(SCENARIOS)}, directly to one replica and through nginx"
        )
        for scenario in SCENARIOS:
            for name, svc in services.items():
                via = nginx_pids if name == "nginx" else []
                _run(report, plan, svc, scenario, via, log, ports, others)
    finally:
        _keep_logs(fleet, logs)
        fleet.stop()


def _keep_logs(fleet: Fleet, logs: Path) -> None:
    for replica in fleet.replicas:
        if replica.log_path.exists():
            (logs / f"fleet-replica-{replica.index}.log").write_text(replica.log())
    errors = fleet.nginx.errors()
    if errors:
        (logs / "fleet-nginx-error.log").write_text(errors)
