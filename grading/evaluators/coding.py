"""Grading code: the embedded sandbox (default) or the remote eval service (`CO_EVAL_BASE`).

Embedded: visible and hidden tests run in two SEPARATE sandbox runs (started in parallel), so
nothing a program prints or returns on a visible test can carry a hidden input out. The sandbox
only ever receives inputs; outputs are compared here, in the trusted process. Hidden results
leave as counts and failure categories only, and the figures of a verdict (its time, its peak
memory) are measured by the trusted side and shown coarse (see coarse_memory_kb, coarse_ms):
a hidden run can choose them, so each may carry a few bits, no more.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from django.conf import settings

from grading.comparison import outputs_match
from grading.outbound import ServiceUnreachable, request_with_retries
from grading.problems import CodingProblem
from grading.verdicts import Verdict, error_verdict

if TYPE_CHECKING:
    from grading.sandbox import SandboxResult, SandboxRun
    from grading.sandbox.results import EncodedInputs

logger = logging.getLogger("co.evaluation")

_SHOWN_VALUE_CHARS = 2000
_TEST_NUMBER = re.compile(r"\btest (\d+)\b")


def shown_value(value: Any) -> Any:
    """A learner's own visible-test output, cut to a readable size."""
    text = json.dumps(value)
    return value if len(text) <= _SHOWN_VALUE_CHARS else text[:_SHOWN_VALUE_CHARS] + "…"


def coarse_memory_kb(kb: int) -> int:
    """A peak memory figure as a learner sees it: rounded up to a power of two of MiB (0: not
    measured). A run chooses how much it allocates, so the figure is a channel out of the hidden
    run; coarse, it carries a few bits at most (log2 of the memory limit in MiB)."""
    if kb <= 0:
        return 0
    mib = -(-kb // 1024)
    return (1 << (mib - 1).bit_length()) * 1024


def coarse_ms(ms: int) -> int:
    """A time as a learner sees it: rounded up to a power of two of milliseconds (a run can choose
    how long it sleeps: coarse, the figure carries a few bits at most)."""
    return 0 if ms <= 0 else 1 << (ms - 1).bit_length()


def _outcomes(bundle: CodingProblem, result: SandboxResult, expected: list[Any]) -> list[str]:
    outcomes = []
    for test, want in zip(result.tests, expected, strict=True):
        if test.outcome != "ok":
            outcomes.append(test.outcome)
        elif outputs_match(want, test.value, mode=bundle.comparison, tolerance=bundle.float_tolerance):
            outcomes.append("passed")
        else:
            outcomes.append("wrong_answer")
    return outcomes


RECHECK_WALL_FACTOR = 6  # the least wall backstop of a re-check, in time limits
RECHECK_WALL_FACTOR_MAX = 30
RECHECK_MARGIN = 1.5  # the re-check's wall backstop over what the estimated share of a core needs


def recheck_wall_limit_ms(time_limit_ms: int, *, cpu_ms: int, wall_limit_ms: int) -> int:
    """The wall-time backstop of a time-limit re-check: wide enough that a test at its CPU limit
    passes even when the machine gives it a small share of a core, so CPU time alone decides.

    The share is estimated from the test that timed out: `cpu_ms` of CPU in the `wall_limit_ms`
    it was allowed (a test the wall backstop stopped got that little), checked against the run
    queue (a process gets about `cores / (load + 1)` of a core, and never much less than half of
    that): a program that sleeps is not mistaken for a starved one on an idle machine. At least
    6 time limits, at most 30. Busy loops are still stopped at their CPU limit (the harness's CPU
    timer, the run's cgroup); only a program that sleeps or blocks waits this long."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = 0.0
    by_load = 2 * RECHECK_MARGIN * (load + 1) / (os.cpu_count() or 1)
    by_share = RECHECK_MARGIN * wall_limit_ms / max(cpu_ms, 1)
    factor = min(RECHECK_WALL_FACTOR_MAX, max(RECHECK_WALL_FACTOR, min(by_share, by_load)))
    return math.ceil(factor * time_limit_ms)


def _first_time_limit(result: SandboxResult) -> int | None:
    if result.status != "completed":
        return None
    return next((index for index, test in enumerate(result.tests) if test.outcome == "time_limit" and test.ran), None)


def run_time_rechecked(run: SandboxRun) -> SandboxResult:
    """One sandbox run, and the re-check of a time limit: the same for learner code and for the
    reference solutions checked at publication (tracks.reference_check).

    A test stopped at its time limit was stopped within 10% of it (CPU time), or by the wall-time
    backstop on a loaded machine: either way its verdict may be the host's, not the program's. So
    the first test that ended `time_limit` and every test after it (never reached) are run once
    more, in a fresh sandbox, judged on CPU time alone with a wider wall backstop; `time_limit` is
    reported only when the re-run exceeds it again. Never more than one re-run."""
    import marshal

    from grading.sandbox import run_in_sandbox
    from grading.sandbox.results import EncodedInputs
    from grading.sandbox.runner import wall_limit_ms

    result = run_in_sandbox(run)
    index = _first_time_limit(result)
    if index is None:
        return result
    inputs = marshal.loads(run.inputs.marshal) if isinstance(run.inputs, EncodedInputs) else run.inputs  # noqa: S302 - ours
    backstop = recheck_wall_limit_ms(
        run.time_limit_ms, cpu_ms=result.tests[index].time_ms, wall_limit_ms=run.wall_limit_ms or wall_limit_ms(run.time_limit_ms)
    )
    again = run_in_sandbox(dataclasses.replace(run, inputs=inputs[index:], wall_limit_ms=backstop))
    if again.status != "completed":
        logger.warning("the re-check of a time limit could not run: %s", again.error)
        return result
    confirmed = False
    for test in again.tests:
        if test.ran and test.outcome == "time_limit" and not confirmed:
            test.error = f"{test.error or 'time limit exceeded'} (confirmed by a second run)"
            confirmed = True
        elif not test.ran and test.error:
            # "not run: test 1 …" of the re-run is test index + 1 of the whole run.
            test.error = _TEST_NUMBER.sub(lambda found: f"test {int(found.group(1)) + index}", test.error)
    return dataclasses.replace(
        result,
        tests=result.tests[:index] + again.tests,
        wall_ms=result.wall_ms + again.wall_ms,
        peak_memory_kb=max(result.peak_memory_kb, again.peak_memory_kb),
    )


def sandbox_run_for(bundle: CodingProblem, language: str, code: str, inputs: list[dict[str, Any]] | EncodedInputs) -> SandboxRun:
    from grading.sandbox import SandboxRun

    return SandboxRun(
        language=language,
        code=code,
        entrypoint=bundle.languages[language]["entrypoint"],
        parameters=bundle.parameters,
        inputs=inputs,
        time_limit_ms=bundle.time_limit_ms,
        memory_limit_mb=bundle.memory_limit_mb,
    )


def _run(bundle: CodingProblem, language: str, code: str, inputs: list[dict[str, Any]] | EncodedInputs) -> SandboxResult:
    return run_time_rechecked(sandbox_run_for(bundle, language, code, inputs))


def evaluate_code_embedded(*, bundle: CodingProblem, language: str, code: str, include_hidden: bool) -> Verdict:
    visible = bundle.visible_tests
    hidden = (bundle.hidden_tests or []) if include_hidden else []
    from grading.sandbox import SANDBOX_BUSY, SandboxUnavailable

    started = time.perf_counter()
    try:
        # The hidden run in a thread of its own, the visible one here: both at once. Its inputs
        # come encoded with the bundle.
        hidden_inputs = bundle.hidden_inputs if bundle.hidden_inputs is not None else [t.input for t in hidden]
        with ThreadPoolExecutor(max_workers=1) as pool:
            hidden_future = pool.submit(_run, bundle, language, code, hidden_inputs) if hidden else None
            visible_result = _run(bundle, language, code, [t["input"] for t in visible])
            hidden_result = hidden_future.result() if hidden_future else None
    except SandboxUnavailable as exc:
        logger.error("sandbox unavailable: %s", exc)
        return error_verdict("sandbox", "Code execution is unavailable on this server (no isolation).")
    wall_ms = int((time.perf_counter() - started) * 1000)

    results = [r for r in (visible_result, hidden_result) if r is not None]
    failed_run = next((r for r in results if r.status == "error"), None)
    if failed_run is not None:
        logger.error("sandbox run failed: %s", failed_run.error)
        if failed_run.error == SANDBOX_BUSY:
            return error_verdict("sandbox_busy", "The server is busy and could not run the code in time; please submit again.")
        return error_verdict("sandbox", "The code could not be run; please try again.")
    verdict = Verdict(
        status="failed",
        visible_total=len(visible),
        hidden_total=len(hidden),
        exec_ms=coarse_ms(wall_ms),
        peak_memory_kb=coarse_memory_kb(max(r.peak_memory_kb for r in results)),
        isolation=visible_result.isolation,
    )
    if visible_result.status == "syntax_error":
        verdict.error = {"kind": "syntax_error", "message": visible_result.error or "SyntaxError"}
        return verdict

    visible_outcomes = _outcomes(bundle, visible_result, [t["expected"] for t in visible])
    verdict.visible_passed = visible_outcomes.count("passed")
    verdict.visible_details = [
        {
            "index": index,
            "input": test["input"],
            "expected": test["expected"],
            "actual": shown_value(run.value) if run.outcome == "ok" else None,
            "outcome": outcome,
            "time_ms": run.time_ms,
            "error": run.error,
        }
        for index, (test, run, outcome) in enumerate(zip(visible, visible_result.tests, visible_outcomes, strict=True))
    ]
    hidden_outcomes: list[str] = []
    if hidden_result is not None:
        hidden_outcomes = _outcomes(bundle, hidden_result, [t.expected for t in hidden])
        verdict.hidden_passed = hidden_outcomes.count("passed")
        # Tests never reached (the run stopped at an earlier one) count as not passed, but only
        # the categories of tests that actually failed are named, with their remediation.
        verdict.failed_categories = sorted(
            {
                test.category
                for test, run, outcome in zip(hidden, hidden_result.tests, hidden_outcomes, strict=True)
                if outcome != "passed" and run.ran
            }
        )
    everything = visible_outcomes + hidden_outcomes
    if all(outcome == "passed" for outcome in everything):
        verdict.status = "passed"
    elif "time_limit" in everything:
        verdict.status = "timeout"
    return verdict


# --- remote eval service (seeds/000 §7) ----------------------------------------------------------


class EvalServiceUnavailable(Exception):
    pass


def _post_with_retries(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    """POST with bounded retries and exponential backoff on transient failures."""
    try:
        response = request_with_retries(
            "POST",
            url,
            json=payload,
            retries=settings.CO_EVAL_RETRIES,
            backoff_seconds=settings.CO_EVAL_RETRY_BACKOFF_SECONDS,
            timeout=settings.CO_EVAL_TIMEOUT_SECONDS,
        )
    except ServiceUnreachable as exc:
        raise EvalServiceUnavailable(f"eval service {exc}") from exc
    if response.status_code != 200:
        raise EvalServiceUnavailable(f"eval service answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError as exc:
        raise EvalServiceUnavailable("eval service answered with something that is not JSON") from exc
    if not isinstance(body, dict):
        raise EvalServiceUnavailable("eval service answered with something that is not a result")
    return body


def _count(section: Any, key: str) -> int:
    value = section.get(key, 0) if isinstance(section, dict) else 0
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def evaluate_code_remote(*, bundle: CodingProblem, language: str, code: str, include_hidden: bool) -> Verdict:
    spec = bundle.languages[language]
    hidden = (bundle.hidden_tests or []) if include_hidden else []
    payload = {
        "language": language,
        "code": code,
        "harness": {
            "entrypoint": spec["entrypoint"],
            "parameters": bundle.parameters,
            "visible_tests": bundle.visible_tests,
            "comparison": bundle.comparison,
            "float_tolerance": bundle.float_tolerance,
        },
        "hidden_spec": {
            "tests": [{"category": t.category, "input": t.input, "expected": t.expected} for t in hidden],
            "time_limit_ms": bundle.time_limit_ms,
            "mem_limit_mb": bundle.memory_limit_mb,
        },
    }
    started = time.perf_counter()
    try:
        body = _post_with_retries(f"{settings.CO_EVAL_BASE.rstrip('/')}/code/eval", payload)
    except EvalServiceUnavailable as exc:
        logger.warning("eval service unavailable: %s", exc)
        return error_verdict("eval_service", f"The evaluation service could not be reached: {exc}.")
    status = body.get("status")
    if status not in {"passed", "failed", "timeout", "error"}:
        return error_verdict("eval_service", "The evaluation service answered with an unknown status.")
    visible_section = body.get("visible") if isinstance(body.get("visible"), dict) else {}
    hidden_section = body.get("hidden") if isinstance(body.get("hidden"), dict) else {}
    known = {t.category for t in hidden}
    categories = hidden_section.get("categories", [])
    details = visible_section.get("details", [])
    exec_ms = body.get("exec_ms")
    return Verdict(
        status=status,
        visible_passed=min(_count(visible_section, "passed"), len(bundle.visible_tests)),
        visible_total=len(bundle.visible_tests),
        # Only the fields we know, so nothing unexpected is relayed to learners.
        visible_details=[
            {key: detail.get(key) for key in ("index", "input", "expected", "actual", "outcome", "time_ms", "error")}
            for detail in (details if isinstance(details, list) else [])
            if isinstance(detail, dict)
        ][: len(bundle.visible_tests)],
        hidden_passed=min(_count(hidden_section, "passed"), len(hidden)),
        hidden_total=len(hidden),
        failed_categories=sorted({c for c in categories if c in known}) if isinstance(categories, list) else [],
        exec_ms=coarse_ms(exec_ms if isinstance(exec_ms, int) and exec_ms >= 0 else int((time.perf_counter() - started) * 1000)),
        isolation="remote",
        error={"kind": "eval_service", "message": str(body.get("error"))[:500]} if status == "error" else None,
    )


def evaluate_code(*, bundle: CodingProblem, language: str, code: str, include_hidden: bool) -> Verdict:
    """Grade `code` against the problem's visible tests, and its hidden ones when
    `include_hidden` (a submit). `bundle` is any CodingProblem, a problem bank's bundle included."""
    evaluate = evaluate_code_remote if settings.CO_EVAL_BASE else evaluate_code_embedded
    return evaluate(bundle=bundle, language=language, code=code, include_hidden=include_hidden)
