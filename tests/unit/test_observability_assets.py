"""Issue 14, offline: the alert rules (promtool check + unit tests), the Grafana dashboard, the
Kubernetes manifests and the compose file are valid, and every metric they name is one the code
registers (`shared.observability.metrics.Metrics`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from shared.observability.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
K8S = DEPLOY / "k8s"
K8S_VERSION = "1.30.0"
METRIC = re.compile(r"\b((?:frontdesk|media|process|python)_[a-zA-Z0-9_]+)")
PROMTOOL = shutil.which("promtool")
NO_PROMTOOL = (
    "promtool is not installed and `make observability-tools` could not install it "
    "(apt-get install prometheus): THE ALERT RULES ARE NOT CHECKED"
)


def known_metrics() -> set[str]:
    return Metrics("check", process=True).names()


def metrics_named(expr: str) -> set[str]:
    return set(METRIC.findall(expr))


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


# --- alert rules ----------------------------------------------------------------------------
@pytest.mark.skipif(PROMTOOL is None, reason=NO_PROMTOOL)
def test_promtool_checks_the_rules_and_runs_their_tests() -> None:
    assert PROMTOOL is not None
    for argv in (
        [PROMTOOL, "check", "rules", str(RULES)],
        [PROMTOOL, "test", "rules", str(DEPLOY / "prometheus" / "alerts.test.yml")],
    ):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(PROMTOOL is None, reason=NO_PROMTOOL)
def test_promtool_checks_the_compose_prometheus_config(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    config = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    (tmp_path / "alerts.yml").write_text(RULES.read_text())
    (tmp_path / "prometheus.yml").write_text(
        config.replace("/etc/prometheus/alerts.yml", "alerts.yml")
    )
    done = subprocess.run(
        [PROMTOOL, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_firing_and_a_quiet_test() -> None:
    tests = yaml.safe_load((DEPLOY / "prometheus" / "alerts.test.yml").read_text())["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in alert_rules()}
    assert alerts == firing, f"alerts without a firing case: {alerts - firing}"
    assert alerts == quiet, f"alerts without a quiet case: {alerts - quiet}"


def test_alerts_name_registered_metrics_and_have_a_runbook() -> None:
    known = known_metrics()
    operations = (ROOT / "docs" / "operations.md").read_text()
    headings = {
        m.group(1).strip().lower() for m in re.finditer(r"^#+\s+(.+)$", operations, re.MULTILINE)
    }
    for rule in alert_rules():
        unknown = metrics_named(rule["expr"]) - known
        assert not unknown, f"{rule['alert']} names metrics nobody registers: {unknown}"
        anchor = rule["annotations"]["runbook"].partition("#")[2]
        assert anchor == rule["alert"].lower()
        assert anchor in headings, f"no runbook section '### {rule['alert']}' in operations.md"


def test_metric_names_follow_prometheus_conventions() -> None:
    metrics = Metrics("check")
    for family in metrics.registry.collect():
        assert re.fullmatch(r"[a-z_]+", family.name), family.name
        if family.type == "counter":
            assert not family.name.endswith("_total")  # the client adds it on exposition
        if family.type == "histogram":
            assert family.name.endswith(("_seconds", "_bytes")), family.name
        for sample in family.samples:
            assert "call_sid" not in sample.labels


# --- dashboard ------------------------------------------------------------------------------
def test_dashboard_parses_and_queries_registered_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "frontdesk.json").read_text())
    known = known_metrics()
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs
    named: set[str] = set()
    for expr in exprs:
        unknown = metrics_named(expr) - known
        assert not unknown, f"dashboard query names unregistered metrics {unknown}: {expr}"
        named |= metrics_named(expr)
    # what the issue asks the dashboard to show
    for metric in (
        "frontdesk_active_calls",
        "frontdesk_turn_stage_seconds_bucket",
        "frontdesk_provider_errors_total",
        "frontdesk_stream_lag_entries",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "frontdesk_calls_total",
        "frontdesk_call_cost_minor_units_total",
    ):
        assert metric in named, metric
    for quantile in ("0.5", "0.95", "0.99"):
        assert any(f"histogram_quantile({quantile}" in e and "turn_stage" in e for e in exprs)


# --- Kubernetes -----------------------------------------------------------------------------
def k8s_documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for name in kustomization["resources"]:
        docs.extend(d for d in yaml.safe_load_all((K8S / name).read_text()) if d)
    return docs


def test_k8s_manifests_validate() -> None:
    for doc in k8s_documents():
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}")


def test_every_deployment_has_probes_and_media_keeps_its_drain() -> None:
    deployments = {d["metadata"]["name"]: d for d in k8s_documents() if d["kind"] == "Deployment"}
    assert set(deployments) == {"gateway", "media", "brain", "tools", "recorder", "speech"}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true", name
    media = deployments["media"]["spec"]["template"]["spec"]["containers"][0]
    assert "media-drain.sh" in " ".join(media["lifecycle"]["preStop"]["exec"]["command"])


def test_media_has_a_disruption_budget_and_scales_on_active_calls() -> None:
    docs = k8s_documents()
    (pdb,) = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    assert pdb["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "media"}
    (hpa,) = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    kinds = [m["type"] for m in hpa["spec"]["metrics"]]
    assert kinds == ["Pods", "Resource"]  # active calls first, CPU as the fallback
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] in known_metrics()
    adapter = yaml.safe_load((K8S / "monitoring" / "prometheus-adapter-rules.yaml").read_text())
    assert adapter["rules"][0]["name"]["as"] == "frontdesk_active_calls"


# --- compose --------------------------------------------------------------------------------
def test_compose_file_validates_against_the_compose_spec() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    schema = json.loads((ROOT / "tests" / "assets" / "compose-spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(compose)
    services = compose["services"]
    for name in ("gateway", "media", "brain", "tools", "recorder"):
        assert "/readyz" in " ".join(services[name]["healthcheck"]["test"]), name
    observability = {n for n, s in services.items() if "observability" in s.get("profiles", [])}
    assert {"prometheus", "grafana", "otel-collector", "jaeger"} <= observability
    for service in services.values():  # every file the profile mounts is in the repository
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
