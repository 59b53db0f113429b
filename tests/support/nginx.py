"""Debian's nginx in front of the replicas, for the fleet tests: a minimal
configuration rendered from a template into a directory of its own (pid, temp and
log files included), TLS terminated with a throwaway certificate, run in the
foreground and stopped by its PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

NGINX = "/usr/sbin/nginx"

# `proxy_next_upstream error timeout` (never `non_idempotent`): a request that may
# already have reached a replica that then died is answered 502, not replayed on
# another, so a registration or a refresh is never applied twice.
TEMPLATE = Template(
    """\
$user_line
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    access_log $dir/access.log;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    upstream userservice {
$servers
        keepalive 32;
    }
    server {
        listen 127.0.0.1:$port ssl;
        ssl_certificate $cert;
        ssl_certificate_key $key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {
            proxy_pass http://userservice;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $$http_host;
            proxy_set_header X-Forwarded-For $$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $$scheme;
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout 1s;
            proxy_read_timeout 30s;
        }
    }
}
"""
)


def render(directory: Path, port: int, upstreams: list[int], cert: Path, key: Path) -> str:
    servers = "\n".join(
        f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in upstreams
    )
    # As root, nginx's workers would run as `nobody`, who cannot write our temp paths.
    user_line = "user root root;" if os.geteuid() == 0 else ""
    return TEMPLATE.substitute(
        user_line=user_line,
        dir=directory,
        port=port,
        servers=servers,
        cert=cert,
        key=key,
    )


@dataclass
class Nginx:
    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def conf(self) -> Path:
        return self.directory / "nginx.conf"

    def start(self, upstreams: list[int], cert: Path, key: Path) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(render(self.directory, self.port, upstreams, cert, key))
        check = subprocess.run(
            [NGINX, "-t", "-p", str(self.directory), "-c", str(self.conf)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
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
