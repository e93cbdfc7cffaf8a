"""Math evaluator: is the learner's final expression equal to the answer, in the required form,
and does each step of their derivation follow from the one before?

Learner text is untrusted, so it crosses three fences before SymPy sees it:

1. ``math_notation`` (in the calling process, no SymPy): a whitelist tokenizer and a
   recursive-descent parser turn the text into a plain tree of declared variables, known
   functions and constants, digit strings and operators, or reject it with where and why. It
   reads notation as learners write it (``2x``, ``sin^2 x``, ``|x|``, ``log_2 x``, ``y = …``).
2. A separate worker process turns that tree into SymPy objects node by node (never
   ``eval``, ``sympify`` or ``parse_expr``: no text is parsed there at all). Before anything is
   evaluated the unevaluated tree is checked: numeric exponents within ±1000, powers nested at
   most 3 deep in exponents, no intermediate number beyond ~10^10000.
3. Everything that computes (evaluation, simplification, form checks) runs in that worker under
   a wall-clock limit (``CO_MATH_TIME_LIMIT_SECONDS``, default 2 s) and an address-space limit
   (``CO_MATH_MEMORY_LIMIT_MB``, default 1024). A worker is a plain ``subprocess`` (``python -I``
   running this file, empty environment, cwd ``/``): ``multiprocessing`` refuses to start
   children from a Celery prefork child (billiard marks it daemonic) and ``spawn`` would
   re-import the host's ``__main__`` (gunicorn, celery). ``python -I`` cannot import the rest of
   the project, so the worker's half of this file uses the standard library and SymPy only.

Each process keeps a pool of up to ``CO_MATH_WORKERS`` long-lived workers (SymPy imported once
in each), started by ``warm_up`` or on demand, and forgotten after ``fork()``. A worker serves
one answer at a time, so concurrent answers (threads of the serving process grading eagerly)
are checked at the same time by different workers, each under its own time limit. A worker
that hits the limit is killed and its successor spawned at once, without waiting for it: the
other workers, and the answers they are checking, are never touched; only answers beyond the
pool's size wait, for the first worker given back.

Rules:

- Real numbers, as school textbooks use them: variables are real (positive where the problem
  declares them ``positive``); an odd root of a negative number is real (``(-8)^(1/3)`` and
  ``cbrt(-8)`` are ``-2``; ``x^(1/3)`` is ``sign(x)·|x|^(1/3)``); even roots and logarithms of
  negative numbers are undefined (not real). Decimals are exact (``0.5`` is ``1/2``), so a
  rounded decimal is not equal to ``1/3`` or ``pi``.
- Equivalence: equal trees; else a numeric comparison at seeded random points of the real
  domain (30 significant digits, relative tolerance 1e-20): a point where one side is real and
  the other is not, or both are real and differ, is a counterexample (not equivalent); points
  where neither is real lie outside both domains and are skipped. Without a counterexample,
  ``simplify(a - b) == 0`` decides, under its own budget (``CO_MATH_SIMPLIFY_SECONDS``, default
  0.5 s); when it cannot decide or runs out of time, agreement at >= 4 points decides (the
  numeric fallback).
- Steps: a derivation is a chain of equal expressions (as the shipped packs write them, e.g.
  ``(8 + 7)/(5 - 2)``, ``15/3``, ``5``). Steps are numbered from 1. Step 1 is the learner's
  starting point and only has to be valid (the statement is prose, there is nothing to compare
  it with); step k > 1 must be equivalent to the nearest valid step before it; the last step
  must also be equivalent to the submitted final expression. Steps are not checked for form.
- Forms (only of the final expression, judged on what was written, before SymPy's automatic
  evaluation rewrites it): ``equivalent`` always holds. ``expanded``: no bracketed sum is
  multiplied or raised to a power, and ``expand(e) == e`` (products and powers only).
  ``factored``: every factor written is irreducible over the rationals with no numeric content
  of its own, so ``3(x + 1)`` is factored and ``3x + 3`` or ``(x^2 - 1)(x + 2)`` are not
  (``factor(e) == e`` up to the numeric coefficient SymPy always multiplies into a sum).
  ``simplified``: no more operations (``count_ops``) than the reference answer as authored, no
  common factor left in a polynomial fraction, and a single fraction when the answer is one.
- ``x = <expression without x>`` is read as ``<expression>``, and so is ``y = …``, ``y' = …``,
  ``f(x) = …`` or ``dy/dx = …`` when ``y`` / ``f`` is the problem's declared ``dependent``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import selectors
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __name__ != "__main__":  # the worker (python -I this file) reads trees, never text
    from grading.evaluators.math_notation import (
        MAX_EXPRESSION_CHARS,
        ExpressionRejected,
        canonical_expression,
        check_variables,
        parse_expression,
    )

__all__ = [
    "ExpressionRejected",
    "MathStepCheck",
    "MathVerdict",
    "canonical_expression",
    "check_variables",
    "evaluate_math",
    "warm_up",
]

FORMS = ("equivalent", "simplified", "expanded", "factored")
# Mistakes the checker can name (they select the problem's authored remediation), and how many
# candidate rewrites of the answer it tries for each.
DIAGNOSES = ("sign-error", "chain-rule")
DIAGNOSIS_CANDIDATES = 12

MAX_STEPS = 30
MAX_POWER_NESTING = 3
MAX_EXPONENT = 1000
MAX_LOG10_MAGNITUDE = 10_000
MAX_RESPONSE_BYTES = 1_000_000
WORKER_EVALUATIONS_BEFORE_RECYCLE = 1000
# Numeric comparison: sample points tried, points that must agree, digits, relative tolerance.
SAMPLE_POINTS = 24
AGREEING_POINTS = 4
SAMPLE_DIGITS = 30
RELATIVE_TOLERANCE = 1e-20
WORKING_BITS = 200  # ~60 digits for the fast evaluator, so 1e-20 survives ordinary cancellation

DEFAULT_TIME_LIMIT_SECONDS = 2.0
DEFAULT_SIMPLIFY_SECONDS = 0.5
DEFAULT_MEMORY_LIMIT_MB = 1024
DEFAULT_WORKER_START_SECONDS = 30.0
DEFAULT_WORKERS = 2

# The tree's function names -> the SymPy function the worker applies (those built by hand, such
# as log10, root and abs, are handled in the worker's `build_call`).
SYMPY_FUNCTIONS = (
    "sin", "cos", "tan", "sec", "csc", "cot", "asin", "acos", "atan", "asec", "acsc", "acot",
    "sinh", "cosh", "tanh", "sech", "csch", "coth", "asinh", "acosh", "atanh", "asech", "acsch", "acoth", "exp",
)  # fmt: skip
_WORKER_ENV = {"LANG": "C.UTF-8", "PATH": os.defpath}

_FORM_PHRASES = {
    "expanded": "expanded: multiply out every bracket and collect like terms",
    "factored": "fully factored: write it as a product of factors that cannot be factored further",
    "simplified": "in its simplest form: cancel common factors and combine terms into as few operations as possible",
}


@dataclass
class MathStepCheck:
    index: int  # 1-based, as the learner numbers their steps
    expression: str
    ok: bool
    reason: str | None  # e.g. "does not follow from step 2", "not a valid expression: unknown name 'foo'"


@dataclass
class MathVerdict:
    status: str  # "passed" | "failed" | "timeout" | "error"
    equivalent: bool
    form_ok: bool
    categories: list[str]
    first_invalid_step: int | None
    steps: list[MathStepCheck]
    message: str
    exec_ms: int
    details: dict[str, Any] = field(default_factory=dict)  # staff-side diagnostics (never the answer)
    error_position: int | None = None  # where the final expression stopped being readable (1-based)


# =============================================================================================
# Fences 2 and 3: the worker process (SymPy lives only here)
# =============================================================================================


def _worker_main(memory_limit_mb: int) -> None:  # pragma: no cover - runs in the child process
    """Read one JSON request per line from stdin, answer one JSON line on stdout, forever."""
    import random
    import resource
    import signal
    from math import log10

    import mpmath
    import sympy

    Add, Mul, Pow, S = sympy.Add, sympy.Mul, sympy.Pow, sympy.S
    functions = {name: getattr(sympy, name) for name in SYMPY_FUNCTIONS}
    constants = {"pi": sympy.pi, "e": sympy.E, "oo": sympy.oo}
    mpmath.mp.prec = WORKING_BITS

    limit = memory_limit_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    class Unreadable(Exception):
        """A tree the worker will not build (the calling side's parser should never send one)."""

    class OutOfBudget(Exception):
        """simplify ran past its own budget; the numeric comparison decides instead."""

    def out_of_budget(signum: int, frame: object) -> None:
        raise OutOfBudget

    signal.signal(signal.SIGALRM, out_of_budget)

    def rebuild(node: Any) -> Any:
        """Evaluate an unevaluated tree bottom-up (only after `guard` accepted it)."""
        return node.func(*[rebuild(arg) for arg in node.args]) if node.args else node

    def real_root(base: Any, numerator: int, denominator: int) -> Any:
        """base^(p/q) for an odd q, real for a negative base: sign(b)·|b|^(p/q) (|b|^(p/q) for an
        even p), as textbooks read (-8)^(1/3) = -2; SymPy's principal root would be complex."""
        if rebuild(base).is_nonnegative:
            return Pow(base, sympy.Rational(numerator, denominator), evaluate=False)
        magnitude = Pow(sympy.Abs(base, evaluate=False), sympy.Rational(numerator, denominator), evaluate=False)
        return Mul(sympy.sign(base, evaluate=False), magnitude, evaluate=False) if numerator % 2 else magnitude

    def power(base: Any, exponent: Any) -> Any:
        value = rebuild(exponent) if exponent.args else exponent
        if value.is_Rational and not value.is_Integer and value.q % 2 == 1:
            return real_root(base, int(value.p), int(value.q))
        return Pow(base, exponent, evaluate=False)

    def logarithm(argument: Any, base: Any) -> Any:
        return Mul(sympy.log(argument, evaluate=False), Pow(sympy.log(base, evaluate=False), -1, evaluate=False), evaluate=False)

    def build_call(name: str, arguments: list[Any]) -> Any:
        if name == "acot":  # the textbook range (0, pi), so arccot(-1) = 3pi/4; SymPy's is (-pi/2, pi/2]
            return Add(sympy.pi / 2, Mul(S.NegativeOne, sympy.atan(arguments[0], evaluate=False), evaluate=False), evaluate=False)
        if name in functions:
            return functions[name](*arguments, evaluate=False)
        if name == "ln":
            return sympy.log(arguments[0], evaluate=False)
        if name == "log10":
            return logarithm(arguments[0], sympy.Integer(10))
        if name == "log":
            return logarithm(arguments[0], arguments[1]) if len(arguments) == 2 else logarithm(arguments[0], sympy.Integer(10))
        if name == "sqrt":
            return Pow(arguments[0], S.Half, evaluate=False)
        if name == "cbrt":
            return real_root(arguments[0], 1, 3)
        if name == "root":
            degree = rebuild(arguments[1])
            if degree.is_Integer and degree > 0 and degree % 2 == 1:
                return real_root(arguments[0], 1, int(degree))
            return Pow(arguments[0], Pow(arguments[1], -1, evaluate=False), evaluate=False)
        if name == "abs":
            return sympy.Abs(arguments[0], evaluate=False)
        raise Unreadable(f"unknown function {name[:20]!r}")

    def build(node: Any, symbols: dict[str, Any]) -> Any:
        """The unevaluated SymPy tree of a parser tree; only whitelisted names are looked up."""
        kind, rest = node[0], node[1:]
        if kind == "num":
            return sympy.Rational(rest[0])
        if kind == "var":
            if rest[0] not in symbols:
                raise Unreadable("it uses a name that is not a variable of this problem")
            return symbols[rest[0]]
        if kind == "const":
            return constants[rest[0]]
        if kind == "add":
            return Add(*[build(term, symbols) for term in rest], evaluate=False)
        if kind == "neg":
            inner = build(rest[0], symbols)
            return -inner if inner.is_Number else Mul(S.NegativeOne, inner, evaluate=False)
        if kind == "mul":
            factors = [
                Pow(build(factor[1], symbols), -1, evaluate=False) if factor[0] == "div" else build(factor, symbols)
                for factor in rest
            ]
            return Mul(*factors, evaluate=False)
        if kind == "pow":
            return power(build(rest[0], symbols), build(rest[1], symbols))
        if kind == "call":
            return build_call(rest[0], [build(argument, symbols) for argument in rest[1:]])
        raise Unreadable("it is not a mathematical expression")

    def magnitude(node: Any) -> float:
        """log10 of how large (or, as a denominator, how small) a number atom is."""
        if node.is_Rational:
            return max(log10(abs(node.p)) if node.p else 0.0, log10(node.q))
        return 1.0

    def guard(node: Any) -> tuple[int, float]:
        """(power nesting, log10 size of the numbers involved); rejects what could blow up."""
        if not node.args:
            return 0, magnitude(node) if node.is_number else 0.0
        results = [guard(arg) for arg in node.args]
        nesting = max(result[0] for result in results)
        sizes = [result[1] for result in results]
        if isinstance(node, Pow):
            (base_nesting, base_size), (exponent_nesting, _) = results
            nesting = max(base_nesting, exponent_nesting + 1)
            if nesting > MAX_POWER_NESTING:
                raise Unreadable("powers are nested too deeply")
            size = base_size
            if not node.exp.free_symbols:
                try:
                    value = complex(rebuild(node.exp).evalf(15))
                except (TypeError, ValueError, OverflowError) as exc:
                    raise Unreadable("an exponent is not a number of reasonable size") from exc
                if not abs(value) <= MAX_EXPONENT:
                    raise Unreadable(f"exponents must stay between -{MAX_EXPONENT} and {MAX_EXPONENT}")
                size = base_size * max(1.0, abs(value))
        elif isinstance(node, Mul):
            size = sum(sizes)
        else:
            size = max(sizes) + 1.0
        if size > MAX_LOG10_MAGNITUDE:
            raise Unreadable("the numbers in it are too large")
        return nesting, size

    def parse(tree: Any, symbols: dict[str, Any]) -> tuple[Any, Any]:
        """(as written, evaluated) for a tree from `math_notation.parse_expression`."""
        try:
            written = build(tree, symbols)
        except (Unreadable, MemoryError, RecursionError):
            raise
        except Exception as exc:  # SymPy raises many types on odd input; all mean "unreadable"
            raise Unreadable("it could not be read as a mathematical expression") from exc
        guard(written)
        try:
            return written, rebuild(written)
        except (ArithmeticError, ValueError, TypeError) as exc:  # e.g. asec(0): SymPy divides by zero
            raise Unreadable("it has no value (for example, it divides by zero)") from exc

    fast_functions = {
        **{getattr(sympy, name): getattr(mpmath, name) for name in SYMPY_FUNCTIONS},
        sympy.log: mpmath.log,
        sympy.Abs: abs,
        sympy.sign: mpmath.sign,
    }
    fast_constants = {sympy.pi: lambda: +mpmath.pi, sympy.E: lambda: +mpmath.e, sympy.I: lambda: mpmath.mpc(0, 1)}

    class NotFast(Exception):
        """A node the mpmath evaluator does not know: SymPy's evalf evaluates it instead."""

    def fast_value(node: Any, point: dict[Any, Any]) -> Any:
        """The value of a SymPy tree at a point with mpmath at WORKING_BITS (far faster than
        evalf, which tracks precision adaptively; a counterexample it finds is confirmed by
        evalf before it counts, in case cancellation ate the working precision)."""
        if node.is_Symbol:
            return point[node]
        if node.is_Rational:
            return mpmath.mpf(int(node.p)) / int(node.q)
        if node.is_Float:
            return mpmath.mpf(node._mpf_)
        if node in fast_constants:
            return fast_constants[node]()
        arguments = [fast_value(argument, point) for argument in node.args]
        if node.is_Add:
            return mpmath.fsum(arguments)
        if node.is_Mul:
            return mpmath.fprod(arguments)
        if node.is_Pow:
            base, exponent = arguments
            return base ** int(node.exp) if node.exp.is_Integer else mpmath.power(base, exponent)
        function = fast_functions.get(node.func)
        if function is None or len(arguments) != 1:
            raise NotFast
        return function(*arguments)

    def finite(value: Any) -> Any:
        value = mpmath.mpc(value)
        return value if mpmath.isfinite(value) else None

    def evalf_value(expression: Any, point: dict[Any, Any]) -> Any:
        """The value at a point with SymPy's adaptive evalf (SAMPLE_DIGITS correct digits)."""
        try:
            value = expression.evalf(SAMPLE_DIGITS, subs={symbol: sympy.Rational(*ratio) for symbol, ratio in point[1].items()})
            real, imaginary = value.as_real_imag()
            return finite(mpmath.mpc(sympy.Float(real, SAMPLE_DIGITS)._mpf_, sympy.Float(imaginary, SAMPLE_DIGITS)._mpf_))
        except (TypeError, ValueError, OverflowError, ZeroDivisionError, AttributeError):
            return None

    values: dict[tuple[Any, int, bool], Any] = {}  # (expression, point, confirmed) -> value, per request

    def numeric_value(expression: Any, index: int, *, confirmed: bool = False) -> Any:
        """The value at sample point `index` as an mpmath complex; None at a pole or where it is
        not a finite number. `confirmed`: by evalf, not the fast evaluator."""
        key = (expression, index, confirmed)
        if key not in values:
            point = points[index]
            value = None
            if not confirmed:
                try:
                    value = finite(fast_value(expression, point[0]))
                except NotFast:
                    confirmed = True
                except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                    value = None
            if confirmed:
                value = evalf_value(expression, point)
            values[key] = value
        return values[key]

    def is_real(value: Any) -> bool:
        return abs(value.imag) <= RELATIVE_TOLERANCE * max(1, abs(value.real))

    def sample_points(symbols: list[Any]) -> list[tuple[dict[Any, Any], dict[Any, tuple[int, int]]]]:
        """Seeded points for all the problem's symbols, each as (mpmath values, exact ratios): a
        third with |v| < 1 (where asin, acos, atanh are real), a third in 1..3 and a third in
        3..6; positive symbols only positive, the others of either sign."""
        generator = random.Random(20250101)  # noqa: S311 - sample points, not secrets
        sampled = []
        for index in range(SAMPLE_POINTS):
            low, high = ((50, 950), (1000, 3000), (3000, 6000))[index % 3]
            ratios = {
                symbol: (generator.randint(low, high) * (1 if symbol.is_positive else generator.choice((-1, 1))), 1000)
                for symbol in symbols
            }
            sampled.append(({symbol: mpmath.mpf(p) / q for symbol, (p, q) in ratios.items()}, ratios))
        return sampled

    points: list[tuple[dict[Any, Any], dict[Any, tuple[int, int]]]] = []
    points_by_symbols: dict[tuple[Any, ...], list[tuple[dict[Any, Any], dict[Any, tuple[int, int]]]]] = {}

    def compare_at(a: Any, b: Any, index: int, *, confirmed: bool) -> str:
        """'agree', 'differ' or 'skip' (a pole of one side, or outside the real domain of both)."""
        value_a, value_b = numeric_value(a, index, confirmed=confirmed), numeric_value(b, index, confirmed=confirmed)
        if value_a is None or value_b is None:
            return "skip"  # a pole of one of them: says nothing about the rest of the domain
        real_a, real_b = is_real(value_a), is_real(value_b)
        if not real_a and not real_b:
            return "skip"
        if real_a != real_b:
            return "differ"  # defined (real) here for one of them only
        if abs(value_a.real - value_b.real) > RELATIVE_TOLERANCE * max(1, abs(value_a.real), abs(value_b.real)):
            return "differ"
        return "agree"

    def numeric_comparison(a: Any, b: Any, *, confirm: bool = True) -> str:
        """'differ' (a counterexample exists), 'agree' (>= AGREEING_POINTS points of the real
        domain, one point when the expressions have no variables) or 'unknown'. Without
        `confirm`, a counterexample of the fast evaluator is not checked with evalf (naming a
        mistake is a hint, never a verdict)."""
        free = a.free_symbols | b.free_symbols
        agreeing = 0
        for index in range(SAMPLE_POINTS if free else 1):
            outcome = compare_at(a, b, index, confirmed=False)
            if outcome == "differ" and confirm:
                outcome = compare_at(a, b, index, confirmed=True)
            if outcome == "differ":
                return "differ"
            agreeing += outcome == "agree"
            if agreeing >= 2 * AGREEING_POINTS:
                break
        return "agree" if agreeing >= (AGREEING_POINTS if free else 1) else "unknown"

    def simplifies_to_zero(difference: Any, budget: float) -> bool | None:
        """True / False when SymPy decides within the budget, None when it ran out of time."""
        if difference == 0:
            return True
        signal.setitimer(signal.ITIMER_REAL, budget)
        try:
            return bool(sympy.expand(difference) == 0 or sympy.simplify(difference) == 0)
        except (OutOfBudget, ArithmeticError, ValueError, TypeError):  # undecided: the numeric comparison decides
            return None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def equivalent(a: Any, b: Any, budget: float, methods: list[str]) -> bool:
        if a == b:
            methods.append("identical")
            return True
        numeric = numeric_comparison(a, b)
        if numeric == "differ":
            methods.append("counterexample")
            return False
        symbolic = simplifies_to_zero(a - b, budget)
        if symbolic:
            methods.append("symbolic")
            return True
        methods.append("numeric" if symbolic is False else "numeric-after-timeout")
        return numeric == "agree"

    def has_bracket_product(written: Any) -> bool:
        for node in sympy.preorder_traversal(written):
            if isinstance(node, Mul) and any(isinstance(arg, Add) for arg in node.args):
                return True
            if isinstance(node, Pow) and isinstance(node.base, Add) and node.exp.is_Integer and node.exp > 1:
                return True
        return False

    def written_factors(written: Any) -> list[Any]:
        if isinstance(written, Mul):
            return [factor for arg in written.args for factor in written_factors(arg)]
        if isinstance(written, Pow) and written.exp.is_number:
            return written_factors(written.base)
        return [written]

    def irreducible(factor: Any) -> bool:
        """One factor as written: irreducible over the rationals with no numeric content left
        inside (so `3(x + 1)` is factored, `3x + 3` and `(2x + 2)(x - 1)` are not)."""
        try:
            content, parts = sympy.factor_list(factor)
        except sympy.polys.polyerrors.BasePolynomialError:
            return True
        return abs(content) == 1 and len(parts) <= 1 and all(multiplicity == 1 for _, multiplicity in parts)

    def polynomial_fraction(evaluated: Any, symbols: list[Any]) -> tuple[Any, Any] | None:
        numerator, denominator = sympy.fraction(evaluated)
        if numerator.is_polynomial(*symbols) is True and denominator.is_polynomial(*symbols) is True:
            return numerator, denominator
        return None

    def form_holds(form: str, learner: tuple[Any, Any], answer: tuple[Any, Any], symbols: list[Any]) -> bool:
        written, evaluated = learner
        if form == "expanded":
            products_only = sympy.expand(evaluated, power_base=False, power_exp=False, log=False)
            return not has_bracket_product(written) and products_only == evaluated
        if form == "factored":
            return all(irreducible(rebuild(factor)) for factor in written_factors(written) if not factor.is_number)
        if form == "simplified":
            if sympy.count_ops(written) > sympy.count_ops(answer[0]):
                return False
            learner_fraction = polynomial_fraction(evaluated, symbols)
            if learner_fraction is not None and sympy.gcd(*learner_fraction).free_symbols:
                return False
            return learner_fraction is not None or polynomial_fraction(answer[1], symbols) is None
        return True

    def diagnosis(learner: Any, answer: Any, symbols: list[Any]) -> list[str]:
        """Name a common mistake when a wrong answer is exactly one: the answer with its sign or
        one term's sign flipped (`sign-error`), or the answer divided by the derivative of a
        function's inner argument (`chain-rule`). Numeric comparisons only, a bounded number."""
        terms = sympy.Add.make_args(sympy.expand(answer))[:DIAGNOSIS_CANDIDATES]
        sign_flips = [-answer, *(answer - 2 * term for term in terms if len(terms) > 1)]
        if any(numeric_comparison(learner, candidate, confirm=False) == "agree" for candidate in sign_flips):
            return ["sign-error"]
        inner_factors = []
        for node in sympy.preorder_traversal(answer):
            if isinstance(node, sympy.Function) or (isinstance(node, Pow) and not node.base.is_Symbol):
                inner = node.args[0]
                for symbol in symbols:
                    factor = sympy.diff(inner, symbol)
                    if not factor.is_number:
                        inner_factors.append(factor)
            if len(inner_factors) >= DIAGNOSIS_CANDIDATES:
                break
        if any(numeric_comparison(learner * factor, answer, confirm=False) == "agree" for factor in inner_factors):
            return ["chain-rule"]
        return []

    def check(request: dict[str, Any]) -> dict[str, Any]:
        positive = set(request.get("positive") or [])
        symbols = {
            name: sympy.Symbol(name, positive=True) if name in positive else sympy.Symbol(name, real=True)
            for name in request["variables"]
        }
        values.clear()
        key = tuple(symbols.values())
        if key not in points_by_symbols:
            points_by_symbols.clear()  # one problem's points at a time: a bounded cache
            points_by_symbols[key] = sample_points(list(key))
        points[:] = points_by_symbols[key]
        budget = float(request.get("simplify_seconds") or DEFAULT_SIMPLIFY_SECONDS)
        methods: list[str] = []
        try:
            answer = parse(request["answer"], symbols)
        except Unreadable as exc:
            return {"answer_error": str(exc)}
        response: dict[str, Any] = {"expression_error": request["expression_error"], "equivalent": False, "form_ok": False}
        learner = None
        if request["expression"] is not None:
            try:
                learner = parse(request["expression"], symbols)
            except Unreadable as exc:
                response["expression_error"] = str(exc)
        if learner is not None:
            response["equivalent"] = equivalent(learner[1], answer[1], budget, methods)
            try:
                response["form_ok"] = form_holds(request["form"], learner, answer, list(symbols.values()))
            except (ArithmeticError, ValueError, TypeError):  # e.g. asec(0) in a fraction: no form to speak of
                response["form_ok"] = False
            if not response["equivalent"]:
                response["diagnosis"] = diagnosis(learner[1], answer[1], list(symbols.values()))
        steps: list[dict[str, Any]] = []
        previous: tuple[int, Any] | None = None
        for number, step in enumerate(request["steps"], start=1):
            reason = step["error"] and f"not a valid expression: {step['error']}"
            parsed = None
            if reason is None:
                try:
                    parsed = parse(step["tree"], symbols)[1]
                except Unreadable as exc:
                    reason = f"not a valid expression: {exc}"
            if parsed is not None:
                if previous is not None and not equivalent(parsed, previous[1], budget, methods):
                    reason = f"does not follow from step {previous[0]}"
                previous = (number, parsed)
            steps.append({"ok": reason is None, "reason": reason})
        last_step_valid = steps and steps[-1]["ok"] and previous is not None and previous[0] == len(steps)
        if last_step_valid and learner is not None and not equivalent(previous[1], learner[1], budget, methods):
            steps[-1] = {"ok": False, "reason": "does not lead to your final answer"}
        response["steps"] = steps
        response["methods"] = methods
        return response

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer

    def send(message: dict[str, Any]) -> None:
        stdout.write(json.dumps(message).encode() + b"\n")
        stdout.flush()

    for request in _WORKER_WARM_UP:  # SymPy imports parts of itself on first use: not on a learner's time
        check(request)
    send({"ready": True})
    for line in stdin:
        request = json.loads(line)
        try:
            send({"id": request["id"], "result": check(request)})
        except MemoryError:
            send({"id": request["id"], "failure": "memory"})
            return  # a process that ran out of memory is not trusted with the next request
        except RecursionError:
            send({"id": request["id"], "failure": "recursion"})
        except Exception as exc:  # noqa: BLE001 - any SymPy failure is reported, never fatal
            send({"id": request["id"], "failure": type(exc).__name__})


# =============================================================================================
# The calling side: a small pool of long-lived workers per process
# =============================================================================================


class _WorkerTimeout(Exception):
    pass


class _WorkerFailed(Exception):
    pass


def _setting(name: str, default: Any) -> Any:
    """Limits come from Django settings when configured; plain defaults otherwise (scripts)."""
    try:
        from django.conf import settings

        value = getattr(settings, name, None)
    except Exception:  # noqa: BLE001 - ImproperlyConfigured outside a Django process
        return default
    return default if value is None else value


# What a worker checks before it says it is ready: a right answer in another form, a wrong one
# (the mistake diagnosis) and a form check, so that first uses inside SymPy are paid for here.
_X = ["var", "x"]
_WORKER_WARM_UP = [
    {
        "answer": [
            "add",
            ["mul", ["num", "2"], _X, ["call", "sin", _X]],
            ["mul", ["pow", _X, ["num", "2"]], ["call", "cos", _X]],
        ],
        "expression": expression,
        "expression_error": None,
        "steps": [],
        "variables": ["x"],
        "positive": [],
        "form": form,
    }
    for expression, form in [
        (["mul", _X, ["add", ["mul", ["num", "2"], ["call", "sin", _X]], ["mul", _X, ["call", "cos", _X]]]], "simplified"),
        (["mul", ["num", "2"], _X, ["call", "cos", _X]], "equivalent"),
        (["call", "ln", ["add", ["pow", _X, ["num", "2"]], ["num", "1"]]], "expanded"),
    ]
]

_WARM_UP_PAYLOAD = {
    "answer": ["num", "1"],
    "expression": ["num", "1"],
    "expression_error": None,
    "steps": [],
    "variables": [],
    "form": "equivalent",
}


class _Worker:
    """One SymPy process. Starting it only spawns the process; `wait_ready` waits for its SymPy
    import, so a replacement can be spawned by a caller that does not wait for it."""

    def __init__(self, *, memory_limit_mb: int) -> None:
        self.evaluations = 0
        self.ready = False
        self._buffer = b""
        self.process = subprocess.Popen(
            [sys.executable, "-I", str(Path(__file__).resolve()), str(int(memory_limit_mb))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd="/",
            env=_WORKER_ENV,
            start_new_session=True,
            bufsize=0,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float) -> None:
        if not self.ready:
            try:
                message = self._read(time.monotonic() + timeout)
            except _WorkerTimeout as exc:  # not the learner's answer taking too long
                raise _WorkerFailed("the math worker did not start in time") from exc
            if message != {"ready": True}:
                raise _WorkerFailed("the math worker did not start")
            self.ready = True

    def request(self, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and wait for its answer; the id guards against ever reading a stale one."""
        deadline = time.monotonic() + timeout
        assert self.process.stdin is not None
        self.evaluations += 1
        request_id = self.evaluations
        data = memoryview(json.dumps({**payload, "id": request_id}).encode() + b"\n")
        try:
            while data:
                data = data[self.process.stdin.write(data) or 0 :]
        except OSError as exc:
            raise _WorkerFailed("the math worker went away") from exc
        answer = self._read(deadline)
        if answer.get("id") != request_id:
            raise _WorkerFailed("the math worker answered another request")
        return answer

    def _read(self, deadline: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        descriptor = self.process.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(descriptor, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _WorkerTimeout
                if not selector.select(remaining):
                    continue
                chunk = os.read(descriptor, 65536)
                if not chunk:
                    raise _WorkerFailed("the math worker exited")
                self._buffer += chunk
                if len(self._buffer) > MAX_RESPONSE_BYTES:
                    raise _WorkerFailed("the math worker answered too much")
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError as exc:
            raise _WorkerFailed("the math worker answered something that is not JSON") from exc
        if not isinstance(message, dict):
            raise _WorkerFailed("the math worker answered something that is not an object")
        return message

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self.close_pipes()

    def close_pipes(self) -> None:
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def _pool_size() -> int:
    return max(1, int(_setting("CO_MATH_WORKERS", DEFAULT_WORKERS)))


def _memory_limit_mb() -> int:
    return int(_setting("CO_MATH_MEMORY_LIMIT_MB", DEFAULT_MEMORY_LIMIT_MB))


def _start_seconds() -> float:
    return float(_setting("CO_MATH_WORKER_START_SECONDS", DEFAULT_WORKER_START_SECONDS))


class _WorkerPool:
    """Up to `CO_MATH_WORKERS` workers, each serving one answer at a time. The condition guards
    only the bookkeeping: starting, waiting for and killing workers happen outside it, so one
    slow answer (or one slow start) holds its own worker and nobody else's."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._starting = 0  # slots taken by workers being spawned outside the condition

    def _count(self) -> int:
        return len(self._idle) + len(self._busy) + self._starting

    def _surplus(self) -> list[_Worker]:
        """Idle workers beyond the pool's size (the setting shrank), taken out for killing."""
        surplus = []
        while self._idle and self._count() > _pool_size():
            surplus.append(self._idle.pop(0))
        return surplus

    def acquire(self) -> _Worker:
        """An idle worker (a ready one first), else a new one while the pool is below its size,
        else the first worker another caller gives back."""
        stale: list[_Worker] = []
        worker: _Worker | None = None
        try:
            with self._condition:
                stale += self._surplus()
                while worker is None:
                    while self._idle and worker is None:
                        candidate = next((idle for idle in reversed(self._idle) if idle.ready), self._idle[-1])
                        self._idle.remove(candidate)
                        if candidate.alive() and candidate.evaluations < WORKER_EVALUATIONS_BEFORE_RECYCLE:
                            worker = candidate
                            self._busy.add(worker)
                        else:
                            stale.append(candidate)
                    if worker is None:
                        if self._count() < _pool_size():
                            self._starting += 1
                            break
                        self._condition.wait()
        finally:  # also when the wait was interrupted
            for candidate in stale:
                candidate.kill()
        if worker is None:
            try:
                worker = _Worker(memory_limit_mb=_memory_limit_mb())
            finally:
                with self._condition:
                    self._starting -= 1
                    if worker is not None:
                        self._busy.add(worker)
                    self._condition.notify()
        try:
            worker.wait_ready(_start_seconds())
        except BaseException:  # including a Celery soft time limit: never keep a half-started worker
            self.discard(worker, replace=False)
            raise
        return worker

    def release(self, worker: _Worker) -> None:
        with self._condition:
            self._busy.discard(worker)
            surplus = self._count() >= _pool_size()  # the setting shrank while it was busy
            if not surplus:
                self._idle.append(worker)
            self._condition.notify()
        if surplus:
            worker.kill()

    def discard(self, worker: _Worker, *, replace: bool) -> None:
        """Kill a worker that may still be busy (timed out, died, or its caller was interrupted);
        with `replace`, spawn its successor now, so the next answer finds it started."""
        with self._condition:
            self._busy.discard(worker)
            self._condition.notify()
        worker.kill()
        if replace:
            with contextlib.suppress(OSError):  # no process could be started now; the next answer tries again
                self._spawn_idle()

    def _spawn_idle(self) -> _Worker | None:
        """Spawn one worker into the idle list without waiting for it; None when the pool is full."""
        with self._condition:
            if self._count() >= _pool_size():
                return None
            self._starting += 1
        worker = None
        try:
            worker = _Worker(memory_limit_mb=_memory_limit_mb())
        finally:
            with self._condition:
                self._starting -= 1
                if worker is not None:
                    self._idle.append(worker)
                self._condition.notify()
        return worker

    def fill(self) -> bool:
        """Start every missing worker at once and wait until each answered a first request; False
        when one could not be started (the next evaluation tries again)."""
        with self._condition:
            surplus = self._surplus()
        for worker in surplus:
            worker.kill()
        spawned, healthy = [], True
        try:
            while (worker := self._spawn_idle()) is not None:
                spawned.append(worker)
        except OSError:
            healthy = False
        for worker in spawned:
            with self._condition:
                if worker not in self._idle:
                    continue  # already taken by an evaluation, which waits for it itself
                self._idle.remove(worker)
                self._busy.add(worker)
            try:
                worker.wait_ready(_start_seconds())
                worker.request(_WARM_UP_PAYLOAD, _start_seconds())
            except (_WorkerTimeout, _WorkerFailed):
                self.discard(worker, replace=False)
                healthy = False
            except BaseException:
                self.discard(worker, replace=False)
                raise
            else:
                self.release(worker)
        return healthy

    def workers(self) -> dict[str, list[int]]:
        """Process ids of the idle and the busy workers (what /proc shows of the pool)."""
        with self._condition:
            return {"idle": [worker.pid for worker in self._idle], "busy": [worker.pid for worker in self._busy]}

    def forget(self) -> None:
        """In a forked child: close the inherited pipes of the parent's workers, never kill them."""
        for worker in [*self._idle, *self._busy]:
            worker.close_pipes()

    def shutdown(self) -> None:
        with self._condition:
            workers = [*self._idle, *self._busy]
            self._idle.clear()
            self._busy.clear()
        for worker in workers:
            worker.kill()


_pool = _WorkerPool()


def _forget_pool_after_fork() -> None:
    """A forked child (Celery prefork, gunicorn) must not share its parent's worker pipes."""
    global _pool
    inherited, _pool = _pool, _WorkerPool()
    inherited.forget()


os.register_at_fork(after_in_child=_forget_pool_after_fork)
atexit.register(lambda: _pool.shutdown())


def _run_in_worker(payload: dict[str, Any], timeout: float) -> tuple[dict[str, Any], int]:
    """(the worker's answer, milliseconds it took). Raises _WorkerTimeout / _WorkerFailed."""
    worker = _pool.acquire()
    started = time.monotonic()
    try:
        answer = worker.request(payload, timeout)
    except (_WorkerTimeout, _WorkerFailed):  # it may still be computing: kill it, start its successor
        _pool.discard(worker, replace=True)
        raise
    except BaseException:  # the caller was interrupted (Celery soft limit): kill it, start nothing here
        _pool.discard(worker, replace=False)
        raise
    _pool.release(worker)
    return answer, int((time.monotonic() - started) * 1000)


def warm_up() -> bool:
    """Start the pool's workers ahead of the first evaluation (e.g. when a Celery worker process
    starts); False when one could not be started (the next evaluation tries again)."""
    return _pool.fill()


# =============================================================================================
# The evaluator
# =============================================================================================


def _unavailable(status: str, message: str, exec_ms: int, **details: Any) -> MathVerdict:
    return MathVerdict(
        status=status,
        equivalent=False,
        form_ok=False,
        categories=[],
        first_invalid_step=None,
        steps=[],
        message=message,
        exec_ms=exec_ms,
        details=details,
    )


def _step_clause(check: MathStepCheck) -> str:
    reason = check.reason or ""
    if reason.startswith("not a valid expression: "):
        return f"step {check.index} is {reason}"
    return f"step {check.index} {reason}"


def _message(verdict: MathVerdict, form: str, expression_error: str | None) -> str:
    failing = next((check for check in verdict.steps if not check.ok), None)
    if "invalid-expression" in verdict.categories:
        main = f"Your answer is not a valid expression: {expression_error}"
    elif "wrong-answer" in verdict.categories:
        main = "Your answer is not equivalent to the expected result"
        if verdict.steps and failing is None:
            main += ", although each of your steps follows from the one before, so check your first step"
    elif "wrong-form" in verdict.categories:
        main = f"Your answer has the right value but is not {_FORM_PHRASES[form]}"
    elif failing is not None:
        return f"Your answer is correct, but {_step_clause(failing)}."
    else:
        required = "" if form == "equivalent" else f" and {'in its simplest form' if form == 'simplified' else form}"
        return f"Correct: your answer is equivalent to the expected result{required}."
    return f"{main}, and {_step_clause(failing)}." if failing is not None else f"{main}."


def evaluate_math(
    *,
    expression: str,
    steps: list[str],
    answer: str,
    variables: list[str],
    form: str,
    dependent: str | None = None,
    positive: list[str] | None = None,
    time_limit_s: float | None = None,
) -> MathVerdict:
    """Check a learner's final expression (and optional derivation) against the problem's answer.
    `dependent` is the name an answer may define (`y = …`, `f(x) = …`); `positive` the variables
    the problem declares positive (the rest are any real number)."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    problem_error = check_variables(variables, dependent=dependent, positive=positive)
    if problem_error is None and form not in FORMS:
        problem_error = f"unknown form {str(form)[:40]!r}"
    steps = list(steps or [])
    if problem_error is None:
        try:
            answer_tree = parse_expression(answer, variables, dependent=dependent)
        except ExpressionRejected as exc:
            problem_error = f"the answer key is not a valid expression: {exc}"
    if problem_error is not None:
        return _unavailable(
            "error", "This problem's answer key could not be read, so it cannot be checked.", elapsed(), problem=problem_error
        )

    expression_tree, expression_error, error_position = None, None, None
    try:
        expression_tree = parse_expression(expression, variables, dependent=dependent)
    except ExpressionRejected as exc:
        expression_error, error_position = str(exc), exc.position
    if len(steps) > MAX_STEPS:
        expression_tree, expression_error, error_position = None, f"a derivation may have at most {MAX_STEPS} steps", None
        steps = []
    step_parts: list[dict[str, Any]] = []
    for step in steps:
        try:
            step_parts.append({"tree": parse_expression(step, variables, dependent=dependent), "error": None})
        except ExpressionRejected as exc:
            step_parts.append({"tree": None, "error": str(exc)})

    if expression_tree is None and all(part["tree"] is None for part in step_parts):
        facts: dict[str, Any] = {
            "expression_error": expression_error,
            "equivalent": False,
            "form_ok": False,
            "steps": [{"ok": False, "reason": f"not a valid expression: {part['error']}"} for part in step_parts],
        }
        exec_ms = elapsed()
    else:
        limit = float(
            time_limit_s if time_limit_s is not None else _setting("CO_MATH_TIME_LIMIT_SECONDS", DEFAULT_TIME_LIMIT_SECONDS)
        )
        payload = {
            "answer": answer_tree,
            "expression": expression_tree,
            "expression_error": expression_error,
            "steps": step_parts,
            "variables": variables,
            "positive": list(positive or []),
            "form": form,
            "simplify_seconds": min(limit / 2, float(_setting("CO_MATH_SIMPLIFY_SECONDS", DEFAULT_SIMPLIFY_SECONDS))),
        }
        try:
            reply, exec_ms = _run_in_worker(payload, limit)
        except _WorkerTimeout:
            return _unavailable("timeout", "Your answer took too long to check; try writing it in a simpler form.", elapsed())
        except _WorkerFailed as exc:
            return _unavailable(
                "error", "Your answer could not be checked right now; please try again.", elapsed(), worker=str(exc)
            )
        if "failure" in reply:
            message = (
                "Your answer needs too much memory to check; try writing it in a simpler form."
                if reply["failure"] == "memory"
                else "Your answer could not be checked; try writing it in a simpler form."
            )
            return _unavailable("error", message, exec_ms, worker=str(reply["failure"])[:100])
        facts = reply.get("result") or {}
        if "answer_error" in facts:
            return _unavailable(
                "error",
                "This problem's answer key could not be read, so it cannot be checked.",
                exec_ms,
                problem=facts["answer_error"],
            )
        expression_error = facts["expression_error"]

    checks = [
        MathStepCheck(index=number, expression=str(text)[:MAX_EXPRESSION_CHARS], ok=bool(result["ok"]), reason=result["reason"])
        for number, (text, result) in enumerate(zip(steps, facts["steps"], strict=True), start=1)
    ]
    equivalent, form_ok = bool(facts["equivalent"]), bool(facts["form_ok"])
    categories = []
    if expression_error is not None:
        categories.append("invalid-expression")
    elif not equivalent:
        categories.append("wrong-answer")
        categories += [str(name) for name in facts.get("diagnosis", []) if name in DIAGNOSES]
    elif not form_ok:
        categories.append("wrong-form")
    if any(not check.ok for check in checks):
        categories.append("step-error")
    verdict = MathVerdict(
        status="failed" if categories else "passed",
        equivalent=equivalent,
        form_ok=form_ok,
        categories=categories,
        first_invalid_step=next((check.index for check in checks if not check.ok), None),
        steps=checks,
        message="",
        exec_ms=exec_ms,
        details={"methods": list(facts.get("methods", []))},
        error_position=error_position if expression_error is not None else None,
    )
    verdict.message = _message(verdict, form, expression_error)
    return verdict


if __name__ == "__main__":  # pragma: no cover - the worker process
    _worker_main(int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_MEMORY_LIMIT_MB)
