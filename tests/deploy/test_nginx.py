"""O7: the shipped nginx configuration (deploy/nginx/userservice.conf.template),
rendered as the official image renders it, accepted by `nginx -t`, and put in front
of a tiny upstream on loopback: TLS only, the client's forwarded headers replaced,
the request-size limit and the sign-in rate limit enforced at the edge."""

from __future__ import annotations

import inspect
import json
import re
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import trustme

from tests.support.nginx import TEMPLATE, Nginx, envsubst, template_variables
from tests.support.server import free_port
from userservice.services.accounts import AccountService
from userservice.settings import Settings


class _Echo(BaseHTTPRequestHandler):
    """Answers every request with the headers it received, as JSON."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def upstream() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path, trustme.CA]:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    server.cert_chain_pems[0].write_to_path(str(cert))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(cert), append=True)
    server.private_key_pem.write_to_path(str(key))
    return cert, key, ca


@pytest.fixture
def edge(
    tmp_path: Path, upstream: int, certificate: tuple[Path, Path, trustme.CA]
) -> Iterator[tuple[Nginx, ssl.SSLContext]]:
    cert, key, ca = certificate
    nginx = Nginx(tmp_path / "nginx", free_port())
    # Low sign-in limits, so the test sees the 429; the cluster test uses high ones.
    nginx.start([upstream], cert, key, signin_rate="1r/m", signin_burst="2")
    context = ssl.create_default_context()
    ca.configure_trust(context)
    try:
        yield nginx, context
    finally:
        nginx.stop()


def test_o7_template_renders_every_variable_and_nginx_accepts_it(
    tmp_path: Path, certificate: tuple[Path, Path, trustme.CA]
) -> None:
    cert, key, _ca = certificate
    nginx = Nginx(tmp_path / "nginx", 18443)
    nginx.write([18080, 18081], cert, key)
    rendered = nginx.server_conf.read_text()
    assert "${" not in rendered
    assert "server 127.0.0.1:18080" in rendered and "server 127.0.0.1:18081" in rendered
    # nginx's own variables survive the rendering.
    assert "$remote_addr" in rendered and "$request_id" in rendered
    check = nginx.check()
    assert check.returncode == 0, check.stderr
    assert "test is successful" in check.stderr


def test_o7_rendering_leaves_undefined_names_alone() -> None:
    template = TEMPLATE.read_text()
    expected = {
        "NGINX_UPSTREAM_SERVERS",
        "NGINX_LISTEN_HTTPS",
        "NGINX_LISTEN_HTTP",
        "NGINX_TLS_CERT",
        "NGINX_TLS_KEY",
        "NGINX_SIGNIN_RATE",
        "NGINX_SIGNIN_BURST",
        "NGINX_SIGNUP_RATE",
        "NGINX_SIGNUP_BURST",
        "NGINX_ACCESS_LOG",
    }
    assert template_variables(template) == expected
    assert envsubst("a ${UNSET_NAME} $host", {"HOST": "x"}) == "a ${UNSET_NAME} $host"


def test_o7_body_limit_matches_the_service_default() -> None:
    limit = Settings.model_fields["max_body_bytes"].default
    assert limit % (1024 * 1024) == 0
    assert f"client_max_body_size {limit // (1024 * 1024)}m;" in TEMPLATE.read_text()


def test_o7_edge_overwrites_forwarded_headers_and_sets_request_id(
    edge: tuple[Nginx, ssl.SSLContext],
) -> None:
    nginx, context = edge
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with httpx.Client(base_url=f"https://127.0.0.1:{nginx.port}", verify=context) as client:
        seen = client.get(
            "/users/me",
            headers={
                "X-Forwarded-For": "203.0.113.9",
                "X-Forwarded-Proto": "http",
                "traceparent": traceparent,
            },
        ).json()
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "https"
    assert len(seen["x-request-id"]) == 32
    int(seen["x-request-id"], 16)
    assert seen["traceparent"] == traceparent
    # One connection kept to the upstream, not closed after each request.
    assert seen.get("connection", "") == ""


def test_o7_clear_text_only_redirects(edge: tuple[Nginx, ssl.SSLContext]) -> None:
    nginx, _context = edge
    answer = httpx.get(f"http://127.0.0.1:{nginx.http_port}/login?x=1")
    assert answer.status_code == 301
    assert answer.headers["location"] == "https://127.0.0.1/login?x=1"


def test_o7_metrics_and_large_bodies_stop_at_the_edge(
    edge: tuple[Nginx, ssl.SSLContext],
) -> None:
    nginx, context = edge
    limit = Settings.model_fields["max_body_bytes"].default
    with httpx.Client(base_url=f"https://127.0.0.1:{nginx.port}", verify=context) as client:
        assert client.get("/metrics").status_code == 404
        assert client.post("/users", content=b"x" * limit).status_code == 200
        assert client.post("/users", content=b"x" * (limit + 1)).status_code == 413


def test_o7_sign_in_posts_are_rate_limited_per_address(
    edge: tuple[Nginx, ssl.SSLContext],
) -> None:
    nginx, context = edge
    with httpx.Client(base_url=f"https://127.0.0.1:{nginx.port}", verify=context) as client:
        # Rate 1/min, burst 2: three POSTs pass, the fourth is refused.
        statuses = [client.post("/oauth/token", data={"a": "b"}).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        # The same zone covers POST /login; GETs of the sign-in page are not counted.
        assert client.post("/login", data={"a": "b"}).status_code == 429
        assert [client.get("/login").status_code for _ in range(5)] == [200] * 5
        # Other routes are not limited.
        assert client.post("/users/me/x").status_code == 200


def test_o7_compose_self_signed_certificate_is_accepted_by_nginx(tmp_path: Path) -> None:
    """The image's start script makes a certificate once; nginx loads it."""
    script = TEMPLATE.parent / "10-self-signed-certificate.sh"
    cert, key = tmp_path / "certs" / "tls.crt", tmp_path / "certs" / "tls.key"
    environment = {"PATH": "/usr/bin:/bin", "NGINX_TLS_CERT": str(cert), "NGINX_TLS_KEY": str(key)}
    made = subprocess.run(
        ["sh", str(script)], env=environment, capture_output=True, text=True, timeout=60
    )
    assert made.returncode == 0, made.stderr
    assert key.stat().st_mode & 0o077 == 0
    first = cert.read_bytes()
    again = subprocess.run(["sh", str(script)], env=environment, timeout=60, check=False)
    assert again.returncode == 0 and cert.read_bytes() == first
    nginx = Nginx(tmp_path / "nginx", free_port())
    nginx.write([18080], cert, key)
    check = nginx.check()
    assert check.returncode == 0, check.stderr


def _seconds(value: str) -> int:
    match = re.fullmatch(r"(\d+)(s|m)?", value)
    assert match, value
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


def test_o7_edge_waits_longer_than_the_service_for_a_password_check() -> None:
    """The service answers 503 after `attempt_seconds` waiting for a hashing slot;
    nginx's read timeout must be clearly longer, or its 504 races that answer on
    POST /login and /oauth/token (and every route that checks a password)."""
    attempt = inspect.signature(AccountService).parameters["attempt_seconds"].default
    template = TEMPLATE.read_text()
    timeouts = re.findall(r"^\s*proxy_read_timeout\s+(\S+);", template, re.MULTILINE)
    assert timeouts == ["60s"]
    # Set once for the TLS server, before any location, so every location inherits it.
    server = template[template.index("listen ${NGINX_LISTEN_HTTPS}") :]
    assert server.index("proxy_read_timeout") < server.index("location")
    assert _seconds(timeouts[0]) >= attempt + 10
    # The error log keeps failed requests' lines with their query strings (mailed
    # links' tokens): the template lowers no level, and says to keep it high.
    assert not re.search(r"^\s*error_log\s", template, re.MULTILINE)
    assert "never `info`/`debug`" in template
