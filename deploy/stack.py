"""CO started as the README's *Production* section tells an operator, for smoke tests and benches.

Every command line and every environment variable of a production start is defined here once
(`SETUP_COMMANDS`, `service_commands`, `production_environment`), so the smoke test, the benches
and a compose file start the same thing. It needs only runtime dependencies (stdlib, httpx,
psycopg, cryptography, PyJWT), so it runs in a virtualenv built from `requirements.txt` alone; the
programs it starts (`python`, `gunicorn`, `celery`) are those of the virtualenv of the Python
that runs it, so running it with a production virtualenv's Python tests that virtualenv.

    with ProductionStack(redis_db=14) as stack:
        httpx.get(f"{stack.base_url}/v1/tracks", headers={"Authorization": f"Bearer {stack.token('alice')}"})

`python -m deploy.stack` starts one and keeps it up until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import httpx
import jwt
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
# The issuer settings expect when CO_JWT_ISSUER is not set (co_project/settings.py).
DEFAULT_ISSUER = "https://api.scimigo.com"
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_HOST = "127.0.0.1"
DEFAULT_REDIS_PORT = 6379

# Run once per deploy, in this order, before the services start. `python` is the virtualenv's.
SETUP_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("python", "manage.py", "migrate", "--no-input"),
    ("python", "manage.py", "collectstatic", "--no-input"),
    ("python", "manage.py", "seed"),
)


def service_commands(
    *, worker_concurrency: int, beat_schedule: str, worker_queues: Sequence[str] = (), worker_name: str = ""
) -> dict[str, tuple[str, ...]]:
    """The long-running processes, from the repository root. Beat keeps its schedule file where it
    is told (the default would be the current directory, i.e. the code). The worker consumes every
    queue unless given `worker_queues` (a pool for some grading queues only, e.g. `grade-python`);
    `worker_name` is its node name, which must differ between workers on one host (`python@%h`)."""
    worker = ("celery", "-A", "co_project", "worker", "--concurrency", str(worker_concurrency))
    if worker_queues:
        worker += ("-Q", ",".join(worker_queues))
    if worker_name:
        worker += ("-n", worker_name)
    return {
        "web": ("gunicorn", "-c", "gunicorn.conf.py"),
        "worker": worker,
        "beat": ("celery", "-A", "co_project", "beat", "--schedule", beat_schedule),
    }


def production_environment(
    *,
    secret_key: str,
    jwt_public_key: str,
    db_url: str,
    redis_url: str,
    allowed_hosts: str,
    web_bind: str,
    web_workers: int,
    metrics_token: str,
    metrics_dir: str,
) -> dict[str, str]:
    """What an operator exports (README, Production): everything else keeps its default."""
    return {
        "CO_ENV": "production",
        "CO_SECRET_KEY": secret_key,
        "CO_JWT_PUBLIC_KEY": jwt_public_key,
        "CO_DB_URL": db_url,
        "CO_REDIS_URL": redis_url,
        "CO_ALLOWED_HOSTS": allowed_hosts,
        "CO_WEB_BIND": web_bind,
        "CO_WEB_WORKERS": str(web_workers),
        "CO_METRICS_TOKEN": metrics_token,
        "CO_METRICS_DIR": metrics_dir,
    }


class StackError(RuntimeError):
    """The stack could not be set up or started, or a service died."""


class ProductionStack:
    """CO on a database of its own and a Redis db given by the caller, with keys made for the run.

    Web (gunicorn + uvicorn workers), Celery worker and Celery beat each run in their own process
    group with their output in a log file under `log_dir`; the logs are printed when the stack
    fails to start or the `with` block raises, and kept (not deleted) then or with `keep_logs`.
    `code_dir` is the checkout to run (this one by default), `extra_env` goes on top of the
    production environment (e.g. a higher CO_RATE_LIMIT for a bench).
    """

    def __init__(
        self,
        *,
        redis_db: int,
        extra_env: Mapping[str, str] | None = None,
        code_dir: Path | None = None,
        postgres_url: str = DEFAULT_POSTGRES_URL,
        redis_host: str = DEFAULT_REDIS_HOST,
        redis_port: int = DEFAULT_REDIS_PORT,
        web_workers: int = 2,
        worker_concurrency: int = 2,
        startup_timeout: float = 240.0,
        stop_timeout: float = 30.0,
        keep_logs: bool = False,
    ) -> None:
        self.redis_db = redis_db
        self.extra_env = dict(extra_env or {})
        # The checkout whose code runs (this one by default; a bench may compare another).
        self.code_dir = (code_dir or REPO).resolve()
        self.postgres_url = postgres_url
        self.redis_host = redis_host
        self.redis_port = redis_port
        self.web_workers = web_workers
        self.worker_concurrency = worker_concurrency
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        # sys.executable, not its resolved path: the symlink is what makes it the virtualenv's.
        self.python = sys.executable
        self.bin_dir = Path(sys.executable).parent
        self.issuer = self.extra_env.get("CO_JWT_ISSUER", DEFAULT_ISSUER)
        self.audience = self.extra_env.get("CO_JWT_AUDIENCE") or None
        self.database_name = f"co_smoke_{secrets.token_hex(6)}"
        self.metrics_token = secrets.token_urlsafe(32)  # GET /metrics: `Authorization: Bearer <it>`
        self.database_url = ""
        self.base_url = ""
        self.log_dir: Path | None = None  # made by start()
        self.env: dict[str, str] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._private_key: rsa.RSAPrivateKey | None = None
        self._database_created = False
        self._keep_logs = keep_logs

    # --- context manager -----------------------------------------------------------------

    def __enter__(self) -> ProductionStack:
        try:
            self.start()
        except BaseException:
            self.print_logs()
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None) -> None:
        if exc_type is not None:
            self.print_logs()
        self.stop()

    # --- start -----------------------------------------------------------------------------

    def start(self) -> None:
        """Set up keys, database and Redis, run the deploy steps, start the services, wait for /health."""
        if (self.code_dir / ".env").is_file():
            print(f"stack: note: {self.code_dir / '.env'} is read too, for what the stack does not set", file=sys.stderr)
        self.log_dir = Path(tempfile.mkdtemp(prefix="co-stack-"))
        public_key_path = self._make_keys(self.log_dir)
        self.database_url = self._create_database()
        self._redis_flush()
        port = _free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self.env = self._environment(
            production_environment(
                secret_key=secrets.token_urlsafe(50),
                jwt_public_key=str(public_key_path),
                db_url=self.database_url,
                redis_url=f"redis://{self.redis_host}:{self.redis_port}/{self.redis_db}",
                allowed_hosts="127.0.0.1,localhost",
                web_bind=f"127.0.0.1:{port}",
                web_workers=self.web_workers,
                metrics_token=self.metrics_token,
                metrics_dir=str(self.log_dir / "metrics"),  # one per host: this stack's web and worker
            )
        )
        for command in SETUP_COMMANDS:
            self._run_setup(command, self.log_dir / "setup.log")
        commands = service_commands(
            worker_concurrency=self.worker_concurrency, beat_schedule=str(self.log_dir / "celerybeat-schedule")
        )
        for name, command in commands.items():
            self._start_service(name, command, self.log_dir / f"{name}.log")
        self._wait_until_ready()

    def _make_keys(self, directory: Path) -> Path:
        """An RS256 key pair for this run: the services get the public half, `token` signs with the other."""
        self._private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path = directory / "jwt-public.pem"
        path.write_bytes(
            self._private_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return path

    def _create_database(self) -> str:
        with psycopg.connect(self.postgres_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database_name)))
        self._database_created = True
        return urlsplit(self.postgres_url)._replace(path=f"/{self.database_name}").geturl()

    def _redis_flush(self) -> None:
        _redis_commands(self.redis_host, self.redis_port, ("SELECT", str(self.redis_db)), ("FLUSHDB",))

    def _environment(self, production: Mapping[str, str]) -> dict[str, str]:
        """This process's environment without any CO_ setting of its own (a developer's shell may
        have some), the virtualenv first on PATH, then the production settings and the caller's."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CO_") and k != "DJANGO_SETTINGS_MODULE"}
        env["PATH"] = os.pathsep.join([str(self.bin_dir), env.get("PATH", os.defpath)])
        env["PYTHONUNBUFFERED"] = "1"
        env.update(production)
        env.update(self.extra_env)
        return env

    def _argv(self, command: tuple[str, ...]) -> list[str]:
        program = self.python if command[0] == "python" else str(self.bin_dir / command[0])
        return [program, *command[1:]]

    def _run_setup(self, command: tuple[str, ...], log_path: Path) -> None:
        with log_path.open("ab") as log:
            log.write(f"$ {' '.join(command)}\n".encode())
            log.flush()
            result = subprocess.run(
                self._argv(command),
                cwd=self.code_dir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=600,
            )
        if result.returncode != 0:
            raise StackError(f"`{' '.join(command)}` exited with status {result.returncode}")

    def _start_service(self, name: str, command: tuple[str, ...], log_path: Path) -> None:
        log = log_path.open("ab")
        try:
            self.processes[name] = subprocess.Popen(
                self._argv(command), cwd=self.code_dir, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            log.close()  # the child has its own copy

    def _wait_until_ready(self) -> None:
        """Until /health answers 200 and the worker's pool is up; a service that exits fails it."""
        deadline = time.monotonic() + self.startup_timeout
        healthy = False
        with httpx.Client(timeout=60.0) as client:
            while time.monotonic() < deadline:
                self.check_alive()
                if not healthy:
                    with contextlib.suppress(httpx.TransportError):
                        healthy = client.get(f"{self.base_url}/health").status_code == 200
                if healthy and len(self.pool_child_pids()) >= self.worker_concurrency:
                    return
                time.sleep(0.5)
        raise StackError(
            f"not ready after {self.startup_timeout:.0f} s (health 200: {healthy}, "
            f"worker pool processes: {len(self.pool_child_pids())} of {self.worker_concurrency})"
        )

    # --- while running ---------------------------------------------------------------------

    def check_alive(self) -> None:
        """Raise when a service has exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise StackError(f"{name} exited with status {process.returncode}")

    def token(self, sub: str, ttl_seconds: int = 3600) -> str:
        """A learner token as the platform's main API issues it (RS256, iss, exp)."""
        if self._private_key is None:
            raise StackError("the stack has not been started")
        now = int(time.time())
        claims: dict[str, object] = {"sub": sub, "iss": self.issuer, "iat": now, "exp": now + ttl_seconds}
        if self.audience:
            claims["aud"] = self.audience
        return jwt.encode(claims, self._private_key, algorithm="RS256")

    @property
    def worker_pid(self) -> int:
        return self.processes["worker"].pid

    def pool_child_pids(self) -> list[int]:
        """The Celery worker's pool processes: its children running the same command line (any
        other child, such as a sandbox helper, runs something else)."""
        worker = self.processes.get("worker")
        if worker is None or worker.poll() is not None:
            return []
        parent_cmdline = _cmdline(worker.pid)
        return sorted(
            pid for pid, ppid in _processes() if ppid == worker.pid and parent_cmdline and _cmdline(pid) == parent_cmdline
        )

    def print_logs(self, tail_lines: int = 200) -> None:
        """The last lines of every log, to stderr; the log directory is kept."""
        self._keep_logs = True
        if self.log_dir is None or not self.log_dir.is_dir():
            return
        for path in sorted(self.log_dir.glob("*.log")):
            lines = path.read_text(errors="replace").splitlines()
            print(f"\n----- {path} (last {min(tail_lines, len(lines))} of {len(lines)} lines)", file=sys.stderr)
            print("\n".join(lines[-tail_lines:]), file=sys.stderr)
        print(f"----- logs kept in {self.log_dir}", file=sys.stderr, flush=True)

    # --- stop ------------------------------------------------------------------------------

    def stop(self) -> None:
        """SIGTERM to every service's process group, SIGKILL to what is left after `stop_timeout`,
        then drop the database and empty the Redis db. Safe to call more than once."""
        groups = {name: process.pid for name, process in self.processes.items()}
        for pgid in groups.values():
            _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while time.monotonic() < deadline and any(_group_alive(pgid) for pgid in groups.values()):
            for process in self.processes.values():
                process.poll()  # reap the group leaders
            time.sleep(0.2)
        for name, pgid in groups.items():
            if _group_alive(pgid):
                print(f"stack: {name} did not stop on SIGTERM within {self.stop_timeout:.0f} s; SIGKILL", file=sys.stderr)
                _signal_group(pgid, signal.SIGKILL)
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        self.processes.clear()
        if self._database_created:
            with psycopg.connect(self.postgres_url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.database_name)))
            self._database_created = False
            with contextlib.suppress(OSError, StackError):
                self._redis_flush()
        if self.log_dir is not None and not self._keep_logs:
            shutil.rmtree(self.log_dir, ignore_errors=True)


# --- helpers ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_commands(host: str, port: int, *commands: tuple[str, ...]) -> None:
    """Send commands over RESP and require a simple-string reply to each (no client library is a
    runtime dependency of CO itself)."""
    payload = b"".join(
        f"*{len(command)}\r\n".encode() + b"".join(f"${len(part.encode())}\r\n{part}\r\n".encode() for part in command)
        for command in commands
    )
    with socket.create_connection((host, port), timeout=5) as sock, sock.makefile("rb") as replies:
        sock.sendall(payload)
        for command in commands:
            reply = replies.readline()
            if not reply.startswith(b"+"):
                raise StackError(f"redis {command[0]}: {reply.decode(errors='replace').strip()}")


def _processes() -> list[tuple[int, int]]:
    """(pid, ppid) of every live process, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and fields[0] != "Z":
                found.append((int(entry.name), int(fields[1])))
    return found


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: state, ppid, pgrp, ...; empty when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat[stat.rfind(")") + 2 :].split()


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _group_alive(pgid: int) -> bool:
    """Whether any live (not zombie) process is still in the process group."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and fields[0] != "Z" and int(fields[2]) == pgid:
                return True
    return False


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """Start a stack and keep it up until interrupted (manual checks against production settings).
    SIGTERM stops it as Ctrl-C does, and so does SIGINT when the shell started it in the background."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    redis_db = int(os.environ.get("CO_STACK_REDIS_DB", "10"))
    with ProductionStack(redis_db=redis_db) as stack:
        print(f"CO is up at {stack.base_url} (logs in {stack.log_dir}); Ctrl-C stops it.")
        print(f"export T={stack.token('dev-learner')}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                stack.check_alive()
                time.sleep(1)


if __name__ == "__main__":
    main()
