"""deploy/grafana/co.json queries only what the service exports: every PromQL expression parses,
and every series it names is one co_project/metrics.py's registry exports (with the `_total`,
`_bucket`, `_count`, `_sum` names prometheus_client gives its samples)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import promql_parser

from co_project.metrics import REGISTRY, exported_metric_names

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "co.json"
# Grafana fills these in before the query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def _expressions() -> list[str]:
    def panels(items: list[dict]) -> list[dict]:
        return [found for item in items for found in (item, *panels(item.get("panels", [])))]

    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in panels(dashboard["panels"]) for target in panel.get("targets", [])]


def _series_names(expression: str) -> set[str]:
    for variable, value in GRAFANA_VARIABLES.items():
        expression = expression.replace(variable, value)
    assert not re.search(r"\$\w|\$\{", expression), f"an unknown Grafana variable in {expression}"
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expression), visit)
    return names


def test_every_expression_parses_and_names_only_exported_series() -> None:
    expressions = _expressions()
    assert len(expressions) >= 20
    exported = exported_metric_names()
    unknown = {expression: sorted(_series_names(expression) - exported) for expression in expressions}
    assert {expression: names for expression, names in unknown.items() if names} == {}


def test_every_exported_metric_is_on_the_dashboard() -> None:
    shown = set().union(*(_series_names(expression) for expression in _expressions()))
    families = {family.name for family in REGISTRY.collect()}
    missing = {family for family in families if not any(name.startswith(family) for name in shown)}
    assert missing == set()


def test_the_check_sees_a_name_the_service_does_not_export() -> None:
    assert _series_names('sum(rate(co_verdicts_totl{status="error"}[$__rate_interval]))') == {"co_verdicts_totl"}
    assert "co_verdicts_totl" not in exported_metric_names()
    assert "co_verdicts" not in exported_metric_names()  # the family's name is not a series
