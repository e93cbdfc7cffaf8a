"""Prometheus metrics (`GET /metrics`): the names and labels every dashboard and alert rule uses.

Production runs several processes per host (gunicorn's uvicorn workers, the Celery worker's
prefork pool), so with `CO_METRICS_DIR` set every process writes its values to memory-mapped
files in that directory (prometheus_client's multiprocess mode) and a scrape of any web worker
adds up the files of all of them — the worker's task outcomes and verdicts included, as the web
and the worker of one host share the directory. Each file is named by the service that wrote it
and the process id (`counter_web-1234.db`), so the gunicorn master and the Celery worker can each
empty their own service's files when they start, as prometheus_client requires, without wiping
the other's live files. Without `CO_METRICS_DIR` (development, tests) each process keeps its own
values in memory.

Labels carry only names from the code (routes, subjects, languages, statuses, task names):
never a learner id, a problem or anything of a test.
"""

from __future__ import annotations

import functools
import glob
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Multiprocess mode is chosen when prometheus_client is first imported: the directory must be in
# the environment before that, so it is set here, before the import below.
METRICS_DIR = os.environ.get("CO_METRICS_DIR", "")
if METRICS_DIR:
    Path(METRICS_DIR).mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = METRICS_DIR

from prometheus_client import (  # noqa: E402 - after the multiprocess directory is chosen
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    start_http_server,
    values,
)

# The service this process belongs to (`web`, `worker`), part of its files' names; "other" for
# processes no service started (beat, manage.py commands) until one says otherwise.
SERVICE_ENVIRONMENT = "CO_METRICS_SERVICE"
_service = os.environ.get(SERVICE_ENVIRONMENT, "other")


def _process_identity() -> str:
    return f"{_service}-{os.getpid()}"


if METRICS_DIR:
    # prometheus_client's per-process files, named by service and pid (see the module docstring).
    values.ValueClass = values.MultiProcessValue(process_identifier=_process_identity)
disable_created_metrics()  # `_created` series: nothing here reads them, and multiprocess mode has none

logger = logging.getLogger("co.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "co_http_requests_total", "HTTP requests by route pattern and status.", ["method", "route", "status"], registry=REGISTRY
)
HTTP_REQUEST_DURATION = Histogram(
    "co_http_request_duration_seconds",
    "Time to the response (for a stream: to its headers) by route pattern.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
VERDICTS = Counter(
    "co_verdicts_total", "Final verdicts by subject, language and status.", ["subject", "language", "status"], registry=REGISTRY
)
VERDICT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
TIME_TO_VERDICT = Histogram(
    "co_time_to_verdict_seconds",
    "From a submission's creation to its final verdict.",
    ["subject", "language"],
    buckets=VERDICT_BUCKETS,
    registry=REGISTRY,
)
QUEUE_WAIT = Histogram(
    "co_queue_wait_seconds",
    "From a submission's enqueue to a worker claiming it.",
    ["subject", "language"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0),
    registry=REGISTRY,
)
SANDBOX_START_FAILURES = Counter(
    "co_sandbox_start_failures_total",
    "Code runs the embedded sandbox could not carry out (no isolation, or it did not start).",
    ["language"],
    registry=REGISTRY,
)
# 1 for each level a grading process used; `max` across processes, so a level any process of the
# host uses shows.
SANDBOX_ISOLATION = Gauge(
    "co_sandbox_isolation", "Sandbox isolation level in use (1).", ["level"], multiprocess_mode="max", registry=REGISTRY
)
# Summed over live processes: a web worker that dies takes its streams with it (gunicorn's
# `child_exit` hook drops its file).
TUTOR_OPEN_STREAMS = Gauge("co_tutor_open_streams", "Tutor SSE streams open now.", multiprocess_mode="livesum", registry=REGISTRY)
TUTOR_TIME_TO_FIRST_TOKEN = Histogram(
    "co_tutor_time_to_first_token_seconds",
    "From a tutor stream's start to its first answer token.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0),
    registry=REGISTRY,
)
CELERY_TASKS = Counter(
    "co_celery_tasks_total", "Celery task outcomes, counted by the worker.", ["task", "outcome"], registry=REGISTRY
)

# Study paths. Completions count each task's verdict once, when it commits.
STUDY_TASK_COMPLETIONS = Counter(
    "co_study_task_completions_total",
    "Study tasks that got their verdict, by kind and outcome (passed, failed, skipped, expired).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
# Whole-deployment figures, counted by a periodic job (study_paths.learning_gauges_refresh) and
# kept in the cache; every scrape reports the latest count, so every process and host reports the
# same value: aggregate them with max(), never sum(). `mostrecent`: the last value any process of
# the host set wins (an older process's stale value does not).
STUDY_TASKS = Gauge(
    "co_study_tasks",
    "Open study tasks of active paths by status (pending, in_progress, submitted).",
    ["status"],
    multiprocess_mode="mostrecent",
    registry=REGISTRY,
)
REVIEW_BACKLOG = Gauge(
    "co_review_backlog", "Review items due now and not reviewed yet.", multiprocess_mode="mostrecent", registry=REGISTRY
)
LEARNING_GAUGES_UPDATED = Gauge(
    "co_learning_gauges_updated_timestamp_seconds",
    "When co_study_tasks and co_review_backlog were last counted (Unix time).",
    multiprocess_mode="mostrecent",
    registry=REGISTRY,
)
EXPORT_DURATION = Histogram(
    "co_export_duration_seconds",
    "Time to stream a study-task export to its end, by format.",
    ["format"],
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0),
    registry=REGISTRY,
)


# --- recording ---------------------------------------------------------------------------------

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REGEX_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
_CONVERTER = re.compile(r"<\w+:(\w+)>")


@functools.lru_cache(maxsize=512)
def route_label(pattern: str) -> str:
    """`v1/submissions/(?P<submission_id>[^/]+)$` → `/v1/submissions/<submission_id>`: the URL
    pattern a request matched, never its path (ids would make a series per object)."""
    route = _CONVERTER.sub(r"<\1>", _REGEX_GROUP.sub(r"<\1>", pattern))
    return "/" + route.replace("^", "").replace("$", "").replace("\\", "")


def http_request_observe(request: Any, status: int, seconds: float) -> None:
    """One answered request (RequestMetricsMiddleware). A request no URL pattern matched is
    `unmatched` (404s, redirects, static files)."""
    match = getattr(request, "resolver_match", None)
    route = route_label(match.route) if match is not None and match.route else "unmatched"
    method = request.method if request.method in _METHODS else "other"
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_REQUEST_DURATION.labels(method, route).observe(seconds)


def verdict_observe(*, subject: str, language: str, status: str, seconds_to_verdict: float) -> None:
    """One final verdict (call once it is committed)."""
    language = language or "none"
    VERDICTS.labels(subject, language, status).inc()
    TIME_TO_VERDICT.labels(subject, language).observe(max(0.0, seconds_to_verdict))


def queue_wait_observe(*, subject: str, language: str, seconds: float) -> None:
    QUEUE_WAIT.labels(subject, language or "none").observe(max(0.0, seconds))


def sandbox_observe(*, language: str, isolation: str, start_failed: bool) -> None:
    """What a code verdict says about the sandbox: the level it ran under, or that it could not run."""
    if isolation and isolation != "remote":
        SANDBOX_ISOLATION.labels(isolation).set(1)
    if start_failed:
        SANDBOX_START_FAILURES.labels(language or "none").inc()


def celery_task_observe(*, task: str, outcome: str) -> None:
    CELERY_TASKS.labels(task, outcome).inc()


def study_task_completion_observe(*, kind: str, outcome: str, count: int = 1) -> None:
    """Tasks that got their verdict (call once it is committed)."""
    STUDY_TASK_COMPLETIONS.labels(kind, outcome).inc(count)


def export_duration_observe(*, export_format: str, seconds: float) -> None:
    """One export streamed to its end (json, csv, revlog): call when the last chunk is sent."""
    EXPORT_DURATION.labels(export_format).observe(max(0.0, seconds))


def learning_gauges_set(*, tasks_by_status: dict[str, int], review_backlog: int, counted_at: float) -> None:
    """The latest whole-deployment counts (from the periodic job, or the cache at scrape time)."""
    for status, count in tasks_by_status.items():
        STUDY_TASKS.labels(status).set(count)
    REVIEW_BACKLOG.set(review_backlog)
    LEARNING_GAUGES_UPDATED.set(counted_at)


# Functions run before each scrape of /metrics, to bring gauges kept elsewhere (the cache) up to
# date in the scraping process. Apps register theirs in AppConfig.ready (co_project imports no app).
_scrape_hooks: list[Callable[[], None]] = []


def scrape_hook_register(hook: Callable[[], None]) -> None:
    if hook not in _scrape_hooks:
        _scrape_hooks.append(hook)


def _scrape_hooks_run() -> None:
    for hook in _scrape_hooks:
        try:
            hook()
        except Exception:  # a scrape still reports everything else (and the gauges' last values)
            logger.warning("a metrics scrape hook failed", exc_info=True)


# --- the directory's life (multiprocess mode) -----------------------------------------------------


def metrics_service_start(service: str) -> None:
    """Called by a service's parent process as it starts, before it forks (gunicorn's master,
    the Celery worker's main process): this process and its children write as `service`, and
    the files that service's previous run left are removed (with those of finished processes
    no service started). Nothing without `CO_METRICS_DIR`."""
    global _service
    _service = service
    os.environ[SERVICE_ENVIRONMENT] = service  # for gunicorn's workers, which import this module anew
    if not METRICS_DIR:
        return
    for path in glob.glob(os.path.join(METRICS_DIR, "*.db")):
        owner = Path(path).stem.rsplit("_", 1)[-1]
        name, _, pid = owner.rpartition("-")
        if name == service or (name.partition(".")[0] not in ("web", "worker") and not _process_alive(pid)):
            Path(path).unlink(missing_ok=True)


def worker_service(node_name: str) -> str:
    """The metrics service of a Celery worker, named by its node (`-n`): two workers of one host
    sharing the directory each clear only their own files when they start."""
    return "worker." + re.sub(r"[^A-Za-z0-9.@]", ".", node_name)


def metrics_process_dead(pid: int, service: str) -> None:
    """A child process ended: its live-summed gauges (open streams) no longer count."""
    if METRICS_DIR:
        multiprocess.mark_process_dead(f"{service}-{pid}", METRICS_DIR)


def _process_alive(pid: str) -> bool:
    return pid.isdigit() and Path(f"/proc/{pid}").exists()


# --- exposition ------------------------------------------------------------------------------------


def metrics_exposition() -> tuple[bytes, str]:
    """(body, content type) of a scrape: every process's values in multiprocess mode, else this one's."""
    _scrape_hooks_run()
    if METRICS_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=METRICS_DIR)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def metrics_worker_serve(bind: str | None = None) -> Any:
    """On a worker host without a web process, the Celery worker's main process serves the
    scrape itself on `CO_METRICS_WORKER_BIND` (`host:port`, unset: off) — a separate bind with no
    token, so an internal address only. Returns the server (None when off)."""
    bind = os.environ.get("CO_METRICS_WORKER_BIND", "") if bind is None else bind
    if not bind:
        return None
    host, _, port = bind.rpartition(":")
    registry = REGISTRY
    if METRICS_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=METRICS_DIR)
    server, _thread = start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1", registry=registry)
    return server


def exported_metric_names() -> frozenset[str]:
    """Every series name a scrape can carry (`_total`, `_bucket`, `_count`, `_sum` included), from
    the registry's metric families and prometheus_client's naming of their samples."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    return frozenset(family.name + suffix for family in REGISTRY.collect() for suffix in suffixes[family.type])
