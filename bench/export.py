"""The study-task export against a large history (issue 16 point 3).

Builds a fresh database (the seeded course packs) with one learner holding `--tasks` study tasks
(default 100,000), each with one evaluation (of its own submission) and `--events-per-task`
events, bulk inserted. Then, in the same run:

- the baseline: a raw DB-API cursor → `csv.writer` loop over the same rows (the tasks with their
  track and module slugs, the evaluations, the events), written to a sink that drops the text;
- `GET /v1/study-tasks/export?format=csv` and `format=json` from a real uvicorn server
  (`co_project.asgi`, the production entry point), each downloaded whole, while the server's
  RSS is sampled every 20 ms.

Prints, per format, the download time, MB, rows a second, throughput as a ratio to the raw loop
(target ≥ 0.5×) and the server's RSS growth over its RSS before the export (target ≤ 20 MB).
Usage:

    .venv/bin/python bench/export.py [--tasks 100000] [--events-per-task 2] [--db-url URL]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from support import REPO, UvicornServer, bench_env

LEARNER = "export-bench"
TRACK = "coding-interview-meta"


def build(tasks: int, events_per_task: int) -> None:
    """Runs inside this process with Django set up."""
    import django

    django.setup()
    from datetime import timedelta

    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from study_paths.models import StudyTask, TaskEvaluation, TaskEvent
    from study_paths.services import study_path_create
    from submissions.models import Submission

    call_command("migrate", "--no-input", verbosity=0)
    call_command("create_dev_keys", verbosity=0)
    call_command("seed", verbosity=0)
    started = time.perf_counter()
    path = study_path_create(learner_id=LEARNER, track=TRACK, seed=1)
    template = list(StudyTask.objects.filter(path=path).order_by("position"))
    for offset, task in enumerate(template):  # the plan's own tasks after the history
        StudyTask.objects.filter(id=task.id).update(position=tasks + 1 + offset)
    first = timezone.now() - timedelta(days=400)
    batch = 5000
    for start in range(0, tasks, batch):
        with transaction.atomic():
            rows = []
            submissions = []
            for n in range(start, min(start + batch, tasks)):
                model = template[n % len(template)]
                at = first + timedelta(minutes=5 * n)
                rows.append(
                    StudyTask(
                        path=path,
                        learner_id=LEARNER,
                        module_id=model.module_id,
                        problem_id=model.problem_id,
                        problem_ref=model.problem_ref,
                        kind="practice",
                        difficulty=model.difficulty,
                        topics=model.topics,
                        position=n + 1,
                        status="passed" if n % 3 else "failed",
                        attempt_count=1,
                        due_at=at,
                        metadata={"reasons": ["bench"]},
                        created_at=at,
                        updated_at=at,
                        started_at=at,
                        finished_at=at + timedelta(minutes=3),
                    )
                )
                submissions.append(
                    Submission(
                        learner_id=LEARNER,
                        origin="study_task",
                        origin_id=rows[-1].id,
                        problem_id=model.problem_id,
                        problem_ref=model.problem_ref,
                        subject="coding",
                        language="python",
                        payload={"language": "python", "code": "def f(x):\n    return x\n"},
                        payload_sha256="0" * 64,
                        status="passed" if n % 3 else "failed",
                        finished_at=at + timedelta(minutes=3),
                    )
                )
            StudyTask.objects.bulk_create(rows)
            Submission.objects.bulk_create(submissions)
            TaskEvaluation.objects.bulk_create(
                TaskEvaluation(
                    task_id=task.id,
                    submission_id=submission.id,
                    score=1.0 if n % 3 else 0.6,
                    runtime_ms=12,
                    peak_memory_kb=2048,
                    visible_passed=3,
                    visible_total=3,
                    hidden_passed=5 if n % 3 else 3,
                    hidden_total=5,
                    failed_categories=[] if n % 3 else ["duplicates"],
                    visible_details=[{"index": i, "outcome": "passed", "passed": True} for i in range(3)],
                    created_at=task.finished_at,
                )
                for n, (task, submission) in enumerate(zip(rows, submissions, strict=True), start=start)
            )
            TaskEvent.objects.bulk_create(
                TaskEvent(
                    task_id=task.id,
                    path_id=path.id,
                    sequence=s + 1,
                    event_type="created" if s == 0 else "evaluated",
                    payload={"position": task.position, "kind": "practice", "problem": task.problem_ref}
                    if s == 0
                    else {"status": task.status, "graded": True, "attempt": s},
                    created_at=task.created_at + timedelta(minutes=s),
                )
                for task in rows
                for s in range(events_per_task)
            )
    # Statistics for the planner, as autovacuum would have them by the time a real history is
    # this long (PostgreSQL here may run without autovacuum: freshly bulk-loaded tables then look
    # empty to the planner, which sorts and hash-joins whole tables on every chunk).
    connection.cursor().execute("ANALYZE")
    print(
        f"setup: {StudyTask.objects.filter(learner_id=LEARNER).count()} tasks, "
        f"{TaskEvaluation.objects.filter(task__learner_id=LEARNER).count()} evaluations, "
        f"{TaskEvent.objects.filter(path=path).count()} events in {time.perf_counter() - started:.1f} s"
    )


class _Sink:
    """A file that drops what it is given (the baseline's output, like the server's, goes nowhere)."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, text: str) -> int:
        self.size += len(text)
        return len(text)


def raw_csv_loop() -> tuple[float, int, int]:
    """Seconds, characters and rows of the raw cursor → csv.writer loop over the same rows."""
    from django.db import connection

    queries = [
        """SELECT t.id, t.path_id, tr.slug, m.slug, t.problem_ref, t.kind, t.difficulty, t.topics, t.position,
                  t.status, t.attempt_count, t.hint_count, t.due_at, t.started_at, t.finished_at, t.created_at
           FROM study_paths_studytask t JOIN study_paths_studypath p ON p.id = t.path_id
           JOIN tracks_track tr ON tr.id = p.track_id JOIN tracks_module m ON m.id = t.module_id
           WHERE t.learner_id = %s ORDER BY t.created_at, t.id DESC""",
        """SELECT e.task_id, e.id, e.submission_id, e.score, e.runtime_ms, e.peak_memory_kb, e.visible_passed,
                  e.visible_total, e.hidden_passed, e.hidden_total, e.failed_categories, e.visible_details, e.partial,
                  e.created_at
           FROM study_paths_taskevaluation e JOIN study_paths_studytask t ON t.id = e.task_id
           WHERE t.learner_id = %s ORDER BY e.task_id, e.created_at""",
        """SELECT v.task_id, v.sequence, v.event_type, v.payload, v.created_at
           FROM study_paths_taskevent v JOIN study_paths_studytask t ON t.id = v.task_id
           WHERE t.learner_id = %s ORDER BY v.task_id, v.sequence""",
    ]
    sink = _Sink()
    writer = csv.writer(sink)
    rows = 0
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for sql in queries:
            cursor.execute(sql, [LEARNER])
            while batch := cursor.fetchmany(2000):
                writer.writerows(batch)
                rows += len(batch)
    return time.perf_counter() - started, sink.size, rows


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def download(server: UvicornServer, token: str, export_format: str) -> tuple[float, int, int, int]:
    """Seconds, bytes, lines, and the server's peak RSS growth in KiB over its RSS before the request."""
    pid = server.process.pid
    before = rss_kb(pid)
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_kb(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    size = lines = 0
    started = time.perf_counter()
    with (
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=600) as client,
        client.stream("GET", f"/v1/study-tasks/export?format={export_format}") as response,
    ):
        response.raise_for_status()
        for piece in response.iter_bytes():
            size += len(piece)
            lines += piece.count(b"\n")
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    return elapsed, size, lines, peak[0] - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--events-per-task", type=int, default=2)
    parser.add_argument("--db-url", default="", help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="co-bench-") as workdir:
        env = bench_env(Path(workdir), DJANGO_SETTINGS_MODULE="co_project.settings", CO_EXPORT_RATE="1000000/hour")
        if args.db_url:
            env["CO_DB_URL"] = args.db_url
        os.environ.update(env)
        sys.path.insert(0, str(REPO))
        os.chdir(REPO)
        build(args.tasks, args.events_per_task)
        raw_seconds, raw_chars, raw_rows = raw_csv_loop()
        token = subprocess.run(
            [sys.executable, "manage.py", "issue_token", "--sub", LEARNER, "--ttl", "7200"],
            cwd=REPO, env=env, check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        server = UvicornServer(env)
        results = {}
        try:
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
                # Warm-up: the code paths and the connection, on a small range.
                for export_format in ("csv", "json"):
                    client.get(f"/v1/study-tasks/export?format={export_format}&to=2000-01-01").raise_for_status()
            for export_format in ("csv", "json"):
                results[export_format] = download(server, token, export_format)
        finally:
            server.stop()
        raw_again = raw_csv_loop()[0]  # the baseline once more, after the server ran: the better of the two counts

    engine = "postgresql" if args.db_url.startswith("postgres") else "sqlite"
    raw = min(raw_seconds, raw_again)
    shape = f"{args.tasks} tasks, 1 evaluation and {args.events_per_task} events each"
    print(f"machine: {os.cpu_count()} cores; database {engine}; {shape}")
    print(f"raw cursor → csv.writer: {raw:6.2f} s  {raw_chars / 1e6:6.1f} MB  {raw_rows / raw:9.0f} rows/s  ({raw_rows} rows)")
    for export_format, (seconds, size, _lines, growth_kb) in results.items():
        print(
            f"export {export_format:4s}: {seconds:6.2f} s  {size / 1e6:6.1f} MB  {raw_rows / seconds:9.0f} rows/s   "
            f"throughput vs raw loop {raw / seconds:4.2f}x (target ≥ 0.5x)   "
            f"server RSS growth {growth_kb / 1024:5.1f} MB (target ≤ 20 MB)"
        )


if __name__ == "__main__":
    main()
