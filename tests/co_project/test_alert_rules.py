"""The Prometheus rules of docs/slo.md (deploy/prometheus/): promtool accepts them and their unit
tests pass (each alert fires on a synthetic burn and stays quiet on a healthy history), they and
their tests name only series and labels co_project/metrics.py exports, the 2 s latency bucket is
written the way prometheus_client writes it, and every alert's runbook is a section of
docs/slo.md.

promtool comes from Debian's `prometheus` package (`make ci-system-packages`); without it these
tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import yaml
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from co_project import metrics
from tests.promtool import run_promtool

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
RULE_TESTS = (PROMETHEUS / "alerts_test.yml", PROMETHEUS / "alerts_causes_test.yml")
SLO_DOC = ROOT / "docs" / "slo.md"
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"job", "instance"}
# Series of Prometheus itself, not of CO.
PROMETHEUS_SERIES = {"up"}


def _run(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    return run_promtool(*arguments, cwd=PROMETHEUS)


def _rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


def _selectors(expression: str) -> list[tuple[str, set[str]]]:
    """(series name, label names matched) of every vector selector in a PromQL expression."""
    found: list[tuple[str, set[str]]] = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append((node.name, {matcher.name for matcher in node.matchers.matchers}))

    promql_parser.walk(promql_parser.parse(expression), visit)
    return found


def _exported_labels() -> dict[str, set[str]]:
    """Series name → the label names its samples carry, from the metric objects of
    co_project/metrics.py (prometheus_client keeps a metric's label names in `_labelnames`)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    labels: dict[str, set[str]] = {}
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase):
            for suffix in suffixes[metric._type]:
                labels[metric._name + suffix] = set(metric._labelnames) | ({"le"} if suffix == "_bucket" else set())
    assert set(labels) == set(metrics.exported_metric_names())
    return labels


def _unknown(selectors: list[tuple[str, set[str]]], recorded: set[str]) -> list[str]:
    exported = _exported_labels()
    problems = []
    for name, labels in selectors:
        if name in recorded or name in PROMETHEUS_SERIES:
            continue
        if name not in exported:
            problems.append(f"{name} is not exported")
        elif labels - exported[name] - TARGET_LABELS:
            problems.append(f"{name} has no label {sorted(labels - exported[name] - TARGET_LABELS)}")
    return problems


def test_promtool_accepts_the_rules() -> None:
    result = _run("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


def test_promtool_accepts_the_scrape_config() -> None:
    # --syntax-only: the bearer token file exists only where Prometheus runs (a compose secret).
    result = _run("check", "config", "--syntax-only", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_fire_on_a_burn_and_stay_quiet_on_a_healthy_history() -> None:
    result = _run("test", "rules", *(path.name for path in RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS)


def test_every_alert_is_seen_firing_and_quiet_in_the_unit_tests() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for group in yaml.safe_load(path.read_text())["tests"]:
            for check in group.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {alert["alert"] for alert in _alerts()}
    assert (names - firing, names - quiet) == (set(), set())
    assert len(names) == 16


def test_a_failing_rule_fails_its_unit_test(tmp_path: Path) -> None:
    """The unit tests can fail: with the 2 s bucket written `le="2"` (not what prometheus_client
    writes) the latency SLI has no series, and the expected latency alerts do not fire."""
    (tmp_path / "alerts.yml").write_text(RULES.read_text().replace('le="2.0"', 'le="2"'))
    unit_tests = yaml.safe_load(RULE_TESTS[0].read_text())
    unit_tests["tests"] = [
        group for group in unit_tests["tests"] if group["input_series"][0]["series"].startswith("co_time_to_verdict_seconds")
    ]
    assert len(unit_tests["tests"]) == 4
    test_file = tmp_path / "alerts_test.yml"
    test_file.write_text(yaml.safe_dump(unit_tests))
    result = _run("test", "rules", test_file)
    assert result.returncode == 1
    assert re.findall(r"alertname: (\w+), time: (\S+),", result.stderr) == [
        ("VerdictLatencyBudgetBurn", "3d1h"),
        ("VerdictLatencyBudgetBurn", "3d5h"),
        ("VerdictLatencyBudgetSlowBurn", "3d18h"),
    ]


def test_rules_name_only_exported_series_and_labels() -> None:
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    selectors = [selector for rule in _rules() for selector in _selectors(rule["expr"])]
    assert {name for name, _ in selectors if name.startswith("co_")} == {
        "co_time_to_verdict_seconds_count",
        "co_time_to_verdict_seconds_bucket",
        "co_verdicts_total",
        "co_http_requests_total",
        "co_queue_wait_seconds_bucket",
        "co_sandbox_start_failures_total",
        "co_sandbox_isolation",
        "co_celery_tasks_total",
        "co_study_task_completions_total",
        "co_review_backlog",
        "co_learning_gauges_updated_timestamp_seconds",
    }
    assert _unknown(selectors, recorded) == []


def test_unit_tests_feed_only_series_and_labels_the_service_exports() -> None:
    selectors = [
        selector
        for path in RULE_TESTS
        for group in yaml.safe_load(path.read_text())["tests"]
        for series in group["input_series"]
        for selector in _selectors(series["series"])
    ]
    assert len(selectors) > 50
    assert _unknown(selectors, recorded=set()) == []


def test_the_check_sees_an_unknown_series_or_label() -> None:
    assert _unknown(_selectors('sum(rate(co_verdicts_totl{status="error"}[5m]))'), set()) == ["co_verdicts_totl is not exported"]
    assert _unknown(_selectors('sum(rate(co_verdicts_total{state="error"}[5m]))'), set()) == [
        "co_verdicts_total has no label ['state']"
    ]


def test_the_latency_rules_use_the_bucket_bound_prometheus_client_writes() -> None:
    """A histogram with the service's time-to-verdict buckets, written by prometheus_client:
    its 2 s bucket carries exactly the `le` the rules select."""
    registry = CollectorRegistry()
    histogram = Histogram("probe_seconds", "probe", buckets=metrics.VERDICT_BUCKETS, registry=registry)
    histogram.observe(1.5)
    (family,) = text_string_to_metric_families(generate_latest(registry).decode())
    bounds = {sample.labels["le"] for sample in family.samples if sample.name == "probe_seconds_bucket"}
    selected = {
        matcher.value for rule in _rules() for node in [promql_parser.parse(rule["expr"])] for matcher in _bucket_matchers(node)
    }
    assert selected == {"2.0"}
    assert selected <= bounds


def _bucket_matchers(node: object) -> list[Any]:
    found: list[Any] = []

    def visit(item: object) -> None:
        if isinstance(item, promql_parser.VectorSelector) and item.name == "co_time_to_verdict_seconds_bucket":
            found.extend(matcher for matcher in item.matchers.matchers if matcher.name == "le")

    promql_parser.walk(node, visit)
    return found


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_has_its_runbook_in_docs_slo() -> None:
    anchors = {_slug(line.lstrip("#")) for line in SLO_DOC.read_text().splitlines() if line.startswith("#")}
    runbooks = {alert["alert"]: alert["annotations"]["runbook"] for alert in _alerts()}
    assert {name: path for name, path in runbooks.items() if path != f"docs/slo.md#{name.lower()}"} == {}
    assert {name for name in runbooks if name.lower() not in anchors} == set()
