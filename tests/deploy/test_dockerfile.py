"""The Dockerfile, read (non-root user, no secret baked in, the locked
dependencies, the `serve` command, the ports) and its CMD and HEALTHCHECK run
here as the image runs them: `serve` answers over HTTPS by default and over plain
HTTP with USERSERVICE_TLS=false, and `userservice healthcheck` follows both."""

from __future__ import annotations

import json
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.cli import command_env
from tests.support.deploy_files import ROOT
from tests.support.server import free_port

DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    found = []
    for line in lines:
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def _exec_form(arguments: str) -> list[str]:
    command: list[str] = json.loads(arguments)
    return command


def _cmd() -> list[str]:
    (cmd,) = [rest for keyword, rest in _instructions() if keyword == "CMD"]
    return _exec_form(cmd)


def _healthcheck() -> list[str]:
    (check,) = [rest for keyword, rest in _instructions() if keyword == "HEALTHCHECK"]
    return _exec_form(check[check.index("CMD ") + 4 :])


def test_o8_image_runs_as_its_non_root_user() -> None:
    instructions = _instructions()
    keywords = [keyword for keyword, _ in instructions]
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users == ["userservice"]
    # Nothing runs as root after the switch.
    assert "RUN" not in keywords[keywords.index("USER") :]
    useradd = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert re.search(r"useradd --system --uid 10001 .* userservice", useradd)


def test_no_secret_is_baked_into_the_image() -> None:
    for keyword, rest in _instructions():
        if keyword in ("ENV", "ARG"):
            names = re.findall(r"([A-Z_][A-Z0-9_]*)=", rest) or [rest.split()[0]]
            for name in names:
                assert not re.search(r"SECRET|PASSWORD|TOKEN|DATABASE_URL|REDIS_URL", name)
        if keyword == "COPY":
            sources = rest.split()[:-1]
            assert "." not in sources and ".env" not in sources, rest


def test_dependencies_come_from_the_lock_file_without_dev_tools() -> None:
    runs = [rest for keyword, rest in _instructions() if keyword == "RUN"]
    syncs = [run for run in runs if "uv sync" in run]
    assert syncs and all("--frozen" in run and "--no-dev" in run for run in syncs)
    env = " ".join(rest for keyword, rest in _instructions() if keyword == "ENV")
    assert "UV_COMPILE_BYTECODE=1" in env  # read-only root filesystem: no .pyc written later


def test_cmd_serves_and_healthcheck_probes() -> None:
    assert _cmd()[:2] == ["userservice", "serve"]
    assert _healthcheck() == ["userservice", "healthcheck"]
    exposed = {
        port for keyword, rest in _instructions() if keyword == "EXPOSE" for port in rest.split()
    }
    cmd = _cmd()
    assert cmd[cmd.index("--port") + 1] in exposed
    assert "9100" in exposed  # the metrics port docker-compose.yml and deploy/k8s set


def _local(command: list[str], port: int) -> list[str]:
    """The image's command run here: the installed package, on loopback only."""
    assert command[0] == "userservice"
    local = [sys.executable, "-m", "userservice", *command[1:]]
    if "--host" in local:
        local[local.index("--host") + 1] = "127.0.0.1"
    if "--port" in local:
        local[local.index("--port") + 1] = str(port)
    return local


@contextmanager
def _image_cmd(data_dir: Path, **env: str) -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(
        _local(_cmd(), port),
        env=command_env(data_dir, **env),
        cwd=data_dir.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not (data_dir / "serve-listener.json").exists() or not _answers(port):
            if process.poll() is not None:
                log = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(f"serve exited with {process.returncode}: {log[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("serve did not answer within 60 s")
            time.sleep(0.2)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
            if process.stderr is not None:
                process.stderr.close()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _healthcheck_run(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _local(_healthcheck(), 0),
        env=command_env(data_dir),
        cwd=data_dir.parent,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_image_cmd_behind_a_proxy_speaks_plain_http_and_is_healthy(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with _image_cmd(data_dir, USERSERVICE_TLS="false") as port:
        answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert answer.status_code == 200
        recorded = json.loads((data_dir / "serve-listener.json").read_text())
        assert recorded["healthz"] == f"http://127.0.0.1:{port}/healthz"
        check = _healthcheck_run(data_dir)
        assert check.returncode == 0, check.stdout + check.stderr
        assert not (data_dir / "tls").exists()  # no certificate made when TLS is off
    # Once stopped, the probe reports the server gone.
    assert _healthcheck_run(data_dir).returncode != 0


def test_image_cmd_by_default_speaks_https_and_is_healthy(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with _image_cmd(data_dir) as port:
        context = ssl.create_default_context(cafile=str(data_dir / "tls" / "ca.crt"))
        answer = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=context, timeout=5)
        assert answer.status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        check = _healthcheck_run(data_dir)
        assert check.returncode == 0, check.stdout + check.stderr
