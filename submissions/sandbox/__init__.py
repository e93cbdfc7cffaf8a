"""The embedded code sandbox (DESIGN §5): learner Python and JavaScript in a fresh, isolated,
resource-limited process per run. See runner.py (the trusted side) and isolation.py (how)."""

from submissions.sandbox.isolation import isolation_level
from submissions.sandbox.results import SandboxResult, SandboxRun, SandboxTestResult, SandboxUnavailable
from submissions.sandbox.runner import run_in_sandbox

__all__ = [
    "SandboxResult",
    "SandboxRun",
    "SandboxTestResult",
    "SandboxUnavailable",
    "isolation_level",
    "run_in_sandbox",
]
