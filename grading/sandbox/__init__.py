"""The embedded code sandbox (DESIGN §5): learner Python and JavaScript in a fresh, isolated,
resource-limited process per run. See runner.py (the trusted side) and isolation.py (how)."""

from grading.sandbox.isolation import isolation_level
from grading.sandbox.results import SANDBOX_BUSY, SandboxResult, SandboxRun, SandboxTestResult, SandboxUnavailable
from grading.sandbox.runner import run_in_sandbox, sandbox_warm_up

__all__ = [
    "SANDBOX_BUSY",
    "SandboxResult",
    "SandboxRun",
    "SandboxTestResult",
    "SandboxUnavailable",
    "isolation_level",
    "run_in_sandbox",
    "sandbox_warm_up",
]
