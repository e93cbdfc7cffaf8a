"""The learner model's read paths against a large catalogue and a long history.

Builds a fresh database with a catalogue of 1,000 published problems (10 modules, difficulties
1–5, 40 topics) and a learner with 5,000 graded attempts recorded through the same service the
verdicts use (`personalization.services.attempt_record`), plus a learner with 50. Then, against a
real uvicorn server on that database, measures p50 / p95 of

- `GET /v1/recommendations/next` and `GET /v1/mastery` for the long-history learner,
- an authenticated `GET /v1/tracks` (the baseline), same server, same run, interleaved,

prints each as a ratio to the baseline, and prints the SQL queries each request makes for the
short and the long history (they must be equal). Usage:

    .venv/bin/python bench/learner_model.py [--requests 200] [--problems 1000] [--attempts 5000] [--db-url URL]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from support import UvicornServer, in_process_django_env, manage, percentile

TOPICS = [f"topic-{n:02d}" for n in range(40)]


def build(problems: int, attempts: int) -> dict[str, dict[str, int]]:
    """Runs inside this process with Django set up: catalogue, histories, query counts."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    from personalization.services import GradedAttempt, attempt_record
    from tracks.models import Module, Problem, Subject, Topic, Track

    call_command("migrate", "--no-input", verbosity=0)
    call_command("create_dev_keys", verbosity=0)
    call_command("seed", verbosity=0)
    rng = random.Random(7)
    with transaction.atomic():
        track = Track.objects.create(slug="bench-catalogue", subject=Subject.CODING, title="Bench catalogue", published=True)
        topics = [Topic.objects.get_or_create(slug=slug)[0] for slug in TOPICS]
        modules = [
            Module.objects.create(track=track, slug=f"module-{m}", title=f"Module {m}", outcomes=[f"outcome-{m}"], position=m)
            for m in range(10)
        ]
        rows = Problem.objects.bulk_create(
            Problem(
                slug=f"bench-{n:04d}",
                subject=Subject.CODING,
                title=f"Bench problem {n}",
                statement="Solve it.",
                difficulty=1 + n % 5,
                module=modules[n * len(modules) // problems],
                position=n,
                hints=["a", "b", "c"],
            )
            for n in range(problems)
        )
        Problem.topics.through.objects.bulk_create(
            Problem.topics.through(problem_id=row.id, topic_id=topic.id) for row in rows for topic in rng.sample(topics, 2)
        )

    def history(learner_id: str, count: int) -> None:
        for index in range(count):
            attempt_record(
                attempt=GradedAttempt(
                    learner_id=learner_id,
                    problem_id=rows[rng.randrange(len(rows))].id,
                    passed=rng.random() < 0.55,
                    tests_passed=rng.randrange(0, 5),
                    tests_total=4 if index % 2 else 0,
                    max_hint_level=rng.choice([0, 0, 0, 1, 2, 3]),
                )
            )

    started = time.perf_counter()
    history("long-history", attempts)
    history("short-history", 50)
    print(f"setup: {problems} problems, {attempts} attempts recorded in {time.perf_counter() - started:.1f} s")

    from io import StringIO

    counts: dict[str, dict[str, int]] = {}
    for learner_id in ("short-history", "long-history"):
        out = StringIO()
        call_command("issue_token", "--sub", learner_id, "--ttl", "7200", stdout=out)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {out.getvalue().strip()}")
        for path in ("/v1/tracks", "/v1/recommendations/next", "/v1/mastery"):
            client.get(path, HTTP_HOST="127.0.0.1")  # warm: the catalogue cache costs 2 queries once
            with CaptureQueriesContext(connection) as queries:
                response = client.get(path, HTTP_HOST="127.0.0.1")
            assert response.status_code == 200, response.content
            counts.setdefault(path, {})[learner_id] = len(queries)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per endpoint")
    parser.add_argument("--problems", type=int, default=1000)
    parser.add_argument("--attempts", type=int, default=5000)
    parser.add_argument("--db-url", default="", help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="co-bench-") as workdir:
        env = in_process_django_env(Path(workdir), args.db_url)
        counts = build(args.problems, args.attempts)
        token = manage(env, "issue_token", "--sub", "long-history", "--ttl", "7200")
        server = UvicornServer(env)
        url = server.url
        try:
            paths = ["/v1/tracks", "/v1/recommendations/next", "/v1/mastery"]
            samples: dict[str, list[float]] = {path: [] for path in paths}
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
                for path in paths:  # warm-up
                    for _ in range(5):
                        client.get(path).raise_for_status()
                for _ in range(args.requests):
                    for path in paths:  # interleaved, so drift hits all three alike
                        started = time.perf_counter()
                        client.get(path).raise_for_status()
                        samples[path].append((time.perf_counter() - started) * 1000)
        finally:
            server.stop()

    engine = "postgresql" if args.db_url.startswith("postgres") else "sqlite"
    print(f"machine: {os.cpu_count()} cores; database {engine}; {args.requests} requests per endpoint")
    base_p50, base_p95 = statistics.median(samples["/v1/tracks"]), percentile(samples["/v1/tracks"], 0.95)
    for path in paths:
        p50, p95 = statistics.median(samples[path]), percentile(samples[path], 0.95)
        queries = counts[path]
        print(
            f"{path:27s} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms   ratio to /v1/tracks: p50 {p50 / base_p50:4.2f}x  "
            f"p95 {p95 / base_p95:4.2f}x   SQL queries: {queries['short-history']} (50 attempts) / "
            f"{queries['long-history']} ({args.attempts} attempts)"
        )


if __name__ == "__main__":
    main()
