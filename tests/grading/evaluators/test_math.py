"""The math evaluator against the shipped math pack, forms, derivations and hostile input.

Everything goes through the real worker process; nothing of ours is mocked.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings as django_settings

from grading.evaluators import math as math_evaluator
from grading.evaluators.math import ExpressionRejected, MathStepCheck, MathVerdict, canonical_expression, evaluate_math

PACK = yaml.safe_load((Path(django_settings.BASE_DIR) / "coursepacks" / "math-foundations.yaml").read_text())
PROBLEMS = {problem["slug"]: problem["math"] for problem in PACK["problems"]}
SLOW_TO_CHECK = "sin(exp(exp(exp(x^2 + 3))))"  # numeric evaluation needs ~10^8 digits of precision

CORRECT = {
    "equivalent": "Correct: your answer is equivalent to the expected result.",
    "expanded": "Correct: your answer is equivalent to the expected result and expanded.",
    "simplified": "Correct: your answer is equivalent to the expected result and in its simplest form.",
    "factored": "Correct: your answer is equivalent to the expected result and factored.",
}
WRONG_FORM = {
    "expanded": "Your answer has the right value but is not expanded: multiply out every bracket and collect like terms.",
    "simplified": (
        "Your answer has the right value but is not in its simplest form: cancel common factors and combine terms "
        "into as few operations as possible."
    ),
    "factored": (
        "Your answer has the right value but is not fully factored: write it as a product of factors that cannot "
        "be factored further."
    ),
}
WRONG_ANSWER = "Your answer is not equivalent to the expected result."
TIMEOUT = "Your answer took too long to check; try writing it in a simpler form."


@pytest.fixture(scope="module", autouse=True)
def _warm_worker() -> Iterator[None]:
    """Start the worker once so timing bounds below never include SymPy's import."""
    math_evaluator.warm_up()
    yield


def evaluate(slug: str, expression: str, steps: list[str] | None = None, **overrides: Any) -> MathVerdict:
    problem = PROBLEMS[slug]
    arguments = {
        "expression": expression,
        "steps": steps or [],
        "answer": problem["answer"],
        "variables": problem["variables"],
        "form": problem["form"],
        **overrides,
    }
    return evaluate_math(**arguments)


# --- the shipped pack ---------------------------------------------------------------------------


@pytest.mark.parametrize("slug", sorted(PROBLEMS))
def test_every_shipped_answer_passes(slug: str) -> None:
    verdict = evaluate(slug, PROBLEMS[slug]["answer"])

    assert (verdict.status, verdict.equivalent, verdict.form_ok) == ("passed", True, True)
    assert (verdict.categories, verdict.first_invalid_step, verdict.steps) == ([], None, [])
    assert verdict.message == CORRECT[PROBLEMS[slug]["form"]]
    assert verdict.exec_ms >= 0


@pytest.mark.parametrize("slug", sorted(PROBLEMS))
def test_every_shipped_reference_derivation_passes_as_learner_steps(slug: str) -> None:
    steps = PROBLEMS[slug]["steps"]

    verdict = evaluate(slug, PROBLEMS[slug]["answer"], steps)

    assert verdict.status == "passed"
    assert verdict.steps == [
        MathStepCheck(index=number, expression=step, ok=True, reason=None) for number, step in enumerate(steps, start=1)
    ]


@pytest.mark.parametrize(
    ("slug", "expression"),
    [
        ("derivative-product-rule", "x*(2*sin(x) + x*cos(x))"),
        ("derivative-product-rule", "2x sin(x) + x^2 cos(x)"),
        ("derivative-chain-rule", "6x cos(1 + 3x^2)"),
        ("derivative-log-chain", "(2x)/(1 + x^2)"),
        ("derivative-exp-cos", "-exp(-2x)(2cos(x) + sin(x))"),
        ("derivative-exp-cos", "-e^(-2x) (sin(x) + 2 cos(x))"),
        ("definite-integral-polynomial", "24/2"),
        ("solve-linear-equation", "15/3"),
        ("solve-linear-equation", "x = 5"),
    ],
)
def test_an_equivalent_form_passes_when_any_form_is_accepted(slug: str, expression: str) -> None:
    verdict = evaluate(slug, expression)

    assert (verdict.status, verdict.equivalent, verdict.form_ok, verdict.categories) == ("passed", True, True, [])


@pytest.mark.parametrize(
    ("slug", "expression", "mistake"),
    [
        ("expand-binomial-square", "x^2 + 9", None),
        ("simplify-rational-expression", "x - 1", "sign-error"),  # x + 1 with one sign flipped
        ("solve-linear-equation", "23/3", None),
        ("combine-fractions", "3/(2x + 1)", None),
        ("exponent-rules", "x^3 y", None),
        ("derivative-product-rule", "2x cos(x)", None),
        ("derivative-product-rule", "2x sin(x) - x^2 cos(x)", "sign-error"),
        ("derivative-chain-rule", "cos(3x^2 + 1)", "chain-rule"),  # the factor 6x is missing
        ("derivative-chain-rule", "-6x cos(3x^2 + 1)", "sign-error"),
        ("derivative-chain-rule", "cos(6x)", None),
        ("derivative-log-chain", "1/(x^2 + 1)", "chain-rule"),
        ("derivative-exp-cos", "2 exp(-2x) sin(x)", None),
        ("definite-integral-polynomial", "-12", "sign-error"),
    ],
)
def test_a_wrong_answer_fails_without_revealing_the_answer_and_names_a_known_mistake(
    slug: str, expression: str, mistake: str | None
) -> None:
    verdict = evaluate(slug, expression)

    expected = ["wrong-answer", mistake] if mistake else ["wrong-answer"]
    assert (verdict.status, verdict.equivalent, verdict.categories) == ("failed", False, expected)
    assert verdict.message == WRONG_ANSWER


@pytest.mark.parametrize(
    ("slug", "expression"),
    [
        ("expand-binomial-square", "(x + 3)^2"),
        ("expand-binomial-square", "(x+3)(x+3)"),
        ("expand-binomial-square", "x(x + 6) + 9"),
        ("expand-binomial-square", "x^2 + 3(2x + 3)"),
        ("simplify-rational-expression", "(x^2 - 1)/(x - 1)"),
        ("simplify-rational-expression", "(x - 1)(x + 1)/(x - 1)"),
        ("simplify-rational-expression", "x + 2 - 1"),
        ("combine-fractions", "1/x + 2/(x + 1)"),
        ("exponent-rules", "x^5 y^2/(x^2 y^-1)"),
        ("exponent-rules", "x^3/y^-3"),
    ],
)
def test_right_value_in_the_wrong_form_is_reported_as_such(slug: str, expression: str) -> None:
    verdict = evaluate(slug, expression)

    assert (verdict.status, verdict.equivalent, verdict.form_ok) == ("failed", True, False)
    assert verdict.categories == ["wrong-form"]
    assert verdict.message == WRONG_FORM[PROBLEMS[slug]["form"]]


@pytest.mark.parametrize(
    ("slug", "expression"),
    [
        ("expand-binomial-square", "9 + 6x + x^2"),
        ("expand-binomial-square", "x*x + 3x + 3x + 9"),
        ("simplify-rational-expression", "1 + x"),
        ("combine-fractions", "(3x + 1)/(x^2 + x)"),
        ("combine-fractions", "(1 + 3x)/(x(x + 1))"),
        ("exponent-rules", "y^3 x^3"),
        ("exponent-rules", "(xy)^3"),
    ],
)
def test_other_ways_of_writing_the_required_form_pass(slug: str, expression: str) -> None:
    verdict = evaluate(slug, expression)

    assert (verdict.status, verdict.categories, verdict.message) == ("passed", [], CORRECT[PROBLEMS[slug]["form"]])


@pytest.mark.parametrize(
    ("expression", "form_ok"),
    [
        ("3(x + 1)(x - 2)", True),
        ("(x - 2)*3*(x + 1)", True),
        ("-3(2 - x)(x + 1)", True),
        ("(3x + 3)(x - 2)", False),
        ("3x^2 - 3x - 6", False),
        ("3(x^2 - x - 2)", False),
    ],
)
def test_factored_form(expression: str, form_ok: bool) -> None:
    verdict = evaluate_math(expression=expression, steps=[], answer="3*(x + 1)*(x - 2)", variables=["x"], form="factored")

    assert (verdict.equivalent, verdict.form_ok) == (True, form_ok)
    assert verdict.categories == ([] if form_ok else ["wrong-form"])
    assert verdict.message == (CORRECT["factored"] if form_ok else WRONG_FORM["factored"])


def test_implicit_multiplication_caret_and_common_symbols_are_read_as_a_learner_means_them() -> None:
    assert canonical_expression("2x", ["x"]) == "2*x"
    assert canonical_expression("x^2", ["x"]) == "x^2"
    assert canonical_expression("xy", ["x", "y"]) == "x*y"
    assert canonical_expression("2(x+1)(x-1)", ["x"]) == "2*(x + 1)*(x - 1)"
    assert canonical_expression("x sin(x)", ["x"]) == "x*sin(x)"
    assert canonical_expression("ln(x) + e^x + abs(x)", ["x"]) == "ln(x) + e^x + abs(x)"
    assert canonical_expression("x² − 1", ["x"]) == "x^2 - 1"
    assert canonical_expression("x = 007.50", ["x"]) == "007.50"


# --- derivations ---------------------------------------------------------------------------------


def test_a_correct_derivation_passes() -> None:
    steps = ["(x + 3)(x + 3)", "x^2 + 3x + 3x + 9", "x^2 + 6x + 9"]

    verdict = evaluate("expand-binomial-square", "x^2 + 6x + 9", steps)

    assert (verdict.status, verdict.categories, verdict.first_invalid_step) == ("passed", [], None)
    assert [check.ok for check in verdict.steps] == [True, True, True]


def test_the_first_step_that_does_not_follow_is_reported() -> None:
    steps = ["(x + 3)(x + 3)", "x^2 + 9", "x^2 + 6x + 9"]

    verdict = evaluate("expand-binomial-square", "x^2 + 6x + 9", steps)

    assert (verdict.status, verdict.equivalent, verdict.form_ok) == ("failed", True, True)
    assert (verdict.categories, verdict.first_invalid_step) == (["step-error"], 2)
    assert verdict.steps == [
        MathStepCheck(index=1, expression="(x + 3)(x + 3)", ok=True, reason=None),
        MathStepCheck(index=2, expression="x^2 + 9", ok=False, reason="does not follow from step 1"),
        MathStepCheck(index=3, expression="x^2 + 6x + 9", ok=False, reason="does not follow from step 2"),
    ]
    assert verdict.message == "Your answer is correct, but step 2 does not follow from step 1."


def test_an_unreadable_step_is_reported_and_the_next_step_is_compared_with_the_last_readable_one() -> None:
    steps = ["(8 + 7)/(5 - 2)", "15//3", "15/3"]

    verdict = evaluate("solve-linear-equation", "5", steps)

    assert (verdict.categories, verdict.first_invalid_step) == (["step-error"], 2)
    assert [(check.ok, check.reason) for check in verdict.steps] == [
        (True, None),
        (False, "not a valid expression: '/' is missing the expression before it (at character 4)"),
        (True, None),
    ]
    assert (
        verdict.message
        == "Your answer is correct, but step 2 is not a valid expression: '/' is missing the expression before it "
        "(at character 4)."
    )


def test_a_final_answer_that_does_not_follow_from_the_last_step_is_a_step_error_too() -> None:
    verdict = evaluate("expand-binomial-square", "x^2 + 6x + 8", ["(x + 3)^2", "x^2 + 6x + 9"])

    assert (verdict.categories, verdict.first_invalid_step) == (["wrong-answer", "step-error"], 2)
    assert verdict.steps[1].reason == "does not lead to your final answer"
    assert (
        verdict.message == "Your answer is not equivalent to the expected result, and step 2 does not lead to your final answer."
    )


def test_a_consistent_derivation_from_a_wrong_start_points_at_the_first_step() -> None:
    verdict = evaluate("expand-binomial-square", "x^2 + 9", ["x^2 + 3^2", "x^2 + 9"])

    assert (verdict.categories, verdict.first_invalid_step) == (["wrong-answer"], None)
    assert verdict.message == (
        "Your answer is not equivalent to the expected result, although each of your steps follows from the one "
        "before, so check your first step."
    )


def test_too_many_steps_are_refused() -> None:
    verdict = evaluate("solve-linear-equation", "5", ["5"] * 31)

    assert (verdict.status, verdict.categories, verdict.steps) == ("failed", ["invalid-expression"], [])
    assert verdict.message == "Your answer is not a valid expression: a derivation may have at most 30 steps."


# --- invalid input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("", "the expression is empty"),
        ("x^^2", "'^' is missing the expression before it (at character 3)"),
        ("2x +", "the expression ends with an operator (at character 5)"),
        ("(x + 1", "a bracket is never closed (at character 1)"),
        ("x + 1)", "a closing bracket has no matching opening bracket (at character 6)"),
        ("|x + 1", "an absolute value bar is never closed (at character 1)"),
        ("sin", "'sin' needs an argument, like sin(x) (at character 1)"),
        ("2 + sin^3", "'sin' needs an argument, like sin(x) (at character 5)"),
        ("sin()", "a bracket is closed before the expression inside it is complete (at character 5)"),
        ("log(x, 2, 3)", "'log' takes 1 or 2 arguments (at character 1)"),
        ("root(x)", "'root' takes 2 arguments (at character 1)"),
        ("(1, 2)", "a comma may only separate the arguments of a function such as log(x, 2) (at character 3)"),
        ("2 3", "two numbers in a row need an operator between them (at character 3)"),
        (
            "x + foo(x)",
            "unknown name 'foo'; you can use x and functions such as sin, cos, exp, ln, log and sqrt (at character 5)",
        ),
        (
            "2x + secant(x)",
            "unknown name 'secant'; you can use x and functions such as sin, cos, exp, ln, log and sqrt (at character 6)",
        ),
        ("x > 1", "the character '>' is not allowed (at character 3)"),
        ("x − 1 ≥ 2", "the character U+2265 is not allowed (at character 7)"),
        ("x == 1", "write an expression, not an equation (an answer like x = 5 is fine) (at character 4)"),
        ("y = 2x", "write an expression, not an equation (an answer like x = 5 is fine) (at character 3)"),
        ("x = 2x - 5", "the right-hand side of 'x =' still contains x"),
        ("ln^-1(x)", "'ln^-1' is ambiguous: write 1/ln(x) for the reciprocal (at character 1)"),
        ("sin^x(x)", "a power of 'sin' must be a whole number, as in sin^2(x) (at character 1)"),
        ("log_q(x)", "the base of 'log_q' must be a number or a variable (at character 1)"),
        ("2e999", "a power of ten may be at most 300 (at character 1)"),
        ("x^⁻", "a superscript must be a whole number such as ² or ⁻¹ (at character 3)"),
    ],
)
def test_invalid_syntax_fails_with_a_reason_and_no_internals(expression: str, reason: str) -> None:
    verdict = evaluate("derivative-product-rule", expression)

    assert (verdict.status, verdict.equivalent, verdict.form_ok) == ("failed", False, False)
    assert verdict.categories == ["invalid-expression"]
    assert verdict.message == f"Your answer is not a valid expression: {reason}."


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"form": "tidy"}, "unknown form 'tidy'"),
        ({"variables": ["x", "__class__"]}, "variable name '__class__' is not allowed"),
        ({"variables": ["sin"]}, "variable name 'sin' collides with a function name"),
        ({"variables": ["x"], "dependent": "x"}, "the dependent variable 'x' collides with a variable or function name"),
        ({"variables": ["x"], "positive": ["t"]}, "positive names 't', which is not a declared variable"),
        ({"answer": "x +"}, "the answer key is not a valid expression: the expression ends with an operator (at character 4)"),
        ({"answer": "2**2**100"}, "exponents must stay between -1000 and 1000"),
    ],
)
def test_a_broken_problem_is_an_error_not_the_learners_fault(overrides: dict[str, Any], problem: str) -> None:
    verdict = evaluate("derivative-product-rule", "2x sin(x)", **overrides)

    assert (verdict.status, verdict.categories) == ("error", [])
    assert verdict.message == "This problem's answer key could not be read, so it cannot be checked."
    assert verdict.details == {"problem": problem}


# --- hostile input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "attack",
    [
        "__import__('os').system('id')",
        "().__class__.__bases__[0].__subclasses__()",
        "lambda: 1",
        "x.__class__",
        'exec("1")',
        "open('/etc/passwd')",
        "Symbol('x')",
        "Integer(2)",
        "globals()",
        "x" * 501,
        "(" * 30 + "x" + ")" * 30,
        "9**9**9**9",
        "9^9^9^9^9",
        "factorial(10**10)",
        "x**(10**100)",
        "2^(2^(2^(2^x)))",
        "((10^30)^1000)^1000",
        "((9^999)^999)^999",
        "123456789012345678901234567890123 * x",
    ],
)
def test_attacks_are_rejected_or_time_out_cleanly(attack: str) -> None:
    math_evaluator.warm_up()

    verdict = evaluate("derivative-product-rule", attack, time_limit_s=2.0)

    assert verdict.status in {"failed", "timeout"}
    if verdict.status == "failed":
        assert verdict.categories == ["invalid-expression"]
        assert verdict.message.startswith("Your answer is not a valid expression: ")
    assert "Traceback" not in verdict.message
    assert evaluate("derivative-product-rule", "2x sin(x) + x^2 cos(x)").status == "passed"


@pytest.mark.parametrize(
    "payload",
    [
        "__import__('os').system('touch {marker}')",
        "__import__('pathlib').Path('{marker}').touch()",
        "open('{marker}', 'w')",
        "eval(\"open('{marker}', 'w')\")",
    ],
)
def test_planted_payloads_are_never_executed(tmp_path: Path, payload: str) -> None:
    marker = tmp_path / "pwned"
    text = payload.format(marker=marker)

    verdicts = [
        evaluate("derivative-product-rule", text),
        evaluate("derivative-product-rule", "2x sin(x) + x^2 cos(x)", [text, "2x sin(x) + x^2 cos(x)"]),
        evaluate("derivative-product-rule", "x", answer=text),
    ]

    assert [verdict.status for verdict in verdicts] == ["failed", "failed", "error"]
    assert not marker.exists()
    with pytest.raises(ExpressionRejected):
        canonical_expression(text, ["x"])


def _alive(pid: int) -> bool:
    """Whether the process exists (the pool reaps what it kills, so a killed worker is gone)."""
    return Path(f"/proc/{pid}").exists()


def _state(pid: int) -> str:
    """The process's state letter (Z: dead, not yet reaped by the pool)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return next(line.split()[1] for line in status.splitlines() if line.startswith("State:"))


def _until(predicate: Callable[[], bool], what: str) -> None:
    """Wait for a state the test needs (a deadline against hanging, never a figure under test)."""
    deadline = time.monotonic() + 60
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}; workers: {math_evaluator._pool.workers()}")
        time.sleep(0.01)


class InFlight:
    """An answer checked in a thread of its own (as concurrent requests are)."""

    def __init__(self, expression: str, *, time_limit_s: float) -> None:
        self.verdict: MathVerdict | None = None
        self.thread = threading.Thread(target=self._run, args=(expression, time_limit_s), daemon=True)
        self.thread.start()

    def _run(self, expression: str, time_limit_s: float) -> None:
        self.verdict = evaluate("derivative-product-rule", expression, time_limit_s=time_limit_s)

    def finished(self) -> MathVerdict:
        self.thread.join(timeout=60)
        assert self.verdict is not None, "the answer in flight never got its verdict"
        return self.verdict


def _busy() -> list[int]:
    return math_evaluator._pool.workers()["busy"]


def _idle() -> list[int]:
    return math_evaluator._pool.workers()["idle"]


def _end_in_flight(answers: list[InFlight]) -> list[str]:
    """Kill the workers still busy with slow answers (which would run far longer than a test):
    each answer then ends as an error of its own, nobody else's."""
    for pid in _busy():
        os.kill(pid, signal.SIGKILL)
    return [answer.finished().status for answer in answers]


def test_a_slow_check_times_out_within_the_limit_and_the_next_evaluation_still_works() -> None:
    math_evaluator.warm_up()
    before = set(_idle())

    verdict = evaluate("derivative-product-rule", SLOW_TO_CHECK, time_limit_s=1.0)

    assert (verdict.status, verdict.equivalent, verdict.categories, verdict.message) == ("timeout", False, [], TIMEOUT)
    after = set(_idle())
    killed, successor = before - after, after - before
    assert len(killed) == 1 and not _alive(killed.pop())  # the stuck worker was killed
    assert len(successor) == 1 and _alive(successor.pop())  # and its successor already started
    assert _busy() == []
    assert evaluate("derivative-product-rule", "2x sin(x) + x^2 cos(x)").status == "passed"


def test_the_time_limit_comes_from_settings(settings) -> None:
    settings.CO_MATH_TIME_LIMIT_SECONDS = 0.5
    math_evaluator.warm_up()

    verdict = evaluate("derivative-product-rule", SLOW_TO_CHECK)

    assert verdict.status == "timeout"


class SoftTimeLimit(Exception):
    """Stands in for Celery's SoftTimeLimitExceeded: raised by a signal handler mid-evaluation."""


def test_an_evaluation_interrupted_by_the_caller_does_not_leave_a_busy_worker_behind() -> None:
    def interrupt(signum: int, frame: object) -> None:
        raise SoftTimeLimit

    assert math_evaluator.warm_up() is True
    before = set(_idle())
    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    try:
        with pytest.raises(SoftTimeLimit):
            evaluate("derivative-product-rule", SLOW_TO_CHECK, time_limit_s=5.0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

    assert _busy() == []
    assert len(before - set(_idle())) == 1 and not any(_alive(pid) for pid in before - set(_idle()))
    assert evaluate("derivative-product-rule", "2x sin(x) + x^2 cos(x)").status == "passed"
    assert evaluate("derivative-product-rule", "2x cos(x)").status == "failed"


def test_a_worker_that_died_is_replaced() -> None:
    math_evaluator.warm_up()
    killed = _idle()
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    _until(lambda: all(_state(pid) == "Z" for pid in killed), "the killed workers are dead")

    verdict = evaluate("derivative-chain-rule", "6x cos(3x^2 + 1)")

    assert verdict.status == "passed"


def test_concurrent_evaluations_from_threads_each_get_their_own_answer() -> None:
    cases = [("derivative-chain-rule", "6x cos(3x^2 + 1)", "passed"), ("derivative-chain-rule", "cos(3x^2 + 1)", "failed")] * 6
    results: list[tuple[str, str]] = [("", "")] * len(cases)

    def run(index: int, slug: str, expression: str) -> None:
        results[index] = (evaluate(slug, expression).status, expression)

    threads = [threading.Thread(target=run, args=(index, slug, expression)) for index, (slug, expression, _) in enumerate(cases)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert results == [(status, expression) for _, expression, status in cases]


def test_concurrent_answers_are_checked_at_once_by_distinct_worker_processes(settings) -> None:
    settings.CO_MATH_WORKERS = 3
    assert math_evaluator.warm_up() is True

    answers = [InFlight(SLOW_TO_CHECK, time_limit_s=60) for _ in range(3)]
    _until(lambda: len(_busy()) == 3, "three answers checked at the same time")
    busy = _busy()

    assert len(set(busy)) == 3 and os.getpid() not in busy
    assert all(_alive(pid) for pid in busy)
    assert all(answer.thread.is_alive() for answer in answers)
    assert _end_in_flight(answers) == ["error"] * 3
    assert evaluate("derivative-product-rule", "2x sin(x) + x^2 cos(x)").status == "passed"


def test_an_answer_in_flight_does_not_hold_up_another_learners_answer() -> None:
    assert math_evaluator.warm_up() is True
    slow = InFlight(SLOW_TO_CHECK, time_limit_s=60)
    _until(lambda: len(_busy()) == 1, "the slow answer is being checked")
    (slow_worker,) = _busy()

    verdicts = [evaluate("derivative-product-rule", "2x sin(x) + x^2 cos(x)"), evaluate("derivative-chain-rule", "cos(3x^2 + 1)")]

    # Both verdicts arrived while the slow answer was still being checked, by its own worker.
    assert [verdict.status for verdict in verdicts] == ["passed", "failed"]
    assert slow.thread.is_alive() and slow.verdict is None
    assert _busy() == [slow_worker]
    assert _end_in_flight([slow]) == ["error"]


def test_an_answer_that_hits_its_time_limit_is_replaced_and_touches_no_other_answer() -> None:
    assert math_evaluator.warm_up() is True
    running = InFlight(SLOW_TO_CHECK, time_limit_s=60)
    _until(lambda: len(_busy()) == 1, "an answer is being checked")
    (running_worker,) = _busy()
    (timed_out_worker,) = _idle()

    timed_out = evaluate("derivative-product-rule", SLOW_TO_CHECK, time_limit_s=0.5)

    assert timed_out.status == "timeout"
    assert not _alive(timed_out_worker)  # killed at its limit...
    (successor,) = _idle()  # ...and its successor started at once
    assert successor not in {running_worker, timed_out_worker} and _alive(successor)
    # The answer on the other worker went on untouched, and the next answer is served meanwhile.
    assert running.thread.is_alive() and _busy() == [running_worker]
    assert evaluate("derivative-product-rule", "2x sin(x) + x^2 cos(x)").status == "passed"
    assert running.thread.is_alive() and _busy() == [running_worker]
    assert _end_in_flight([running]) == ["error"]


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # as Celery's prefork does
def test_a_forked_child_starts_its_own_worker_and_leaves_the_parents_alone() -> None:
    math_evaluator.warm_up()
    parent_workers = math_evaluator._pool.workers()
    read_end, write_end = os.pipe()

    pid = os.fork()
    if pid == 0:  # the child: like a Celery prefork child after the parent evaluated something
        try:
            os.close(read_end)
            status = evaluate("derivative-log-chain", "2x/(x^2 + 1)").status
            os.write(write_end, status.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child_status = pipe.read().decode()
    os.waitpid(pid, 0)

    assert child_status == "passed"
    assert math_evaluator._pool.workers() == parent_workers
    assert all(_alive(worker) for worker in parent_workers["idle"])
    assert evaluate("derivative-log-chain", "2x/(x^2 + 1)").status == "passed"


# --- real-valued conventions ---------------------------------------------------------------------


def check(expression: str, answer: str, variables: list[str] | None = None, **options: Any) -> MathVerdict:
    return evaluate_math(
        expression=expression, steps=[], answer=answer, variables=variables or ["x"], form="equivalent", **options
    )


@pytest.mark.parametrize(
    ("expression", "answer", "equivalent"),
    [
        ("(-8)^(1/3)", "-2", True),
        ("cbrt(-8)", "-2", True),
        ("root(-243, 5)", "-3", True),
        ("(-8)^(2/3)", "4", True),
        ("(-27)^(-1/3)", "-1/3", True),
        ("(-8)^(1/3)", "2", False),
        ("x^(1/3)", "cbrt(x)", True),
        ("(x^3)^(1/3)", "x", True),  # the real cube root undoes the cube for negative x too
        ("(x^2)^(1/2)", "x", False),  # an even root does not
        ("x^(2/3)", "cbrt(x)^2", True),
    ],
)
def test_an_odd_root_of_a_negative_number_is_real(expression: str, answer: str, equivalent: bool) -> None:
    assert check(expression, answer).equivalent is equivalent


@pytest.mark.parametrize(
    ("expression", "answer", "positive", "equivalent"),
    [
        ("sqrt(x^2)", "x", [], False),  # x = -1 is a counterexample on the reals
        ("sqrt(x^2)", "|x|", [], True),
        ("sqrt(x^2)", "x", ["x"], True),
        ("ln(x^2)", "2 ln(x)", [], False),  # defined for x < 0 on one side only
        ("ln(x^2)", "2 ln|x|", [], True),
        ("ln(x^2)", "2 ln(x)", ["x"], True),
        ("sqrt(x) sqrt(y)", "sqrt(x y)", [], False),
        ("sqrt(x) sqrt(y)", "sqrt(x y)", ["x", "y"], True),
    ],
)
def test_branch_cuts_are_judged_on_the_real_domain_of_the_declared_variables(
    expression: str, answer: str, positive: list[str], equivalent: bool
) -> None:
    assert check(expression, answer, ["x", "y"], positive=positive).equivalent is equivalent


@pytest.mark.parametrize(
    ("expression", "answer", "positive", "equivalent"),
    [
        ("sin^2 x + cos^2 x", "1", [], True),
        ("sec^2 x - tan^2 x", "1", [], True),
        ("cosh^2 x - sinh^2 x", "1", [], True),
        ("log(a b)", "log a + log b", ["a", "b"], True),
        ("ln(a b)", "ln a + ln b", ["a", "b"], True),
        ("ln(a b)", "ln a + ln b", [], False),  # a = b = -1: ln 1 = 0, but ln(-1) is not real
        ("ln(a/b)", "ln a - ln b", ["a", "b"], True),
        ("ln(a^b)", "b ln a", ["a"], True),
    ],
)
def test_identities_that_need_the_domain(expression: str, answer: str, positive: list[str], equivalent: bool) -> None:
    assert check(expression, answer, ["a", "b", "x"], positive=positive).equivalent is equivalent


@pytest.mark.parametrize(
    ("expression", "answer", "equivalent"),
    [
        ("0.5", "1/2", True),
        ("0.125", "1/8", True),
        ("0.333", "1/3", False),
        ("0.3333333333333333", "1/3", False),  # 16 digits: still not 1/3, decimals are exact
        ("3.14159", "pi", False),
        ("3.141592653589793", "pi", False),
        ("1.414", "sqrt(2)", False),
        ("2.718281828", "e", False),
        ("1.5e3", "1500", True),
        ("1.5e3", "1501", False),
        ("0.1x + 0.2x", "0.3x", True),
        ("0.1x + 0.2x", "0.30000000000000004x", False),
    ],
)
def test_decimals_are_exact_so_a_near_miss_is_not_equivalent(expression: str, answer: str, equivalent: bool) -> None:
    assert check(expression, answer).equivalent is equivalent


def test_when_simplification_runs_out_of_time_the_numeric_comparison_decides(settings) -> None:
    settings.CO_MATH_SIMPLIFY_SECONDS = 0.001

    same = check("sin^2 x + cos^2 x", "1")
    different = check("sin^2 x + cos^2 x", "2")

    assert (same.status, same.equivalent, same.details) == ("passed", True, {"methods": ["numeric-after-timeout"]})
    assert (different.status, different.equivalent, different.details) == ("failed", False, {"methods": ["counterexample"]})


def test_symbolic_simplification_decides_within_its_budget() -> None:
    verdict = check("sin^2 x + cos^2 x", "1")

    assert (verdict.status, verdict.equivalent, verdict.details) == ("passed", True, {"methods": ["symbolic"]})


def test_an_answer_may_be_written_as_an_equation_for_the_dependent_variable() -> None:
    passed = check("f'(x) = 2x cos(x^2)", "2x cos(x^2)", dependent="f")
    elsewhere = check("g'(x) = 2x cos(x^2)", "2x cos(x^2)", dependent="f")

    assert (passed.status, passed.equivalent, passed.error_position) == ("passed", True, None)
    assert (elsewhere.status, elsewhere.categories, elsewhere.error_position) == ("failed", ["invalid-expression"], 7)


@pytest.mark.parametrize("expression", ["1/0", "x/0", "asec(0)", "log(x, 1)", "sqrt(x) asec(0)"])
@pytest.mark.parametrize("form", ["equivalent", "simplified", "expanded", "factored"])
def test_an_undefined_answer_is_wrong_not_an_error(expression: str, form: str) -> None:
    verdict = evaluate_math(expression=expression, steps=[], answer="sin(x) + 1", variables=["x"], form=form)

    assert (verdict.status, verdict.equivalent, verdict.categories) == ("failed", False, ["wrong-answer"])
