"""With a real Celery worker, Redis broker and PostgreSQL: a worker SIGKILLed mid-evaluation
still leaves exactly one verdict; an eval service that is down ends in `error`, never stuck
`pending`; a verdict not ready within the wait bound answers 202 and arrives later; a waiting
request wakes when the worker commits the verdict."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from co_project.models import TelemetryEvent
from deploy.stack import service_commands
from submissions import services
from submissions.models import Submission, SubmissionStatus
from submissions.services import wait
from tests.servers import FakeEvalService
from tests.tracks.factories import math_problem, pack_document, publish

pytestmark = [pytest.mark.requires_services, pytest.mark.real_worker, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]
STALE_SECONDS = 4


def _until(condition: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for: {message}")


class Worker:
    """A `celery worker` process (own process group) on the test database and the real broker,
    started with production's command line (deploy/stack.py), for the given queues (all by
    default), with a node name of its own as every worker on one host needs."""

    def __init__(self, env: dict[str, str], log: Path, concurrency: int = 1, queues: tuple[str, ...] = ()) -> None:
        self.log = log
        self.name = f"{log.stem}@{socket.gethostname()}"  # what `-n …@%h` becomes
        command = service_commands(
            worker_concurrency=concurrency, beat_schedule="", worker_queues=queues, worker_name=f"{log.stem}@%h"
        )["worker"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", *command, "--pool", "prefork", "--without-heartbeat", "--without-mingle", "--without-gossip"],
            cwd=REPO,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def start_worker(tmp_path: Path, settings) -> Iterator[Callable[..., Worker]]:
    from co_project.celery import app

    db = connection.settings_dict
    db_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    settings.CO_SUBMISSION_STALE_SECONDS = STALE_SECONDS
    app.control.purge()  # nothing left over from earlier runs
    workers: list[Worker] = []

    def start(concurrency: int = 1, queues: tuple[str, ...] = (), **extra_env: str) -> Worker:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CO_")},
            "CO_ENV": "test",
            "CO_DB_URL": db_url,
            "CO_REDIS_URL": settings.REDIS_URL,
            "CO_JWT_PUBLIC_KEY": "unused-by-the-worker",
            "CO_SUBMISSION_STALE_SECONDS": str(STALE_SECONDS),
            "CO_SANDBOX_UID": str(settings.CO_SANDBOX_UID),  # the range the tests look for sandboxes in
            "CO_CELERY_VISIBILITY_TIMEOUT": "3",
            **extra_env,
        }
        worker = Worker(env, tmp_path / f"worker-{len(workers)}.log", concurrency, queues)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
    app.control.purge()


def _submit(learner_client, **overrides) -> dict:
    body = {
        "problem_id": "shout",
        "subject": "coding",
        "payload": {"language": "python", "code": "def shout(text):\n    return text.upper()\n"},
        **overrides,
    }
    response = learner_client("alice").post("/v1/submissions", body, format="json")
    assert response.status_code in {200, 202}, response.content
    return response.json()


def _status(submission_id: str) -> str:
    return Submission.objects.get(id=submission_id).status


def test_verdict_not_ready_in_time_is_202_then_arrives(learner_client, start_worker, settings) -> None:
    publish(pack_document())
    with FakeEvalService(answer={"status": "passed"}, delay_seconds=1.5) as eval_service:
        settings.CO_SUBMISSION_WAIT_SECONDS = 0.2
        start_worker(CO_EVAL_BASE=eval_service.url)
        pending = _submit(learner_client)
        assert set(pending) == {"id", "status"} and pending["status"] in {"pending", "running"}
        client = learner_client("alice")
        assert client.get(f"/v1/submissions/{pending['id']}").status_code == 202
        _until(lambda: _status(pending["id"]) == SubmissionStatus.PASSED, 60, "the worker's verdict")
        final = client.get(f"/v1/submissions/{pending['id']}")
        assert final.status_code == 200 and final.json()["status"] == "passed"


def test_a_waiting_request_wakes_when_the_worker_commits_the_verdict(learner_client, start_worker, settings, monkeypatch) -> None:
    """The request blocks on the verdict's wake-up list rather than sleeping between polls: what
    ends its wait is the worker's announcement (a poll would end it after a wait that got none)."""
    publish(pack_document())
    arrivals: list[dict | None] = []
    verdict_await = wait.verdict_await

    def recorded(**kwargs) -> dict | None:
        arrivals.append(verdict_await(**kwargs))
        return arrivals[-1]

    monkeypatch.setattr(wait, "verdict_await", recorded)
    monkeypatch.setattr(wait, "WAIT_SLICE_SECONDS", 1.5)  # below the cache's 2 s socket timeout
    with FakeEvalService(answer={"status": "passed"}, delay_seconds=0.5) as eval_service:
        settings.CO_SUBMISSION_WAIT_SECONDS = 60
        start_worker(CO_EVAL_BASE=eval_service.url)
        body = _submit(learner_client)
    assert body["status"] == "passed"
    assert arrivals[-1] is not None and arrivals[-1]["status"] == "passed", arrivals
    assert {key: body[key] for key in arrivals[-1]["result"]} == arrivals[-1]["result"]


def test_worker_killed_mid_evaluation_still_gives_exactly_one_verdict(learner_client, start_worker, settings) -> None:
    publish(pack_document())
    with FakeEvalService(answer={"status": "passed"}, delay_seconds=30) as eval_service:
        settings.CO_SUBMISSION_WAIT_SECONDS = 0
        first = start_worker(CO_EVAL_BASE=eval_service.url)
        submission_id = _submit(learner_client)["id"]
        # The worker has claimed it and is mid-evaluation (waiting on the eval service).
        _until(lambda: eval_service.request_count() == 1, 60, "the first worker to call the eval service")
        assert _status(submission_id) == SubmissionStatus.RUNNING
        first.kill()

        eval_service.delay_seconds = 0
        start_worker(CO_EVAL_BASE=eval_service.url)
        time.sleep(STALE_SECONDS + 0.5)  # the dead worker's claim goes stale
        # Redis redelivers the unacknowledged task and the sweeper re-queues it: both reach the
        # new worker, and only one may grade.
        services.submission_sweep()
        _until(lambda: _status(submission_id) == SubmissionStatus.PASSED, 60, "the second worker's verdict")
        time.sleep(3)  # let any duplicate delivery arrive and be refused

    submission = Submission.objects.get(id=submission_id)
    assert submission.status == SubmissionStatus.PASSED
    assert submission.attempts == 2
    assert TelemetryEvent.objects.filter(event="attempt_submit", attrs__submission_id=submission_id).count() == 1
    assert eval_service.request_count() == 2


def test_eval_service_down_ends_in_error_never_pending(learner_client, start_worker, settings) -> None:
    publish(pack_document())
    eval_service = FakeEvalService().start()
    url = eval_service.url
    eval_service.stop()  # nothing listens there any more
    settings.CO_SUBMISSION_WAIT_SECONDS = 0
    start_worker(CO_EVAL_BASE=url, CO_EVAL_RETRIES="2", CO_EVAL_RETRY_BACKOFF_SECONDS="0.1")
    submission_id = _submit(learner_client)["id"]
    _until(lambda: _status(submission_id) == SubmissionStatus.ERROR, 60, "the error verdict")
    body = learner_client("alice").get(f"/v1/submissions/{submission_id}").json()
    assert body["status"] == "error"
    assert body["error"]["kind"] == "eval_service"
    assert "unreachable after 3 attempts (ConnectError)" in body["error"]["message"]


def test_worker_settings_match_the_web(settings) -> None:
    """The worker and web processes read the same broker from the environment."""
    assert settings.CELERY_BROKER_URL == settings.REDIS_URL
    assert not settings.CELERY_TASK_ALWAYS_EAGER


def _cmdline(pid: int) -> bytes:
    """The process's command line; empty once it has exited (a short-lived child may be gone
    between listing and reading)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _children(pid: int) -> list[int]:
    """Children of every thread of `pid` (sandboxes are started by the pool's refill thread)."""
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return children


def _sandbox_uids_under(pid: int, first_uid: int, pool: int) -> set[int]:
    """The sandbox uids of the processes descending from `pid` (each sandbox has a uid of its own)."""
    uids, stack = set(), _children(pid)
    while stack:
        child = stack.pop()
        stack += _children(child)
        try:
            status = Path(f"/proc/{child}/status").read_text()
        except OSError:
            continue
        uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
        if first_uid <= uid < first_uid + pool:
            uids.add(uid)
    return uids


def test_every_pool_process_pre_starts_its_sandboxes_before_its_first_task(start_worker, settings) -> None:
    """Celery's prefork children each warm up when they start (co_project/celery.py): with
    CO_SANDBOX_WARM=1 each holds two ready Python sandboxes (the fork helper keeps twice as many)
    and one JavaScript sandbox, before any submission arrives."""
    worker = start_worker(concurrency=2, CO_SANDBOX_WARM="1")
    first, pool = settings.CO_SANDBOX_UID, settings.CO_SANDBOX_UID_POOL

    def each_child_is_ready() -> bool:
        children = [pid for pid in _children(worker.process.pid) if b"celery" in _cmdline(pid)]
        return len(children) == 2 and all(len(_sandbox_uids_under(pid, first, pool)) == 3 for pid in children)

    _until(each_child_is_ready, 60, "two pool processes with three pre-started sandboxes each")


def _code_submission(learner_client, learner: str, language: str) -> tuple[str, str]:
    """(submission id, its code): a correct shout in `language` that names its learner, so an eval
    service's record says whose submission reached it."""
    code = {
        "python": f"def shout(text):\n    # {learner}\n    return text.upper()\n",
        "javascript": f"function shout(text) {{\n  // {learner}\n  return text.toUpperCase();\n}}\n",
    }[language]
    body = {"problem_id": "shout", "subject": "coding", "payload": {"language": language, "code": code}}
    response = learner_client(learner).post("/v1/submissions", body, format="json")
    assert response.status_code in {200, 202}, response.content
    return response.json()["id"], code


def test_each_grading_queue_reaches_only_its_own_workers(learner_client, start_worker, settings) -> None:
    """A worker started with `-Q grade-python` grades the Python submissions and never takes a
    JavaScript one: those wait in their own queue — and the sweeper re-queues them there — until a
    `-Q grade-javascript` worker starts and grades exactly them. Each worker grades through an eval
    service of its own, whose record says which submissions reached which worker."""
    import redis

    publish(pack_document())
    settings.CO_SUBMISSION_WAIT_SECONDS = 0
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    with FakeEvalService() as python_service, FakeEvalService() as javascript_service:
        start_worker(queues=("grade-python",), CO_EVAL_BASE=python_service.url)
        python = dict(_code_submission(learner_client, learner, "python") for learner in ("alice", "carol"))
        javascript = dict(_code_submission(learner_client, learner, "javascript") for learner in ("bob", "dave"))
        _until(lambda: all(_status(id_) == SubmissionStatus.PASSED for id_ in python), 60, "the Python worker's verdicts")
        assert {_status(id_) for id_ in javascript} == {SubmissionStatus.PENDING}
        assert broker.llen("grade-javascript") == 2

        Submission.objects.filter(id__in=javascript).update(enqueued_at=timezone.now() - timedelta(days=1))
        assert services.submission_sweep() == {"requeued": 2, "expired": 0}
        assert broker.llen("grade-javascript") == 4
        assert {_status(id_) for id_ in javascript} == {SubmissionStatus.PENDING}

        start_worker(queues=("grade-javascript",), CO_EVAL_BASE=javascript_service.url)
        _until(lambda: all(_status(id_) == SubmissionStatus.PASSED for id_ in javascript), 60, "the JavaScript worker's verdicts")
        _until(lambda: broker.llen("grade-javascript") == 0, 30, "the re-queued duplicates to be taken (and refused)")

    assert sorted(body["code"] for body in python_service.recorded()) == sorted(python.values())
    assert sorted(body["code"] for body in javascript_service.recorded()) == sorted(javascript.values())
    assert Submission.objects.filter(id__in=[*python, *javascript]).values_list("attempts", flat=True).distinct().get() == 1


def _descendant_cmdlines(pid: int) -> list[bytes]:
    cmdlines, stack = [], _children(pid)
    while stack:
        child = stack.pop()
        stack += _children(child)
        cmdlines.append(_cmdline(child))
    return cmdlines


def _pool_processes(worker: Worker) -> list[int]:
    return [pid for pid in _children(worker.process.pid) if b"celery" in _cmdline(pid)]


def test_a_worker_warms_up_only_the_grading_of_its_queues(learner_client, start_worker, settings) -> None:
    """A `-Q grade-javascript` pool process pre-starts its JavaScript sandbox and starts neither
    the fork helper (Python) nor SymPy workers; a `-Q grade-math` one starts its SymPy workers and
    no sandbox. Warm-up runs in order (SymPy, Python, JavaScript), each start waited for, so once
    the JavaScript sandbox is up, or a math verdict is in, anything else would already be there."""
    first, pool = settings.CO_SANDBOX_UID, settings.CO_SANDBOX_UID_POOL
    javascript = start_worker(queues=("grade-javascript",), CO_SANDBOX_WARM="1")
    _until(
        lambda: len(processes := _pool_processes(javascript)) == 1 and _sandbox_uids_under(processes[0], first, pool),
        60,
        "the JavaScript pool process's pre-started sandbox",
    )
    (process,) = _pool_processes(javascript)
    assert len(_sandbox_uids_under(process, first, pool)) == 1
    cmdlines = _descendant_cmdlines(process)
    assert not [line for line in cmdlines if b"zygote_helper" in line or b"evaluators/math.py" in line], cmdlines
    javascript.stop()

    publish(pack_document(track_slug="m", subject="math", modules=[{"slug": "algebra", "title": "A"}], problems=[math_problem()]))
    settings.CO_SUBMISSION_WAIT_SECONDS = 0
    math = start_worker(queues=("grade-math",), CO_SANDBOX_WARM="1")
    body = {"problem_id": "expand-square", "subject": "math", "payload": {"expression": "(x+1)^2"}}
    response = learner_client("alice").post("/v1/submissions", body, format="json")
    assert response.status_code in {200, 202}, response.content
    _until(lambda: _status(response.json()["id"]) == SubmissionStatus.PASSED, 60, "the math worker's verdict")
    (process,) = _pool_processes(math)
    cmdlines = _descendant_cmdlines(process)
    assert len([line for line in cmdlines if b"evaluators/math.py" in line]) == settings.CO_MATH_WORKERS, cmdlines
    assert not [line for line in cmdlines if b"zygote_helper" in line], cmdlines
    assert not _sandbox_uids_under(process, first, pool)


def test_a_drained_worker_finishes_its_evaluation_and_takes_nothing_new(learner_client, start_worker, settings) -> None:
    """Draining as the README tells: `control cancel_consumer` stops a worker taking grading tasks
    from a queue, SIGTERM (warm shutdown) lets its running evaluation finish before it exits, and
    what was submitted meanwhile waits in the queue for the next worker. (A SIGTERM to the whole
    process group would end the pool process and its evaluation at once.)"""
    import redis

    from co_project.celery import app

    publish(pack_document())
    settings.CO_SUBMISSION_WAIT_SECONDS = 0
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    with FakeEvalService(delay_seconds=8) as eval_service:
        # Two pool processes: one grades, the other is free and would take the next task.
        old = start_worker(concurrency=2, queues=("grade-python",), CO_EVAL_BASE=eval_service.url)
        running, _ = _code_submission(learner_client, "alice", "python")
        _until(lambda: eval_service.request_count() == 1, 60, "the old worker's evaluation to be under way")

        replies = app.control.cancel_consumer("grade-python", destination=[old.name], reply=True, timeout=5)
        assert replies == [{old.name: {"ok": "no longer consuming from grade-python"}}]
        _until(
            lambda: app.control.inspect(destination=[old.name], timeout=5).active_queues() == {old.name: []}, 30, "no queue left"
        )
        waiting, _ = _code_submission(learner_client, "bob", "python")
        time.sleep(1)  # long enough for a worker still consuming to take it (its free pool process would)
        assert _status(running) == SubmissionStatus.RUNNING
        old.process.send_signal(signal.SIGTERM)  # to the main process alone, as `docker stop` sends it
        assert old.process.wait(timeout=30) == 0
        assert _status(running) == SubmissionStatus.PASSED
        assert _status(waiting) == SubmissionStatus.PENDING
        assert broker.llen("grade-python") == 1

        eval_service.delay_seconds = 0
        start_worker(queues=("grade-python",), CO_EVAL_BASE=eval_service.url)
        _until(lambda: _status(waiting) == SubmissionStatus.PASSED, 60, "the next worker's verdict")
    assert eval_service.request_count() == 2


def test_the_worker_logs_json_with_the_id_of_the_request_that_queued_its_task(learner_client, start_worker, settings) -> None:
    """Django's LOGGING in the worker too (not Celery's text format), and a submission's lines
    there carry its request's id, as its lines in the web process do."""
    publish(pack_document())
    with FakeEvalService(answer={"status": "passed"}) as eval_service:
        settings.CO_SUBMISSION_WAIT_SECONDS = 0
        worker = start_worker(CO_EVAL_BASE=eval_service.url, CO_LOG_LEVEL="INFO")
        body = {"problem_id": "shout", "subject": "coding", "payload": {"language": "python", "code": "x = 1\n"}}
        response = learner_client("alice").post("/v1/submissions", body, format="json", HTTP_X_REQUEST_ID="trace-7")
        assert response.status_code == 202 and response["X-Request-ID"] == "trace-7"
        submission_id = response.json()["id"]
        _until(lambda: _status(submission_id) == SubmissionStatus.PASSED, 60, "the worker's verdict")

        def records() -> list[dict]:
            return [json.loads(line) for line in worker.log.read_text().splitlines() if line.startswith("{")]

        _until(lambda: any(r["logger"] == "co.telemetry" for r in records()), 10, "the verdict's telemetry line")
    traced = {(r["logger"], r["message"]) for r in records() if r["request_id"] == "trace-7"}
    assert ("co.telemetry", "telemetry") in traced, traced
    # Celery's own line per task only at DEBUG: the services' lines say what the task did.
    assert not any(r["logger"] in ("celery.app.trace", "celery.worker.strategy") for r in records())
    assert {r["request_id"] for r in records() if r["logger"] == "celery.apps.worker"} == {None}  # not a request's
    celery_text = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,]+: [A-Z]+/")  # "[2026-12-06 18:00:00,000: INFO/MainProcess] …"
    assert [line for line in worker.log.read_text().splitlines() if celery_text.match(line)] == []
