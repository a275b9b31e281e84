"""The Prometheus configuration and rules in deploy/prometheus, checked by the real
promtool (Debian's prometheus package, installed by deploy/setup.sh): the config and the
rules load, and the rule unit tests (deploy/prometheus/tests/*.test.yml: input series,
expected alerts) pass. Also that those tests cover every alert both firing and silent,
and every recording rule."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*.test.yml"))
SEVERITIES = {"critical", "warning"}


def promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> str:
    binary = shutil.which("promtool")
    assert binary, "promtool not found: deploy/setup.sh installs Debian's prometheus package"
    result = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool {' '.join(args)} failed ({result.returncode}):\n{output}"
    return output


def rules() -> list[dict]:
    return [rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


def rule_tests() -> list[dict]:
    return [test for path in TEST_FILES for test in yaml.safe_load(path.read_text())["tests"]]


def test_the_scrape_config_is_valid(tmp_path):
    # As deployed, with the metrics token where the config expects it (promtool checks the
    # file exists): a copy pointing at a token file of this test's own.
    copy = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS_DIR, copy)
    token = tmp_path / "metrics-token"
    token.write_text("0" * 64)
    config = yaml.safe_load((copy / "prometheus.yml").read_text())
    for job in config["scrape_configs"]:
        assert job["authorization"]["credentials_file"] == "/var/lib/siui/secrets/metrics-token", job["job_name"]
        job["authorization"]["credentials_file"] = str(token)
    (copy / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    out = promtool("check", "config", "prometheus.yml", cwd=copy)
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in out, out


def test_the_rules_are_valid():
    assert len(RULE_FILES) == 2
    out = promtool("check", "rules", *(str(p.relative_to(PROMETHEUS_DIR)) for p in RULE_FILES))
    assert out.count("SUCCESS") == len(RULE_FILES), out


def test_the_rules_pass_their_unit_tests():
    assert TEST_FILES
    out = promtool("test", "rules", *(str(p.relative_to(PROMETHEUS_DIR)) for p in TEST_FILES))
    assert out.count("SUCCESS") == len(TEST_FILES) and "FAILED" not in out, out


def test_every_alert_is_tested_firing_and_silent():
    alerts = [rule for rule in rules() if "alert" in rule]
    firing: set[tuple[str, str]] = set()
    silent: set[str] = set()
    for test in rule_tests():
        for case in test.get("alert_rule_test", []):
            if case["exp_alerts"]:
                firing |= {(case["alertname"], alert["exp_labels"]["severity"]) for alert in case["exp_alerts"]}
            else:
                silent.add(case["alertname"])
    wanted = {(rule["alert"], rule["labels"]["severity"]) for rule in alerts}
    assert wanted - firing == set(), "alerts never tested firing"
    assert {name for name, _ in wanted} - silent == set(), "alerts never tested silent"


def test_every_recording_rule_is_tested():
    records = {rule["record"] for rule in rules() if "record" in rule}
    tested = {re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", case["expr"]).group(0)
              for test in rule_tests() for case in test.get("promql_expr_test", [])}
    assert records - tested == set(), "recording rules without a promql_expr_test"


def test_every_alert_says_how_bad_and_what_to_do():
    for rule in (r for r in rules() if "alert" in r):
        name = rule["alert"]
        assert re.fullmatch(r"Siui[A-Z][A-Za-z0-9]+", name), name
        assert rule.get("for"), f"{name}: no for:"
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        # Every alert names the service it is about: a label of its own, or the series'
        # (its summary shows it, and the promtool tests check the summary).
        assert "service" in rule["labels"] or "$labels.service" in annotations["summary"], name
        assert annotations["summary"] and len(annotations["description"]) > 120, name
