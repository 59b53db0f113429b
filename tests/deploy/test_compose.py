"""docker-compose.yml: valid against the compose specification's JSON schema
(check-jsonschema's built-in `vendor.compose-spec`, offline), and consistent with
the repository: services it depends on, files it mounts, the metrics port
Prometheus scrapes, settings the service knows, nginx's template variables, the
secrets script, and the O8 hardening of the service's containers."""

from __future__ import annotations

import ipaddress
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.deploy_files import DEPLOY, ROOT
from tests.support.nginx import TEMPLATE, template_variables
from userservice.settings import Settings

COMPOSE = ROOT / "docker-compose.yml"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
MAKE_SECRETS = DEPLOY / "compose" / "make-secrets.sh"
PREFIX = "USERSERVICE_"


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _services() -> dict[str, Any]:
    services: dict[str, Any] = _compose()["services"]
    return services


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _secrets(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(MAKE_SECRETS), str(directory)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _env_file(path: Path) -> dict[str, str]:
    # Compose's env-file syntax: `#` starts a comment line.
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    pairs = (line.split("=", 1) for line in lines if "=" in line)
    return {name: value for name, value in pairs}


def test_compose_file_matches_the_compose_specification() -> None:
    result = _validate(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_malformed_file(tmp_path: Path) -> None:
    broken = COMPOSE.read_text().replace("read_only: true", "readonly: true")
    assert broken != COMPOSE.read_text()
    (tmp_path / "docker-compose.yml").write_text(broken)
    result = _validate(tmp_path / "docker-compose.yml")
    assert result.returncode != 0
    assert "readonly" in result.stdout + result.stderr


def test_every_dependency_is_a_service_and_replicas_wait_for_the_migration() -> None:
    services = _services()
    for name, service in services.items():
        for dependency in service.get("depends_on", []):
            assert dependency in services, (name, dependency)
    replicas = services["userservice"]
    assert replicas["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert replicas["deploy"]["replicas"] == 3
    assert replicas["command"][:2] == ["userservice", "serve"]
    assert "--no-migrate" in replicas["command"]
    assert services["migrate"]["command"] == ["userservice", "db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")


def test_every_mounted_repository_path_exists() -> None:
    mounted = []
    for service in _services().values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                mounted.append(source)
                assert (ROOT / source).exists(), source
    assert "./deploy/nginx/userservice.conf.template" in mounted
    assert "./deploy/prometheus/alerts.yml" in mounted
    assert "./deploy/grafana/provisioning" in mounted


def test_env_files_are_those_the_secrets_script_makes(tmp_path: Path) -> None:
    made = _secrets(tmp_path)
    assert made.returncode == 0, made.stderr
    files = {str(path) for s in _services().values() for path in s.get("env_file", [])}
    assert {f.removeprefix("deploy/compose/secrets/") for f in files} == {
        p.name for p in tmp_path.iterdir()
    }
    assert all(f.startswith("deploy/compose/secrets/") for f in files)
    assert (DEPLOY / "compose" / "secrets" / ".gitignore").read_text().splitlines()[1] == "*"
    for path in tmp_path.iterdir():
        assert path.stat().st_mode & 0o077 == 0, path
    # A second run keeps what is there (a new password would lock out the database).
    before = {path.name: path.read_text() for path in tmp_path.iterdir()}
    assert _secrets(tmp_path).returncode == 0
    assert {path.name: path.read_text() for path in tmp_path.iterdir()} == before


def _database_password(directory: Path) -> str:
    url = _env_file(directory / "userservice.env")["USERSERVICE_DATABASE_URL"]
    password = url.split("://userservice:", 1)[1].split("@", 1)[0]
    assert password == _env_file(directory / "postgres.env")["POSTGRES_PASSWORD"]
    assert re.fullmatch(r"[0-9a-f]{64}", password)
    return password


@pytest.mark.parametrize(
    "missing",
    [("userservice.env",), ("postgres.env",), ("grafana.env",), ("userservice.env", "grafana.env")],
)
def test_the_secrets_script_makes_each_missing_file_and_keeps_the_others(
    tmp_path: Path, missing: tuple[str, ...]
) -> None:
    """Some files present, others not: each missing one is made, the present ones
    are kept byte for byte, and the database password still agrees between the
    URL and PostgreSQL's file (read from whichever of the two was kept)."""
    assert _secrets(tmp_path).returncode == 0
    password = _database_password(tmp_path)
    for name in missing:
        (tmp_path / name).unlink()
    kept = {path.name: path.read_text() for path in tmp_path.iterdir()}
    made = _secrets(tmp_path)
    assert made.returncode == 0, made.stderr
    now = {path.name: path.read_text() for path in tmp_path.iterdir()}
    assert set(now) == {"postgres.env", "userservice.env", "grafana.env"}
    assert {name: now[name] for name in kept} == kept
    assert all(now[name] for name in missing)
    assert _database_password(tmp_path) == password
    assert all(path.stat().st_mode & 0o077 == 0 for path in tmp_path.iterdir())
    if "grafana.env" in missing:
        assert re.fullmatch(
            r"[0-9a-f]{64}", _env_file(tmp_path / "grafana.env")["GF_SECURITY_ADMIN_PASSWORD"]
        )


def test_the_secrets_script_refuses_a_postgres_file_without_a_password(tmp_path: Path) -> None:
    (tmp_path / "postgres.env").write_text("# nothing here\n")
    made = _secrets(tmp_path)
    assert made.returncode != 0
    assert "POSTGRES_PASSWORD" in made.stderr
    assert not (tmp_path / "userservice.env").exists()


def test_service_settings_are_real_and_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every USERSERVICE_ name set by compose or the secrets script is a setting,
    and the service's own validation accepts the values together."""
    assert _secrets(tmp_path).returncode == 0
    environment = dict(_services()["userservice"]["environment"])
    environment["USERSERVICE_ISSUER"] = "https://localhost"  # compose interpolates it
    environment |= _env_file(tmp_path / "userservice.env")
    known = {PREFIX + name.upper() for name in Settings.model_fields}
    assert set(environment) <= known, set(environment) - known
    for service in _services().values():
        assert (
            set(service.get("environment", {})) & {n for n in environment if n.startswith(PREFIX)}
            <= known
        )
    for name, value in environment.items():
        monkeypatch.setenv(name, str(value))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.tls is False
    assert settings.log_format == "json"
    assert settings.metrics_port == 9100 and settings.metrics_host == "0.0.0.0"  # noqa: S104
    assert settings.redis_url is not None
    assert settings.key_encryption_secret is not None
    assert settings.database_url.startswith("postgresql+psycopg://userservice:")


def test_no_secret_is_written_in_the_compose_file() -> None:
    for name, service in _services().items():
        for variable in service.get("environment", {}):
            assert not re.search(r"SECRET|PASSWORD|TOKEN|DATABASE_URL", variable), (name, variable)
    assert "postgresql+psycopg" not in COMPOSE.read_text()


def test_prometheus_scrapes_the_replicas_metrics_port() -> None:
    services = _services()
    port = int(services["userservice"]["environment"]["USERSERVICE_METRICS_PORT"])
    assert str(port) in services["userservice"]["expose"]
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    (discovery,) = job["dns_sd_configs"]
    assert discovery["port"] == port
    assert discovery["names"] == ["userservice"]
    mounts = services["prometheus"]["volumes"]
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts


def test_nginx_gets_every_template_variable_and_is_the_only_trusted_proxy() -> None:
    services = _services()
    nginx = services["nginx"]
    assert template_variables(TEMPLATE.read_text()) <= set(nginx["environment"])
    assert "userservice:8080" in nginx["environment"]["NGINX_UPSTREAM_SERVERS"]
    assert "--port" in services["userservice"]["command"]
    command = services["userservice"]["command"]
    assert command[command.index("--port") + 1] == "8080"
    address = nginx["networks"]["backend"]["ipv4_address"]
    assert services["userservice"]["environment"]["USERSERVICE_TRUSTED_PROXIES"] == address
    assert sorted(nginx["ports"]) == ["443:443", "80:80"]


def test_o7_no_replica_can_take_the_trusted_proxy_address() -> None:
    """nginx starts last: were its fixed address in the range compose hands out,
    a replica (with --scale, any number) could take it first, and would then be
    the trusted proxy."""
    address = ipaddress.ip_address(_services()["nginx"]["networks"]["backend"]["ipv4_address"])
    (pool,) = _compose()["networks"]["backend"]["ipam"]["config"]
    subnet = ipaddress.IPv4Network(pool["subnet"])
    dynamic = ipaddress.IPv4Network(pool["ip_range"])
    assert address in subnet
    assert dynamic.subnet_of(subnet)
    assert address not in dynamic
    # Room for far more replicas than anyone scales to on one host.
    assert dynamic.num_addresses >= 64
    for name, service in _services().items():
        networks = service.get("networks", [])
        if name != "nginx" and isinstance(networks, dict):
            assert "ipv4_address" not in networks.get("backend", {}), name


def test_the_image_is_built_once_and_the_migration_has_no_health_probe() -> None:
    services = _services()
    built = [name for name, service in services.items() if "build" in service]
    assert built == ["migrate"]
    image = services["migrate"]["image"]
    assert services["userservice"]["image"] == image
    # Never pulled: the tag exists only where `migrate` built it, before the
    # replicas start (they wait for the migration to complete).
    assert services["userservice"]["pull_policy"] == "never"
    assert services["userservice"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    # The image's HEALTHCHECK probes a server the one-shot migration never runs.
    assert services["migrate"]["healthcheck"] == {"disable": True}
    assert "healthcheck" not in services["userservice"]  # the image's own probe


def test_nginx_reload_after_scaling_is_documented() -> None:
    """nginx resolves `userservice` once: the file says to reload it after a scale
    (the `resolve` server parameter is refused by the nginx CI checks with)."""
    text = COMPOSE.read_text()
    assert "docker compose exec nginx nginx -s reload" in text
    assert "resolve" in text and "1.22" in text


def test_o8_service_containers_are_hardened() -> None:
    for name in ("userservice", "migrate"):
        service = _services()[name]
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        assert service["security_opt"] == ["no-new-privileges:true"]
        assert "user" not in service  # the image's non-root user (Dockerfile)
        assert any(mount.startswith("/tmp:") for mount in service["tmpfs"])
