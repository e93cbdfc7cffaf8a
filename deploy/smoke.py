"""Production smoke test: CO started as an operator starts it (deploy/stack.py), checked from outside.

Everything goes through HTTP, as a client sees it, except where only the database can tell
(how many `attempt_submit` events a submission produced). It checks:

  (a) /health: 200, and database, cache, broker and sandbox isolation all ok;
  (b) a learner's practice session on two-sum: a correct and a wrong solution in Python and in
      JavaScript get `passed` / `failed`, each with the isolation it ran under;
  (c) a tutor turn streamed over SSE to its `done` event;
  (d) /metrics (multiprocess, behind its bearer token): after N verdicts, from both gunicorn
      workers and the Celery pool, `co_verdicts_total` and the evaluation task's successes rose
      by exactly N, and the requests were counted by route;
  (e) 20 correct submissions at once while one Celery pool process is killed (SIGKILL) in the
      middle of grading: every one still ends `passed`, with exactly one verdict event;
  (f) the worker and beat log JSON lines (Django's LOGGING, not Celery's text format), and the
      worker's lines of an evaluation carry the request id of the submission's request.

Run it with the Python of a virtualenv built from requirements.txt alone (that is what it
tests), on a machine with PostgreSQL and Redis:

    python deploy/smoke.py [--redis-db 14] [--postgres-url postgres://postgres@127.0.0.1:5432/postgres]

The exit status is 0 only when every check passed; on a failure the services' logs are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg

if __package__ in (None, ""):  # run as a script: make `deploy` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy.stack import DEFAULT_POSTGRES_URL, ProductionStack, StackError

# On top of the production environment: room for the batch, and a quick recovery from a killed
# pool process. A killed evaluation is claimable again after CO_SUBMISSION_STALE_SECONDS and the
# sweeper (every CO_SUBMISSION_SWEEP_SECONDS) re-queues it. The stale time stays well above any
# evaluation's, even on a loaded machine, so a live evaluation is never taken over.
SMOKE_ENV = {
    "CO_RATE_LIMIT": "100000/min",
    "CO_TUTOR_HINT_RATE": "1000/min",
    "CO_SUBMISSION_STALE_SECONDS": "20",
    "CO_SUBMISSION_SWEEP_SECONDS": "2",
}

PROBLEM = "two-sum"
BATCH_SIZE = 20
# Two submissions in flight per learner: CO_MAX_CONCURRENT_EVALUATIONS_PER_LEARNER's default.
BATCH_LEARNERS = 10
FINAL_WAIT_SECONDS = 120.0
FINAL_STATUSES = {"passed", "failed", "timeout", "error"}

# Correct: the lexicographically smallest pair the statement asks for (duplicates included).
PYTHON_CORRECT = """\
def two_sum(nums, t):
    first = {}
    best = None
    for j, value in enumerate(nums):
        i = first.get(t - value)
        if i is not None and (best is None or (i, j) < best):
            best = (i, j)
        first.setdefault(value, j)
    return list(best) if best else [-1, -1]
"""
# Wrong on duplicates and on pairs found late (it returns the pair with the smallest j).
PYTHON_WRONG = """\
def two_sum(nums, t):
    seen = {}
    for j, value in enumerate(nums):
        if t - value in seen:
            return [seen[t - value], j]
        seen[value] = j
    return [-1, -1]
"""
JAVASCRIPT_CORRECT = """\
function twoSum(nums, t) {
  const first = new Map();
  let best = null;
  nums.forEach((value, j) => {
    const i = first.get(t - value);
    if (i !== undefined && (best === null || i < best[0] || (i === best[0] && j < best[1]))) best = [i, j];
    if (!first.has(value)) first.set(value, j);
  });
  return best || [-1, -1];
}
"""
JAVASCRIPT_WRONG = """\
function twoSum(nums, t) {
  return [-1, -1];
}
"""
# The batch's solution is correct and spends half a second loading (sleeping, no CPU), so each
# evaluation keeps a pool process busy long enough for the kill to land in the middle of one.
PYTHON_CORRECT_SLOW = "import time\n\ntime.sleep(0.5)\n\n" + PYTHON_CORRECT
ENTRYPOINTS = {"python": "two_sum", "javascript": "twoSum"}


class CheckFailed(Exception):
    """A check that the rest of its section depends on failed."""


class Report:
    """Prints each check as it is made and counts the failures."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def section(self, title: str) -> None:
        print(f"\n== {title}", flush=True)

    def check(self, ok: bool, what: str, detail: object = "", *, failure: object = "") -> bool:
        """Count and print one check; `failure` is shown only when it failed (e.g. the response)."""
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        shown = [str(part) for part in (detail, "" if ok else failure) if part not in ("", None)]
        suffix = f"  [{'; '.join(shown)}]" if shown else ""
        print(f"  {'ok  ' if ok else 'FAIL'} {what}{suffix}", flush=True)
        return ok

    def require(self, ok: bool, what: str, detail: object = "", *, failure: object = "") -> None:
        if not self.check(ok, what, detail, failure=failure):
            raise CheckFailed(what)

    def note(self, text: str) -> None:
        print(f"  .... {text}", flush=True)


class Learner:
    """One learner's view of the API: their token on every call."""

    def __init__(self, stack: ProductionStack, client: httpx.Client, sub: str) -> None:
        self.sub = sub
        self.client = client
        self.headers = {"Authorization": f"Bearer {stack.token(sub)}"}

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path, headers=self.headers)

    def post(self, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
        return self.client.post(path, json=body, headers={**self.headers, **headers})

    def start_session(self, report: Report) -> str:
        response = self.post("/v1/sessions", {"subject": "coding", "mode": "practice", "problem_id": PROBLEM})
        report.require(
            response.status_code == 201, f"{self.sub}: POST /v1/sessions (practice, {PROBLEM}) is 201", failure=_brief(response)
        )
        return response.json()["id"]

    def submit(self, session_id: str, language: str, code: str, **headers: str) -> httpx.Response:
        body = {
            "session_id": session_id,
            "problem_id": PROBLEM,
            "subject": "coding",
            "payload": {"language": language, "code": code},
        }
        return self.post("/v1/submissions", body, **{"Idempotency-Key": uuid.uuid4().hex, **headers})

    def final_result(self, submission_id: str, deadline: float) -> dict[str, Any] | None:
        """Poll GET /v1/submissions/{id} (202 while pending) until the verdict, or None at the deadline."""
        while time.monotonic() < deadline:
            response = self.get(f"/v1/submissions/{submission_id}")
            if response.status_code == 200 and response.json().get("status") in FINAL_STATUSES:
                return response.json()
            if response.status_code not in (200, 202):
                raise CheckFailed(f"GET /v1/submissions/{submission_id}: {_brief(response)}")
            time.sleep(0.25)
        return None


def _brief(response: httpx.Response) -> str:
    return f"HTTP {response.status_code}: {response.text[:300]}"


# --- (a) -------------------------------------------------------------------------------------


def check_health(stack: ProductionStack, client: httpx.Client, report: Report) -> None:
    report.section("(a) GET /health")
    response = client.get("/health")
    report.require(response.status_code == 200, "/health answers 200", failure=_brief(response))
    body = response.json()
    checks = body.get("checks", {})
    report.check(body.get("status") == "ok", "overall status ok", body.get("status"))
    report.check(body.get("environment") == "production", "environment is production", body.get("environment"))
    expected = {
        "database": ("engine", "postgresql"),
        "cache": ("backend", "redis"),
        "broker": ("mode", "broker"),
    }
    for name, (key, value) in expected.items():
        check = checks.get(name, {})
        report.check(check.get("status") == "ok" and check.get(key) == value, f"{name} ok ({key} {value})", check)
    sandbox = checks.get("sandbox", {})
    isolation = sandbox.get("isolation")
    report.check(
        sandbox.get("status") == "ok" and isolation not in (None, "", "none"), f"sandbox isolation ok ({isolation})", sandbox
    )


# --- (b) -------------------------------------------------------------------------------------


def check_submissions(stack: ProductionStack, client: httpx.Client, report: Report) -> None:
    report.section(f"(b) a practice session on {PROBLEM}: correct and wrong solutions, Python and JavaScript")
    learner = Learner(stack, client, "smoke-learner")
    problem = learner.get(f"/v1/problems/{PROBLEM}")
    report.require(problem.status_code == 200, f"GET /v1/problems/{PROBLEM} is 200", failure=_brief(problem))
    languages = problem.json().get("languages", {})
    for language, entrypoint in ENTRYPOINTS.items():
        found = languages.get(language, {}).get("entrypoint")
        report.require(found == entrypoint, f"{language} entrypoint is {entrypoint}", found)
    report.require(problem.json().get("parameters") == ["nums", "t"], "parameters are nums, t", problem.json().get("parameters"))

    session_id = learner.start_session(report)
    cases = [
        ("python", PYTHON_CORRECT, "passed"),
        ("python", PYTHON_WRONG, "failed"),
        ("javascript", JAVASCRIPT_CORRECT, "passed"),
        ("javascript", JAVASCRIPT_WRONG, "failed"),
    ]
    for language, code, expected in cases:
        label = f"{language} {'correct' if expected == 'passed' else 'wrong'}"
        response = learner.submit(session_id, language, code)
        report.require(
            response.status_code in (200, 202), f"{label}: POST /v1/submissions is 200 or 202", failure=_brief(response)
        )
        submission_id = response.json()["id"]
        result = response.json() if response.json().get("status") in FINAL_STATUSES else None
        if result is None:
            result = learner.final_result(submission_id, time.monotonic() + FINAL_WAIT_SECONDS)
        report.require(result is not None, f"{label}: a verdict within {FINAL_WAIT_SECONDS:.0f} s", submission_id)
        assert result is not None  # for the type checker: require() raised otherwise
        visible, hidden = result.get("visible", {}), result.get("hidden", {})
        counts = f"visible {visible.get('passed')}/{visible.get('total')}, hidden {hidden.get('passed')}/{hidden.get('total')}"
        report.check(result.get("status") == expected, f"{label}: {expected} (HTTP {response.status_code} first)", counts)
        report.check(bool(result.get("isolation")), f"{label}: ran isolated ({result.get('isolation')})")


# --- (c) -------------------------------------------------------------------------------------


def sse_events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of a text/event-stream; comments (heartbeats) are skipped."""
    event, data = "message", []
    for line in response.iter_lines():
        if line == "":
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            event = line.partition(":")[2].strip()
        elif line.startswith("data:"):
            data.append(line.partition(":")[2].strip())


def check_tutor(stack: ProductionStack, client: httpx.Client, report: Report) -> None:
    report.section("(c) a tutor turn over SSE")
    learner = Learner(stack, client, "smoke-tutored")
    session_id = learner.start_session(report)
    response = learner.post(
        "/v1/tutor/messages",
        {
            "session_id": session_id,
            "problem_id": PROBLEM,
            "hint_level": 1,
            "message": "Why do duplicates fail?",
            "language": "python",
            "code": PYTHON_WRONG,
        },
    )
    report.require(
        response.status_code == 202 and "stream_url" in response.json(),
        "POST /v1/tutor/messages is 202",
        failure=_brief(response),
    )
    events: list[tuple[str, dict[str, Any]]] = []
    with client.stream("GET", response.json()["stream_url"], timeout=httpx.Timeout(60.0)) as stream:
        report.require(stream.status_code == 200, "the stream answers 200", stream.status_code)
        content_type = stream.headers.get("content-type", "")
        report.check(content_type.startswith("text/event-stream"), "as text/event-stream", content_type)
        for event, data in sse_events(stream):
            events.append((event, data))
            if event in ("done", "error"):
                break
    names = [event for event, _ in events]
    report.check(bool(names) and names[0] == "start", "the first event is start", names[:1])
    tokens = sum(1 for name in names if name == "token")
    report.check(tokens > 0, "token events carry the answer", f"{tokens} tokens")
    done = events[-1][1] if names and names[-1] == "done" else None
    report.check(done is not None and done.get("outcome") == "ok", "the stream ends with done (outcome ok)", done or names[-1:])


# --- (e) -------------------------------------------------------------------------------------


def _running_count(database_url: str, learner_prefix: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM submissions_submission WHERE status = 'running' AND learner_id LIKE %s",
            (f"{learner_prefix}%",),
        ).fetchone()
    return int(row[0]) if row else 0


def _kill_a_pool_process_mid_grading(stack: ProductionStack, learner_prefix: str, stop: threading.Event) -> dict[str, Any]:
    """Once two of the batch's evaluations are running at the same time (both pool processes are
    grading), SIGKILL one pool process. Returns what it did, for the report."""
    deadline = time.monotonic() + 60
    while not stop.is_set() and time.monotonic() < deadline:
        if _running_count(stack.database_url, learner_prefix) >= min(2, stack.worker_concurrency):
            children = stack.pool_child_pids()
            if children:
                victim = children[0]
                os.kill(victim, signal.SIGKILL)
                return {"pid": victim, "pool": children, "at": time.monotonic()}
        time.sleep(0.02)
    return {}


def check_batch_with_a_killed_worker(stack: ProductionStack, client: httpx.Client, report: Report) -> None:
    report.section(f"(e) {BATCH_SIZE} correct submissions at once; one Celery pool process killed while grading")
    prefix = f"smoke-batch-{uuid.uuid4().hex[:6]}-"
    learners = [Learner(stack, client, f"{prefix}{n}") for n in range(BATCH_LEARNERS)]
    sessions = {learner.sub: learner.start_session(report) for learner in learners}
    jobs = [learners[n % BATCH_LEARNERS] for n in range(BATCH_SIZE)]
    pool_before = stack.pool_child_pids()
    report.check(
        len(pool_before) == stack.worker_concurrency,
        f"worker {stack.worker_pid} has {stack.worker_concurrency} pool processes",
        pool_before,
    )

    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=BATCH_SIZE + 1) as executor:
        killer = executor.submit(_kill_a_pool_process_mid_grading, stack, prefix, stop)
        started = time.monotonic()
        posts = list(executor.map(lambda learner: learner.submit(sessions[learner.sub], "python", PYTHON_CORRECT_SLOW), jobs))
        posted = time.monotonic() - started
        kill = killer.result(timeout=90)
        stop.set()
    accepted = [response for response in posts if response.status_code in (200, 202)]
    report.check(
        len(accepted) == BATCH_SIZE,
        f"all {BATCH_SIZE} POST /v1/submissions accepted in {posted:.1f} s",
        failure="; ".join(_brief(response) for response in posts if response not in accepted),
    )
    report.require(bool(kill), "a pool process was SIGKILLed while two evaluations were running", kill)
    report.note(f"killed pool process {kill['pid']} (pool was {kill['pool']})")

    submissions = [
        (learner, response.json()["id"]) for learner, response in zip(jobs, posts, strict=True) if response in accepted
    ]
    deadline = kill["at"] + FINAL_WAIT_SECONDS
    results = {submission_id: learner.final_result(submission_id, deadline) for learner, submission_id in submissions}
    waited = time.monotonic() - kill["at"]
    statuses = [result.get("status") if result else "no verdict" for result in results.values()]
    report.check(
        all(status in FINAL_STATUSES for status in statuses),
        f"every submission reached a verdict ({waited:.1f} s after the kill)",
        _tally(statuses),
    )
    report.check(all(status == "passed" for status in statuses), "every verdict is passed", _tally(statuses))

    ids = list(results)
    with psycopg.connect(stack.database_url) as conn:
        events = attempt_events(conn, ids)
        rows = conn.execute(
            "SELECT id::text, status, attempts FROM submissions_submission WHERE id = ANY(%s::uuid[])", (ids,)
        ).fetchall()
    counts = [events.get(submission_id, 0) for submission_id in ids]
    report.check(
        all(count == 1 for count in counts), "exactly one attempt_submit event per submission (database)", _tally(counts)
    )
    final_in_db = [status for _, status, _ in rows if status in FINAL_STATUSES]
    report.check(
        len(rows) == len(ids) and len(final_in_db) == len(ids),
        "every submission's row is final (database)",
        _tally(status for _, status, _ in rows),
    )
    # The premise: the process died holding a task (Celery logs WorkerLostError only then).
    lost = [line for line in _log_lines(stack, "worker") if "WorkerLostError" in line]
    report.check(bool(lost), "the killed process held a task (WorkerLostError in the worker's log)", failure="none logged")
    # Killed after its claim, a submission is claimed again once stale (the sweeper re-queues it);
    # killed before, the broker's redelivery claims it first time. Either way one verdict, above.
    regraded = [f"{submission_id[:8]} claimed {attempts} times" for submission_id, _, attempts in rows if attempts > 1]
    report.note(", ".join(regraded) or "no submission was claimed twice: the task was lost before its claim")
    pool_after = stack.pool_child_pids()
    report.check(
        kill["pid"] not in pool_after and len(pool_after) == stack.worker_concurrency,
        "the worker replaced the killed pool process",
        pool_after,
    )


# --- (d) -------------------------------------------------------------------------------------

METRICS_VERDICTS = 4


def scrape(stack: ProductionStack, client: httpx.Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """One scrape of /metrics as Prometheus makes it: {(series name, labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    response = client.get("/metrics", headers={"Authorization": f"Bearer {stack.metrics_token}"})
    if response.status_code != 200:
        raise CheckFailed(f"GET /metrics: {_brief(response)}")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def check_metrics(stack: ProductionStack, shared_client: httpx.Client, report: Report) -> None:
    report.section(f"(d) /metrics: {METRICS_VERDICTS} verdicts counted exactly, across the web and worker processes")
    # A connection per request, so requests and scrapes land on either gunicorn worker.
    with httpx.Client(
        base_url=stack.base_url, timeout=shared_client.timeout, limits=httpx.Limits(max_keepalive_connections=0)
    ) as client:
        _check_metrics(stack, client, report)


def _check_metrics(stack: ProductionStack, client: httpx.Client, report: Report) -> None:
    for headers, what in (({}, "without a token"), ({"Authorization": "Bearer wrong"}, "with a wrong token")):
        response = client.get("/metrics", headers=headers)
        report.check(response.status_code == 401, f"/metrics {what} is 401", failure=_brief(response))
    passed = ("co_verdicts_total", frozenset({"subject": "coding", "language": "python", "status": "passed"}.items()))
    evaluated = ("co_celery_tasks_total", frozenset({"task": "submissions.evaluate", "outcome": "success"}.items()))
    posted = ("co_http_requests_total", frozenset({"method": "POST", "route": "/v1/submissions", "status": "200"}.items()))
    read = (
        "co_http_requests_total",
        frozenset({"method": "GET", "route": "/v1/submissions/<submission_id>", "status": "200"}.items()),
    )
    before = scrape(stack, client)
    learner = Learner(stack, client, "smoke-metrics")
    session_id = learner.start_session(report)
    answered: dict[int, int] = {200: 0, 202: 0}
    ids = []
    for _ in range(METRICS_VERDICTS):
        response = learner.submit(session_id, "python", PYTHON_CORRECT)
        report.require(response.status_code in (200, 202), "POST /v1/submissions is 200 or 202", failure=_brief(response))
        answered[response.status_code] += 1
        ids.append(response.json()["id"])
        if response.json().get("status") not in FINAL_STATUSES:  # polled until a 200 carries the verdict
            learner.final_result(ids[-1], time.monotonic() + FINAL_WAIT_SECONDS)
    for submission_id in ids:
        report.require(learner.get(f"/v1/submissions/{submission_id}").status_code == 200, "GET /v1/submissions/{id} is 200")
    # A task's success is signalled just after its verdict commits: give the last one a moment.
    deadline = time.monotonic() + 10
    after = scrape(stack, client)
    while after.get(evaluated, 0) - before.get(evaluated, 0) < METRICS_VERDICTS and time.monotonic() < deadline:
        time.sleep(0.2)
        after = scrape(stack, client)

    def rise(key: tuple[str, frozenset[tuple[str, str]]]) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    report.check(
        rise(passed) == METRICS_VERDICTS, f"co_verdicts_total{{coding,python,passed}} rose by {METRICS_VERDICTS}", rise(passed)
    )
    verdicts = sum(value for (name, _), value in after.items() if name == "co_verdicts_total") - sum(
        value for (name, _), value in before.items() if name == "co_verdicts_total"
    )
    report.check(verdicts == METRICS_VERDICTS, f"co_verdicts_total rose by {METRICS_VERDICTS} in all", verdicts)
    report.check(
        rise(evaluated) == METRICS_VERDICTS,
        f"co_celery_tasks_total{{submissions.evaluate,success}} rose by {METRICS_VERDICTS}",
        rise(evaluated),
    )
    count = ("co_time_to_verdict_seconds_count", frozenset({"subject": "coding", "language": "python"}.items()))
    report.check(rise(count) == METRICS_VERDICTS, f"co_time_to_verdict_seconds_count rose by {METRICS_VERDICTS}", rise(count))
    report.check(
        rise(posted) == answered[200], f"co_http_requests_total{{POST,/v1/submissions,200}} rose by {answered[200]}", rise(posted)
    )
    reads = METRICS_VERDICTS + answered[202]
    report.check(rise(read) == reads, f"GET /v1/submissions/{{id}} counted by its route pattern ({reads})", rise(read))
    raw = [submission_id for submission_id in ids if any(submission_id in str(labels) for _, labels in after)]
    report.check(raw == [], "no label carries a submission's id", raw)
    levels = [dict(labels)["level"] for (name, labels), value in after.items() if name == "co_sandbox_isolation" and value == 1]
    report.check(bool(levels) and "none" not in levels, "co_sandbox_isolation from the worker", levels)
    report.note(f"scraped {len(after)} series; answers 200 × {answered[200]}, 202 × {answered[202]}")
    writers = sorted({path.stem.rsplit("_", 1)[-1] for path in Path(stack.env["CO_METRICS_DIR"]).glob("*.db")})
    report.note(f"processes with metrics files: {', '.join(writers)}")


def attempt_events(conn: psycopg.Connection, ids: list[str]) -> dict[str, int]:
    """How many `attempt_submit` events each of these submissions produced (absent: none)."""
    return dict(
        conn.execute(
            "SELECT attrs->>'submission_id', count(*) FROM co_project_telemetryevent "
            "WHERE event = 'attempt_submit' AND attrs->>'submission_id' = ANY(%s) GROUP BY 1",
            (ids,),
        ).fetchall()
    )


def _log_lines(stack: ProductionStack, service: str) -> list[str]:
    path = stack.log_dir / f"{service}.log" if stack.log_dir else None
    return path.read_text(errors="replace").splitlines() if path and path.is_file() else []


def _tally(values: Iterable[object]) -> str:
    counts: dict[str, int] = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    return ", ".join(f"{value} × {count}" for value, count in sorted(counts.items()))


# --- main ------------------------------------------------------------------------------------

# --- (f) -------------------------------------------------------------------------------------

# A record in Celery's own text format ("[2026-12-06 18:00:00,000: INFO/MainProcess] …").
CELERY_TEXT_RECORD = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,]+: [A-Z]+/")


def log_records(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """A service's log: its JSON records, and its lines in Celery's text format."""
    records, text = [], []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))
        elif CELERY_TEXT_RECORD.match(line):
            text.append(line)
    return records, text


def check_logs(stack: ProductionStack, client: httpx.Client, report: Report) -> None:
    report.section("(f) the worker's and beat's logs: JSON lines, with the submission's request id")
    assert stack.log_dir is not None
    learner = Learner(stack, client, "smoke-logged")
    session_id = learner.start_session(report)
    request_id = f"smoke-{uuid.uuid4().hex}"
    response = learner.submit(session_id, "python", PYTHON_CORRECT, **{"X-Request-ID": request_id})
    report.require(response.status_code in (200, 202), "POST /v1/submissions is 200 or 202", failure=_brief(response))
    result = learner.final_result(response.json()["id"], time.monotonic() + FINAL_WAIT_SECONDS)
    report.require(result is not None and result.get("status") == "passed", "the submission passed", failure=result)
    records, text = log_records(stack.log_dir / "worker.log")
    # (logger, message up to the task id) of the records that carry the request id
    mine = {(r.get("logger"), str(r.get("message")).split("[")[0]) for r in records if r.get("request_id") == request_id}
    report.check(("co.personalization", "learner model updated") in mine, "worker: the learner model's line has the request id")
    report.check(("co.telemetry", "telemetry") in mine, "worker: the verdict's telemetry line has the request id")
    report.check(not text, "worker: no line in Celery's text format", len(records), failure=text[:3])
    beat_records, beat_text = log_records(stack.log_dir / "beat.log")
    report.check(
        any(record.get("logger") == "celery.beat" for record in beat_records) and not beat_text,
        "beat: JSON lines only",
        len(beat_records),
        failure=beat_text[:3],
    )


SECTIONS: tuple[Callable[[ProductionStack, httpx.Client, Report], None], ...] = (
    check_health,
    check_submissions,
    check_tutor,
    check_metrics,  # before (e), whose re-queued duplicates may still run after it
    check_batch_with_a_killed_worker,
    check_logs,
)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so a stopped run still stops the services and drops the database


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-db", type=int, default=14, help="Redis db for the run (flushed)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="server to create the run's database on")
    parser.add_argument("--keep-logs", action="store_true", help="keep the services' logs even when everything passed")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)

    started = time.monotonic()
    report = Report()
    print(f"smoke: starting CO in production mode with {sys.executable}", flush=True)
    try:
        stack = ProductionStack(
            redis_db=args.redis_db, postgres_url=args.postgres_url, extra_env=SMOKE_ENV, keep_logs=args.keep_logs
        )
        run(report, started, stack)
    except StackError as exc:  # its logs are printed already
        report.check(False, "the production stack", exc)
    print(f"\nsmoke: {time.monotonic() - started:.0f} s in all")
    print(f"smoke: {report.passed} passed, {report.failed} failed", flush=True)
    return 1 if report.failed else 0


def run(report: Report, started: float, stack: ProductionStack) -> None:
    """Every section against one stack; a section that stops early does not stop the next."""
    with stack:
        print(f"smoke: up at {stack.base_url} in {time.monotonic() - started:.1f} s (logs in {stack.log_dir})", flush=True)
        with httpx.Client(base_url=stack.base_url, timeout=httpx.Timeout(60.0)) as client:
            for section in SECTIONS:
                section_started = time.monotonic()
                try:
                    section(stack, client, report)
                except (CheckFailed, httpx.HTTPError, psycopg.Error, KeyError, ValueError) as exc:
                    report.check(False, "section stopped", f"{type(exc).__name__}: {exc}")
                report.note(f"{time.monotonic() - section_started:.1f} s")
                stack.check_alive()
        if report.failed:
            stack.print_logs()


if __name__ == "__main__":
    sys.exit(main())
