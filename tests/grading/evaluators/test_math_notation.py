"""The whitelist parser alone (no SymPy): notation as learners write it, read into the fully
explicit form the staff see, and unreadable text rejected with where and why."""

from __future__ import annotations

import pytest

from grading.evaluators.math_notation import ExpressionRejected, canonical_expression, parse_expression


@pytest.mark.parametrize(
    ("written", "read"),
    [
        # implicit multiplication
        ("2x", "2*x"),
        ("3(x+1)", "3*(x + 1)"),
        ("x sin x", "x*sin(x)"),
        ("(x+1)(x-1)", "(x + 1)*(x - 1)"),
        ("xy", "x*y"),
        ("2xy^2", "2*x*y^2"),
        ("2 pi x", "2*pi*x"),
        ("xe^x", "x*e^x"),
        # powers
        ("x^2", "x^2"),
        ("x**2", "x^2"),
        ("x²y³", "x^2*y^3"),
        ("x⁻¹", "x^(-1)"),
        ("2^3^2", "2^3^2"),
        ("-x^2", "-x^2"),
        ("e^-x", "e^(-x)"),
        ("e^2x", "e^2*x"),
        ("e^(2x)", "e^(2*x)"),
        ("x^(1/3)", "x^(1/3)"),
        # functions, with and without brackets, and their powers and inverses
        ("sin x", "sin(x)"),
        ("sin 2x", "sin(2*x)"),
        ("sin -x", "sin(-x)"),
        ("sin2x", "sin(2*x)"),
        ("cosx", "cos(x)"),
        ("sin x cos x", "sin(x)*cos(x)"),
        ("sin x/2", "sin(x)/2"),
        ("ln x^2", "ln(x^2)"),
        ("ln sqrt x", "ln(sqrt(x))"),
        ("sin^2(x)", "sin(x)^2"),
        ("sin^2 x", "sin(x)^2"),
        ("sin²x + cos²x", "sin(x)^2 + cos(x)^2"),
        ("sin(x)^2", "sin(x)^2"),
        ("sin^-1(x)", "asin(x)"),
        ("sin^(-1) x", "asin(x)"),
        ("sin⁻¹x", "asin(x)"),
        ("tan^-1 x", "atan(x)"),
        ("cosh^-1 x", "acosh(x)"),
        ("arcsin x + arccos x + arctan x", "asin(x) + acos(x) + atan(x)"),
        ("asin(x) + acos(x) + atan(x)", "asin(x) + acos(x) + atan(x)"),
        ("arcsec x + arccsc x + arccot x", "asec(x) + acsc(x) + acot(x)"),
        ("sec x + csc x + cot x + cosec x", "sec(x) + csc(x) + cot(x) + csc(x)"),
        ("sinh x + cosh x + tanh x", "sinh(x) + cosh(x) + tanh(x)"),
        ("sech x + csch x + coth x", "sech(x) + csch(x) + coth(x)"),
        ("arsinh x + arccosh x + atanh x", "asinh(x) + acosh(x) + atanh(x)"),
        # exponentials, logarithms, roots, absolute values
        ("e^x + exp(x)", "e^x + exp(x)"),
        ("ln x + log x", "ln(x) + log10(x)"),
        ("log_2 x", "log(x, 2)"),
        ("log_2(8)", "log(8, 2)"),
        ("log_b x", "log(x, b)"),
        ("log_e x", "log(x, e)"),
        ("log(x, 3)", "log(x, 3)"),
        ("sqrt x + √x + √(x+1)", "sqrt(x) + sqrt(x) + sqrt(x + 1)"),
        ("root(x, 5) + cbrt x + ∛x", "root(x, 5) + cbrt(x) + cbrt(x)"),
        ("abs(x) + |x|", "abs(x) + abs(x)"),
        ("|x - 1||x + 1|", "abs(x - 1)*abs(x + 1)"),
        ("||x| - 1|", "abs(abs(x) - 1)"),
        ("2|x|", "2*abs(x)"),
        # constants and Unicode operators
        ("pi + π + e + ∞ + oo", "pi + pi + e + oo + oo"),
        ("2πr", "2*pi*r"),
        ("3 − x", "3 - x"),
        ("2×x·y⋅x", "2*x*y*x"),
        ("6 ÷ 3", "6/3"),
        # numbers
        ("0.5x", "0.5*x"),
        (".5", ".5"),
        ("1.5e3", "1.5e3"),
        ("2.5E-4", "2.5E-4"),
        ("1.5 × 10^3", "1.5*10^3"),
    ],
)
def test_notation_as_learners_write_it(written: str, read: str) -> None:
    assert canonical_expression(written, ["x", "y", "b", "r"]) == read


@pytest.mark.parametrize(
    ("written", "dependent", "read"),
    [
        ("x = 5", None, "5"),
        ("x = 5", "y", "5"),
        ("y = 2x + 1", "y", "2*x + 1"),
        ("y' = 2", "y", "2"),
        ("dy/dx = 2x", "y", "2*x"),
        ("d/dx y = 2x", "y", "2*x"),
        ("f(x) = x^2", "f", "x^2"),
        ("f'(x) = 2x", "f", "2*x"),
        ("f(x, t) = x t", "f", "x*t"),
        ("d/dx f(x) = 1", "f", "1"),
    ],
)
def test_an_answer_may_define_the_declared_dependent_variable(written: str, dependent: str | None, read: str) -> None:
    assert canonical_expression(written, ["x", "t"], dependent=dependent) == read


def test_a_tree_holds_only_declared_names_numbers_and_operators() -> None:
    assert parse_expression("2x sin^2 x - |x|/3", ["x"]) == [
        "add",
        ["mul", ["num", "2"], ["var", "x"], ["pow", ["call", "sin", ["var", "x"]], ["num", "2"]]],
        ["neg", ["mul", ["call", "abs", ["var", "x"]], ["div", ["num", "3"]]]],
    ]


@pytest.mark.parametrize(
    ("written", "reason", "position"),
    [
        ("2x + foo", "unknown name 'foo'; you can use x and functions such as sin, cos, exp, ln, log and sqrt", 6),
        ("x $ 2", "the character '$' is not allowed", 3),
        ("x ≤ 2", "the character U+2264 is not allowed", 3),
        ("x^", "the expression ends with an operator", 3),
        ("*x", "'*' is missing the expression before it", 1),
        ("sin(x", "a bracket is never closed", 4),
        ("(x))", "a closing bracket has no matching opening bracket", 4),
        ("|x", "an absolute value bar is never closed", 1),
        ("sin", "'sin' needs an argument, like sin(x)", 1),
        ("exp^-1(x)", "'exp^-1' is ambiguous: write 1/exp(x) for the reciprocal", 1),
        ("sin^0.5(x)", "a power of 'sin' must be a whole number, as in sin^2(x)", 1),
        ("root(8)", "'root' takes 2 arguments", 1),
        ("sin(x, 2)", "'sin' takes 1 argument", 1),
        ("2 3", "two numbers in a row need an operator between them", 3),
        ("x = y = 2", "write an expression, not an equation (an answer like x = 5 is fine)", 7),
        ("z = 2", "write an expression, not an equation (an answer like x = 5 is fine)", 3),
        ("y' = 2", "write an expression, not an equation (an answer like x = 5 is fine)", 4),
        ("x'", "a ' (prime) is only allowed in y' = … or f'(x) = …", 2),
        ("1e400", "a power of ten may be at most 300", 1),
        ("1" * 31, "numbers may have at most 30 digits", 1),
        ("(" * 21 + "x" + ")" * 21, "brackets may nest at most 20 deep", 21),
        ("x^x^x^x^x", "at most 3 powers may be chained", 8),
    ],
)
def test_unreadable_text_says_where_and_why(written: str, reason: str, position: int) -> None:
    with pytest.raises(ExpressionRejected) as rejected:
        parse_expression(written, ["x"])

    assert (rejected.value.reason, rejected.value.position) == (reason, position)
    assert str(rejected.value) == f"{reason} (at character {position})"


def test_an_unreadable_dependent_equation_names_the_dependent_variable() -> None:
    with pytest.raises(ExpressionRejected) as rejected:
        parse_expression("g(x) = 2x", ["x"], dependent="f")

    assert str(rejected.value) == "write an expression, not an equation (an answer like f = … is fine) (at character 6)"


@pytest.mark.parametrize("written", ["", "   ", "x" * 501])
def test_empty_or_too_long_text_is_rejected_without_a_position(written: str) -> None:
    with pytest.raises(ExpressionRejected) as rejected:
        parse_expression(written, ["x"])

    assert rejected.value.position is None
