"""What every benchmark needs: percentiles, the bench environment, `manage.py` and a real
uvicorn server on a free port (started, waited for, stopped)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # deploy/ (the production stack, the smoke test's solutions)

# On top of the production environment of a bench's stack (deploy/stack.py): no rate limit. The
# log level stays production's (INFO): writing the logs is part of what a verdict costs there.
STACK_BENCH_ENV = {"CO_RATE_LIMIT": "1000000/min"}


def time_command(command: list[str], runs: int) -> list[float]:
    """Milliseconds of `runs` runs of a command, after one unmeasured run (the page cache)."""
    subprocess.run(command, check=True, capture_output=True)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_env(workdir: Path, **overrides: str) -> dict[str, str]:
    """Development settings on a fresh SQLite file in `workdir`, no rate limit, quiet logs; no
    CO_* variable of the caller's shell leaks in."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("CO_")},
        "CO_ENV": "development",
        "CO_DB_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
        "CO_MEDIA_ROOT": str(workdir / "media"),
        "CO_RATE_LIMIT": "1000000/min",
        "CO_LOG_LEVEL": "WARNING",
        **overrides,
    }


def in_process_django_env(workdir: Path, db_url: str = "") -> dict[str, str]:
    """For a bench that builds its data with Django in its own process and then serves it: the
    bench environment (on `db_url` when given) made this process's, from the repository."""
    env = bench_env(workdir, DJANGO_SETTINGS_MODULE="co_project.settings")
    if db_url:
        env["CO_DB_URL"] = db_url
    os.environ.update(env)
    os.chdir(REPO)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


class UvicornServer:
    """`co_project.asgi` under uvicorn in its own process, answering `/health` before use."""

    def __init__(self, env: dict[str, str], *extra_args: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "co_project.asgi:application", "--port", str(self.port),
             "--lifespan", "off", "--log-level", "warning", "--no-access-log", *extra_args],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(400):
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise SystemExit("the server did not start")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
