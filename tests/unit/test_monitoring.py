"""deploy/monitoring is checked, not just shipped: the alert rules pass `promtool check rules` and
their unit tests (`promtool test rules`), and every metric the rules and the Grafana dashboard
query is one the services really expose on `/metrics` (and the README lists)."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy/monitoring"
SERVICES = ("invitations", "reviews", "scoring", "removals")
SCRAPE_METRICS = {"up"}
"""Series Prometheus itself adds to every scrape."""

PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "inf", "nan"}


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(
            "promtool is missing: run deploy/local/promtool.sh (as root; `make test` does) to "
            "install Debian's prometheus package, which provides it"
        )
    return promtool


def test_the_alert_rules_are_valid_prometheus_rules() -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", str(MONITORING / "alerts.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_alert_fires_when_it_should_and_only_then() -> None:
    result = subprocess.run(
        [_promtool(), "test", "rules", "alerts-test.yaml"],
        cwd=MONITORING,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_test() -> None:
    rules = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
    tests = yaml.safe_load((MONITORING / "alerts-test.yaml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    firing = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts - firing == set()


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (enough PromQL for our rules and panels)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values, legend strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\boffset\s+\S+", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*", expr):
        is_function = expr[match.end() :].lstrip().startswith("(")
        if not is_function and match.group() not in PROMQL_KEYWORDS:
            names.add(match.group())
    return names


def test_metric_names_are_read_from_promql() -> None:
    expr = (
        'sum by (service, le) (rate(a_bucket{route!~"/x|/y"}[5m])) / ignoring(le) b_total > 1e3 '
        "and c unless d offset 10m or time() - max without (instance) (e) > bool 0.5"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c", "d", "e"}


def _exposed() -> tuple[set[str], set[str]]:
    """(every series name the four services' `/metrics` can show, the metric families they
    define), from their apps built in-process; no stack is needed to list them."""
    from prometheus_client.parser import text_string_to_metric_families

    suffixes = {
        "counter": ("_total",),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("", "_sum", "_count"),
        "info": ("_info",),
    }
    names: set[str] = set()
    families: set[str] = set()

    async def scrape(app: Any) -> str:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            response = await client.get("/metrics")
        assert response.status_code == 200
        return response.text

    import asyncio

    for service in SERVICES:
        app = importlib.import_module(f"services.{service}.app").create_app()
        text = asyncio.run(scrape(app))
        for family in text_string_to_metric_families(text):
            families.add(family.name)
            names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
            names.update(sample.name for sample in family.samples)
    return names, families


def _queries() -> Iterator[tuple[str, str]]:
    rules = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            yield f"alert {rule['alert']}", rule["expr"]
    dashboard = json.loads((MONITORING / "dashboard.json").read_text())

    def walk(node: Any, where: str) -> Iterator[tuple[str, str]]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "expr" and isinstance(value, str):
                    yield where, value
                elif key == "query" and isinstance(value, str) and "label_values" in value:
                    yield where, re.sub(r"label_values\(([^,]+),.*\)", r"\1", value)
                else:
                    walk_where = f"panel {node['title']!r}" if "title" in node else where
                    yield from walk(value, walk_where)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item, where)

    yield from walk(dashboard, "dashboard")


def test_the_rules_and_the_dashboard_query_only_metrics_the_services_expose() -> None:
    exposed, _ = _exposed()
    queried = {(where, name) for where, expr in _queries() for name in metric_names(expr)}
    assert len({name for _, name in queried}) >= 15  # the parser found the metrics it should
    unknown = sorted((where, name) for where, name in queried if name not in exposed)
    assert [u for u in unknown if u[1] not in SCRAPE_METRICS] == []


def test_the_readme_lists_every_metric_of_ours() -> None:
    _, families = _exposed()
    readme = (ROOT / "README.md").read_text()
    # `_created` series are prometheus_client's timestamps of each counter and histogram
    ours = {n for n in families if n.startswith("ratings_") and not n.endswith("_created")}
    assert len(ours) >= 19
    assert sorted(name for name in ours if name not in readme) == []
