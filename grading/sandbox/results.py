"""The sandbox's API types: what a run asks for and what it gives back."""

from __future__ import annotations

import json
import marshal
from dataclasses import dataclass, field
from typing import Any

# The marshal format the Python harness reads: version 4 is what every Python 3.4+ reads, so the
# sandbox's interpreter need not be this process's.
MARSHAL_VERSION = 4

LANGUAGES = ("python", "javascript")
OUTCOMES = ("ok", "runtime_error", "time_limit", "memory_limit", "output_limit")
STATUSES = ("completed", "syntax_error", "error")
ISOLATION_LEVELS = ("bubblewrap", "unshare", "none")
# SandboxResult.error of a run that found no free uid slot before its deadline (the machine is busy).
SANDBOX_BUSY = "the server is busy: no sandbox came free in time"


@dataclass(frozen=True)
class EncodedInputs:
    """A run's inputs encoded once by the trusted caller, in each harness's format: a problem's
    hidden inputs are encoded with its bundle, not on every evaluation (encoding grows with the
    number of values), and the Python harness decodes marshal faster than JSON."""

    count: int
    keys: frozenset[str]  # the argument names every input has
    json: bytes  # the JSON array (the Node harness)
    marshal: bytes  # the same list, marshalled (the Python harness)

    @classmethod
    def of(cls, inputs: list[dict[str, Any]]) -> EncodedInputs:
        """ValueError unless `inputs` is a list of dicts of JSON values."""
        if not isinstance(inputs, list) or not all(isinstance(case, dict) for case in inputs):
            raise ValueError("inputs must be a list of dicts")
        try:
            encoded = json.dumps(inputs, allow_nan=False).encode("utf-8", "surrogatepass")
        except (TypeError, ValueError, RecursionError) as exc:
            raise ValueError(f"inputs must be JSON values: {exc}") from exc
        keys = frozenset.intersection(*(frozenset(case) for case in inputs)) if inputs else frozenset()
        return cls(len(inputs), keys, encoded, marshal.dumps(inputs, MARSHAL_VERSION))

    def __repr__(self) -> str:
        return f"EncodedInputs(count={self.count})"  # hidden inputs stay out of log lines


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
    inputs: list[dict] | EncodedInputs  # one dict per test: arguments by name
    time_limit_ms: int  # per test
    memory_limit_mb: int  # per run
    output_limit_bytes: int = 64 * 1024
    # The wall-time backstop per test; None: the default (runner.wall_limit_ms). A caller that sets
    # it asks for CPU time alone to judge the limit, with this much wall time before a test is cut
    # (a re-check of a time limit on a loaded machine: see evaluators/coding.py).
    wall_limit_ms: int | None = None


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
