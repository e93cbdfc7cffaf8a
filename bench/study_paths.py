"""Study paths against a long history (issue 15 point 6).

Builds a fresh database (the seeded course packs) with a learner whose active path on
`coding-interview-meta` holds 2,000 tasks and 10,000 task events (bulk inserted: the events are
insert-only, which is all this needs), and a learner with a fresh path (the short history). Then,
against a real uvicorn server on that database, measures p50 / p95 of

- `GET /v1/study-tasks/next` for the long-history learner,
- `POST /v1/study-paths` on `math-foundations` for the same learner (each timed create is
  followed by an untimed `PATCH … {"status": "archived"}`, so the next create is allowed),
- an authenticated `GET /v1/tracks` (the baseline), same server, same run, interleaved,

prints each as a ratio to the baseline (targets: next ≤ 1.5×, create ≤ 3×), and the SQL queries
each request makes for the short and the long history (they must be equal). Usage:

    .venv/bin/python bench/study_paths.py [--requests 100] [--tasks 2000] [--events 10000] [--db-url URL]
    .venv/bin/python bench/study_paths.py --production [--compare ../other-checkout]

`--production` measures the create and the baseline on the production stack instead (gunicorn with
uvicorn workers, PostgreSQL, Redis as cache and broker, started by `deploy/stack.py`) for a learner
with a fresh path; with `--compare DIR` a second stack runs another checkout (e.g. a `git worktree`
without a mechanism), both up at once, each round timed on A and then on B: a paired A/B.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from contextlib import ExitStack
from io import StringIO
from pathlib import Path

import httpx
from support import STACK_BENCH_ENV, UvicornServer, in_process_django_env, manage, percentile

from deploy.stack import ProductionStack

LONG, SHORT = "long-history", "short-history"
PATH_TRACK, CREATE_TRACK = "coding-interview-meta", "math-foundations"


def build(tasks: int, events: int) -> dict[str, dict[str, int]]:
    """Runs inside this process with Django set up: the histories and the query counts."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone
    from rest_framework.test import APIClient

    from study_paths.models import StudyTask, TaskEvent
    from study_paths.services import study_path_create

    call_command("migrate", "--no-input", verbosity=0)
    call_command("create_dev_keys", verbosity=0)
    call_command("seed", verbosity=0)
    started = time.perf_counter()
    path = study_path_create(learner_id=LONG, track=PATH_TRACK, seed=1)
    study_path_create(learner_id=SHORT, track=PATH_TRACK, seed=2)
    template = list(StudyTask.objects.filter(path=path).order_by("position"))
    now = timezone.now()
    finished = ("passed", "failed", "skipped", "expired")
    with transaction.atomic():
        # The long history: finished tasks before the plan's pending ones (positions moved up).
        offset = tasks - len(template)
        for task in reversed(template):
            StudyTask.objects.filter(id=task.id).update(position=task.position + offset)
        rows = StudyTask.objects.bulk_create(
            StudyTask(
                path=path,
                learner_id=LONG,
                module_id=template[n % len(template)].module_id,
                problem_id=template[n % len(template)].problem_id,
                problem_ref=template[n % len(template)].problem_ref,
                kind="practice",
                difficulty=template[n % len(template)].difficulty,
                topics=template[n % len(template)].topics,
                position=n + 1,
                status=finished[n % len(finished)],
                due_at=now,
                expires_at=now,
                created_at=now,
                updated_at=now,
                finished_at=now,
            )
            for n in range(offset)
        )
        # `events` in all, the `created` events of the plan's own tasks included.
        per_task, remainder = divmod(events - TaskEvent.objects.filter(path=path).count(), len(rows))
        TaskEvent.objects.bulk_create(
            (
                TaskEvent(
                    task_id=row.id, path_id=path.id, sequence=s + 1, event_type="status_changed", payload={}, created_at=now
                )
                for index, row in enumerate(rows)
                for s in range(per_task + (index < remainder))
            ),
            batch_size=2000,
        )
    print(
        f"setup: {StudyTask.objects.filter(learner_id=LONG).count()} tasks, "
        f"{TaskEvent.objects.filter(path=path).count()} events in {time.perf_counter() - started:.1f} s"
    )

    counts: dict[str, dict[str, int]] = {}
    for learner_id in (SHORT, LONG):
        out = StringIO()
        call_command("issue_token", "--sub", learner_id, "--ttl", "7200", stdout=out)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {out.getvalue().strip()}")
        for name in ("/v1/tracks", "/v1/study-tasks/next", "POST /v1/study-paths"):
            for _ in range(2):  # the first warms the catalogue memo; the second is counted
                with CaptureQueriesContext(connection) as queries:
                    if name.startswith("POST"):
                        response = client.post("/v1/study-paths", {"track": CREATE_TRACK}, format="json", HTTP_HOST="127.0.0.1")
                    else:
                        response = client.get(name, HTTP_HOST="127.0.0.1")
                assert response.status_code in (200, 201), response.content
                counted = len(queries)  # before the next request resets Django's query log
                if name.startswith("POST"):  # archived, so the next create is allowed
                    client.patch(
                        f"/v1/study-paths/{response.json()['id']}", {"status": "archived"}, format="json", HTTP_HOST="127.0.0.1"
                    )
            counts.setdefault(name, {})[learner_id] = counted
    return counts


def production(requests: int, compare: str) -> None:
    """The create against `/v1/tracks` on the production stack, paired A/B with `compare`."""
    stacks = {"A": ProductionStack(redis_db=12, extra_env=STACK_BENCH_ENV)}
    if compare:
        stacks["B"] = ProductionStack(redis_db=13, extra_env=STACK_BENCH_ENV, code_dir=Path(compare))
    samples: dict[tuple[str, str], list[float]] = {}
    with ExitStack() as running:
        clients = {}
        for name, stack in stacks.items():
            running.enter_context(stack)
            clients[name] = running.enter_context(
                httpx.Client(base_url=stack.base_url, headers={"Authorization": f"Bearer {stack.token(SHORT, 7200)}"}, timeout=60)
            )
            print(f"{name}: {stack.code_dir}")

        def call(client: httpx.Client, name: str) -> float:
            started = time.perf_counter()
            if name == "/v1/tracks":
                client.get(name).raise_for_status()
                return (time.perf_counter() - started) * 1000
            response = client.post("/v1/study-paths", json={"track": CREATE_TRACK})
            elapsed = time.perf_counter() - started
            response.raise_for_status()
            client.patch(f"/v1/study-paths/{response.json()['id']}", json={"status": "archived"}).raise_for_status()
            return elapsed * 1000

        for round_index in range(requests + 5):  # the first five warm up
            for name, client in clients.items():
                for endpoint in ("/v1/tracks", "POST /v1/study-paths"):
                    elapsed = call(client, endpoint)
                    if round_index >= 5:
                        samples.setdefault((name, endpoint), []).append(elapsed)
    print(f"machine: {os.cpu_count()} cores; production stack; {requests} requests per endpoint and stack")
    create_a = statistics.median(samples[("A", "POST /v1/study-paths")])
    for name in stacks:
        base = statistics.median(samples[(name, "/v1/tracks")])
        create = samples[(name, "POST /v1/study-paths")]
        versus = f"; create p50 {statistics.median(create) / create_a:4.2f}× A" if name != "A" else ""
        print(
            f"{name}: /v1/tracks p50 {base:6.1f} ms; POST /v1/study-paths p50 {statistics.median(create):6.1f} ms "
            f"p95 {percentile(create, 0.95):6.1f} ms, ratio to /v1/tracks {statistics.median(create) / base:4.2f}x{versus}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100, help="timed requests per endpoint")
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--db-url", default="", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--production", action="store_true", help="on the production stack (PostgreSQL, Redis, gunicorn)")
    parser.add_argument("--compare", metavar="DIR", default="", help="with --production: a second checkout as stack B")
    args = parser.parse_args()
    if args.production:
        production(args.requests, args.compare)
        return

    with tempfile.TemporaryDirectory(prefix="co-bench-") as workdir:
        env = in_process_django_env(Path(workdir), args.db_url)
        counts = build(args.tasks, args.events)
        token = manage(env, "issue_token", "--sub", LONG, "--ttl", "7200")
        server = UvicornServer(env)
        names = ["/v1/tracks", "/v1/study-tasks/next", "POST /v1/study-paths"]
        samples: dict[str, list[float]] = {name: [] for name in names}
        try:
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:

                def call(name: str) -> float:
                    started = time.perf_counter()
                    if name.startswith("POST"):
                        response = client.post("/v1/study-paths", json={"track": CREATE_TRACK})
                        elapsed = time.perf_counter() - started
                        response.raise_for_status()
                        client.patch(f"/v1/study-paths/{response.json()['id']}", json={"status": "archived"}).raise_for_status()
                        return elapsed * 1000
                    client.get(name).raise_for_status()
                    return (time.perf_counter() - started) * 1000

                for name in names:  # warm-up
                    for _ in range(3):
                        call(name)
                for _ in range(args.requests):
                    for name in names:  # interleaved, so drift hits all three alike
                        samples[name].append(call(name))
        finally:
            server.stop()

    engine = "postgresql" if args.db_url.startswith("postgres") else "sqlite"
    print(f"machine: {os.cpu_count()} cores; database {engine}; {args.requests} requests per endpoint")
    base_p50, base_p95 = statistics.median(samples["/v1/tracks"]), percentile(samples["/v1/tracks"], 0.95)
    for name in names:
        p50, p95 = statistics.median(samples[name]), percentile(samples[name], 0.95)
        print(
            f"{name:24s} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms   ratio to /v1/tracks: p50 {p50 / base_p50:4.2f}x  "
            f"p95 {p95 / base_p95:4.2f}x   SQL queries: {counts[name][SHORT]} (fresh path) / "
            f"{counts[name][LONG]} ({args.tasks} tasks, {args.events} events)"
        )


if __name__ == "__main__":
    main()
