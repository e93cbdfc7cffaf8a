"""The three SLIs of docs/slo.md from two `/metrics` scrapes, computed as the recording rules of
deploy/prometheus/alerts.yml compute them: bad events / all events, each the increase of counters
summed over every series the rule's selector matches, between the two scrapes.

    .venv/bin/python bench/slis.py before.txt after.txt --window 600

`bench/prod_stack.py`'s soak mode scrapes `/metrics` every 15 s and prints these for each window.
A series missing from the first scrape counts from zero (its first events happened between the
scrapes), and a counter that went down was reset by a restart and counts from zero again, as
Prometheus's `rate` counts it.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]
Counters = dict[tuple[str, Labels], float]
Selector = Callable[[dict[str, str]], bool]

# The 2 s bucket as prometheus_client writes its bound (a Go float), as the rules select it.
LATENCY_BUCKET = "2.0"


@dataclass(frozen=True)
class Sli:
    """One SLI over a window: `bad` of `total` events, against an objective such as 0.99."""

    name: str
    objective: float
    bad: float
    total: float
    window_seconds: float

    @property
    def error_ratio(self) -> float | None:
        """The rules' ratio; None for a window without events (0/0: no ratio, no alert)."""
        return self.bad / self.total if self.total else None

    @property
    def good_ratio(self) -> float | None:
        return None if self.error_ratio is None else 1 - self.error_ratio

    @property
    def burn_rate(self) -> float | None:
        """How many times faster than the objective allows the error budget is being spent."""
        return None if self.error_ratio is None else self.error_ratio / (1 - self.objective)

    @property
    def events_per_second(self) -> float:
        return self.total / self.window_seconds

    def line(self) -> str:
        if self.error_ratio is None:
            return f"{self.name:<24} no events in {self.window_seconds:.0f} s"
        return (
            f"{self.name:<24} {self.good_ratio:8.3%} good of {self.total:,.0f} ({self.events_per_second:.1f}/s), "
            f"SLO {self.objective:.1%}, burn {self.burn_rate:.2f}x"
        )


def counters(scrape: str) -> Counters:
    """Every sample of a Prometheus text scrape, by sample name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
    }


def increase(before: Counters, after: Counters, name: str, selector: Selector = lambda labels: True) -> float:
    """Sum over the series named `name` whose labels `selector` accepts of their increase."""
    total = 0.0
    for (sample_name, labels), value in after.items():
        if sample_name != name or not selector(dict(labels)):
            continue
        earlier = before.get((sample_name, labels), 0.0)
        total += value - earlier if value >= earlier else value
    return total


def _matches(label: str, pattern: str) -> Selector:
    """A PromQL `label=~"pattern"` matcher: the regular expression matches the whole value."""
    compiled = re.compile(pattern)
    return lambda labels: compiled.fullmatch(labels.get(label, "")) is not None


def _all(*selectors: Selector) -> Selector:
    return lambda labels: all(selector(labels) for selector in selectors)


def verdict_latency(before: Counters, after: Counters, window_seconds: float) -> Sli:
    """co:verdicts_slow:ratio: verdicts slower than 2 s among all verdicts."""
    total = increase(before, after, "co_time_to_verdict_seconds_count")
    fast = increase(before, after, "co_time_to_verdict_seconds_bucket", lambda labels: labels.get("le") == LATENCY_BUCKET)
    return Sli("verdict latency <= 2 s", 0.99, total - fast, total, window_seconds)


def verdict_internal_errors(before: Counters, after: Counters, window_seconds: float) -> Sli:
    """co:verdicts_internal_error:ratio: `error` verdicts among all verdicts."""
    errors = increase(before, after, "co_verdicts_total", lambda labels: labels.get("status") == "error")
    total = increase(before, after, "co_verdicts_total")
    return Sli("verdicts not error", 0.999, errors, total, window_seconds)


def api_availability(before: Counters, after: Counters, window_seconds: float) -> Sli:
    """co:v1_requests_5xx:ratio: /v1/ requests answered 5xx among all /v1/ requests."""
    v1 = _matches("route", "/v1/.*")
    failed = increase(before, after, "co_http_requests_total", _all(v1, _matches("status", "5..")))
    total = increase(before, after, "co_http_requests_total", v1)
    return Sli("/v1/ availability", 0.999, failed, total, window_seconds)


def slis(before: str, after: str, window_seconds: float) -> list[Sli]:
    """The three SLIs between two scrapes (text) taken `window_seconds` apart."""
    earlier, later = counters(before), counters(after)
    return [
        verdict_latency(earlier, later, window_seconds),
        verdict_internal_errors(earlier, later, window_seconds),
        api_availability(earlier, later, window_seconds),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path, help="the earlier scrape (Prometheus text format)")
    parser.add_argument("after", type=Path, help="the later scrape")
    parser.add_argument("--window", type=float, required=True, help="seconds between the two scrapes")
    args = parser.parse_args()
    for sli in slis(args.before.read_text(), args.after.read_text(), args.window):
        print(sli.line())


if __name__ == "__main__":
    main()
