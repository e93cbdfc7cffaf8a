"""bench/slis.py: the SLIs from two /metrics scrapes, exactly as the recording rules of
deploy/prometheus/alerts.yml compute them from the same counters (checked against promtool)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from bench.slis import Sli, counters, slis
from co_project.metrics import VERDICT_BUCKETS
from tests.promtool import run_promtool

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


class Service:
    """The contract's SLI metrics in a registry of their own, scraped as the service is."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("co_http_requests_total", "requests", ["method", "route", "status"], registry=self.registry)
        self.verdicts = Counter("co_verdicts_total", "verdicts", ["subject", "language", "status"], registry=self.registry)
        self.time_to_verdict = Histogram(
            "co_time_to_verdict_seconds", "latency", ["subject", "language"], buckets=VERDICT_BUCKETS, registry=self.registry
        )

    def verdict(self, language: str, status: str, seconds: float, count: int = 1) -> None:
        subject = "math" if language == "none" else "coding"
        self.verdicts.labels(subject, language, status).inc(count)
        for _ in range(count):
            self.time_to_verdict.labels(subject, language).observe(seconds)

    def request(self, method: str, route: str, status: str, count: int = 1) -> None:
        self.requests.labels(method, route, status).inc(count)

    def scrape(self) -> str:
        return generate_latest(self.registry).decode()


def _figures(sli: Sli) -> tuple[str, float, float]:
    return sli.name, sli.bad, sli.total


def test_slis_between_two_scrapes() -> None:
    service = Service()
    service.verdict("python", "passed", 0.5, 10)
    service.verdict("python", "error", 3.0)
    service.request("GET", "/v1/tracks", "200", 20)
    service.request("GET", "/health", "503", 3)
    before = service.scrape()

    service.verdict("python", "passed", 0.3, 100)
    service.verdict("javascript", "failed", 2.0, 20)  # on the bound: within 2 s
    service.verdict("none", "error", 5.0, 4)  # a series the first scrape did not have
    service.verdict("python", "timeout", 30.0, 6)
    service.request("GET", "/v1/tracks", "200", 50)
    service.request("POST", "/v1/submissions", "202", 40)
    service.request("POST", "/v1/submissions", "503", 2)
    service.request("GET", "/v1/tracks", "429", 8)  # answered, not a failure
    service.request("GET", "/health", "503", 10)  # not /v1/
    service.request("GET", "unmatched", "404", 5)  # not /v1/
    after = service.scrape()

    latency, errors, availability = slis(before, after, window_seconds=60)
    assert [_figures(sli) for sli in (latency, errors, availability)] == [
        ("verdict latency <= 2 s", 10, 130),
        ("verdicts not error", 4, 130),
        ("/v1/ availability", 2, 100),
    ]
    assert (latency.error_ratio, latency.burn_rate) == (10 / 130, 10 / 130 / (1 - 0.99))
    assert (errors.good_ratio, availability.burn_rate) == (1 - 4 / 130, 0.02 / (1 - 0.999))
    assert availability.events_per_second == 100 / 60
    assert availability.line() == "/v1/ availability         98.000% good of 100 (1.7/s), SLO 99.9%, burn 20.00x"


def test_a_reset_counter_counts_from_zero_and_an_idle_window_has_no_ratio() -> None:
    before = '# TYPE co_verdicts counter\nco_verdicts_total{subject="coding",language="python",status="passed"} 50.0\n'
    after = (
        '# TYPE co_verdicts counter\nco_verdicts_total{subject="coding",language="python",status="passed"} 6.0\n'
        'co_verdicts_total{subject="coding",language="python",status="error"} 1.0\n'
    )
    latency, errors, availability = slis(before, after, window_seconds=15)
    assert _figures(errors) == ("verdicts not error", 1, 7)
    assert (latency.error_ratio, availability.error_ratio, availability.burn_rate) == (None, None, None)
    assert availability.line() == "/v1/ availability        no events in 15 s"


def _linear(start: float, end: float) -> str:
    """Six minutes at `start`, then five steps to `end`: a 5m window at minute 10 spans the rise."""
    steps = [start + (end - start) * step / 5 for step in range(1, 5)]
    return " ".join(repr(value) for value in [start] * 6 + steps + [end])


def _selector(name: str, labels: frozenset[tuple[str, str]]) -> str:
    matchers = ",".join(f'{key}="{value}"' for key, value in sorted(labels))
    return f"{name}{{{matchers}}}"


def test_the_recording_rules_compute_the_same_ratios(tmp_path: Path) -> None:
    """The 5-minute recording rules, evaluated by promtool on the two scrapes' counters, give what
    bench/slis.py gives (the counts are chosen so every rate and ratio is exact in binary)."""
    service = Service()
    for language in ("python", "javascript"):
        service.verdict(language, "passed", 0.2, 3)
    service.request("GET", "/v1/tracks", "200", 7)
    for method, route, status in [
        ("POST", "/v1/submissions", "202"),
        ("POST", "/v1/submissions", "503"),
        ("GET", "/v1/tracks", "429"),
        ("GET", "/health", "503"),
    ]:
        service.request(method, route, status)
    service.verdict("python", "timeout", 40.0)
    service.verdict("javascript", "failed", 0.1)
    service.verdict("javascript", "error", 0.1)
    before = service.scrape()

    service.verdict("python", "passed", 0.4, 1125)
    service.verdict("python", "timeout", 40.0, 75)
    service.verdict("javascript", "failed", 1.0, 825)
    service.verdict("javascript", "failed", 3.0, 300)
    service.verdict("javascript", "error", 1.5, 75)
    service.request("GET", "/v1/tracks", "200", 2100)
    service.request("POST", "/v1/submissions", "202", 2100)
    service.request("POST", "/v1/submissions", "503", 300)
    service.request("GET", "/v1/tracks", "429", 300)
    service.request("GET", "/health", "503", 600)
    after = service.scrape()

    expected = {sli.name: sli.error_ratio for sli in slis(before, after, window_seconds=300)}
    assert expected == {"verdict latency <= 2 s": 375 / 2400, "verdicts not error": 0.03125, "/v1/ availability": 0.0625}

    earlier, later = counters(before), counters(after)
    series = [
        {
            "series": _selector(name, labels),
            "values": _linear(earlier[(name, labels)], value),
        }
        for (name, labels), value in sorted(later.items(), key=str)
        if not name.endswith("_created")
    ]
    rules = {
        "co:verdicts_slow:ratio_rate5m": expected["verdict latency <= 2 s"],
        "co:verdicts_internal_error:ratio_rate5m": expected["verdicts not error"],
        "co:v1_requests_5xx:ratio_rate5m": expected["/v1/ availability"],
    }
    unit_test = {
        "rule_files": [str(PROMETHEUS / "alerts.yml")],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {"expr": rule, "eval_time": "10m", "exp_samples": [{"labels": rule, "value": value}]}
                    for rule, value in rules.items()
                ],
            }
        ],
    }
    (tmp_path / "slis_test.yml").write_text(yaml.safe_dump(unit_test))
    result = run_promtool("test", "rules", "slis_test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("bucket", ["2", "2.00"])
def test_only_the_bucket_bound_prometheus_client_writes_counts_as_fast(bucket: str) -> None:
    scrape = (
        "# TYPE co_time_to_verdict_seconds histogram\n"
        f'co_time_to_verdict_seconds_bucket{{subject="coding",language="python",le="{bucket}"}} 5.0\n'
        'co_time_to_verdict_seconds_count{subject="coding",language="python"} 5.0\n'
    )
    latency = slis("", scrape, window_seconds=15)[0]
    assert _figures(latency) == ("verdict latency <= 2 s", 5, 5)
