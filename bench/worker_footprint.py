"""What one Celery pool process holds once warmed up, by the queues its worker consumes.

For a worker without `-Q` and for one per grading queue (`grade-python`, `grade-javascript`,
`grade-math`, `grade-systems`), starts `celery -A co_project worker --concurrency 1 [-Q queue]`,
waits until the pool process and what it started (SymPy workers, the fork helper, pre-started
sandboxes) have stopped changing, and prints their number and proportional set size (PSS, so
shared pages count once). Needs no database or broker: a pool process warms up before it takes
a task, and the worker runs on the in-memory transport. Run as root, as the worker runs. Usage:

    .venv/bin/python bench/worker_footprint.py [--settle 5] [--timeout 90]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QUEUES = ("", "grade-python", "grade-javascript", "grade-math", "grade-systems")


def _children(pid: int) -> list[int]:
    """Children of every thread of `pid` (the sandbox pool's refill thread starts sandboxes)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _tree(pid: int) -> list[int]:
    pids, stack = [pid], _children(pid)
    while stack:
        child = stack.pop()
        pids.append(child)
        stack += _children(child)
    return pids


def _pss_kib(pid: int) -> int:
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")), 0)


def _pool_process(worker: subprocess.Popen[bytes]) -> int | None:
    for pid in _children(worker.pid):
        try:
            if b"celery" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    return None


def measure(queue: str, *, settle: float, timeout: float) -> tuple[int, float, float]:
    """(processes, PSS MiB of them all, PSS MiB of the pool process) once the tree is stable."""
    # No database or broker; the sandbox settings (CO_SANDBOX_UID, …) as the caller has them.
    env = {key: value for key, value in os.environ.items() if not key.startswith("CO_") or key.startswith("CO_SANDBOX_")}
    env.update(CO_ENV="test", CO_JWT_PUBLIC_KEY="unused-by-the-worker")
    consume = ["-Q", queue] if queue else []
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "co_project", "worker", "--concurrency", "1", "--pool", "prefork",
         "--without-heartbeat", "--without-mingle", "--without-gossip", "-n", f"footprint-{queue or 'all'}@%h", *consume],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        last, stable_since = None, time.monotonic()
        while time.monotonic() < deadline:
            pool = _pool_process(worker)
            tree = tuple(sorted(_tree(pool))) if pool else None
            if tree != last:
                last, stable_since = tree, time.monotonic()
            elif tree and time.monotonic() - stable_since >= settle:
                return len(tree), sum(map(_pss_kib, tree)) / 1024, _pss_kib(pool) / 1024
            time.sleep(0.2)
        raise SystemExit(f"the {queue or 'all-queue'} worker's pool did not settle within {timeout:.0f} s")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=5.0, help="seconds the process tree must stay unchanged")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for it per worker")
    args = parser.parse_args()
    print("| worker | processes | PSS, all | PSS, the pool process itself |")
    print("| --- | --- | --- | --- |")
    for queue in QUEUES:
        processes, total, own = measure(queue, settle=args.settle, timeout=args.timeout)
        print(f"| {'-Q ' + queue if queue else 'no -Q'} | {processes} | {total:.0f} MiB | {own:.0f} MiB |", flush=True)


if __name__ == "__main__":
    main()
