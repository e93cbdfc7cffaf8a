"""Runs staff-authored code at validation/publish time: hidden-test generators and reference
solutions (Python always, JavaScript when Node is installed).

One process per language per pack, with an empty environment, a scratch working directory,
a new session and resource limits, so a runaway generator cannot take the web process down.
Learner code never comes here; it goes through the submissions sandbox.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

HARNESS_DIR = Path(__file__).resolve().parent / "harness"
_MEMORY_LIMIT_BYTES = 2 * 1024**3


class AuthoringRunFailed(Exception):
    """The authoring process itself failed (crashed, timed out, printed garbage)."""


@dataclass(frozen=True)
class AuthoringJob:
    reference: str
    entrypoint: str
    parameters: list[str]
    inputs: list[dict[str, Any]]
    generators: list[dict[str, Any]]


def _limit_resources() -> None:  # runs in the child between fork and exec
    resource.setrlimit(resource.RLIMIT_AS, (_MEMORY_LIMIT_BYTES, _MEMORY_LIMIT_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _run(command: list[str], payload: dict[str, Any], *, limit_memory: bool) -> dict[str, Any]:
    timeout = settings.CO_AUTHORING_RUN_TIMEOUT_SECONDS
    with tempfile.TemporaryDirectory(prefix="co-authoring-") as scratch:
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=scratch,
            env={"LANG": "C.UTF-8"},
            start_new_session=True,
            preexec_fn=_limit_resources if limit_memory else None,
        )
        try:
            stdout, stderr = process.communicate(json.dumps(payload).encode(), timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise AuthoringRunFailed(f"{command[0]} authoring run exceeded {timeout:g}s") from exc
    if process.returncode != 0:
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise AuthoringRunFailed(f"{Path(command[0]).name} authoring run exited {process.returncode}: {tail[0][:300]}")
    try:
        return json.loads(stdout)
    except ValueError as exc:
        raise AuthoringRunFailed("authoring run printed something that is not JSON") from exc


def run_python(jobs: dict[str, AuthoringJob]) -> dict[str, Any]:
    payload = {key: job.__dict__ for key, job in jobs.items()}
    return _run([sys.executable, "-I", "-S", str(HARNESS_DIR / "authoring_python.py")], payload, limit_memory=True)


def node_path() -> str | None:
    return shutil.which("node")


def run_javascript(jobs: dict[str, AuthoringJob]) -> dict[str, Any] | None:
    """None when Node is not installed (the report then says JavaScript was not checked)."""
    node = node_path()
    if node is None:
        return None
    payload = {key: {**job.__dict__, "generators": []} for key, job in jobs.items()}
    # V8 reserves far more address space than it uses: bound its heap instead of RLIMIT_AS.
    command = [node, "--max-old-space-size=1024", str(HARNESS_DIR / "authoring_node.js")]
    return _run(command, payload, limit_memory=False)
