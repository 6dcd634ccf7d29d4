"""The compose stack's Prometheus and Grafana configuration, checked statically: every file
parses, every replica and RabbitMQ node is scraped, the alerts the runbook names exist, and every
bridge metric a rule or a dashboard panel uses is in a real `/metrics` scrape."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.settings import Settings
from tests.integration.conftest import running_bridge
from tests.integration.metrics_scrape import scrape

COMPOSE = Path(__file__).resolve().parents[2] / "compose"
METRIC = re.compile(r"\b(eventbridge_[a-z0-9_]+|process_[a-z0-9_]+)\b")
ALERTS = (
    "EventbridgeLogLagHigh",
    "EventbridgeDeadLettersRising",
    "EventbridgeNotConsuming",
    "EventbridgeSlowConsumerBurst",
    "EventbridgeBrokerConnectionDown",
)


def load_yaml(relative: str) -> Any:
    """A YAML file of compose/."""
    return yaml.safe_load((COMPOSE / relative).read_text(encoding="utf-8"))


def rule_expressions() -> dict[str, str]:
    """Every alert rule's expression, by alert name."""
    document = load_yaml("prometheus/alerts.yml")
    return {rule["alert"]: rule["expr"] for group in document["groups"] for rule in group["rules"]}


def dashboard_expressions() -> list[str]:
    """Every query of the provisioned Grafana dashboard."""
    dashboard = json.loads((COMPOSE / "grafana/dashboards/eventbridge.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml, parsed."""
    document: dict[str, Any] = load_yaml("docker-compose.yml")
    return document


def test_prometheus_scrapes_every_replica_and_rabbitmq_node(compose: dict[str, Any]) -> None:
    """Prometheus scrapes both bridge replicas on the metrics port they are given, and every
    RabbitMQ node on its Prometheus port, and loads the alert rules."""
    config = load_yaml("prometheus/prometheus.yml")
    targets = {
        job["job_name"]: [t for static in job["static_configs"] for t in static["targets"]]
        for job in config["scrape_configs"]
    }
    replicas = [name for name in compose["services"] if name.startswith("bridge-")]
    port = compose["x-bridge-environment"]["EVENTBRIDGE_METRICS_PORT"]
    assert sorted(targets["eventbridge"]) == sorted(f"{name}:{port}" for name in replicas)
    nodes = [name for name in compose["services"] if name.startswith("rabbitmq-")]
    assert sorted(targets["rabbitmq"]) == sorted(f"{name}:15692" for name in nodes)
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    plugins = (COMPOSE / "rabbitmq-enabled-plugins").read_text()
    assert "rabbitmq_prometheus" in plugins


def test_compose_runs_prometheus_and_grafana_with_their_files(compose: dict[str, Any]) -> None:
    """The compose file mounts Prometheus's config and rules and Grafana's provisioning and
    dashboards, from files that exist."""
    for service in ("prometheus", "grafana"):
        for volume in compose["services"][service]["volumes"]:
            source = volume.split(":")[0]
            assert (COMPOSE / source).exists(), volume
    datasource = load_yaml("grafana/provisioning/datasources/prometheus.yml")
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    provider = load_yaml("grafana/provisioning/dashboards/eventbridge.yml")
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_every_alert_of_the_runbook_has_a_rule() -> None:
    """Each alert docs/observability.md explains is a rule, and every rule is explained there."""
    rules = rule_expressions()
    assert sorted(rules) == sorted(ALERTS)
    runbook = (COMPOSE.parent / "docs" / "observability.md").read_text()
    for alert in rules:
        assert f"`{alert}`" in runbook, alert


async def test_rules_and_dashboard_use_only_metrics_a_bridge_serves(
    bridge_settings: Callable[..., Settings],
) -> None:
    """Every bridge metric an alert rule or a dashboard query uses is in a real scrape, and the
    dashboard shows what operators watch: latency p50/p99, lag, events/s, deliveries/s,
    connections, dead letters, slow disconnects and resyncs."""
    async with running_bridge(bridge_settings()) as bridge:
        samples = await scrape(f"{bridge.http_url}/metrics")
    served = {name for name, _ in samples}
    queries = [*rule_expressions().values(), *dashboard_expressions()]
    used = {name for query in queries for name in METRIC.findall(query)}
    assert used, "no query uses a bridge metric"
    assert sorted(used - served) == []
    dashboard = " ".join(dashboard_expressions())
    for needed in (
        "histogram_quantile(0.5,",
        "histogram_quantile(0.99,",
        "eventbridge_log_lag_seconds",
        "eventbridge_events_read_total",
        "eventbridge_deliveries_total",
        "eventbridge_connections",
        "eventbridge_dead_letters_total",
        'reason="slow_consumer"',
        'outcome=~"resync_.*"',
    ):
        assert needed in dashboard, needed
