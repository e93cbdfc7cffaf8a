"""Math notation as learners write it, read by a whitelist tokenizer and a small recursive-descent
parser into a plain tree (nested lists of strings) that the SymPy worker turns into SymPy objects
node by node. Nothing a learner types is ever handed to ``eval``, ``sympify`` or ``parse_expr``:
every name must be a declared variable, a known function or a known constant, and the tree only
holds those names, numbers as digit strings, and the operators below.

Why our own parser: SymPy's ``parse_expr`` evaluates Python, and a grammar library would still
need this file's name resolution (``xy``, ``sint``, ``log_2``, ``sin^-1``), whose rules, not the
grammar, are most of the work. This module imports nothing but the standard library, so course
pack validation and the calling process read expressions without SymPy.

Tree nodes (lists, so they cross the worker's JSON pipe unchanged):
``["num", "1.5e3"]``, ``["var", "x"]``, ``["const", "pi" | "e" | "oo"]``,
``["add", term, ...]``, ``["neg", node]``, ``["mul", factor, ...]``, ``["div", node]`` (only as a
factor of ``mul``: divide by it), ``["pow", base, exponent]``, ``["call", function, argument, ...]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_EXPRESSION_CHARS = 500
MAX_NUMBER_DIGITS = 30
MAX_SCIENTIFIC_EXPONENT = 300
MAX_BRACKET_DEPTH = 20
MAX_POWER_CHAIN = 3

# The functions the worker knows, with how many arguments each takes (min, max).
FUNCTION_ARITY: dict[str, tuple[int, int]] = {
    **dict.fromkeys(
        (
            "sin", "cos", "tan", "sec", "csc", "cot",
            "asin", "acos", "atan", "asec", "acsc", "acot",
            "sinh", "cosh", "tanh", "sech", "csch", "coth",
            "asinh", "acosh", "atanh", "asech", "acsch", "acoth",
            "exp", "ln", "log10", "sqrt", "cbrt", "abs",
        ),
        (1, 1),
    ),
    "log": (1, 2),  # log(x) is base 10; log(x, b) is base b
    "root": (2, 2),  # root(x, n): the real n-th root
}  # fmt: skip
_TRIGONOMETRIC = (
    "sin", "cos", "tan", "sec", "csc", "cot", "sinh", "cosh", "tanh", "sech", "csch", "coth",
)  # fmt: skip
# Learner spellings -> the function names above.
FUNCTION_SPELLINGS: dict[str, str] = {
    **{name: name for name in FUNCTION_ARITY},
    "cosec": "csc",
    "cotan": "cot",
    **{f"arc{name}": f"a{name}" for name in _TRIGONOMETRIC},
    **{f"ar{name}": f"a{name}" for name in _TRIGONOMETRIC if name.endswith("h")},
    "arccosec": "acsc",
    "arctg": "atan",
    "tg": "tan",
}
CONSTANT_SPELLINGS = {"pi": "pi", "e": "e", "E": "e", "oo": "oo", "inf": "oo", "infinity": "oo"}
# Names a problem cannot declare as variables. A constant's name may be one (a declared `e` is
# read as the variable, as before); a function's may not, or `sin(x)` would stop being sine.
RESERVED_NAMES = frozenset(FUNCTION_SPELLINGS)

_UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u00d7": "*", "\u00b7": "*", "\u22c5": "*", "\u2217": "*", "\u00f7": "/",
    "\u03c0": "pi", "\u221e": "oo", "\u221a": "sqrt", "\u221b": "cbrt",
}  # fmt: skip
_SUPERSCRIPTS = {
    "\u207b": "-",
    "\u00b9": "1",
    "\u00b2": "2",
    "\u00b3": "3",
    **{chr(0x2070 + d): str(d) for d in (0, 4, 5, 6, 7, 8, 9)},
}
_VARIABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_NUMBER = re.compile(r"(?P<mantissa>\d+\.?\d*|\.\d+)(?:[eE](?P<exponent>[+-]?\d+))?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = ("**", "+", "-", "*", "/", "^", "(", ")", ",", "|", "=", "'")


class ExpressionRejected(Exception):
    """Learner text (or a content field) that is not an acceptable expression. The message says
    why and, when it is about one place, where (1-based character position in the text as
    written); it never contains anything but the writer's own characters."""

    def __init__(self, reason: str, position: int | None = None) -> None:
        self.reason = reason
        self.position = position
        super().__init__(reason if position is None else f"{reason} (at character {position})")


@dataclass(frozen=True)
class Token:
    kind: str  # number | name | op | end
    text: str
    position: int  # 1-based, in the text as written


def _shown(character: str) -> str:
    return f"'{character}'" if character.isascii() and character.isprintable() else f"U+{ord(character):04X}"


def _tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    index = 0
    while index < len(text):
        character, position = text[index], index + 1
        if character.isspace():
            index += 1
        elif character in _SUPERSCRIPTS:
            end = index
            while end < len(text) and text[end] in _SUPERSCRIPTS:
                end += 1
            written = "".join(_SUPERSCRIPTS[c] for c in text[index:end])
            if not re.fullmatch(r"-?\d+", written):
                raise ExpressionRejected("a superscript must be a whole number such as ² or ⁻¹", position)
            tokens.append(Token("op", "^", position))
            if written.startswith("-"):
                tokens.append(Token("op", "-", position))
            tokens.append(Token("number", written.lstrip("-"), position))
            index = end
        elif character in _UNICODE:
            replacement = _UNICODE[character]
            tokens.append(Token("name" if replacement.isalpha() else "op", replacement, position))
            index += 1
        elif (number := _NUMBER.match(text, index)) is not None:
            mantissa, exponent = number["mantissa"], number["exponent"]
            whole, _, fraction = mantissa.partition(".")
            if len(whole) + len(fraction) > MAX_NUMBER_DIGITS:
                raise ExpressionRejected(f"numbers may have at most {MAX_NUMBER_DIGITS} digits", position)
            if exponent is not None and abs(int(exponent)) > MAX_SCIENTIFIC_EXPONENT:
                raise ExpressionRejected(f"a power of ten may be at most {MAX_SCIENTIFIC_EXPONENT}", position)
            tokens.append(Token("number", number.group(), position))
            index = number.end()
        elif (name := _NAME.match(text, index)) is not None:
            tokens.append(Token("name", name.group(), position))
            index = name.end()
        else:
            operator = next((op for op in _OPERATORS if text.startswith(op, index)), None)
            if operator is None:
                raise ExpressionRejected(f"the character {_shown(character)} is not allowed", position)
            tokens.append(Token("op", "^" if operator == "**" else operator, position))
            index += len(operator)
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


def _split_name(word: str, pieces: list[str]) -> list[str] | None:
    """`xy` -> [x, y], `sint` -> [sin, t]: the word as a run of known names (longest first)."""
    ordered = sorted(set(pieces), key=len, reverse=True)
    memo: dict[int, list[str] | None] = {len(word): []}

    def split_from(start: int) -> list[str] | None:
        if start not in memo:
            memo[start] = None
            for piece in ordered:
                if word.startswith(piece, start):
                    rest = split_from(start + len(piece))
                    if rest is not None:
                        memo[start] = [piece, *rest]
                        break
        return memo[start]

    return split_from(0)


class _Parser:
    """expression := term (('+' | '-') term)*
    term       := signed (('*' | '/') signed | <implicit> power)*
    signed     := ('+' | '-')* power
    power      := atom ('^' signed)?          (right-associative; -x^2 is -(x^2))
    atom       := number | variable | constant | '(' expression ')' | '|' expression '|' | call
    call       := function ('^' integer)? ( '(' arguments ')' | product-without-functions )"""

    def __init__(self, tokens: list[Token], variables: list[str]) -> None:
        self.variables = variables
        self.tokens = self._resolve_names(tokens)
        self.index = 0
        self.depth = 0
        self.bars = 0  # how many |…| are open: a '|' then closes one rather than opening another

    # --- names ---------------------------------------------------------------------------------

    def _resolve_names(self, tokens: list[Token]) -> list[Token]:
        """Every name token becomes var / const / func tokens, or the text is rejected."""
        resolved: list[Token] = []
        for token in tokens:
            if token.kind != "name":
                resolved.append(token)
                continue
            word = token.text
            if word in self.variables:
                resolved.append(Token("var", word, token.position))
            elif word in FUNCTION_SPELLINGS:
                resolved.append(Token("func", FUNCTION_SPELLINGS[word], token.position))
            elif word in CONSTANT_SPELLINGS:
                resolved.append(Token("const", CONSTANT_SPELLINGS[word], token.position))
            elif word.startswith("log_") and len(word) > 4:
                resolved += self._log_base(word[4:], token.position)
            elif (parts := _split_name(word, [*self.variables, *FUNCTION_SPELLINGS, "pi", "e"])) is not None:
                offset = 0
                for part in parts:
                    resolved += self._resolve_names([Token("name", part, token.position + offset)])
                    offset += len(part)
            elif (glued := self._function_glued_to_number(word, token.position)) is not None:
                resolved += glued
            else:
                raise ExpressionRejected(self._unknown(word), token.position)
        return resolved

    def _function_glued_to_number(self, word: str, position: int) -> list[Token] | None:
        """`sin2x` -> sin 2 x: letters naming a function, then digits, then (optionally) more."""
        glued = re.fullmatch(r"([A-Za-z]+)(\d+)(\w*)", word)
        if glued is None:
            return None
        head, digits, rest = glued.groups()
        parts = _split_name(head, [*self.variables, *FUNCTION_SPELLINGS, "pi", "e"])
        if not parts or parts[-1] not in FUNCTION_SPELLINGS:
            return None
        tokens = self._resolve_names([Token("name", head, position)])
        tokens.append(Token("number", digits, position + len(head)))
        if rest:
            tokens += self._resolve_names([Token("name", rest, position + len(head) + len(digits))])
        return tokens

    def _log_base(self, base: str, position: int) -> list[Token]:
        """`log_2` / `log_b`: a logarithm whose base is a number, a variable or a constant."""
        if base.isdigit():
            base_token = Token("number", base, position + 4)
        elif base in self.variables:
            base_token = Token("var", base, position + 4)
        elif base in CONSTANT_SPELLINGS:
            base_token = Token("const", CONSTANT_SPELLINGS[base], position + 4)
        else:
            raise ExpressionRejected(f"the base of 'log_{base[:20]}' must be a number or a variable", position)
        return [Token("logbase", "log", position), base_token]

    def _unknown(self, word: str) -> str:
        usable = ", ".join(self.variables)
        names = " and ".join(filter(None, [usable, "functions such as sin, cos, exp, ln, log and sqrt"]))
        return f"unknown name '{word[:20]}'; you can use {names}"

    # --- helpers ---------------------------------------------------------------------------------

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def at(self, text: str) -> bool:
        return self.token.kind == "op" and self.token.text == text

    def expect_close(self, opening: Token, closing: str) -> None:
        if self.token.kind == "end":
            raise ExpressionRejected(
                "a bracket is never closed" if closing == ")" else "an absolute value bar is never closed", opening.position
            )
        if not self.at(closing):
            raise self.unexpected()
        self.advance()

    def enter(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_BRACKET_DEPTH:
            raise ExpressionRejected(f"brackets may nest at most {MAX_BRACKET_DEPTH} deep", token.position)

    def unexpected(self) -> ExpressionRejected:
        token = self.token
        if token.kind == "end":
            return ExpressionRejected("the expression ends with an operator", token.position)
        if token.kind == "op" and token.text == ")":
            return ExpressionRejected("a closing bracket has no matching opening bracket", token.position)
        if token.kind == "op" and token.text in "*/^":
            return ExpressionRejected(f"'{token.text}' is missing the expression before it", token.position)
        if token.kind == "op" and token.text == ",":
            return ExpressionRejected("a comma may only separate the arguments of a function such as log(x, 2)", token.position)
        if token.kind == "op" and token.text == "=":
            return ExpressionRejected("write an expression, not an equation (an answer like y = 2x is fine)", token.position)
        if token.kind == "op" and token.text == "'":
            return ExpressionRejected("a ' (prime) is only allowed in y' = … or f'(x) = …", token.position)
        return ExpressionRejected(f"'{token.text}' is not expected here", token.position)

    def starts_operand(self) -> bool:
        token = self.token
        if token.kind in ("number", "var", "const", "func", "logbase"):
            return True
        return token.kind == "op" and (token.text == "(" or (token.text == "|" and self.bars == 0))

    # --- grammar -------------------------------------------------------------------------------

    def parse(self) -> list[Any]:
        if self.token.kind == "end":
            raise ExpressionRejected("the expression is empty")
        node = self.expression()
        if self.token.kind != "end":
            raise self.unexpected()
        return node

    def expression(self) -> list[Any]:
        terms = [self.term()]
        while self.at("+") or self.at("-"):
            negative = self.advance().text == "-"
            term = self.term()
            terms.append(["neg", term] if negative else term)
        return terms[0] if len(terms) == 1 else ["add", *terms]

    def term(self) -> list[Any]:
        factors = [self.signed()]
        last_number = factors[0][0] == "num"
        while True:
            if self.at("*") or self.at("/"):
                dividing = self.advance().text == "/"
                factor = self.signed()
                factors.append(["div", factor] if dividing else factor)
            elif self.starts_operand():
                if last_number and self.token.kind == "number":
                    raise ExpressionRejected("two numbers in a row need an operator between them", self.token.position)
                factors.append(self.power())
            else:
                break
            last_number = factors[-1][0] == "num"
        return factors[0] if len(factors) == 1 else ["mul", *factors]

    def signed(self) -> list[Any]:
        negative = False
        while self.at("+") or self.at("-"):
            negative ^= self.advance().text == "-"
        node = self.power()
        return ["neg", node] if negative else node

    def power(self, chain: int = 0) -> list[Any]:
        base = self.atom()
        if not self.at("^"):
            return base
        token = self.advance()
        if chain + 1 > MAX_POWER_CHAIN:
            raise ExpressionRejected(f"at most {MAX_POWER_CHAIN} powers may be chained", token.position)
        negative = False
        while self.at("+") or self.at("-"):
            negative ^= self.advance().text == "-"
        if not self.starts_operand():
            raise self.unexpected()
        exponent = self.power(chain + 1)
        return ["pow", base, ["neg", exponent] if negative else exponent]

    def atom(self) -> list[Any]:
        token = self.token
        if token.kind == "number":
            self.advance()
            return ["num", token.text]
        if token.kind == "var":
            self.advance()
            return ["var", token.text]
        if token.kind == "const":
            self.advance()
            return ["const", token.text]
        if token.kind in ("func", "logbase"):
            return self.call()
        if self.at("("):
            self.advance()
            self.enter(token)
            bars, self.bars = self.bars, 0
            if self.at(")"):
                raise ExpressionRejected("a bracket is closed before the expression inside it is complete", self.token.position)
            node = self.expression()
            self.expect_close(token, ")")
            self.bars, self.depth = bars, self.depth - 1
            return node
        if self.at("|"):
            self.advance()
            self.enter(token)
            self.bars += 1
            node = self.expression()
            self.expect_close(token, "|")
            self.bars, self.depth = self.bars - 1, self.depth - 1
            return ["call", "abs", node]
        raise self.unexpected()

    def call(self) -> list[Any]:
        token = self.advance()
        function = token.text
        arguments_before: list[list[Any]] = []
        if token.kind == "logbase":
            base = self.advance()
            arguments_before = [self.atom_of(base)]
        exponent: int | None = None
        if self.at("^"):  # sin^2(x), sin^-1(x), sin²x
            self.advance()
            bracketed = self.at("(")
            if bracketed:
                self.advance()
            negative = False
            while self.at("-") or self.at("+"):
                negative ^= self.advance().text == "-"
            if self.token.kind != "number" or not self.token.text.isdigit():
                raise ExpressionRejected(f"a power of '{function}' must be a whole number, as in {function}^2(x)", token.position)
            exponent = int(self.advance().text) * (-1 if negative else 1)
            if bracketed:
                if not self.at(")"):
                    raise self.unexpected()
                self.advance()
            if exponent == -1:
                if function not in _TRIGONOMETRIC:
                    raise ExpressionRejected(
                        f"'{function}^-1' is ambiguous: write 1/{function}(x) for the reciprocal", token.position
                    )
                function, exponent = f"a{function}", None
            elif exponent < 1 or exponent > 1000:
                raise ExpressionRejected(f"a power of '{function}' must be a whole number, as in {function}^2(x)", token.position)
        if self.at("("):
            opening = self.advance()
            self.enter(opening)
            bars, self.bars = self.bars, 0
            if self.at(")"):
                raise ExpressionRejected("a bracket is closed before the expression inside it is complete", self.token.position)
            arguments = [self.expression()]
            while self.at(","):
                self.advance()
                arguments.append(self.expression())
            self.expect_close(opening, ")")
            self.bars, self.depth = bars, self.depth - 1
        elif self.token.kind in ("func", "logbase"):  # sin cos x, ln sqrt x: the inner call is the argument
            arguments = [self.call()]
        elif (
            self.starts_operand() or self.at("-") or self.at("+")
        ):  # sin x, sin 2x, sin -x, ln x^2: juxtaposed factors up to + - / or a function
            arguments = [self.bare_argument()]
        else:
            raise ExpressionRejected(f"'{function}' needs an argument, like {function}(x)", token.position)
        arguments = [*arguments, *arguments_before]
        if function == "log" and len(arguments) == 1 and token.kind == "func":
            function = "log10"
        low, high = FUNCTION_ARITY[function]
        if not low <= len(arguments) <= high:
            count = str(low) if low == high else f"{low} or {high}"
            raise ExpressionRejected(f"'{function}' takes {count} argument{'s' if high > 1 else ''}", token.position)
        node = ["call", function, *arguments]
        return ["pow", node, ["num", str(exponent)]] if exponent is not None else node

    def bare_argument(self) -> list[Any]:
        factors = [self.signed()]
        while True:
            if self.at("*"):
                self.advance()
                factors.append(self.signed())
            elif self.starts_operand() and self.token.kind not in ("func", "logbase"):
                factors.append(self.power())
            else:
                break
        return factors[0] if len(factors) == 1 else ["mul", *factors]

    def atom_of(self, token: Token) -> list[Any]:
        return {"number": ["num", token.text], "var": ["var", token.text], "const": ["const", token.text]}[token.kind]


def check_variables(variables: Any, *, dependent: Any = None, positive: Any = None) -> str | None:
    """Why a problem's declared variables cannot be graded with (None when they can); course
    pack validation asks before it reads an answer with them."""
    if not isinstance(variables, list) or not all(isinstance(name, str) for name in variables):
        return "variables must be a list of names"
    for name in variables:
        if not _VARIABLE_NAME.match(name) or "__" in name:
            return f"variable name {name[:40]!r} is not allowed"
        if name in RESERVED_NAMES:
            return f"variable name {name!r} collides with a function name"
    if dependent is not None:
        if not isinstance(dependent, str) or not _VARIABLE_NAME.match(dependent) or "__" in dependent:
            return "the dependent variable must be a name such as y or f"
        if dependent in variables or dependent in RESERVED_NAMES or dependent in CONSTANT_SPELLINGS:
            return f"the dependent variable {dependent!r} collides with a variable or function name"
    if positive is not None:
        if not isinstance(positive, list) or not all(isinstance(name, str) for name in positive):
            return "positive must be a list of variable names"
        for name in positive:
            if name not in variables:
                return f"positive names {name[:40]!r}, which is not a declared variable"
    return None


def _left_side_allowed(left: list[Token], variables: list[str], dependent: str | None) -> str | None:
    """The name an `<left> = <expression>` answer defines, or None when the left side is not one
    the problem allows: its dependent variable (y, y', f(x), f'(x), dy/dx) or, as for `x = 5`,
    one of its variables (then the right side may not contain it)."""
    texts = [token.text for token in left if token.kind != "end"]
    if len(texts) == 1 and texts[0] in variables:
        return texts[0]
    if dependent is None or not texts:
        return None
    if texts in ([f"d{dependent}", "/", f"d{variable}"] for variable in variables):
        return dependent
    if texts[:2] == ["d", "/"] and len(texts) > 3 and texts[2][1:] in variables:  # d/dx y, d/dx f(x)
        texts = texts[3:]
    if texts[0] != dependent:
        return None
    rest = texts[2:] if texts[1:2] == ["'"] else texts[1:]
    if not rest:
        return dependent
    names = rest[1:-1:2]
    commas_ok = all(separator == "," for separator in rest[2:-1:2])
    if (
        rest[0] == "("
        and rest[-1] == ")"
        and names
        and commas_ok
        and set(names) <= set(variables)
        and len(set(names)) == len(names)
    ):
        return dependent
    return None


def parse_expression(text: Any, variables: list[str], *, dependent: str | None = None) -> list[Any]:
    """The tree of `text`, or ExpressionRejected with where and why (safe to show)."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionRejected("the expression is empty")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionRejected(f"it is longer than {MAX_EXPRESSION_CHARS} characters")
    tokens = _tokenize(text)
    equals = [token for token in tokens if token.kind == "op" and token.text == "="]
    defined = None
    if equals:
        split = tokens.index(equals[0])
        left, tokens = tokens[:split], tokens[split + 1 :]
        defined = _left_side_allowed(left, variables, dependent) if len(equals) == 1 else None
        if defined is None:
            example = f"{dependent} = …" if dependent else "x = 5"
            where = equals[1] if len(equals) > 1 else equals[0]
            raise ExpressionRejected(f"write an expression, not an equation (an answer like {example} is fine)", where.position)
        if tokens[0].kind == "end":
            raise ExpressionRejected("the expression is empty", tokens[0].position)
    tree = _Parser(tokens, variables).parse()
    if defined is not None and defined in variables and defined in _names(tree):
        raise ExpressionRejected(f"the right-hand side of '{defined} =' still contains {defined}")
    return tree


def _names(tree: list[Any]) -> set[str]:
    if tree[0] == "var":
        return {tree[1]}
    return {name for child in tree[1:] if isinstance(child, list) for name in _names(child)}


_PRECEDENCE = {"add": 1, "neg": 2, "mul": 3, "pow": 4}


def render(tree: list[Any]) -> str:
    """A fully explicit text of a tree (`2x` as `2*x`, `|x|` as `abs(x)`, `log x` as `log10(x)`):
    what course pack validation and the staff see, never what the worker parses."""

    def wrap(node: list[Any], above: int) -> str:
        text = render(node)
        return f"({text})" if _PRECEDENCE.get(node[0], 5) <= above else text

    kind = tree[0]
    if kind in ("num", "var"):
        return tree[1]
    if kind == "const":
        return {"pi": "pi", "e": "e", "oo": "oo"}[tree[1]]
    if kind == "add":
        text = render(tree[1]) if tree[1][0] != "add" else f"({render(tree[1])})"
        for term in tree[2:]:
            text += f" - {wrap(term[1], 1)}" if term[0] == "neg" else f" + {wrap(term, 1)}"
        return text
    if kind == "neg":
        return f"-{wrap(tree[1], 2)}"
    if kind == "mul":
        text = wrap(tree[1], 2) if tree[1][0] != "div" else f"1/{wrap(tree[1][1], 3)}"
        for factor in tree[2:]:
            text += f"/{wrap(factor[1], 3)}" if factor[0] == "div" else f"*{wrap(factor, 2)}"
        return text
    if kind == "pow":
        return f"{wrap(tree[1], 4)}^{wrap(tree[2], 3)}"
    return f"{tree[1]}({', '.join(render(argument) for argument in tree[2:])})"


def canonical_expression(text: Any, variables: list[str], *, dependent: str | None = None) -> str:
    """The whitelisted, fully explicit form of `text`, or ExpressionRejected with a reason to show."""
    return render(parse_expression(text, variables, dependent=dependent))
