"""Helpers of the sandbox attack tests: planted secrets, a loopback service, the clean-verdict check."""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings

from grading.sandbox import SandboxResult, SandboxRun, run_in_sandbox

ENV_SENTINEL = f"sentinel-env-{secrets.token_hex(8)}"
FILE_SENTINEL = f"sentinel-file-{secrets.token_hex(8)}"
SANDBOX_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp"}
ROOT_ALLOWED = {"bin", "dev", "lib", "lib32", "lib64", "libx32", "proc", "sandbox", "sbin", "tmp", "usr"}
UNREACHABLE = {"ECONNREFUSED", "ENETUNREACH", "EHOSTUNREACH", "EACCES", "EPERM"}


@dataclass
class Context:
    secret_file: str
    api_port: int
    project: str


class ApiStandIn(BaseHTTPRequestHandler):
    """What the loopback "API" answers: the sandbox must not reach it; the host must."""

    def do_GET(self) -> None:
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def forbidden_strings(context: Context) -> list[str]:
    strings = [ENV_SENTINEL, FILE_SENTINEL, settings.SECRET_KEY, "PRIVATE KEY", "CO_SENTINEL", "DJANGO_SETTINGS", "root:x:0:0"]
    private = Path(context.project) / "var" / "jwt-dev-private.pem"
    if private.exists():
        strings.append(private.read_text().splitlines()[1][:40])
    return strings


def paths_to_steal(context: Context) -> list[str]:
    project = context.project
    return [
        "/etc/shadow",
        "/etc/passwd",
        f"{project}/.env",
        f"{project}/var/jwt-dev-private.pem",
        f"{project}/co_project/settings.py",
        f"{project}/var/co.sqlite3",
        context.secret_file,
        "/root/.bashrc",
        "/root/.ssh/id_rsa",
        "/work",
        "/home",
        "/proc/1/root/etc/shadow",
        "/sys/kernel/mm",
    ]


def run_attack(language: str, code: str, inputs: list[dict[str, Any]], **overrides: Any) -> SandboxResult:
    parameters = list(inputs[0]) if inputs else ["x"]
    fields = {"entrypoint": "attack", "parameters": parameters, "time_limit_ms": 500, "memory_limit_mb": 64, **overrides}
    return run_in_sandbox(SandboxRun(language=language, code=code, inputs=inputs, **fields))


def assert_clean(result: SandboxResult, context: Context, tests: int) -> None:
    """A clean verdict that leaks nothing, and the host is fine."""
    assert isinstance(result, SandboxResult)
    assert result.status == "completed", result
    assert len(result.tests) == tests
    assert result.isolation in {"zygote", "bubblewrap", "unshare"}
    text = repr(result)
    for forbidden in forbidden_strings(context):
        assert forbidden not in text, f"{forbidden!r} leaked: {text[:2000]}"
    assert os.environ["CO_SENTINEL_SECRET"] == ENV_SENTINEL
    assert Path(context.secret_file).read_text() == FILE_SENTINEL
    assert stat.S_IMODE(os.stat(context.secret_file).st_mode) == 0o600
    response = httpx.get(f"http://127.0.0.1:{context.api_port}/", timeout=5)
    assert response.json() == {"status": "ok"}
