"""How a program's output is compared with a test's expected output (trusted side only)."""

from __future__ import annotations

import enum
import json
import math
from typing import Any


class ComparisonMode(enum.StrEnum):
    """How a problem compares outputs: the values a problem stores as its comparison."""

    EXACT = "exact"
    UNORDERED = "unordered"
    FLOAT = "float"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(expected: Any, actual: Any, tolerance: float | None) -> bool:
    if _is_number(expected) and _is_number(actual):
        if tolerance is None:
            return expected == actual
        if math.isnan(expected) or math.isnan(actual):
            return math.isnan(expected) and math.isnan(actual)
        return abs(expected - actual) <= tolerance * max(1.0, abs(expected))
    if type(expected) is not type(actual) and not (isinstance(expected, list) and isinstance(actual, list)):
        return False
    if isinstance(expected, list):
        return len(expected) == len(actual) and all(_equal(e, a, tolerance) for e, a in zip(expected, actual, strict=True))
    if isinstance(expected, dict):
        return expected.keys() == actual.keys() and all(_equal(expected[k], actual[k], tolerance) for k in expected)
    return expected == actual


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def outputs_match(expected: Any, actual: Any, *, mode: str, tolerance: float | None = None) -> bool:
    """JSON values equal under the problem's comparison mode.

    `exact`: equal values (1 == 1.0, but True != 1); `unordered`: a top-level list compared as a
    multiset; `float`: numbers anywhere within `tolerance` (relative above 1, absolute below).
    """
    if mode == ComparisonMode.UNORDERED and isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and sorted(map(_canonical, expected)) == sorted(map(_canonical, actual))
    return _equal(expected, actual, tolerance if mode == ComparisonMode.FLOAT else None)
