"""Math verdict latency through the API, against an authenticated `GET /v1/tracks` in the same run.

Starts a real uvicorn server (embedded defaults: SQLite, eager Celery, the math worker pool) on a
fresh database with the shipped math pack published, then measures, in alternating blocks (this
VM's speed drifts within a minute, so figures taken minutes apart would measure the drift):

- `POST /v1/submissions` → verdict for a mix of learners' math answers (right in another form,
  wrong, wrong form, written as `f'(x) = …`), one client, sequential;
- `GET /v1/tracks` with the same token (authentication, throttle, one catalogue read);

and prints p50 / p95 of each, the ratio of the p50s, and the math worker's own time (the
verdict's `exec_ms`), so the verdict latency splits into checking and the pipeline around it.
Then, while a pathological answer (one SymPy cannot evaluate before the time limit) is being
checked in another thread, it times the same simple answers again: a timeout in one answer must
delay no other. Usage:

    .venv/bin/python bench/math_grading.py [--requests 200]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
from support import UvicornServer, bench_env, manage, percentile

BLOCK = 20  # samples per block of interleaved measurements
ANSWERS = [  # (problem, learner's answer, expected status)
    ("derivative-product-rule", "2x sin x + x^2 cos x", "passed"),
    ("derivative-product-rule", "f'(x) = x(2 sin x + x cos x)", "passed"),
    ("derivative-chain-rule", "6x cos(3x^2 + 1)", "passed"),
    ("derivative-chain-rule", "cos(3x^2 + 1)", "failed"),
    ("derivative-log-chain", "2x/(1 + x²)", "passed"),
    ("derivative-exp-cos", "-e^(-2x)(2cos x + sin x)", "passed"),
    ("expand-binomial-square", "x^2 + 6x + 9", "passed"),
    ("expand-binomial-square", "(x+3)^2", "failed"),
    ("simplify-rational-expression", "x + 1", "passed"),
    ("solve-linear-equation", "x = 5", "passed"),
    ("combine-fractions", "(3x + 1)/(x^2 + x)", "passed"),
    ("exponent-rules", "x^3 y^3", "passed"),
    ("definite-integral-polynomial", "24/2", "passed"),
]
PATHOLOGICAL = "sin(exp(exp(exp(x^2 + 3))))"  # evaluating it needs ~10^8 digits: hits the time limit


class Server(UvicornServer):
    """A fresh database with the math pack and development keys, served by uvicorn, and a token."""

    def __init__(self, workdir: Path) -> None:
        self.env = bench_env(workdir)
        manage(self.env, "migrate", "--no-input")
        manage(self.env, "create_dev_keys")
        manage(self.env, "import_coursepack", "coursepacks/math-foundations.yaml", "--publish")
        self.token = manage(self.env, "issue_token", "--sub", "bench", "--ttl", "7200")
        super().__init__(self.env)


_sessions: dict[tuple[int, str], str] = {}
checking: list[float] = []  # exec_ms of each verdict: the math worker's own time, without the API around it


def practice_session(client: httpx.Client, problem: str) -> str:
    """A submission names the learner's active session holding the problem: one per client and problem."""
    key = (id(client), problem)
    if key not in _sessions:
        response = client.post("/v1/sessions", json={"subject": "math", "mode": "practice", "problem_id": problem})
        if response.status_code != 201:
            raise SystemExit(f"could not start a session: {response.status_code} {response.text[:300]}")
        _sessions[key] = response.json()["id"]
    return _sessions[key]


def submit(client: httpx.Client, problem: str, expression: str, expected: str | None) -> float:
    session_id = practice_session(client, problem)
    started = time.perf_counter()
    response = client.post(
        "/v1/submissions",
        json={"session_id": session_id, "problem_id": problem, "subject": "math", "payload": {"expression": expression}},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200 or (expected is not None and response.json()["status"] != expected):
        raise SystemExit(f"unexpected verdict for {expression!r}: {response.status_code} {response.text[:300]}")
    checking.append(float(response.json()["exec_ms"]))
    return elapsed


def list_tracks(client: httpx.Client) -> float:
    started = time.perf_counter()
    response = client.get("/v1/tracks")
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"GET /v1/tracks answered {response.status_code}")
    return elapsed


def figures(name: str, samples: list[float]) -> str:
    return f"{name:<44} p50 {percentile(samples, 0.5):7.1f} ms   p95 {percentile(samples, 0.95):7.1f} ms   n={len(samples)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="math verdicts (and as many GET /v1/tracks)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="co-bench-") as workdir:
        server = Server(Path(workdir))
        try:
            headers = {"Authorization": f"Bearer {server.token}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
                for problem, expression, expected in ANSWERS:  # warm-up: workers started, caches filled
                    submit(client, problem, expression, expected)
                    list_tracks(client)
                answers = itertools.cycle(ANSWERS)
                checking.clear()
                verdicts: list[float] = []
                tracks: list[float] = []
                while len(verdicts) < args.requests:
                    count = min(BLOCK, args.requests - len(verdicts))
                    tracks += [list_tracks(client) for _ in range(count)]
                    verdicts += [submit(client, *next(answers)) for _ in range(count)]
                worker_time = list(checking)

                slow_latency: list[float] = []
                with httpx.Client(base_url=server.url, headers=headers, timeout=60) as slow_client:
                    slow = threading.Thread(
                        target=lambda: slow_latency.append(
                            submit(slow_client, "derivative-product-rule", PATHOLOGICAL, "timeout")
                        )
                    )
                    slow.start()
                    time.sleep(0.2)  # let it reach its worker
                    during: list[float] = []
                    while slow.is_alive() and len(during) < len(ANSWERS) * 3:
                        during.append(submit(client, *next(answers)))
                    slow.join()
        finally:
            server.stop()

    print(figures("math verdict (POST /v1/submissions)", verdicts))
    print(figures("authenticated GET /v1/tracks", tracks))
    print(f"{'ratio of the p50s (math / tracks)':<44} {percentile(verdicts, 0.5) / percentile(tracks, 0.5):.2f}")
    print(figures("of which the math check (exec_ms)", worker_time))
    print(figures("math verdict while another answer times out", during))
    print(f"{'the pathological answer (timeout verdict)':<44} {slow_latency[0]:7.1f} ms")


if __name__ == "__main__":
    main()
