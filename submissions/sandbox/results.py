"""The sandbox's API types: what a run asks for and what it gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LANGUAGES = ("python", "javascript")
OUTCOMES = ("ok", "runtime_error", "time_limit", "memory_limit", "output_limit")
STATUSES = ("completed", "syntax_error", "error")
ISOLATION_LEVELS = ("bubblewrap", "unshare", "none")


@dataclass(frozen=True)
class SandboxRun:
    """One sandbox run: one fresh process in which all `inputs` are run in order.

    `inputs` carry only the arguments (by parameter name); expected outputs never enter the
    sandbox. `time_limit_ms` is per test (CPU time; wall time is bounded too), `memory_limit_mb`
    per run, `output_limit_bytes` bounds each returned value (as JSON) and what a test prints.
    """

    language: str  # "python" | "javascript"
    code: str  # learner code (untrusted), at most 64 KiB
    entrypoint: str  # function name to call
    parameters: list[str]  # argument names, call order
    inputs: list[dict]  # one dict per test: arguments by name
    time_limit_ms: int  # per test
    memory_limit_mb: int  # per run
    output_limit_bytes: int = 64 * 1024
    inputs_json: bytes | None = None  # `inputs` already encoded as JSON by the (trusted) caller


@dataclass
class SandboxTestResult:
    outcome: str  # "ok" | "runtime_error" | "time_limit" | "memory_limit" | "output_limit"
    value: Any = None  # the returned value (JSON-decoded) when outcome == "ok"
    error: str | None = None  # short readable reason; never host paths or environment
    time_ms: int = 0
    ran: bool = True  # False for tests never reached (the run stopped at an earlier test)


@dataclass
class SandboxResult:
    status: str  # "completed" | "syntax_error" | "error" (the sandbox itself failed)
    tests: list[SandboxTestResult] = field(default_factory=list)
    error: str | None = None  # the syntax error (with line/column) or the failure reason
    wall_ms: int = 0
    peak_memory_kb: int = 0
    isolation: str = "none"  # "bubblewrap" | "unshare" | "none"
    warm: bool = False  # ran in a pre-started sandbox (warm.py)


class SandboxUnavailable(Exception):
    """Isolation is required (production) but this machine cannot provide it."""
