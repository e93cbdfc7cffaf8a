"""Verdict latency through the API, against the bare interpreter start-up on this machine.

Starts a real uvicorn server (embedded defaults: SQLite, eager Celery, embedded sandbox) on a
fresh database seeded with the shipped course packs, then measures:

- p50 / p95 of `POST /v1/submissions` → verdict for a correct `two-sum` in Python and in
  JavaScript (one client, sequential);
- submissions per second with several concurrent clients;
- `python3 -I -S -c pass` and `node -e 0` (the sandbox's interpreters), in blocks alternating
  with the verdicts they are compared with;
- the Python grading alone, in a separate process on the same database (no HTTP, no pipeline):
  one sandbox run with the visible tests, and the visible and hidden runs in parallel as a
  submission gets them — in sandboxes started for the run, and in pre-started ones
  (`CO_SANDBOX_WARM`), forked by the fork helper (`zygote`, Python's default as root) and under
  bubblewrap — so the verdict latency splits into sandbox time and everything around it;

and prints each latency as a ratio to the matching bare start-up. Usage:

    .venv/bin/python bench/eval_latency.py [--requests 40] [--clients 4] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
from support import REPO, UvicornServer, bench_env, manage, percentile, time_command

from deploy.smoke import JAVASCRIPT_CORRECT as JAVASCRIPT_TWO_SUM
from deploy.smoke import PYTHON_CORRECT as PYTHON_TWO_SUM

BLOCK = 10  # samples per block of interleaved measurements


def interleaved(command: list[str], verdict: Callable[[], float], runs: int) -> tuple[list[float], list[float]]:
    """`runs` bare start-ups and `runs` verdicts, in alternating blocks of BLOCK: this VM's speed
    drifts by tens of percent within a minute, and a ratio of figures taken minutes apart would
    measure the drift. Verdicts within a block go back to back; before each block of bare
    start-ups the server is given a moment to finish its background work (pool refills)."""
    bare: list[float] = []
    verdicts: list[float] = []
    while len(verdicts) < runs:
        count = min(BLOCK, runs - len(verdicts))
        time.sleep(0.1)
        bare += time_command(command, count)
        verdicts += [verdict() for _ in range(count)]
    return bare, verdicts


class Server(UvicornServer):
    """A freshly seeded database with development keys, served by uvicorn, and a learner token."""

    def __init__(self, workdir: Path) -> None:
        self.env = bench_env(workdir)
        manage(self.env, "migrate", "--no-input")
        manage(self.env, "create_dev_keys")
        manage(self.env, "seed")
        self.token = manage(self.env, "issue_token", "--sub", "bench", "--ttl", "7200")
        super().__init__(self.env)


def grading_samples(env: dict[str, str], runs: int) -> dict[str, list[float]]:
    """Time `evaluate_code` on two-sum in a fresh process on the bench database (see grading_only)."""
    output = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--grading-only", str(runs)],
        cwd=REPO,
        env={**env, "DJANGO_SETTINGS_MODULE": "co_project.settings"},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def grading_only(runs: int) -> None:
    """Print {"<level> <start> <runs>": [...ms]}: the embedded grader without the API around it,
    so the verdict latency splits into sandbox time and request/database time. `cold`: every
    sandbox started for its run; `warm`: pre-started ones (the pool is let fill up before each
    sample). Levels: Python's default (the fork helper where this runs as root) and bubblewrap."""
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.conf import settings

    from grading.evaluators.coding import evaluate_code
    from grading.sandbox.isolation import language_level
    from grading.sandbox.warm import warm_pool
    from tracks.problem_bank import problem_bundle_require

    bundle = problem_bundle_require(reference="two-sum", include_hidden=True)
    samples: dict[str, list[float]] = {}
    per_key = settings.CO_SANDBOX_WARM
    levels = {language_level("python")}
    settings.CO_SANDBOX_ZYGOTE = False
    levels.add(language_level("python"))
    for level, start in [(level, start) for level in sorted(levels, reverse=True) for start in ("cold", "warm")]:
        settings.CO_SANDBOX_ZYGOTE = level == "zygote"
        settings.CO_SANDBOX_WARM = per_key if start == "warm" else 0
        warm_pool().drain()
        for name, include_hidden in (("visible", False), ("both", True)):
            key = f"{level} {start} {name}"
            samples[key] = []
            for sample in range(runs + 1):  # the first one warms up
                deadline = time.monotonic() + 5
                while start == "warm" and warm_pool().idle_count() < per_key and time.monotonic() < deadline:
                    time.sleep(0.005)
                started = time.perf_counter()
                verdict = evaluate_code(bundle=bundle, language="python", code=PYTHON_TWO_SUM, include_hidden=include_hidden)
                if sample:
                    samples[key].append((time.perf_counter() - started) * 1000)
                if verdict.status != "passed":
                    raise SystemExit(f"unexpected verdict: {verdict}")
    print(json.dumps(samples))


_sessions: dict[str, str] = {}


def practice_session(client: httpx.Client) -> str:
    """Submissions need the learner's active session: one practice session on two-sum per client."""
    key = str(id(client))
    if key not in _sessions:
        response = client.post("/v1/sessions", json={"subject": "coding", "mode": "practice", "problem_id": "two-sum"})
        if response.status_code != 201:
            raise SystemExit(f"could not start a session: {response.status_code} {response.text}")
        _sessions[key] = response.json()["id"]
    return _sessions[key]


def submit(client: httpx.Client, language: str, code: str) -> float:
    session_id = practice_session(client)
    started = time.perf_counter()
    response = client.post(
        "/v1/submissions",
        json={
            "session_id": session_id,
            "problem_id": "two-sum",
            "subject": "coding",
            "payload": {"language": language, "code": code},
        },
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    elapsed = (time.perf_counter() - started) * 1000
    body = response.json()
    if response.status_code != 200 or body["status"] != "passed":
        raise SystemExit(f"unexpected verdict: {response.status_code} {body}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=40, help="sequential submissions per language")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients for the throughput run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the throughput run")
    parser.add_argument("--grading-only", type=int, metavar="RUNS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.grading_only:
        grading_only(args.grading_only)
        return

    python = os.environ.get("CO_SANDBOX_PYTHON") or ("/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable)
    node = shutil.which("node")
    bare_python_command = [python, "-I", "-S", "-c", "pass"]

    with tempfile.TemporaryDirectory(prefix="co-bench-") as workdir:
        server = Server(Path(workdir))
        try:
            headers = {"Authorization": f"Bearer {server.token}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
                submit(client, "python", PYTHON_TWO_SUM)  # warm-up
                bare_python, python_latency = interleaved(
                    bare_python_command, lambda: submit(client, "python", PYTHON_TWO_SUM), args.requests
                )
                bare_node, javascript_latency = [], []
                if node:
                    submit(client, "javascript", JAVASCRIPT_TWO_SUM)
                    bare_node, javascript_latency = interleaved(
                        [node, "-e", "0"], lambda: submit(client, "javascript", JAVASCRIPT_TWO_SUM), args.requests
                    )

            done: list[float] = []
            lock = threading.Lock()
            stop_at = time.monotonic() + args.seconds

            def client_loop() -> None:
                with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
                    while time.monotonic() < stop_at:
                        elapsed = submit(client, "python", PYTHON_TWO_SUM)
                        with lock:
                            done.append(elapsed)

            started = time.monotonic()
            threads = [threading.Thread(target=client_loop) for _ in range(args.clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            throughput = len(done) / (time.monotonic() - started)
            grading = grading_samples(server.env, args.requests)
        finally:
            server.stop()

    p50_bare_python = statistics.median(bare_python)
    print(f"machine: {os.cpu_count()} cores; sandbox python {python}; node {node or 'not installed'}")
    print(f"bare `python3 -I -S -c pass`   p50 {p50_bare_python:7.1f} ms  p95 {percentile(bare_python, 0.95):7.1f} ms")
    if bare_node:
        print(
            f"bare `node -e 0`               p50 {statistics.median(bare_node):7.1f} ms  "
            f"p95 {percentile(bare_node, 0.95):7.1f} ms"
        )
    for name, samples, baseline in (
        ("python two-sum verdict", python_latency, p50_bare_python),
        ("javascript two-sum verdict", javascript_latency, statistics.median(bare_node) if bare_node else 0),
    ):
        if not samples:
            continue
        p50, p95 = statistics.median(samples), percentile(samples, 0.95)
        print(
            f"{name:29s}  p50 {p50:7.1f} ms  p95 {p95:7.1f} ms   "
            f"ratio to bare start-up: p50 {p50 / baseline:4.2f}x  p95 {p95 / baseline:4.2f}x"
        )
    levels = sorted({key.split()[0] for key in grading}, reverse=True)  # zygote (Python's default), then bubblewrap
    print(f"python grading alone (no API), by sandbox level: {', '.join(levels)}")
    for level in levels:
        for name, key in (
            (f"  {level}: started per run", f"{level} cold visible"),
            ("    visible + hidden runs", f"{level} cold both"),
            (f"  {level}: pre-started", f"{level} warm visible"),
            ("    visible + hidden runs", f"{level} warm both"),
        ):
            samples = grading[key]
            p50, p95 = statistics.median(samples), percentile(samples, 0.95)
            print(
                f"{name:29s}  p50 {p50:7.1f} ms  p95 {p95:7.1f} ms   "
                f"ratio to bare start-up: p50 {p50 / p50_bare_python:4.2f}x  p95 {p95 / p50_bare_python:4.2f}x"
            )
    around = statistics.median(python_latency) - statistics.median(grading[f"{levels[0]} warm both"])
    print(f"  API + pipeline around the grading (verdict p50 - pre-started visible + hidden p50): {around:.1f} ms")
    print(
        f"throughput: {throughput:6.1f} submissions/s with {args.clients} concurrent clients "
        f"({len(done)} verdicts in {args.seconds:g} s; p50 {statistics.median(done):.1f} ms under load)"
    )


if __name__ == "__main__":
    main()
