"""Run on custom input: a learner's code on up to five inputs of their own, beside the problem's
reference solution on the same inputs (its values shown as "expected").

The learner's program and the reference run in two separate sandbox runs (the reference is
staff-authored code: untrusted like any other), given the learner's inputs only. Nothing hidden
takes part: no hidden input, no hidden expected output, and of the reference only its return
values for the learner's own inputs leave — never its code, its errors or what it printed.

The inputs are checked against the problem's parameters before anything runs: exactly the
parameters as keys, and each value of the JSON kind the problem's visible tests give that
parameter (for a list, of the kind of its items too), so a learner's typo is a clear 400, not a
crash in the reference.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from grading.comparison import outputs_match
from grading.evaluators.coding import coarse_memory_kb, coarse_ms, run_time_rechecked, sandbox_run_for, shown_value
from grading.problems import CodingProblem
from grading.verdicts import Verdict, error_verdict

if TYPE_CHECKING:
    from grading.sandbox import SandboxResult

logger = logging.getLogger("co.evaluation")

MAX_CUSTOM_INPUTS = 5
MAX_CUSTOM_INPUT_BYTES = 16 * 1024  # all of a run's inputs, as JSON
# What the learner is told in place of an expected value the reference could not give.
REFERENCE_FAILED = "the reference solution could not answer this input (is it within the problem's constraints?)"
NO_REFERENCE = "this problem has no reference solution to compare with"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def _fits(kind: str, expected: str) -> bool:
    return kind == expected or (expected == "number" and kind == "integer")


def _one_kind(values: list[Any]) -> str | None:
    """The JSON kind all `values` share (integers and numbers meet as number); None if mixed."""
    kinds = {_kind(value) for value in values}
    if kinds == {"integer", "number"}:
        return "number"
    return kinds.pop() if len(kinds) == 1 else None


def parameter_kinds(visible_tests: list[dict[str, Any]], parameters: list[str]) -> dict[str, tuple[str | None, str | None]]:
    """{parameter: (its kind, its items' kind when a list)} as the visible tests show them."""
    kinds = {}
    for name in parameters:
        values = [test["input"][name] for test in visible_tests if isinstance(test.get("input"), dict) and name in test["input"]]
        kind = _one_kind(values) if values else None
        items = [item for value in values if isinstance(value, list) for item in value]
        kinds[name] = (kind, _one_kind(items) if kind == "list" and items else None)
    return kinds


_ARTICLE = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false"}


def _described(kind: str) -> str:
    return _ARTICLE.get(kind, f"a {kind}" if kind != "null" else "null")


def custom_input_errors(*, inputs: list[dict[str, Any]], problem: CodingProblem) -> list[str]:
    """Why `inputs` cannot be run on this problem (empty when they can), one message per fault."""
    if len(inputs) > MAX_CUSTOM_INPUTS:
        return [f"At most {MAX_CUSTOM_INPUTS} inputs can be run at once, not {len(inputs)}."]
    try:
        size = len(json.dumps(inputs, allow_nan=False).encode())
    except (TypeError, ValueError):
        return ["Inputs must be JSON values (no NaN or Infinity)."]
    if size > MAX_CUSTOM_INPUT_BYTES:
        return [f"The inputs are {size} bytes as JSON; at most {MAX_CUSTOM_INPUT_BYTES} bytes can be run."]
    kinds = parameter_kinds(problem.visible_tests, problem.parameters)
    errors = []
    for index, case in enumerate(inputs):
        missing = [name for name in problem.parameters if name not in case]
        unknown = sorted(set(case) - set(problem.parameters))
        if missing:
            errors.append(f"inputs[{index}] has no value for {', '.join(repr(name) for name in missing)}.")
        if unknown:
            errors.append(
                f"inputs[{index}] names {', '.join(repr(n) for n in unknown)}, which "
                f"{'is not a parameter' if len(unknown) == 1 else 'are not parameters'} "
                f"(the parameters: {', '.join(problem.parameters)})."
            )
        for name in problem.parameters:
            if name not in case:
                continue
            kind, items = kinds[name]
            value = case[name]
            if kind is not None and not _fits(_kind(value), kind):
                errors.append(f"inputs[{index}].{name} must be {_described(kind)}, as in the problem's examples.")
            elif items is not None and isinstance(value, list) and not all(_fits(_kind(item), items) for item in value):
                errors.append(f"inputs[{index}].{name} must be a list of {_described(items)} items, as in the examples.")
    return errors


def _reference(bundle: CodingProblem, language: str) -> tuple[str, dict[str, str]] | None:
    """(language, its spec) of the reference to run: the learner's language first."""
    for candidate in (language, *sorted(bundle.languages)):
        spec = bundle.languages.get(candidate, {})
        if spec.get("reference", "").strip() and spec.get("entrypoint"):
            return candidate, spec
    return None


def _detail(index: int, case: dict[str, Any], run: Any, reference: Any, bundle: CodingProblem, note: str) -> dict[str, Any]:
    """One input's line: the learner's output and the reference's value where it has one."""
    expected_known = reference is not None and reference.outcome == "ok"
    if run.outcome != "ok":
        outcome = run.outcome
    elif expected_known:
        same = outputs_match(reference.value, run.value, mode=bundle.comparison, tolerance=bundle.float_tolerance)
        outcome = "passed" if same else "wrong_answer"
    else:
        outcome = "ran"
    return {
        "index": index,
        "input": case,
        "output": shown_value(run.value) if run.outcome == "ok" else None,
        "expected": shown_value(reference.value) if expected_known else None,
        "expected_note": None if expected_known else (REFERENCE_FAILED if reference is not None else note),
        "outcome": outcome,
        "time_ms": run.time_ms,
        "error": run.error,
    }


def evaluate_custom_inputs(*, bundle: CodingProblem, language: str, code: str, inputs: list[dict[str, Any]]) -> Verdict:
    """Run the learner's code on their `inputs`, and the reference on the same in a separate run."""
    from grading.sandbox import SANDBOX_BUSY, SandboxUnavailable

    reference = _reference(bundle, language)
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            reference_future = (
                pool.submit(
                    run_time_rechecked,
                    sandbox_run_for(bundle, reference[0], reference[1]["reference"], inputs),
                )
                if reference is not None
                else None
            )
            learner = run_time_rechecked(sandbox_run_for(bundle, language, code, inputs))
            expected: SandboxResult | None = reference_future.result() if reference_future is not None else None
    except SandboxUnavailable as exc:
        logger.error("sandbox unavailable: %s", exc)
        return error_verdict("sandbox", "Code execution is unavailable on this server (no isolation).")
    wall_ms = int((time.perf_counter() - started) * 1000)
    if learner.status == "error":
        logger.error("sandbox run failed: %s", learner.error)
        if learner.error == SANDBOX_BUSY:
            return error_verdict("sandbox_busy", "The server is busy and could not run the code in time; please run again.")
        return error_verdict("sandbox", "The code could not be run; please try again.")
    if expected is not None and expected.status != "completed":
        # Staff's reference is broken or the sandbox failed it: the learner still gets their output.
        logger.warning("reference solution could not be run on custom input: %s", expected.status)
        expected = None
        reference_note = REFERENCE_FAILED
    else:
        reference_note = NO_REFERENCE
    verdict = Verdict(
        status="failed",
        exec_ms=coarse_ms(wall_ms),
        peak_memory_kb=coarse_memory_kb(learner.peak_memory_kb),
        isolation=learner.isolation,
    )
    if learner.status == "syntax_error":
        verdict.error = {"kind": "syntax_error", "message": learner.error or "SyntaxError"}
        verdict.details["custom"] = {"reference": reference is not None and expected is not None, "details": []}
        return verdict
    references = expected.tests if expected is not None else [None] * len(inputs)
    details = [
        _detail(index, case, run, answer, bundle, reference_note)
        for index, (case, run, answer) in enumerate(zip(inputs, learner.tests, references, strict=True))
    ]
    outcomes = [detail["outcome"] for detail in details]
    if all(outcome in ("passed", "ran") for outcome in outcomes):
        verdict.status = "passed"
    elif "time_limit" in outcomes:
        verdict.status = "timeout"
    verdict.details["custom"] = {"reference": expected is not None, "details": details}
    return verdict
