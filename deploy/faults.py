"""Fault injection on the production stack: what a learner's submission survives.

CO runs as an operator runs it (deploy/stack.py: gunicorn + uvicorn workers, Celery worker and
beat), but on a PostgreSQL server and a Redis server of its own, started here, so they can be
restarted and stopped without touching anything else on the machine. Checked from outside:

  (a) PostgreSQL restarted (fast shutdown) while learners submit: every request gets an answer —
      200/202 for an accepted submission, 503 in the error envelope while the database is down,
      never a 500 or a dropped connection — and every accepted submission gets exactly one verdict;
  (b) Redis stopped while learners submit (broker, cache and wake-ups gone), with evaluations
      received by the worker and not yet acknowledged: the worker outlives the outage, every
      request is answered (202, or 503), and once Redis is back every accepted submission gets
      its verdict (the sweeper re-queues what was not enqueued);
  (c) a Celery pool process SIGKILLed 20 times while learners submit: no submission lost, exactly
      one verdict each.

After each: exactly one `attempt_submit` event per submission, and each learner's model counted
every graded submission once (`attempts` of their learner state).

    python deploy/faults.py [--kills 20]

The exit status is 0 only when every check passed; on a failure the services' logs are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg

if __package__ in (None, ""):  # run as a script: make `deploy` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy.smoke import (
    FINAL_STATUSES,
    PYTHON_CORRECT,
    PYTHON_CORRECT_SLOW,
    CheckFailed,
    Learner,
    Report,
    _brief,
    _tally,
    attempt_events,
)
from deploy.stack import ProductionStack, StackError, _free_port

# A killed or lost evaluation is claimable again after CO_SUBMISSION_STALE_SECONDS; the sweeper
# (every CO_SUBMISSION_SWEEP_SECONDS) re-queues what is pending past CO_SUBMISSION_REQUEUE_SECONDS.
FAULT_ENV = {
    "CO_RATE_LIMIT": "100000/min",
    "CO_SUBMISSION_STALE_SECONDS": "20",
    "CO_SUBMISSION_SWEEP_SECONDS": "2",
    "CO_SUBMISSION_REQUEUE_SECONDS": "5",
    # Sandbox uids of its own: it kills pool processes mid-run twenty times, and may run beside
    # a development server or a test run on the same machine.
    "CO_SANDBOX_UID": "300000",
}
FINAL_WAIT_SECONDS = 150.0
# Each outage is another chance to stop Redis as the consumer holds an unacknowledged task.
REDIS_OUTAGES = 3
GRADED = ("passed", "failed", "timeout")


# --- servers of our own ---------------------------------------------------------------------


class PrivatePostgres:
    """A PostgreSQL cluster in a temporary directory on a free port, run as the `postgres` user."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not found:
            raise StackError("PostgreSQL's server programs (/usr/lib/postgresql/*/bin) are not installed")
        self.bin = Path(found[-1]).parent
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="co-faults-pg-"))
        self.data = self.dir / "data"
        self.user = pwd.getpwnam("postgres")
        os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self._as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *argv: str) -> None:
        command = list(argv) if os.geteuid() == self.user.pw_uid else ["runuser", "-u", "postgres", "--", *argv]
        result = subprocess.run(command, cwd=self.dir, capture_output=True, text=True, check=False, timeout=120)
        if result.returncode != 0:
            raise StackError(f"`{' '.join(argv[:2])}` failed: {result.stderr.strip()[-500:]}")

    def _ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c max_connections=100"
        self._as_postgres(
            str(self.bin / "pg_ctl"), action, "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-o", options, *extra
        )

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        self._ctl("restart", "-m", "fast")

    def stop(self) -> None:
        with contextlib.suppress(StackError, subprocess.SubprocessError):
            self._ctl("stop", "-m", "immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """A Redis server on a free port that keeps nothing on disk, as CO's Redis in the README."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        program = shutil.which("redis-server")
        if program is None:
            raise StackError("redis-server is not installed")
        self.process = subprocess.Popen(
            [program, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.05)
        raise StackError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


# --- helpers ----------------------------------------------------------------------------------


def _learners(stack: ProductionStack, client: httpx.Client, report: Report, tag: str, count: int) -> list[tuple[Learner, str]]:
    prefix = f"faults-{tag}-{uuid.uuid4().hex[:6]}-"
    learners = [Learner(stack, client, f"{prefix}{n}") for n in range(count)]
    return [(learner, learner.start_session(report)) for learner in learners]


def _answered(response: httpx.Response) -> bool:
    """An answer a client can act on: accepted (200/202), unavailable (503 in the envelope), or
    the learner's evaluations in flight at their cap (429: one still waits for its verdict)."""
    if response.status_code in (200, 202):
        return True
    if response.status_code == 429:
        return response.json().get("error", {}).get("code") == "too_many_evaluations"
    return response.status_code == 503 and "error" in response.json()


def _submit(learner: Learner, session_id: str, code: str) -> httpx.Response | Exception:
    """One submission; after a 429 (at the per-learner cap) it waits a second, as a client should."""
    try:
        response = learner.submit(session_id, "python", code)
    except httpx.HTTPError as exc:
        return exc
    if response.status_code == 429:
        time.sleep(1.0)
    return response


def check_outcomes(
    stack: ProductionStack, report: Report, submitted: list[tuple[Learner, httpx.Response | Exception]], started: float
) -> None:
    """Every request answered; every accepted submission exactly one verdict; learner models
    counted each graded submission once."""
    errors = [
        f"{type(r).__name__}" if isinstance(r, Exception) else _brief(r)
        for _, r in submitted
        if not (isinstance(r, httpx.Response) and _answered(r))
    ]
    report.check(
        not errors, f"all {len(submitted)} POST /v1/submissions answered 200, 202, 503 or 429", failure="; ".join(errors[:5])
    )
    accepted = [
        (learner, r.json()["id"]) for learner, r in submitted if isinstance(r, httpx.Response) and r.status_code in (200, 202)
    ]
    unavailable = sum(1 for _, r in submitted if isinstance(r, httpx.Response) and r.status_code == 503)
    capped = sum(1 for _, r in submitted if isinstance(r, httpx.Response) and r.status_code == 429)
    report.note(f"{len(accepted)} accepted, {unavailable} answered 503, {capped} answered 429")
    deadline = time.monotonic() + FINAL_WAIT_SECONDS
    results = {sid: learner.final_result(sid, deadline) for learner, sid in accepted}
    statuses = [result.get("status") if result else "no verdict" for result in results.values()]
    report.check(
        all(status in FINAL_STATUSES for status in statuses),
        f"every accepted submission reached a verdict ({time.monotonic() - started:.1f} s after the start)",
        _tally(statuses),
    )
    report.check(all(status == "passed" for status in statuses), "every verdict is passed", _tally(statuses))
    ids = list(results)
    learner_ids = sorted({learner.sub for learner, _ in accepted} | {learner.sub for learner, _ in submitted})
    with psycopg.connect(stack.database_url) as conn:
        events = attempt_events(conn, ids)
        graded = dict(
            conn.execute(
                "SELECT learner_id, count(*) FROM submissions_submission WHERE learner_id = ANY(%s) AND kind = 'submit' "
                "AND status = ANY(%s) GROUP BY 1",
                (learner_ids, list(GRADED)),
            ).fetchall()
        )
        counted = dict(
            conn.execute(
                "SELECT learner_id, attempts FROM personalization_learnerstate WHERE learner_id = ANY(%s)", (learner_ids,)
            ).fetchall()
        )
    counts = [events.get(sid, 0) for sid in ids]
    report.check(all(count == 1 for count in counts), "exactly one attempt_submit event per submission", _tally(counts))
    mismatched = {
        sub: (graded.get(sub, 0), counted.get(sub, 0)) for sub in learner_ids if graded.get(sub, 0) != counted.get(sub, 0)
    }
    report.check(
        not mismatched,
        "each learner's model counted every graded submission once",
        f"{sum(graded.values())} graded, {sum(counted.values())} counted",
        failure=mismatched,
    )


# --- (a) PostgreSQL restarted -----------------------------------------------------------------


def check_postgres_restart(stack: ProductionStack, client: httpx.Client, report: Report, pg: PrivatePostgres) -> None:
    report.section("(a) PostgreSQL restarted while 5 learners submit")
    sessions = _learners(stack, client, report, "pg", 5)
    stop = threading.Event()
    submitted: list[tuple[Learner, httpx.Response | Exception]] = []

    def learner_loop(learner: Learner, session_id: str) -> None:
        while not stop.is_set():
            submitted.append((learner, _submit(learner, session_id, PYTHON_CORRECT)))
            time.sleep(0.05)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(sessions)) as executor:
        for learner, session_id in sessions:
            executor.submit(learner_loop, learner, session_id)
        time.sleep(2.0)
        restart_started = time.monotonic()
        pg.restart()
        report.note(f"PostgreSQL restarted in {time.monotonic() - restart_started:.1f} s")
        time.sleep(3.0)
        stop.set()
    check_outcomes(stack, report, submitted, started)


# --- (b) Redis stopped while evaluations are in flight -----------------------------------------


def check_redis_stopped(stack: ProductionStack, client: httpx.Client, report: Report, redis: PrivateRedis) -> None:
    """Redis stops while the worker holds evaluations it has received but not acknowledged (the
    moment a Celery consumer restores them), and learners go on submitting while it is down."""
    report.section("(b) Redis stopped while 3 learners submit, then started again")
    sessions = _learners(stack, client, report, "redis", 3)
    worker = stack.processes["worker"]
    stop = threading.Event()
    submitted: list[tuple[Learner, httpx.Response | Exception]] = []

    def learner_loop(learner: Learner, session_id: str) -> None:
        while not stop.is_set():
            submitted.append((learner, _submit(learner, session_id, PYTHON_CORRECT_SLOW)))

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(sessions)) as executor:
        for learner, session_id in sessions:
            executor.submit(learner_loop, learner, session_id)
        for _ in range(REDIS_OUTAGES):
            time.sleep(2.0)
            down = time.monotonic()
            redis.stop()
            try:
                time.sleep(2.0)
            finally:
                redis.start()
            report.note(f"Redis down for {time.monotonic() - down:.1f} s")
        time.sleep(2.0)
        stop.set()
    report.check(worker.poll() is None, "the Celery worker outlived the outage", failure=f"exited with {worker.returncode}")
    check_outcomes(stack, report, submitted, started)


# --- (c) pool processes SIGKILLed ------------------------------------------------------------


def check_worker_kills(stack: ProductionStack, client: httpx.Client, report: Report, kills: int) -> None:
    report.section(f"(c) a Celery pool process SIGKILLed {kills} times while 5 learners submit")
    sessions = _learners(stack, client, report, "kill", 5)
    stop = threading.Event()
    submitted: list[tuple[Learner, httpx.Response | Exception]] = []

    def learner_loop(learner: Learner, session_id: str) -> None:
        while not stop.is_set():
            submitted.append((learner, _submit(learner, session_id, PYTHON_CORRECT_SLOW)))

    killed: list[int] = []
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(sessions)) as executor:
        for learner, session_id in sessions:
            executor.submit(learner_loop, learner, session_id)
        deadline = time.monotonic() + 240
        while len(killed) < kills and time.monotonic() < deadline:
            time.sleep(0.7)
            children = [pid for pid in stack.pool_child_pids() if pid not in killed]
            if children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(children[len(killed) % len(children)], signal.SIGKILL)
                    killed.append(children[len(killed) % len(children)])
        stop.set()
    report.check(
        len(killed) == kills, f"{kills} pool processes SIGKILLed", f"{len(killed)} in {time.monotonic() - started:.0f} s"
    )
    check_outcomes(stack, report, submitted, started)
    learners = [learner.sub for learner, _ in sessions]
    with psycopg.connect(stack.database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE attempts > 1), count(*) FROM submissions_submission WHERE learner_id = ANY(%s)",
            (learners,),
        ).fetchone()
    report.note(f"{row[0]} of {row[1]} submissions were claimed again after their pool process was killed")
    report.check(
        len(stack.pool_child_pids()) == stack.worker_concurrency, "the worker's pool is whole again", stack.pool_child_pids()
    )


# --- main ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="pool processes to SIGKILL in (c)")
    parser.add_argument("--sections", default="abc", help="which checks to run, e.g. `b` or `ac`")
    parser.add_argument("--keep-logs", action="store_true", help="keep the services' logs even when everything passed")
    args = parser.parse_args()
    report = Report()
    started = time.monotonic()
    pg, redis = PrivatePostgres(), PrivateRedis()
    try:
        pg.start()
        redis.start()
        stack = ProductionStack(
            redis_db=0,
            postgres_url=pg.url,
            redis_port=redis.port,
            extra_env=FAULT_ENV,
            keep_logs=args.keep_logs,
        )
        checks: dict[str, Callable[[ProductionStack, httpx.Client], None]] = {
            "a": lambda s, c: check_postgres_restart(s, c, report, pg),
            "b": lambda s, c: check_redis_stopped(s, c, report, redis),
            "c": lambda s, c: check_worker_kills(s, c, report, args.kills),
        }
        sections = [checks[name] for name in args.sections if name in checks]
        with stack, httpx.Client(base_url=stack.base_url, timeout=httpx.Timeout(60.0)) as client:
            print(f"faults: up at {stack.base_url} in {time.monotonic() - started:.1f} s (logs in {stack.log_dir})", flush=True)
            for section in sections:
                section_started = time.monotonic()
                try:
                    section(stack, client)
                except (CheckFailed, httpx.HTTPError, psycopg.Error, KeyError, ValueError) as exc:
                    report.check(False, "section stopped", f"{type(exc).__name__}: {exc}")
                report.note(f"{time.monotonic() - section_started:.1f} s")
                stack.check_alive()
            if report.failed:
                stack.print_logs()
    except StackError as exc:
        report.check(False, "the production stack", exc)
    finally:
        redis.stop()
        pg.stop()
    print(f"\nfaults: {time.monotonic() - started:.0f} s in all")
    print(f"faults: {report.passed} passed, {report.failed} failed", flush=True)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
