"""Server processes under test: started on 127.0.0.1, timed to readiness, measured
through /proc, and stopped by PID (master first, then any worker that outlived it)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

HOST = "127.0.0.1"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
POLL_SECONDS = 0.02  # readiness poll: the cold-start figure is this precise
# Idle: under 10 % of one core over 0.2 s (CPU time comes in clock ticks of 10 ms).
IDLE_SAMPLE_SECONDS = 0.2
IDLE_CPU_FRACTION = 0.1


class ServerFailed(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _parents() -> dict[int, int]:
    """PID -> parent PID of every live process, from one pass over /proc."""
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 (ppid) follows the parenthesised command name, which may hold spaces.
        found[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return found


def _children(pid: int) -> list[int]:
    return sorted(child for child, parent in _parents().items() if parent == pid)


def descendants(pid: int) -> list[int]:
    """Every live process below `pid`: children, theirs, and so on."""
    parents = _parents()
    found: list[int] = []
    level = [pid]
    while level:
        level = sorted(child for child, parent in parents.items() if parent in level)
        found += level
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the resident-set high-water mark since start or since reset_peak()."""
    return _status_kib(pid, "VmHWM:") / 1024


def rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmRSS:") / 1024


def reset_peak(pid: int) -> bool:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0), so a
    # row's peak is that run's own, not the high-water mark of earlier scenarios.
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime and stime are fields 14 and 15 of /proc/PID/stat.
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


@dataclass
class Server:
    name: str
    argv: Sequence[str]
    port: int
    ready_path: str
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    log: Path | None = None
    cafile: Path | None = None  # set: the server speaks HTTPS with this certificate
    process: subprocess.Popen[bytes] | None = None
    workers: list[int] = field(default_factory=list)
    ready_seconds: float = 0.0  # spawn to the first 200 on ready_path
    idle_rss_mib: list[float] = field(default_factory=list)  # VmRSS per worker, before load
    peak_resettable: bool = True
    _log_file: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"{'https' if self.cafile else 'http'}://{HOST}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=str(self.cafile)) if self.cafile else None

    def start(self, expected_workers: int, timeout: float = 60.0) -> None:
        self._log_file = self.log.open("ab") if self.log else None
        out = self._log_file or subprocess.DEVNULL
        began = time.monotonic()
        self.process = subprocess.Popen(
            list(self.argv),
            env={**os.environ, **self.env},
            cwd=self.cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = began + timeout
        try:
            while not self.ready_seconds:
                self._check_alive(deadline)
                if self._ready():
                    self.ready_seconds = time.monotonic() - began
                else:
                    time.sleep(POLL_SECONDS)
            while len(self._find_workers()) < expected_workers:
                self._check_alive(deadline)
                time.sleep(POLL_SECONDS)
            self.idle_rss_mib = self._settled_rss(deadline)
        except ServerFailed:
            self.stop()
            raise

    def _check_alive(self, deadline: float) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise ServerFailed(f"{self.name} exited with {self.process.returncode}")
        if time.monotonic() > deadline:
            raise ServerFailed(f"{self.name} was not ready in time")

    def _find_workers(self) -> list[int]:
        assert self.process is not None
        self.workers = [
            pid
            for pid in _children(self.process.pid)
            if "multiprocessing" in _cmdline(pid) and "resource_tracker" not in _cmdline(pid)
        ]
        return self.workers

    def _settled_rss(self, deadline: float) -> list[float]:
        # The first 200 may come from one worker while the other still imports: idle
        # RSS is read once every worker's RSS has stopped changing (0.3 s, no load).
        previous: list[float] = []
        steady = 0
        while steady < 3 and time.monotonic() < deadline:
            current = [round(rss_mib(pid), 1) for pid in self.workers]
            steady = steady + 1 if current == previous else 0
            previous = current
            time.sleep(0.1)
        return previous

    def _ready(self) -> bool:
        url = self.base_url + self.ready_path
        try:
            with urllib.request.urlopen(url, timeout=2, context=self.ssl_context()) as reply:  # noqa: S310
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def cpu_seconds(self) -> float:
        pids = [self.process.pid] if self.process else []
        return sum(cpu_seconds(pid) for pid in [*pids, *self.workers])

    def wait_idle(self, timeout: float = 30.0) -> float:
        """Wait until the server stops working off an earlier run: wrk closes its
        connections at the end, but requests already accepted (a queue of logins,
        each ~20 ms of argon2) still run and would eat into the next run's time.
        Returns the seconds waited."""
        began = time.monotonic()
        previous = self.cpu_seconds()
        while time.monotonic() - began < timeout:
            time.sleep(IDLE_SAMPLE_SECONDS)
            current = self.cpu_seconds()
            if current - previous <= IDLE_CPU_FRACTION * IDLE_SAMPLE_SECONDS:
                break
            previous = current
        return time.monotonic() - began

    def reset_peak_rss(self) -> None:
        self.peak_resettable = all([reset_peak(pid) for pid in self.workers])

    def peak_rss_per_worker(self) -> list[float]:
        return [round(peak_rss_mib(pid), 1) for pid in self.workers]

    def stop(self, timeout: float = 25.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        for pid in self.workers:
            if "multiprocessing" not in _cmdline(pid):
                continue  # gone (and the PID possibly reused): not ours to signal
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process = None
