"""Run a problem's reference solutions against all its tests in the learner sandbox.

Publishing a course pack and the admin's "Check reference solutions" action both use this, so a
problem whose reference fails its own tests — or exceeds its own time or memory limits under
the exact conditions learners get — is refused, with the failing test named to staff. A
reference is staff-authored code: it runs nowhere else (in production without isolation it is
not run at all, and the finding says so).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from grading.comparison import outputs_match

_SHOWN_VALUE_CHARS = 120


@dataclass(frozen=True)
class ReferenceCase:
    label: str  # where the finding points, e.g. "visible_tests[1]" or "hidden test #4 (duplicates)"
    input: dict[str, Any]
    expected: Any


@dataclass(frozen=True)
class ReferenceProblem:
    path: str  # e.g. "problems[two-sum]"
    languages: dict[str, dict[str, str]]  # {language: {entrypoint, reference}}
    parameters: list[str]
    comparison: str
    float_tolerance: float | None
    time_limit_ms: int
    memory_limit_mb: int
    cases: list[ReferenceCase]


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= _SHOWN_VALUE_CHARS else text[:_SHOWN_VALUE_CHARS] + "…"


def _check_one(problem: ReferenceProblem, language: str) -> list[tuple[str, str]]:
    from grading.evaluators.coding import run_time_rechecked
    from grading.sandbox import SandboxRun, SandboxUnavailable

    spec = problem.languages[language]
    where = f"{problem.path}.languages.{language}"
    try:
        result = run_time_rechecked(
            SandboxRun(
                language=language,
                code=spec["reference"],
                entrypoint=spec["entrypoint"],
                parameters=problem.parameters,
                inputs=[case.input for case in problem.cases],
                time_limit_ms=problem.time_limit_ms,
                memory_limit_mb=problem.memory_limit_mb,
            )
        )
    except SandboxUnavailable as exc:
        return [(where, f"could not be checked: {exc}")]
    if result.status == "syntax_error":
        return [(where, f"reference does not compile: {result.error}")]
    if result.status != "completed":
        return [(where, f"reference could not be run in the sandbox: {result.error}")]
    failures = {(test.outcome, test.error) for test in result.tests}
    if len(result.tests) > 1 and len(failures) == 1 and result.tests[0].outcome != "ok":
        # One cause for every test (the program does not load, the entrypoint is missing): said once.
        outcome, error = failures.pop()
        if error == f"entrypoint '{spec['entrypoint']}' is not defined":
            return [(where, f"'{spec['entrypoint']}' is not defined in the reference solution")]
        return [(where, f"{language} reference failed on every test: {outcome} {error or ''}".rstrip())]
    findings = []
    for case, test in zip(problem.cases, result.tests, strict=True):
        location = f"{problem.path}.{case.label}"
        if test.outcome == "ok":
            if not outputs_match(case.expected, test.value, mode=problem.comparison, tolerance=problem.float_tolerance):
                findings.append(
                    (location, f"{language} reference returned {_shown(test.value)}, expected {_shown(case.expected)}")
                )
        elif test.outcome == "time_limit":
            findings.append((location, f"{language} reference exceeded the time limit ({problem.time_limit_ms} ms)"))
        elif test.outcome == "memory_limit":
            findings.append((location, f"{language} reference exceeded the memory limit ({problem.memory_limit_mb} MB)"))
        else:
            findings.append((location, f"{language} reference failed: {test.outcome} {test.error or ''}".rstrip()))
    return findings


def check_references(problems: list[ReferenceProblem]) -> list[tuple[str, str]]:
    """(path, message) for every test a reference fails; empty when all references pass."""
    jobs = [(problem, language) for problem in problems for language in sorted(problem.languages)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda job: _check_one(*job), jobs))
    return [finding for findings in results for finding in findings]
