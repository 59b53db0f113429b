"""Prometheus' configuration and alert rules for the compose deployment, checked
and unit-tested by promtool (Debian's prometheus package, from
scripts/system-deps.sh)."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from tests.support.deploy_files import DEPLOY, METRIC_NAMES, metric_names, run_promtool

PROMETHEUS = DEPLOY / "prometheus"


def test_rules_pass_promtool_check() -> None:
    result = run_promtool("check", "rules", PROMETHEUS / "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_config_passes_promtool_check_with_its_rules() -> None:
    result = run_promtool("check", "config", PROMETHEUS / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_every_alert_behaves_as_its_unit_tests_say() -> None:
    result = run_promtool("test", "rules", PROMETHEUS / "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_catch_a_broken_rule(tmp_path: Path) -> None:
    """The unit tests can fail: with one threshold changed they do."""
    shutil.copy(PROMETHEUS / "alerts_test.yml", tmp_path)
    broken = (PROMETHEUS / "alerts.yml").read_text().replace("> 0.05", "> 0.5")
    (tmp_path / "alerts.yml").write_text(broken)
    result = run_promtool("test", "rules", tmp_path / "alerts_test.yml")
    assert result.returncode != 0
    assert "UserserviceHighErrorRatio" in result.stdout + result.stderr


def test_every_alert_has_a_unit_test_and_reads_only_known_metrics() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"][0]["rules"]
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    fired = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    names = {rule["alert"] for rule in rules}
    assert tested == names and fired == names
    for rule in rules:
        read = metric_names(rule["expr"])
        assert read and read <= METRIC_NAMES, (rule["alert"], read)


def test_the_scrape_job_finds_every_replica_on_the_metrics_port() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "userservice"
    assert job["metrics_path"] == "/metrics"
    (discovery,) = job["dns_sd_configs"]
    assert discovery == {
        "names": ["userservice"],
        "type": "A",
        "port": 9100,
        "refresh_interval": "15s",
    }
    assert config["rule_files"] == ["alerts.yml"]
