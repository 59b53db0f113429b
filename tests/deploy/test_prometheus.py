"""Prometheus' configuration and alert rules for the compose deployment, checked
and unit-tested by promtool (Debian's prometheus package, from
scripts/system-deps.sh)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.support.deploy_files import DEPLOY, METRIC_NAMES, ROOT, metric_names, run_promtool

PROMETHEUS = DEPLOY / "prometheus"


def test_rules_pass_promtool_check() -> None:
    result = run_promtool("check", "rules", PROMETHEUS / "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 9 rules found" in result.stdout


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


def _rule(name: str) -> dict[str, Any]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"][0]["rules"]
    (rule,) = [rule for rule in rules if rule["alert"] == name]
    found: dict[str, Any] = rule
    return found


def test_o9_too_few_replicas_counts_against_the_deployed_number() -> None:
    """A replica removed from DNS or a deleted pod is no target, so `up == 0`
    never fires for it: the alert counts the answering replicas against the
    number the deployments run (compose's replicas, the autoscaler's minimum)."""
    expr = _rule("UserserviceTooFewReplicas")["expr"].strip()
    match = re.fullmatch(r'\(count\(up\{job="userservice"\} == 1\) or vector\(0\)\) < (\d+)', expr)
    assert match, expr
    expected = int(match.group(1))
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["userservice"]["deploy"]["replicas"] == expected
    hpa = yaml.safe_load((DEPLOY / "k8s" / "hpa.yaml").read_text())
    assert hpa["spec"]["minReplicas"] == expected
    summary = _rule("UserserviceTooFewReplicas")["annotations"]["summary"]
    assert f"(expected {expected})" in summary


def test_promtool_unit_tests_catch_a_count_that_misses_no_replica_at_all(tmp_path: Path) -> None:
    """Without `or vector(0)` the count of no series is no value, and the alert
    would stay silent with every replica gone: the unit tests say so."""
    shutil.copy(PROMETHEUS / "alerts_test.yml", tmp_path)
    text = (PROMETHEUS / "alerts.yml").read_text()
    broken = text.replace(
        '(count(up{job="userservice"} == 1) or vector(0)) < 3',
        'count(up{job="userservice"} == 1) < 3',
    )
    assert broken != text
    (tmp_path / "alerts.yml").write_text(broken)
    result = run_promtool("test", "rules", tmp_path / "alerts_test.yml")
    assert result.returncode != 0
    assert "UserserviceTooFewReplicas" in result.stdout + result.stderr
