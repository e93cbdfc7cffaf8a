"""Verdict latency and throughput on the production stack: gunicorn with uvicorn workers, the Redis
broker, a Celery worker, PostgreSQL — started by `deploy/stack.py` exactly as the README's
*Production* section (and the CI smoke test) starts it, with the per-learner rate limit raised.

    .venv/bin/python bench/prod_stack.py [--requests 60] [--clients 8] [--seconds 15]
    .venv/bin/python bench/prod_stack.py --compare ../other-checkout [--b-env CO_SANDBOX_WARM=0]

1. One client, back to back: a correct `two-sum` in Python and in JavaScript, in blocks of ten
   alternating with blocks of ten bare `python3 -I -S -c pass` / `node -e 0` start-ups, so each
   ratio compares figures taken in the same minute (this VM's speed drifts).
   Then `--paced` verdicts per language `--gap` seconds apart, as a learner submits: each one
   finds the pre-started sandboxes refilled and the machine idle (back to back, the refill of
   the last verdict's sandboxes competes with the next one for the two cores).
2. Where a verdict's time goes, from the submission rows (the clocks are the same machine's):
   request → row inserted (`created_at`), queue wait (→ claimed, `started_at`), grading
   (→ `finished_at`), then recording the verdict, waking the waiting request and answering.
3. `--clients` learners at once, each submitting the Python solution back to back for
   `--seconds`: verdicts per second, and the CPU each verdict cost the machine, by part (web,
   Celery consumer, pool processes, sandbox runs, PostgreSQL, Redis, kernel threads, this bench;
   bench/cpu_use.py): with two cores, verdicts/s is at most 2000 / the busy ms per verdict.
4. Each figure against its target (`TARGETS`): met or not.

`--soak SECONDS` instead holds the stack at `--soak-load` (0.8) of that measured capacity: one
Python submission every 1/rate seconds whoever is free to send it (an open loop: a slow stack
gets no breather), `/metrics` scraped every `--scrape-seconds` (15), and at each scrape the SLIs
over the last five minutes and over the whole soak, computed from the scrapes as the alert rules
compute them (`bench/slis.py`), with their burn rates.

With `--compare DIR` a second stack runs from another checkout (e.g. a `git worktree` without a
mechanism) and/or with other environment (`--b-env`); both are up at once and every block runs on
A, then on B, so the A/B is paired. Both stacks share the machine, idle while the other is measured.
`--repeat N` runs every measurement N times on the same stacks and ends with each figure's median
and the median gain of A over B: a gain smaller than one run's noise shows there.
"""

from __future__ import annotations

import argparse
import itertools
import os
import queue
import shutil
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cpu_use
from slis import slis
from support import STACK_BENCH_ENV, percentile, time_command

from deploy.smoke import JAVASCRIPT_CORRECT as JAVASCRIPT_TWO_SUM
from deploy.smoke import PYTHON_CORRECT as PYTHON_TWO_SUM
from deploy.stack import ProductionStack

BLOCK = 10
PACED_BLOCK = 5

# The production path's targets on a 2-core machine (README, *The production stack*): the most a
# figure may be (ratios to a bare start-up of the same run) or the least (verdicts/s).
TARGETS: tuple[tuple[str, str, float], ...] = (
    ("Python ×", "at most", 3.0),
    ("JavaScript ×", "at most", 1.0),
    ("Python paced ×", "at most", 3.0),
    ("JavaScript paced ×", "at most", 1.0),
    ("verdicts/s", "at least", 60.0),
)


@dataclass
class Sample:
    submission_id: str
    sent: float  # wall clock (time.time()), comparable with the rows' timestamps
    received: float

    @property
    def ms(self) -> float:
        return (self.received - self.sent) * 1000


@dataclass
class Target:
    """One running stack and a learner on it with a practice session on two-sum."""

    name: str
    stack: ProductionStack
    client: httpx.Client = field(init=False)
    session_id: str = field(init=False)

    def __post_init__(self) -> None:
        self.client = learner_client(self.stack, f"bench-{self.name}")
        self.session_id = practice_session(self.client)

    def submit(self, language: str) -> Sample:
        return submit(self.client, self.session_id, language)


def learner_client(stack: ProductionStack, sub: str) -> httpx.Client:
    return httpx.Client(base_url=stack.base_url, headers={"Authorization": f"Bearer {stack.token(sub)}"}, timeout=30)


def practice_session(client: httpx.Client) -> str:
    response = client.post("/v1/sessions", json={"subject": "coding", "mode": "practice", "problem_id": "two-sum"})
    if response.status_code != 201:
        raise SystemExit(f"could not start a session: {response.status_code} {response.text}")
    return response.json()["id"]


def submit(client: httpx.Client, session_id: str, language: str) -> Sample:
    code = PYTHON_TWO_SUM if language == "python" else JAVASCRIPT_TWO_SUM
    payload = {"language": language, "code": code}
    body = {"session_id": session_id, "problem_id": "two-sum", "subject": "coding", "payload": payload}
    sent = time.time()
    response = client.post("/v1/submissions", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    received = time.time()
    answer = response.json()
    if response.status_code != 200 or answer["status"] != "passed":
        raise SystemExit(f"unexpected verdict: {response.status_code} {answer}")
    return Sample(answer["id"], sent, received)


def latency_blocks(
    targets: list[Target], language: str, command: list[str], runs: int
) -> tuple[list[float], dict[str, list[Sample]]]:
    for target in targets:  # the first verdict of a process starts its sandbox pools
        for _ in range(3):
            target.submit(language)
    bare: list[float] = []
    verdicts: dict[str, list[Sample]] = {target.name: [] for target in targets}
    while len(bare) < runs:
        count = min(BLOCK, runs - len(bare))
        time.sleep(0.2)  # background work of the last block (pool refills) settles
        bare += time_command(command, count)
        for target in targets:
            verdicts[target.name] += [target.submit(language) for _ in range(count)]
            time.sleep(0.2)
    return bare, verdicts


def paced_blocks(
    targets: list[Target], language: str, command: list[str], runs: int, gap: float
) -> tuple[list[float], dict[str, list[Sample]]]:
    """Verdicts `gap` seconds apart, as a learner submits: the pre-started sandboxes have been
    refilled and the machine is idle when each one arrives. Bare start-ups in between, as above."""
    bare: list[float] = []
    verdicts: dict[str, list[Sample]] = {target.name: [] for target in targets}
    while len(bare) < runs:
        count = min(PACED_BLOCK, runs - len(bare))
        time.sleep(gap)
        bare += time_command(command, count)
        for target in targets:
            for _ in range(count):
                time.sleep(gap)
                verdicts[target.name].append(target.submit(language))
    return bare, verdicts


def breakdown(stack: ProductionStack, samples: list[Sample]) -> dict[str, float]:
    """Median ms of each stage, from the rows of these submissions."""
    with psycopg.connect(stack.database_url) as db:
        rows = db.execute(
            "SELECT id::text, extract(epoch FROM created_at), extract(epoch FROM started_at), extract(epoch FROM finished_at)"
            " FROM submissions_submission WHERE id = ANY(%s::uuid[])",
            ([sample.submission_id for sample in samples],),
        ).fetchall()
    times = {row[0]: [float(value) for value in row[1:]] for row in rows}
    stages: dict[str, list[float]] = {"request → inserted": [], "queue wait": [], "grading": [], "record + wake + answer": []}
    for sample in samples:
        created, started, finished = times[sample.submission_id]
        stages["request → inserted"].append((created - sample.sent) * 1000)
        stages["queue wait"].append((started - created) * 1000)
        stages["grading"].append((finished - started) * 1000)
        stages["record + wake + answer"].append((sample.received - finished) * 1000)
    return {name: statistics.median(values) for name, values in stages.items()}


def throughput(stack: ProductionStack, clients: int, seconds: float, tag: str, cpu: Counter[str] | None = None) -> float:
    """Verdicts per second; with `cpu`, adds to it the run's CPU ms per verdict by part of the
    machine (cpu_use.py), "machine busy" included."""
    learners = [learner_client(stack, f"load-{tag}-{index}") for index in range(clients)]
    sessions = [practice_session(client) for client in learners]
    done = [0] * clients
    stop_at = time.monotonic() + seconds
    errors: list[Exception] = []

    def run(index: int) -> None:
        try:
            while time.monotonic() < stop_at:
                submit(learners[index], sessions[index], "python")
                done[index] += 1
        except (SystemExit, httpx.HTTPError) as exc:  # reported below; a thread must not die silently
            errors.append(exc)

    before = cpu_use.snapshot()
    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    if cpu is not None:
        busy, parts = cpu_use.per_verdict(stack, before, cpu_use.snapshot(), sum(done))
        cpu.update({"machine busy": busy, **parts})
    for client in learners:
        client.close()
    if errors:
        raise SystemExit(f"a learner failed: {errors[0]}")
    return sum(done) / elapsed


def soak(stack: ProductionStack, *, capacity: float, load: float, seconds: float, scrape_every: float) -> None:
    """Submissions at `load` × `capacity` per second for `seconds`, SLIs printed at each scrape."""
    rate = load * capacity
    senders = max(4, round(rate * 0.5))  # enough to keep the schedule while verdicts take ~0.1-0.5 s
    learners: queue.SimpleQueue[tuple[httpx.Client, str]] = queue.SimpleQueue()
    clients = []
    for index in range(senders):
        client = learner_client(stack, f"soak-{index}")
        clients.append(client)
        learners.put((client, practice_session(client)))
    scraper = httpx.Client(base_url=stack.base_url, headers={"Authorization": f"Bearer {stack.metrics_token}"}, timeout=10)
    outcomes: Counter[str] = Counter()
    late: list[float] = []
    lock = threading.Lock()

    def send(due: float) -> None:
        client, session_id = learners.get()
        try:
            with lock:
                late.append(max(0.0, time.monotonic() - due))
            try:
                outcome = str(submit_and_wait(client, session_id))
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            with lock:
                outcomes[outcome] += 1
        finally:
            learners.put((client, session_id))

    scrapes: list[tuple[float, str]] = []

    def scrape() -> None:
        response = scraper.get("/metrics")
        response.raise_for_status()
        scrapes.append((time.monotonic(), response.text))

    scrape()
    print(
        f"\nsoak: {rate:.1f} submissions/s ({load:.0%} of {capacity:.1f}/s) for {seconds:.0f} s, {senders} learners,"
        f" /metrics every {scrape_every:.0f} s"
    )
    started = time.monotonic()
    next_scrape = started + scrape_every
    with ThreadPoolExecutor(max_workers=senders) as pool:
        for index in itertools.count():
            due = started + index / rate
            if due >= started + seconds:
                break
            while (now := time.monotonic()) < due:
                if now < next_scrape:
                    time.sleep(min(due, next_scrape) - now)
                    continue
                scrape()
                print_slis(scrapes, last_seconds=SHORT_WINDOW_SECONDS)
                next_scrape += scrape_every
            pool.submit(send, due)
    time.sleep(2)  # the last verdicts reach the counters
    scrape()
    print_slis(scrapes, last_seconds=None)
    late.sort()
    print(
        f"  answers: {dict(outcomes)}; send delay p50 {percentile(late, 0.5) * 1000:.0f} ms,"
        f" p99 {percentile(late, 0.99) * 1000:.0f} ms"
    )
    for client in clients:
        client.close()
    scraper.close()


SHORT_WINDOW_SECONDS = 300  # the alert rules' shortest window


def print_slis(scrapes: list[tuple[float, str]], *, last_seconds: float | None) -> None:
    """The SLIs between the latest scrape and the one `last_seconds` before it (the first scrape
    when the soak is younger, or with None: the whole soak), as the recording rules compute them."""
    taken, after = scrapes[-1]
    start = scrapes[0]
    if last_seconds is not None:
        start = next(item for item in scrapes if item[0] >= taken - last_seconds - 1)
    window = taken - start[0]
    label = "whole soak" if last_seconds is None else f"t+{taken - scrapes[0][0]:4.0f} s, last {window:3.0f} s"
    measured = slis(start[1], after, window)
    if last_seconds is None:
        print(f"  {label}:\n" + "\n".join(f"    {sli.line()}" for sli in measured))
        return
    shown = [
        f"{short} {sli.good_ratio:.3%} (burn {sli.burn_rate:.2f}x)" if sli.total else f"{short}: no events"
        for short, sli in zip(("≤2 s", "not error", "/v1/ ok"), measured, strict=True)
    ]
    print(f"  {label}: {measured[0].total:5.0f} verdicts; " + "; ".join(shown))


def submit_and_wait(client: httpx.Client, session_id: str) -> str | int:
    """A correct Python two-sum; its final status, polling while the answer is 202; or the HTTP
    status of a refusal (429, 503)."""
    body = {
        "session_id": session_id,
        "problem_id": "two-sum",
        "subject": "coding",
        "payload": {"language": "python", "code": PYTHON_TWO_SUM},
    }
    response = client.post("/v1/submissions", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    while response.status_code == 202:
        time.sleep(0.1)
        response = client.get(f"/v1/submissions/{response.json()['id']}")
    if response.status_code != 200:
        return response.status_code
    return response.json()["status"]


def env_pairs(values: list[str]) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, _, setting = value.partition("=")
        pairs[key] = setting
    return pairs


def report_latency(language: str, bare: list[float], verdicts: dict[str, list[Sample]], bare_name: str) -> None:
    bare_p50 = statistics.median(bare)
    print(f"\n{language}: bare `{bare_name}` p50 {bare_p50:6.1f} ms, p95 {percentile(bare, 0.95):6.1f} ms ({len(bare)} runs)")
    first = None
    for name, samples in verdicts.items():
        values = [sample.ms for sample in samples]
        p50, p95 = statistics.median(values), percentile(values, 0.95)
        first = first or p50
        versus = f"  {p50 / first:5.2f}× A" if name != "A" else ""
        print(f"  {name}: verdict p50 {p50:6.1f} ms ({p50 / bare_p50:4.2f}×)  p95 {p95:6.1f} ms ({p95 / bare_p50:4.2f}×){versus}")


def stacks(args: argparse.Namespace) -> Iterator[tuple[str, ProductionStack]]:
    yield "A", ProductionStack(redis_db=args.redis_db, extra_env={**STACK_BENCH_ENV, **env_pairs(args.a_env)})
    if args.compare or args.b_env:
        code_dir = Path(args.compare).resolve() if args.compare else None
        b_env = {**STACK_BENCH_ENV, **env_pairs(args.b_env)}
        yield "B", ProductionStack(redis_db=args.redis_db + 1, extra_env=b_env, code_dir=code_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=60, help="back-to-back verdicts per language (and stack)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent learners in the throughput run")
    parser.add_argument("--paced", type=int, default=20, help="verdicts per language at a learner's pace (0: none)")
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between two paced verdicts")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each throughput run")
    parser.add_argument("--compare", metavar="DIR", help="a second checkout to run as stack B")
    parser.add_argument("--a-env", action="append", default=[], metavar="KEY=VALUE", help="environment of stack A")
    parser.add_argument("--b-env", action="append", default=[], metavar="KEY=VALUE", help="environment of stack B")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of every measurement (medians at the end)")
    parser.add_argument("--redis-db", type=int, default=12, help="Redis db of stack A (B takes the next one)")
    parser.add_argument("--soak", type=float, default=0, metavar="SECONDS", help="hold the load instead (600 for the README)")
    parser.add_argument("--soak-load", type=float, default=0.8, help="share of the measured capacity the soak sends")
    parser.add_argument("--scrape-seconds", type=float, default=15.0, help="/metrics scrape interval of the soak")
    args = parser.parse_args()
    if args.soak:
        with ProductionStack(redis_db=args.redis_db, extra_env=STACK_BENCH_ENV) as stack:
            capacity = throughput(stack, args.clients, args.seconds, "capacity")
            print(f"capacity: {capacity:.1f} verdicts/s ({args.clients} learners back to back for {args.seconds:.0f} s)")
            soak(stack, capacity=capacity, load=args.soak_load, seconds=args.soak, scrape_every=args.scrape_seconds)
        return

    python = os.environ.get("CO_SANDBOX_PYTHON") or ("/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable)
    node = shutil.which("node")
    with ExitStack() as running:
        targets = []
        for name, stack in stacks(args):
            running.enter_context(stack)
            targets.append(Target(name, stack))
        print(f"machine: {os.cpu_count()} cores; stacks: " + "; ".join(f"{t.name} = {t.stack.code_dir}" for t in targets))
        for target in targets:
            print(f"  {target.name}: {dict(sorted(target.stack.extra_env.items()))}")

        summary: list[dict[str, dict[str, float]]] = []
        for repeat in range(args.repeat):
            if args.repeat > 1:
                print(f"\n=== repeat {repeat + 1} of {args.repeat}")
            summary.append(measure(targets, args, python, node))
        if args.repeat > 1:
            print_summary(summary)


def measure(targets: list[Target], args: argparse.Namespace, python: str, node: str | None) -> dict[str, dict[str, float]]:
    """One round of every measurement on every stack: {stack: {figure: value}} (p50 ratios to the
    bare start-up, verdicts/s)."""
    figures: dict[str, dict[str, float]] = {target.name: {} for target in targets}
    bare_python, python_verdicts = latency_blocks(targets, "python", [python, "-I", "-S", "-c", "pass"], args.requests)
    report_latency("Python two-sum", bare_python, python_verdicts, "python3 -I -S -c pass")
    for name, samples in python_verdicts.items():
        figures[name]["Python ×"] = statistics.median(s.ms for s in samples) / statistics.median(bare_python)
    if node:
        bare_node, node_verdicts = latency_blocks(targets, "javascript", [node, "-e", "0"], args.requests)
        report_latency("JavaScript two-sum", bare_node, node_verdicts, "node -e 0")
        for name, samples in node_verdicts.items():
            figures[name]["JavaScript ×"] = statistics.median(s.ms for s in samples) / statistics.median(bare_node)

    if args.paced:
        print(f"\n--- at a learner's pace: one verdict every {args.gap:g} s (the pools refilled, the machine idle)")
        languages = [("python", "Python", [python, "-I", "-S", "-c", "pass"], "python3 -I -S -c pass")]
        if node:
            languages.append(("javascript", "JavaScript", [node, "-e", "0"], "node -e 0"))
        for language, title, command, bare_name in languages:
            bare, verdicts = paced_blocks(targets, language, command, args.paced, args.gap)
            report_latency(f"{title} two-sum, paced", bare, verdicts, bare_name)
            for name, samples in verdicts.items():
                figures[name][f"{title} paced ×"] = statistics.median(s.ms for s in samples) / statistics.median(bare)

    print("\nwhere a Python verdict's time goes (p50 ms)")
    for target in targets:
        stages = breakdown(target.stack, python_verdicts[target.name])
        print(f"  {target.name}: " + ", ".join(f"{name} {value:.1f}" for name, value in stages.items()))

    print(f"\nthroughput, {args.clients} learners submitting Python back to back")
    rates: dict[str, list[float]] = {target.name: [] for target in targets}
    cpu: dict[str, Counter[str]] = {target.name: Counter() for target in targets}
    for round_index in range(2):  # alternating, so drift hits A and B alike
        for target in targets:
            tag = f"{target.name}{round_index}"
            rates[target.name].append(throughput(target.stack, args.clients, args.seconds / 2, tag, cpu[target.name]))
            time.sleep(1)
    for name, values in rates.items():
        figures[name]["verdicts/s"] = statistics.mean(values)
        print(f"  {name}: {statistics.mean(values):5.1f} verdicts/s  (rounds: {', '.join(f'{v:.1f}' for v in values)})")
    print("\nCPU per verdict in that run (ms; both rounds' mean; the machine's busy time, then by part)")
    for name, parts in cpu.items():
        busy = parts.pop("machine busy") / 2
        shown = ", ".join(f"{part} {ms / 2:.1f}" for part, ms in parts.most_common() if ms / 2 >= 0.1)
        print(f"  {name}: busy {busy:.1f}: {shown}")
    print_targets(figures)
    return figures


def print_targets(figures: dict[str, dict[str, float]]) -> None:
    """Each measured figure against its target, so a run says plainly whether it meets them."""
    print("\nagainst the targets")
    for name, measured in figures.items():
        verdicts = []
        for figure, bound, limit in TARGETS:
            if figure not in measured:
                continue
            value = measured[figure]
            met = value <= limit if bound == "at most" else value >= limit
            verdicts.append(f"{figure} {value:.2f} ({bound} {limit:g}: {'met' if met else 'NOT met'})")
        print(f"  {name}: " + "; ".join(verdicts))


def print_summary(summary: list[dict[str, dict[str, float]]]) -> None:
    """Each figure of each repeat, and their median: a paired A/B whose gain is smaller than one
    run's noise shows in the median of several (B / A for ratios, A / B for verdicts/s)."""
    print(f"\n=== {len(summary)} repeats")
    for figure in summary[0]["A"]:
        for name in summary[0]:
            values = [round_figures[name][figure] for round_figures in summary]
            print(f"  {name} {figure:>13}: median {statistics.median(values):6.2f}  ({', '.join(f'{v:.2f}' for v in values)})")
        if "B" in summary[0]:
            if figure == "verdicts/s":
                gains = [r["A"][figure] / r["B"][figure] for r in summary]
            else:
                gains = [r["B"][figure] / r["A"][figure] for r in summary]
            listed = ", ".join(f"{gain:.3f}" for gain in gains)
            print(f"  gain of A {figure:>13}: median {statistics.median(gains):.3f}  ({listed})")


if __name__ == "__main__":
    main()
