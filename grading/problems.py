"""What the coding evaluator reads of a problem: plain values, no model. The problem bank
(`tracks.problem_bank.ProblemBundle`) builds them from a course pack's rows or a remote bundle."""

from __future__ import annotations

import marshal
from dataclasses import dataclass, field
from typing import Any

from grading.comparison import ComparisonMode
from grading.sandbox.results import EncodedInputs


class HiddenCase:
    """One hidden test, kept marshalled: the bundle memo hands every evaluation its own copy of
    a bundle, and copying a few byte strings is cheaper than rebuilding thousands of input
    values. Each read of `input` or `expected` decodes a fresh value, so no caller can change
    another's."""

    __slots__ = ("_expected", "_input", "category")

    def __init__(self, category: str, input: Any, expected: Any) -> None:
        self.category = category
        self._input = marshal.dumps(input)
        self._expected = marshal.dumps(expected)

    @property
    def input(self) -> Any:
        return marshal.loads(self._input)  # noqa: S302 - our own encoding, made in __init__

    @property
    def expected(self) -> Any:
        return marshal.loads(self._expected)  # noqa: S302 - our own encoding, made in __init__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HiddenCase):
            return NotImplemented
        return (self.category, self.input, self.expected) == (other.category, other.input, other.expected)

    __hash__ = None  # type: ignore[assignment] - equal by value, and not immutable enough to hash

    def __repr__(self) -> str:
        return f"HiddenCase(category={self.category!r})"  # the input and answer stay out of logs


def hidden_tests_encoded(cases: list[HiddenCase]) -> dict[str, Any]:
    """A problem's hidden-test fields: the cases, and their inputs encoded once for the sandbox
    (`hidden_inputs` is None when they cannot be; the sandbox's own check then says why)."""
    try:
        encoded = EncodedInputs.of([case.input for case in cases])
    except ValueError:
        encoded = None
    return {"hidden_tests": cases, "hidden_inputs": encoded}


@dataclass(frozen=True, kw_only=True)
class CodingProblem:
    """A coding problem as the evaluators see it: how to call the program, its tests and limits.
    `hidden_tests` is None unless the caller asked for them (a run, not a submit)."""

    parameters: list[str] = field(default_factory=list)  # argument names, call order
    # {language: {"entrypoint": function name, ...}}; the evaluators read only the entrypoint.
    languages: dict[str, dict[str, str]] = field(default_factory=dict)
    comparison: str = ComparisonMode.EXACT.value
    float_tolerance: float | None = None
    time_limit_ms: int = 1000  # per test
    memory_limit_mb: int = 256  # per run
    visible_tests: list[dict[str, Any]] = field(default_factory=list)  # [{"input": {...}, "expected": ...}]
    hidden_tests: list[HiddenCase] | None = None
    # The hidden tests' inputs as the sandbox reads them, encoded once with the problem.
    hidden_inputs: EncodedInputs | None = None

    def __repr__(self) -> str:
        # Hidden tests and reference solutions stay out of log lines and tracebacks.
        return f"CodingProblem(languages={sorted(self.languages)!r}, parameters={self.parameters!r})"
