"""O5: a whole `serve` run at DEBUG, JSON logs, over TLS: every secret the walk
used or received (passwords, tokens, codes, PKCE verifier, client secret, Basic
header values, cookies, CSRF tokens, mailed-link tokens, the metrics token) is
absent from everything serve printed, in plain and encoded forms; every line is a
JSON object with the O4 keys, and the calls made are all in it."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, urlencode, urlsplit

import httpx
import pytest

from tests.support.accounts import PASSWORD
from tests.support.cli import command_env, run_cli
from tests.support.serve_process import serve_command, trusting
from tests.support.server import free_port
from tests.support.smtp import Inbox, smtp_server

EMAIL = "ada@example.com"
NEW_PASSWORD = "a different staple, battery horse"
REDIRECT = "https://app.example/callback"
START_TIMEOUT = STOP_TIMEOUT = 60.0
O4_KEYS = {"time", "level", "logger", "message"}


class Walk:
    """The calls, with every secret seen on the way collected."""

    def __init__(self, base: str, ca: Path, inbox: Inbox) -> None:
        self.base, self.ca, self.inbox = base, ca, inbox
        self.secrets: set[str] = {PASSWORD, NEW_PASSWORD}
        self.calls = 0

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, verify=trusting(self.ca), timeout=30)

    def call(self, http: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = http.request(method, url, follow_redirects=False, **kwargs)
        self.calls += 1
        for name, value in http.cookies.items():
            self.secrets.add(value)
            assert name  # the cookie names are not secret, their values are
        for header in response.headers.get_list("set-cookie"):
            self.secrets.add(header.split(";", 1)[0].split("=", 1)[1])
        for found in re.findall(r'name="(?:csrf_token|token)" value="([^"]+)"', response.text):
            self.secrets.add(found)
        if response.headers.get("content-type", "").startswith("application/json"):
            body = response.json()
            if isinstance(body, dict):
                for key in ("access_token", "refresh_token", "id_token", "client_secret"):
                    if isinstance(body.get(key), str):
                        self.secrets.add(body[key])
        return response

    def basic(self, user: str, password: str) -> dict[str, str]:
        value = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.secrets.add(value)
        return {"Authorization": f"Basic {value}"}

    def link_token(self, count: int, path: str) -> str:
        link = self.inbox.wait_for(count)[count - 1].link(path)
        token = parse_qs(urlsplit(link).query)["token"][0]
        self.secrets.add(token)
        return token

    def form(self, http: httpx.Client, page: str, action: str, **fields: str) -> httpx.Response:
        html = self.call(http, "GET", page).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert csrf, html
        return self.call(http, "POST", action, data={"csrf_token": csrf[1], **fields})


@contextmanager
def serving(data: Path, log: Path, env: dict[str, str]) -> Iterator[str]:
    """serve with its stdout and stderr both in `log` (a file: a pipe left unread
    would stall a server logging at DEBUG); stopped by its PID."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            serve_command(port),
            env=command_env(data, **env),
            cwd=data.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "serve did not become ready"
            try:
                ca = trusting(data / "tls" / "ca.crt")
                if httpx.get(f"{base}/readyz", verify=ca, timeout=2).status_code == 200:
                    break
            except (OSError, httpx.HTTPError):
                pass
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=STOP_TIMEOUT) == 0
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
            pytest.fail("serve did not stop after SIGTERM")


def _confidential_client(data: Path) -> tuple[str, str]:
    assert run_cli(data, "db", "upgrade").returncode == 0
    created = run_cli(
        data,
        "clients",
        "create",
        "--name",
        "Photo",
        "--redirect-uri",
        REDIRECT,
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--scope",
        "openid profile email offline_access",
        "--resource-server",
    )
    assert created.returncode == 0, created.stderr
    body = json.loads(created.stdout)
    return body["client_id"], body["client_secret"]


def _walk(walk: Walk, client_id: str, client_secret: str, metrics_token: str) -> None:
    walk.secrets.add(client_secret)
    with walk.client() as api:
        created = walk.call(api, "POST", "/users", json={"email": EMAIL, "password": PASSWORD})
        assert created.status_code == 201, created.text
    with walk.client() as browser:
        verify = walk.link_token(1, "/verify-email")
        done = walk.form(browser, f"/verify-email?token={verify}", "/verify-email", token=verify)
        assert done.status_code == 200, done.text
    with walk.client() as api:
        grant = {"grant_type": "password", "username": EMAIL, "password": PASSWORD}
        tokens = walk.call(api, "POST", "/oauth/token", data=grant).json()
        assert "refresh_token" in tokens, tokens
        wrong = {**grant, "password": "wrong-" + secrets.token_urlsafe(12)}
        walk.secrets.add(wrong["password"])
        assert walk.call(api, "POST", "/oauth/token", data=wrong).status_code in (400, 401)
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert walk.call(api, "GET", "/users/me", headers=bearer).status_code == 200
        basic = walk.basic(EMAIL, PASSWORD)
        assert walk.call(api, "GET", "/users/me", headers=basic).status_code == 200
        refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        assert walk.call(api, "POST", "/oauth/token", data=refresh).status_code == 200
        # O5 with a replayed rotated refresh token: the family is revoked.
        assert walk.call(api, "POST", "/oauth/token", data=refresh).status_code == 400
        walk.call(api, "GET", "/metrics", headers={"Authorization": f"Bearer {metrics_token}"})
    _code_flow(walk, client_id, client_secret)
    with walk.client() as browser:
        asked = walk.form(browser, "/forgot-password", "/forgot-password", email=EMAIL)
        assert asked.status_code == 303, asked.text
        reset = walk.link_token(2, "/reset-password")
        page = f"/reset-password?token={reset}"
        done = walk.form(browser, page, "/reset-password", token=reset, password=NEW_PASSWORD)
        assert done.status_code == 303, done.text
    with walk.client() as api:
        grant = {"grant_type": "password", "username": EMAIL, "password": NEW_PASSWORD}
        tokens = walk.call(api, "POST", "/oauth/token", data=grant).json()
        assert "access_token" in tokens, tokens


def _code_flow(walk: Walk, client_id: str, client_secret: str) -> None:
    """Authorization code + PKCE through the hosted login and consent pages, then
    the confidential client's refresh, introspection and revocation."""
    verifier = secrets.token_urlsafe(48)
    walk.secrets.add(verifier)
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    authorize = "/oauth/authorize?" + urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "scope": "openid profile offline_access",
            "state": "st-1",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "prompt": "consent",
        }
    )
    with walk.client() as browser:
        to_login = walk.call(browser, "GET", authorize)
        assert to_login.status_code in (302, 303), to_login.text
        page = walk.call(browser, "GET", to_login.headers["location"]).text
        fields = dict(re.findall(r'name="(csrf_token|next)" value="([^"]*)"', page))
        fields |= {"email": EMAIL, "password": PASSWORD}
        signed = walk.call(browser, "POST", "/login", data=fields)
        assert signed.status_code == 303, signed.text
        consent = walk.call(browser, "GET", authorize)
        if consent.status_code == 200:
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', consent.text)
            assert csrf, consent.text
            form = {"csrf_token": csrf[1], "decision": "allow"}
            consent = walk.call(browser, "POST", authorize, data=form)
        assert consent.status_code in (302, 303), consent.text
        code = parse_qs(urlsplit(consent.headers["location"]).query)["code"][0]
        walk.secrets.add(code)
    basic = walk.basic(client_id, client_secret)
    with walk.client() as app:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
        form["code_verifier"] = verifier
        tokens = walk.call(app, "POST", "/oauth/token", data=form, headers=basic).json()
        assert "id_token" in tokens, tokens
        refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        renewed = walk.call(app, "POST", "/oauth/token", data=refresh, headers=basic).json()
        seen = walk.call(
            app, "POST", "/oauth/introspect", data={"token": renewed["access_token"]}, headers=basic
        )
        assert seen.json()["active"] is True, seen.text
        gone = {"token": renewed["refresh_token"], "token_type_hint": "refresh_token"}
        assert walk.call(app, "POST", "/oauth/revoke", data=gone, headers=basic).status_code == 200


def _forms(secret: str) -> set[str]:
    """The secret as it could appear: itself, URL-encoded, base64, and each part of
    a JWT (a signature alone is as good as the token to whoever checks it)."""
    found = {secret, quote(secret, safe=""), quote_plus(secret)}
    found.add(base64.b64encode(secret.encode()).decode().rstrip("="))
    if secret.count(".") == 2:
        found.update(part for part in secret.split(".")[1:] if len(part) >= 16)
    return found


def test_o5_no_secret_of_a_whole_serve_run_at_debug_reaches_its_log(tmp_path: Path) -> None:
    data = tmp_path / "data"
    client_id, client_secret = _confidential_client(data)
    metrics_token = secrets.token_urlsafe(32)
    log = tmp_path / "serve.log"
    with smtp_server() as smtp:
        env = {
            "USERSERVICE_LOG_FORMAT": "json",
            "USERSERVICE_LOG_LEVEL": "debug",
            "USERSERVICE_MAIL_URL": smtp.url(query="?tls=none"),
            "USERSERVICE_METRICS_TOKEN": metrics_token,
            "USERSERVICE_REQUIRE_VERIFIED_EMAIL": "true",
        }
        with serving(data, log, env) as base:
            walk = Walk(base, data / "tls" / "ca.crt", smtp.inbox)
            walk.secrets.add(metrics_token)
            _walk(walk, client_id, client_secret, metrics_token)
            with walk.client() as api:
                marked = api.get("/healthz", headers={"X-Request-ID": "o5-walk-end"})
                assert marked.headers["x-request-id"] == "o5-walk-end"
    text = log.read_text()
    records = [json.loads(line) for line in text.splitlines()]
    for record in records:
        assert isinstance(record, dict) and record.keys() >= O4_KEYS, record
    access = [r for r in records if r["logger"] == "userservice.access"]
    # Not trivially empty: every call made is there (the readiness polls besides).
    assert len(access) >= walk.calls + 1
    assert all(re.fullmatch(r"[A-Za-z0-9._:-]+", r["request_id"]) for r in access)
    assert any(r["request_id"] == "o5-walk-end" for r in access)
    assert any(r.get("event") == "login.succeeded" and "request_id" in r for r in records)
    assert len(walk.secrets) >= 20
    leaked = {s for secret in walk.secrets for s in _forms(secret) if s in text}
    assert not leaked, f"{len(leaked)} secrets in the log"
