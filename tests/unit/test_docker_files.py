"""The stack's files agree with each other and with the code: pure checks, no Docker needed.

Run with ``.venv/bin/python -m pytest -q docker/tests``. Dashboards that name a metric the
control plane no longer exports, a scrape target no container listens on, or an address
outside the stack's loopback range fail here rather than in a dark panel.
"""

# Tests assert, as under tests/ (pyproject.toml's per-file-ignores cover only that folder).

from __future__ import annotations

import importlib.util
import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # no stubs installed; values checked below
from prometheus_client.metrics_core import Metric

import graam_pbx.app  # noqa: F401 - every module's metrics registered
from graam_pbx import metrics

# The repository's docker/, wherever this file sits in the repository.
DOCKER = (
    next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists()) / "docker"
)
STACK_ADDRESSES = {ipaddress.ip_address(f"127.0.0.{host}") for host in range(141, 150)}
# Metrics of other exporters: Asterisk's res_prometheus and Prometheus' own.
FOREIGN = re.compile(r"(asterisk_|up$)")
PROMQL_WORDS = {
    "sum", "max", "min", "by", "rate", "histogram_quantile", "le", "without", "on", "avg",
    "count", "increase", "job", "node", "tenant", "queue", "instance", "event", "action",
    "outcome",
}  # fmt: skip


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yml").read_text())
    return loaded


def exported_names() -> set[str]:
    names: set[str] = set()
    family: Metric
    for family in metrics.REGISTRY.collect():
        names.add(family.name)
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        names.update(family.name + suffix for suffix in suffixes.get(family.type, []))
    return names


def dashboard_expressions() -> list[tuple[str, str]]:
    found = []
    for path in sorted((DOCKER / "grafana/dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                found.append((path.name, target["expr"]))
    return found


def test_every_dashboard_metric_is_exported() -> None:
    exported = exported_names()
    expressions = dashboard_expressions()
    assert len(expressions) >= 25
    for board, expr in expressions:
        without_strings = re.sub(r'"[^"]*"|\{[^}]*\}|\[[^]]*\]', "", expr)
        for word in re.findall(r"[a-z_][a-z0-9_]*", without_strings):
            if word in PROMQL_WORDS or FOREIGN.match(word):
                continue
            assert word in exported, f"{board}: {word} is not a metric of graam-pbx"


def test_dashboards_cover_the_issue_themes() -> None:
    titles = {
        json.loads(path.read_text())["uid"]
        for path in (DOCKER / "grafana/dashboards").glob("*.json")
    }
    assert titles == {"graam-licences", "graam-queues", "graam-lag", "graam-ami", "graam-sip"}


def test_every_address_is_the_stacks_loopback() -> None:
    texts = [
        (DOCKER / "compose.yml").read_text(),
        (DOCKER / "prometheus/prometheus.yml").read_text(),
        (DOCKER / "grafana/provisioning/datasources/prometheus.yml").read_text(),
        (DOCKER / "smoke.py").read_text(),
    ]
    for text in texts:
        for address in re.findall(r"\b\d+\.\d+\.\d+\.\d+\b", text):
            ip = ipaddress.ip_address(address)
            # 0.0.0.0/0.0.0.0 and 127.0.0.0/255.0.0.0: netmasks of ACLs, not addresses.
            if address in ("0.0.0.0", "255.0.0.0", "127.0.0.0"):  # noqa: S104
                continue
            assert ip in STACK_ADDRESSES, address


def test_every_container_uses_host_networking_and_a_local_image() -> None:
    for name, service in compose()["services"].items():
        assert service["network_mode"] == "host", name
        assert service["image"].startswith("graam-pbx/"), name


def test_prometheus_scrapes_what_the_containers_serve() -> None:
    services = compose()["services"]
    served = set()
    for name, service in services.items():
        env = service.get("environment") or {}
        if name.startswith(("api-", "worker-")):
            served.add(f"{env['GRAAM_API_HOST']}:{env['GRAAM_API_PORT']}")
        if name.startswith("asterisk-"):
            served.add(f"{env['NODE_ADDRESS']}:8088")
    scrape = yaml.safe_load((DOCKER / "prometheus/prometheus.yml").read_text())
    targets = {
        target
        for job in scrape["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    assert served <= targets
    roles = {
        name: services[name]["command"][-1] for name in ("api-1", "api-2", "worker-1", "worker-2")
    }
    assert roles == {"api-1": "api", "api-2": "api", "worker-1": "worker", "worker-2": "worker"}


def test_no_secret_is_written_into_the_compose_file() -> None:
    text = (DOCKER / "compose.yml").read_text()
    for variable in ("GRAAM_SECRET_KEY", "GRAAM_AMI_SECRET", "GRAAM_METRICS_TOKEN", "AMI_SECRET"):
        for value in re.findall(rf"{variable}: (\S+)", text):
            assert value.startswith("${"), f"{variable} has a literal value"
    assert "postgres:${POSTGRES_PASSWORD}@" in text


def test_grafana_provisioning_points_at_the_stack() -> None:
    provisioning = DOCKER / "grafana/provisioning"
    sources = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert source["url"] == "http://127.0.0.147:9090"
    uids = {
        target["datasource"]["uid"]
        for _board, panel_targets in _panel_targets()
        for target in panel_targets
    }
    assert uids == {source["uid"]}
    providers = yaml.safe_load((provisioning / "dashboards/graam.yml").read_text())
    (provider,) = providers["providers"]
    dockerfile = (DOCKER / "grafana/Dockerfile").read_text()
    assert f"COPY dashboards/ {provider['options']['path']}/" in dockerfile


def _panel_targets() -> list[tuple[str, list[dict[str, Any]]]]:
    return [
        (path.name, panel["targets"])
        for path in sorted((DOCKER / "grafana/dashboards").glob("*.json"))
        for panel in json.loads(path.read_text())["panels"]
    ]


def test_the_console_page_is_made_from_the_dashboards() -> None:
    """Prometheus serves the dashboards where Grafana cannot be built (docker/README.md): its
    console page is the dashboards' current rendering, and shows every panel's expression."""
    spec = importlib.util.spec_from_file_location("consoles", DOCKER / "prometheus/consoles.py")
    assert spec is not None and spec.loader is not None
    consoles = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(consoles)
    page = (DOCKER / "prometheus/consoles/graam.html").read_text()
    assert page == consoles.render(), "run: python docker/prometheus/consoles.py"
    for _, expr in dashboard_expressions():
        assert f"{{{{ range query `{expr}` }}}}" in page
    assert "COPY docker/prometheus/consoles/" in (DOCKER / "prometheus/Dockerfile").read_text()
