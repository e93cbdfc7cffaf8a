"""What an evaluator returns: one verdict shape for code, math and rubric grading."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Verdict:
    status: str  # passed | failed | timeout | error
    visible_passed: int = 0
    visible_total: int = 0
    visible_details: list[dict[str, Any]] = field(default_factory=list)
    hidden_passed: int = 0
    hidden_total: int = 0
    failed_categories: list[str] = field(default_factory=list)
    exec_ms: int = 0
    peak_memory_kb: int = 0
    isolation: str = ""
    error: dict[str, str] | None = None  # {"kind": "syntax_error" | "sandbox" | "eval_service" | ..., "message": ...}
    # Subject-specific part of the learner-facing result (math steps, rubric scores).
    details: dict[str, Any] = field(default_factory=dict)
    rubric_scores: dict[str, Any] | None = None  # {"scores", "feedback", "grader"} for a RubricScore row

    @property
    def error_reason(self) -> str:
        return (self.error or {}).get("message", "")[:500]


def error_verdict(kind: str, message: str) -> Verdict:
    return Verdict(status="error", error={"kind": kind, "message": message})
