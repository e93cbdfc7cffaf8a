"""GET /metrics in-process (one process, no CO_METRICS_DIR): who may scrape it, and exact counter
deltas for what the API did — verdicts once each (the sweeper's `error` endings too), task
outcomes, requests by route pattern — with nothing of a learner or a hidden test in any label.
The multiprocess run under gunicorn and a Celery worker is deploy/smoke.py's `metrics` check."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from co_project.metrics import exported_metric_names, route_label
from submissions import services
from submissions.models import Submission, SubmissionStatus
from tests.servers import FakeEvalService
from tests.tracks.factories import HIDDEN_MARKERS, pack_document, publish
from tests.tutoring.conftest import parse_sse

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "scrape-secret-0123456789"
SHOUT = "def shout(text):\n    return text.upper()\n"
PASSED = {"status": "passed", "visible": {"passed": 3, "total": 3}, "hidden": {"passed": 4, "total": 4, "categories": []}}
FAILED = {"status": "failed", "visible": {"passed": 1, "total": 3}, "hidden": {"passed": 0, "total": 4, "categories": ["x"]}}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def eval_service(settings) -> Iterator[FakeEvalService]:
    with FakeEvalService(answer=dict(PASSED)) as service:
        settings.CO_EVAL_BASE = service.url
        settings.CO_EVAL_RETRIES = 0
        settings.CO_EVAL_TIMEOUT_SECONDS = 5
        yield service


@pytest.fixture
def published() -> None:
    publish(pack_document())


@pytest.fixture
def token(settings) -> str:
    settings.CO_METRICS_TOKEN = TOKEN
    return TOKEN


def scrape_text() -> str:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return response.content.decode()


def scrape() -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(scrape_text())
        for sample in family.samples
    }


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def changed(before: Samples, after: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Every series of `name` that moved, with how much."""
    keys = {key for key in (*before, *after) if key[0] == name}
    moved = {key[1]: after.get(key, 0.0) - before.get(key, 0.0) for key in keys}
    return {labels: value for labels, value in moved.items() if value}


def submit(api, code: str = SHOUT) -> dict:
    body = {"problem_id": "shout", "subject": "coding", "payload": {"language": "python", "code": code}}
    response = api.post("/v1/submissions", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


# --- who may scrape ------------------------------------------------------------------------------


def test_without_a_token_there_is_no_metrics_route(settings) -> None:
    settings.CO_METRICS_TOKEN = None
    response = Client().get("/metrics")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_scrape_needs_the_bearer_token(token) -> None:
    client = Client()
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": f"Basic {TOKEN}"}):
        response = client.get("/metrics", **headers)
        assert response.status_code == 401, headers
        assert response.json()["error"]["code"] == "not_authenticated"
        assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
        assert "co_http_requests_total" not in response.content.decode()
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405
    assert "# TYPE co_verdicts_total counter" in scrape_text()


def test_metrics_is_outside_the_public_api_schema(token, api) -> None:
    schema = api.get("/v1/schema", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    assert "/metrics" not in schema.content.decode()


def test_the_scrape_is_not_throttled(token, settings) -> None:
    settings.CO_RATE_LIMIT = "1/min"
    assert [Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code for _ in range(3)] == [200] * 3


# --- what is counted --------------------------------------------------------------------------


def test_each_verdict_counts_once_with_its_task_and_requests(token, api, eval_service, published) -> None:
    submit(api)  # opens the practice session first: its requests are not part of the deltas
    before = scrape()
    ids = [submit(api)["id"], submit(api)["id"]]
    eval_service.answer = dict(FAILED)
    ids.append(submit(api)["id"])
    assert api.get(f"/v1/submissions/{ids[0]}").status_code == 200
    assert Client().get("/v1/no-such-route").status_code == 404
    after = scrape()

    assert changed(before, after, "co_verdicts_total") == {
        frozenset({"subject": "coding", "language": "python", "status": "passed"}.items()): 2,
        frozenset({"subject": "coding", "language": "python", "status": "failed"}.items()): 1,
    }
    coding_python = {"subject": "coding", "language": "python"}
    assert delta(before, after, "co_time_to_verdict_seconds_count", **coding_python) == 3
    assert delta(before, after, "co_queue_wait_seconds_count", **coding_python) == 3
    assert changed(before, after, "co_celery_tasks_total") == {
        frozenset({"task": "submissions.evaluate", "outcome": "success"}.items()): 3
    }
    assert changed(before, after, "co_http_requests_total") == {
        frozenset({"method": "POST", "route": "/v1/submissions", "status": "200"}.items()): 3,
        frozenset({"method": "GET", "route": "/v1/submissions/<submission_id>", "status": "200"}.items()): 1,
        frozenset({"method": "GET", "route": "unmatched", "status": "404"}.items()): 1,
        # the first scrape itself (the second is answered before it is counted)
        frozenset({"method": "GET", "route": "/metrics", "status": "200"}.items()): 1,
    }
    assert delta(before, after, "co_http_request_duration_seconds_count", method="POST", route="/v1/submissions") == 3
    text = scrape_text()
    assert not [submission_id for submission_id in ids if submission_id in text]  # a route, never a path


def test_the_sweepers_error_ending_counts_once(token, eval_service, published, settings) -> None:
    submission, _ = services.submission_create(
        learner_id="alice", problem_ref="shout", subject="coding", payload={"language": "python", "code": SHOUT}
    )
    old = timezone.now() - timedelta(seconds=settings.CO_SUBMISSION_DEADLINE_SECONDS + 1)
    Submission.objects.filter(id=submission.id).update(status=SubmissionStatus.RUNNING, created_at=old, claim_token=None)
    before = scrape()
    assert services.submission_sweep() == {"requeued": 0, "expired": 1}
    assert services.submission_sweep() == {"requeued": 0, "expired": 0}
    after = scrape()
    assert changed(before, after, "co_verdicts_total") == {
        frozenset({"subject": "coding", "language": "python", "status": "error"}.items()): 1
    }
    assert delta(before, after, "co_time_to_verdict_seconds_bucket", subject="coding", language="python", le="30.0") == 0
    assert delta(before, after, "co_time_to_verdict_seconds_bucket", subject="coding", language="python", le="+Inf") == 1


def test_an_embedded_verdict_reports_its_isolation_and_no_hidden_data(token, api, published) -> None:
    before = scrape()
    verdict = submit(api)
    after = scrape()
    assert verdict["status"] == "passed"
    assert after[("co_sandbox_isolation", frozenset({("level", verdict["isolation"])}))] == 1
    assert changed(before, after, "co_sandbox_start_failures_total") == {}
    text = scrape_text()
    assert not [marker for marker in HIDDEN_MARKERS if marker.lower() in text.lower()]
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert "alice" not in sample.labels.values()


def test_a_tutor_stream_is_open_while_it_streams_and_times_its_first_token(token, api, published, settings) -> None:
    settings.CO_TUTOR_BUILTIN_CHUNK_DELAY_SECONDS = 0
    settings.CO_TUTOR_BASE = None
    session = api.post("/v1/sessions", {"subject": "coding", "mode": "practice", "problem_id": "shout"}, format="json")
    started = api.post(
        "/v1/tutor/messages", {"session_id": session.json()["id"], "problem_id": "shout", "hint_level": 1}, format="json"
    ).json()
    before = scrape()
    response = Client().get(started["stream_url"].replace("http://testserver", ""))

    async def read_scraping_once() -> tuple[bytes, float]:
        body, open_streams = b"", None
        async for chunk in response.streaming_content:
            if open_streams is None:
                open_streams = (await sync_to_async(scrape)())[("co_tutor_open_streams", frozenset())]
            body += chunk
        return body, open_streams

    body, open_while_streaming = async_to_sync(read_scraping_once)()
    after = scrape()
    assert [event for event, _ in parse_sse(body)][-1] == "done"
    assert open_while_streaming == before[("co_tutor_open_streams", frozenset())] + 1
    assert after[("co_tutor_open_streams", frozenset())] == before[("co_tutor_open_streams", frozenset())]
    assert delta(before, after, "co_tutor_time_to_first_token_seconds_count") == 1


def test_route_labels_are_patterns() -> None:
    assert route_label("v1/submissions/(?P<submission_id>[^/]+)$") == "/v1/submissions/<submission_id>"
    assert route_label("admin/tracks/problem/<path:object_id>/change/") == "/admin/tracks/problem/<object_id>/change/"
    assert route_label("v1/tutor/stream") == "/v1/tutor/stream"


def test_the_contract_names_are_exported() -> None:
    assert {
        "co_http_requests_total",
        "co_http_request_duration_seconds_bucket",
        "co_verdicts_total",
        "co_time_to_verdict_seconds_bucket",
        "co_time_to_verdict_seconds_count",
        "co_queue_wait_seconds_sum",
        "co_sandbox_start_failures_total",
        "co_sandbox_isolation",
        "co_tutor_open_streams",
        "co_tutor_time_to_first_token_seconds_bucket",
        "co_celery_tasks_total",
    } <= exported_metric_names()


# --- multiprocess mode: the files of a host's processes -------------------------------------------


def _in_process(directory: Path, code: str) -> str:
    """Run `code` in a fresh Python with CO_METRICS_DIR set, as a service's process would."""
    env = {**os.environ, "CO_METRICS_DIR": str(directory), "CO_ENV": "test"}
    env.pop("CO_METRICS_SERVICE", None)
    prelude = "import os\nfrom co_project import metrics\n"
    result = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)], env=env, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _scrape_of(directory: Path) -> Samples:
    text = _in_process(directory, "print(metrics.metrics_exposition()[0].decode())")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_processes_of_two_services_add_up_and_each_service_clears_only_its_own_files(tmp_path: Path) -> None:
    passed = ("co_verdicts_total", frozenset({"subject": "math", "language": "none", "status": "passed"}.items()))
    evaluated = ("co_celery_tasks_total", frozenset({"task": "submissions.evaluate", "outcome": "success"}.items()))
    streams = ("co_tutor_open_streams", frozenset())
    web = """
        metrics.metrics_service_start("web")
        metrics.verdict_observe(subject="math", language="", status="passed", seconds_to_verdict=0.3)
        metrics.TUTOR_OPEN_STREAMS.inc()
        print(os.getpid())
    """
    first_web, second_web = _in_process(tmp_path, web), _in_process(tmp_path, web)
    worker = """
        metrics.metrics_service_start("worker")
        metrics.celery_task_observe(task="submissions.evaluate", outcome="success")
    """
    _in_process(tmp_path, worker)
    scraped = _scrape_of(tmp_path)
    assert (scraped[passed], scraped[evaluated], scraped[streams]) == (1, 1, 1)  # the second web start cleared the first's
    assert sorted(path.name for path in tmp_path.glob("*_web-*.db")) == sorted(
        [
            f"counter_web-{second_web}.db",
            f"gauge_livesum_web-{second_web}.db",
            # The study-path gauges without labels (co_review_backlog…) have their file from the start.
            f"gauge_mostrecent_web-{second_web}.db",
            f"histogram_web-{second_web}.db",
        ]
    )
    assert not list(tmp_path.glob(f"*_web-{first_web}.db"))

    _in_process(tmp_path, f'metrics.metrics_process_dead({second_web}, "web")')  # gunicorn's child_exit
    _in_process(tmp_path, worker)  # the worker restarts: its old files go, the web's stay
    scraped = _scrape_of(tmp_path)
    assert (scraped[passed], scraped[evaluated], scraped[streams]) == (1, 1, 0)


def test_two_workers_of_one_host_each_clear_only_their_own_files(tmp_path: Path) -> None:
    evaluated = ("co_celery_tasks_total", frozenset({"task": "submissions.evaluate", "outcome": "success"}.items()))
    worker = """
        metrics.metrics_service_start(metrics.worker_service("{node}"))
        metrics.celery_task_observe(task="submissions.evaluate", outcome="success")
    """
    _in_process(tmp_path, worker.format(node="python@co-worker-1"))
    _in_process(tmp_path, worker.format(node="javascript@co-worker-1"))
    assert _scrape_of(tmp_path)[evaluated] == 2  # the second worker's start kept the first's counts
    _in_process(tmp_path, worker.format(node="python@co-worker-1"))  # a restart replaces its own
    assert _scrape_of(tmp_path)[evaluated] == 2


def test_production_warns_when_metrics_are_on_without_the_multiprocess_directory(settings) -> None:
    from co_project.checks import METRICS_DIR_MISSING, metrics_directory_check

    settings.IS_PRODUCTION, settings.CO_METRICS_TOKEN = True, TOKEN
    assert [message.id for message in metrics_directory_check()] == [METRICS_DIR_MISSING]  # this process has none
    settings.CO_METRICS_TOKEN = None
    assert metrics_directory_check() == []


def test_a_worker_host_serves_the_scrape_on_its_own_bind(tmp_path: Path) -> None:
    """CO_METRICS_WORKER_BIND: what the Celery worker's main process does on `worker_ready`,
    here in a process of a worker service with the multiprocess directory."""
    port = 18101
    scraped = _in_process(
        tmp_path,
        f"""
        import urllib.request
        metrics.metrics_service_start("worker")
        metrics.celery_task_observe(task="submissions.evaluate", outcome="failure")
        server = metrics.metrics_worker_serve("127.0.0.1:{port}")
        print(urllib.request.urlopen("http://127.0.0.1:{port}/metrics", timeout=10).read().decode())
        server.shutdown()
        """,
    )
    assert 'co_celery_tasks_total{outcome="failure",task="submissions.evaluate"} 1.0' in scraped
    assert _in_process(tmp_path, 'print(metrics.metrics_worker_serve(""))') == "None"


def test_task_outcomes_are_counted_by_task_name(token) -> None:
    from co_project.celery import app

    @app.task(name="tests.metrics.divide")
    def divide(numerator: int, denominator: int) -> float:
        return numerator / denominator

    @app.task(name="tests.metrics.flaky", bind=True, max_retries=1)
    def flaky(self) -> int:
        if not self.request.retries:
            raise self.retry(countdown=0)
        return self.request.retries

    before = scrape()
    assert divide.apply(args=(1, 2)).get() == 0.5
    assert isinstance(divide.apply(args=(1, 0), throw=False).result, ZeroDivisionError)
    flaky.apply(throw=False)  # retried once (run again at once, eagerly), then succeeds
    after = scrape()
    assert changed(before, after, "co_celery_tasks_total") == {
        frozenset({"task": "tests.metrics.divide", "outcome": "success"}.items()): 1,
        frozenset({"task": "tests.metrics.divide", "outcome": "failure"}.items()): 1,
        frozenset({"task": "tests.metrics.flaky", "outcome": "retry"}.items()): 1,
        frozenset({"task": "tests.metrics.flaky", "outcome": "success"}.items()): 1,
    }


def test_a_sandbox_that_cannot_start_is_counted_with_the_error_verdict(token, api, published, settings) -> None:
    settings.IS_PRODUCTION, settings.CO_SANDBOX_ISOLATION = True, "none"  # production refuses to run code bare
    before = scrape()
    verdict = submit(api)
    after = scrape()
    assert (verdict["status"], verdict["error"]["kind"]) == ("error", "sandbox")
    assert changed(before, after, "co_sandbox_start_failures_total") == {frozenset({("language", "python")}): 1}
    assert changed(before, after, "co_verdicts_total") == {
        frozenset({"subject": "coding", "language": "python", "status": "error"}.items()): 1
    }
