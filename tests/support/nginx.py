"""Debian's nginx in front of the replicas, for the fleet and deployment tests: the
shipped configuration (deploy/nginx/userservice.conf.template) rendered as the
official nginx image renders it, included by a small main configuration whose pid,
temp and log files live in a directory of its own, so nginx runs unprivileged on
loopback. TLS is terminated with a throwaway certificate; nginx runs in the
foreground and is stopped by its PID."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

NGINX = "/usr/sbin/nginx"
TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "userservice.conf.template"

# The image runs `envsubst "${A} ${B} ..."` over the variables defined in its
# environment: both `$NAME` and `${NAME}` of those names are replaced, and
# everything else (nginx's own `$host`) is left alone.
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")

# High enough that the cluster test's thousands of requests from one address are
# never limited; the deployment test passes low ones to see the 429.
LOOPBACK_RATE = "100000r/s"
LOOPBACK_BURST = "100000"

MAIN = """\
{user_line}
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/userservice.conf;
}}
"""


def template_variables(template: str) -> set[str]:
    """The upper-case `${NAME}` variables a template expects from the environment."""
    return {m.group(1) for m in _REFERENCE.finditer(template) if m.group(1)}


def envsubst(template: str, environment: Mapping[str, str]) -> str:
    """The image's rendering: only the names defined in `environment` are replaced."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return environment.get(name, match.group(0))

    return _REFERENCE.sub(replace, template)


def loopback_environment(
    directory: Path,
    port: int,
    http_port: int,
    upstreams: list[int],
    cert: Path,
    key: Path,
    *,
    signin_rate: str = LOOPBACK_RATE,
    signin_burst: str = LOOPBACK_BURST,
    signup_rate: str = LOOPBACK_RATE,
    signup_burst: str = LOOPBACK_BURST,
) -> dict[str, str]:
    servers = " ".join(f"server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in upstreams)
    return {
        "NGINX_UPSTREAM_SERVERS": servers,
        "NGINX_LISTEN_HTTPS": f"127.0.0.1:{port}",
        "NGINX_LISTEN_HTTP": f"127.0.0.1:{http_port}",
        "NGINX_TLS_CERT": str(cert),
        "NGINX_TLS_KEY": str(key),
        "NGINX_SIGNIN_RATE": signin_rate,
        "NGINX_SIGNIN_BURST": signin_burst,
        "NGINX_SIGNUP_RATE": signup_rate,
        "NGINX_SIGNUP_BURST": signup_burst,
        "NGINX_ACCESS_LOG": str(directory / "access.log"),
    }


def render_main(directory: Path) -> str:
    # As root, nginx's workers would run as `nobody`, who cannot write our temp paths.
    user_line = "user root root;" if os.geteuid() == 0 else ""
    return MAIN.format(user_line=user_line, dir=directory)


def render(directory: Path, port: int, upstreams: list[int], cert: Path, key: Path) -> str:
    """The shipped server configuration for loopback (the HTTP redirect on port+1)."""
    environment = loopback_environment(directory, port, port + 1, upstreams, cert, key)
    return envsubst(TEMPLATE.read_text(), environment)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Nginx:
    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None)
    http_port: int = field(default_factory=_free_port)

    @property
    def conf(self) -> Path:
        return self.directory / "nginx.conf"

    @property
    def server_conf(self) -> Path:
        return self.directory / "userservice.conf"

    def write(self, upstreams: list[int], cert: Path, key: Path, **rates: str) -> None:
        """Render the shipped template and the main configuration around it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        environment = loopback_environment(
            self.directory, self.port, self.http_port, upstreams, cert, key, **rates
        )
        self.server_conf.write_text(envsubst(TEMPLATE.read_text(), environment))
        self.conf.write_text(render_main(self.directory))

    def check(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [NGINX, "-t", "-p", str(self.directory), "-c", str(self.conf)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def start(self, upstreams: list[int], cert: Path, key: Path, **rates: str) -> None:
        self.write(upstreams, cert, key, **rates)
        check = self.check()
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t refused the configuration: {check.stderr}")
        self.process = subprocess.Popen(
            [NGINX, "-p", str(self.directory), "-c", str(self.conf), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.process.returncode}: {self.errors()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("nginx did not listen within 15 s") from None
                time.sleep(0.05)

    def errors(self) -> str:
        log = self.directory / "error.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        # SIGQUIT: graceful; the master stops its own workers.
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
