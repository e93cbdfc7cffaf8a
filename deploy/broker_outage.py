"""Does a Celery worker of the pinned Celery, kombu and redis-py outlive a Redis outage that
comes while it holds tasks it received and has not acknowledged? Run it before changing any of
the three in requirements.txt.

Each trial: a private Redis, a bare Celery app configured as CO's (acks_late, prefetch 1, two
pool processes), six short tasks queued, Redis stopped a fraction of a second later for 3 s and
started again; then a new task must run. Celery 5.7.0 failed 9 of 37 such trials here (its
consumer died restoring the unacknowledged tasks: "Unrecoverable error … 'hostname'"), 5.6.3
none of 45. CO's own stack meets Redis outages in deploy/faults.py (b), which has not caught this
race in CO's worker: this bare app does, in about a quarter of its trials. CI runs eight.

    var/prod-venv/bin/python deploy/broker_outage.py [--trials 15]

The exit status is 0 only when the worker outlived every outage.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `deploy` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy.faults import PrivateRedis

APP = """
import os, time
from celery import Celery

app = Celery("outage", broker=os.environ["OUTAGE_BROKER"])
app.conf.update(
    task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
    task_ignore_result=True, broker_connection_retry_on_startup=True,
    broker_transport_options={"visibility_timeout": 3600},
)

@app.task
def nap(seconds):
    time.sleep(seconds)
"""


def _send(env: dict[str, str], directory: str, seconds: float) -> str:
    """Queue one task from a process of its own (as a web process would); its id."""
    code = f"import app; print(app.nap.delay({seconds}).id)"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=directory, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def trial(directory: str, rng: random.Random) -> tuple[bool, str]:
    """One outage; (the worker outlived it and ran a new task, what its log said if not)."""
    redis = PrivateRedis()
    redis.start()
    env = {**os.environ, "OUTAGE_BROKER": f"redis://127.0.0.1:{redis.port}/0"}
    log_path = Path(directory) / f"worker-{redis.port}.log"
    celery = str(Path(sys.executable).parent / "celery")
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [celery, "-A", "app", "worker", "--concurrency", "2", "--loglevel", "INFO"],
            cwd=directory,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while b"ready." not in log_path.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.2)
        for _ in range(6):
            _send(env, directory, rng.uniform(0.1, 0.9))
        time.sleep(rng.uniform(0.1, 0.9))
        redis.stop()
        time.sleep(3)
        redis.start()
        time.sleep(6)
        task_id = _send(env, directory, 0.1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if f"{task_id}] succeeded".encode() in log_path.read_bytes():
                return True, ""
            time.sleep(0.2)
        lines = log_path.read_text(errors="replace").splitlines()
        return False, next((line for line in lines if "Unrecoverable" in line), "the new task did not run")
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        redis.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument("--seed", type=int, default=1, help="the outages' moments")
    args = parser.parse_args()
    import celery
    import kombu
    import redis

    print(f"broker outage: Celery {celery.__version__}, kombu {kombu.__version__}, redis-py {redis.__version__}")
    rng = random.Random(args.seed)  # noqa: S311 - the outages' moments, not a secret
    failures = 0
    with tempfile.TemporaryDirectory(prefix="co-outage-") as directory:
        (Path(directory) / "app.py").write_text(APP)
        for number in range(1, args.trials + 1):
            survived, why = trial(directory, rng)
            failures += not survived
            print(f"  trial {number}: {'the worker outlived the outage' if survived else 'FAILED: ' + why}", flush=True)
    print(f"broker outage: {args.trials - failures} of {args.trials} outlived")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
