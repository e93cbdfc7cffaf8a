"""Course pack documents for tests, and publishing them through the real services.

Hidden data carries unique markers (`HIDDEN_MARKERS`) so leak tests can search every public
response for them.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from tracks.models import CoursePackSource
from tracks.services import PublishSummary, coursepack_import

# Strings that exist only in staff-only content: none may ever appear in a public response.
HIDDEN_MARKERS = (
    "zqx-hidden-input-7f3a",
    "ZQX-HIDDEN-INPUT-7F3A",
    "zqx-generated-9b1c",
    "ZQX-GENERATED-9B1C",
    "zqx-reference-py-4d2e",
    "zqx-reference-js-8e5f",
    "zqx-generator-source-2a6b",
    "zqx-remediation-5c7d",
    "73162940581",
    "91827364510",
    "zqx-rubric-expectation-6f0c",
)


def shout_problem(slug: str = "shout", module: str = "basics", **overrides: Any) -> dict[str, Any]:
    """A coding problem (upper-case a string) whose hidden cases carry markers."""
    problem = {
        "slug": slug,
        "module": module,
        "title": "Shout",
        "difficulty": 1,
        "topics": ["strings"],
        "statement": "Return `text` in upper case.",
        "parameters": ["text"],
        "languages": {
            "python": {
                "entrypoint": "shout",
                "starter": "def shout(text):\n    pass\n",
                "reference": "def shout(text):\n    # zqx-reference-py-4d2e\n    return text.upper()\n",
            },
            "javascript": {
                "entrypoint": "shout",
                "starter": "function shout(text) {\n}\n",
                "reference": "function shout(text) {\n  // zqx-reference-js-8e5f\n  return text.toUpperCase();\n}\n",
            },
        },
        "comparison": "exact",
        "limits": {"time_ms": 500, "memory_mb": 128},
        "visible_tests": [
            {"input": {"text": "hi"}, "expected": "HI"},
            {"input": {"text": "Hello"}, "expected": "HELLO"},
            {"input": {"text": ""}, "expected": ""},
        ],
        "hidden_tests": [
            {"category": "long-input", "input": {"text": "zqx-hidden-input-7f3a"}, "expected": "ZQX-HIDDEN-INPUT-7F3A"},
            {"category": "mixed-case", "input": {"text": "aBc"}, "expected": "ABC"},
        ],
        "hidden_generators": [
            {
                "category": "long-input",
                "seed": 7,
                "count": 2,
                "source": (
                    "def generate(rng, index):\n"
                    "    # zqx-generator-source-2a6b\n"
                    "    return {'text': 'zqx-generated-9b1c' + str(rng.randint(0, 9) + index)}\n"
                ),
            }
        ],
        "hints": ["Strings have methods.", "Look for a case conversion method.", "Call the upper-casing method on text."],
        "remediation": {"long-input": "zqx-remediation-5c7d", "mixed-case": "Mixed case strings need care."},
    }
    problem.update(overrides)
    return problem


def add_problem(slug: str = "add-numbers", module: str = "basics", **overrides: Any) -> dict[str, Any]:
    problem = {
        "slug": slug,
        "module": module,
        "title": "Add numbers",
        "difficulty": 2,
        "topics": ["arithmetic"],
        "statement": "Return `a + b`.",
        "parameters": ["a", "b"],
        "languages": {
            "python": {
                "entrypoint": "add",
                "starter": "def add(a, b):\n    pass\n",
                "reference": "def add(a, b):\n    return a + b\n",
            },
            "javascript": {
                "entrypoint": "add",
                "starter": "function add(a, b) {\n}\n",
                "reference": "function add(a, b) {\n  return a + b;\n}\n",
            },
        },
        "visible_tests": [
            {"input": {"a": 1, "b": 2}, "expected": 3},
            {"input": {"a": -1, "b": 1}, "expected": 0},
            {"input": {"a": 0, "b": 0}, "expected": 0},
        ],
        "hidden_tests": [{"category": "negatives", "input": {"a": -5, "b": -7}, "expected": -12}],
        "hints": ["Think about the plus sign.", "Add them.", "Return the sum of a and b."],
        "remediation": {"negatives": "Negative numbers add too."},
    }
    problem.update(overrides)
    return problem


def math_problem(slug: str = "expand-square", module: str = "algebra", **overrides: Any) -> dict[str, Any]:
    problem = {
        "slug": slug,
        "module": module,
        "title": "Expand a square",
        "difficulty": 1,
        "topics": ["polynomials"],
        "statement": "Expand $(x+1)^2$.",
        "math": {
            "variables": ["x"],
            "answer": "x**2 + 2*x + 1 + 0*73162940581",
            "form": "equivalent",
            "steps": ["(x + 1)*(x + 1)", "x**2 + 2*x + 1 + 0*91827364510"],
        },
        "hints": ["Multiply it out.", "Use (a+b)^2 = a^2 + 2ab + b^2.", "Square x, double x, square 1."],
        "remediation": {"algebra-slip": "zqx-remediation-5c7d"},
    }
    problem.update(overrides)
    return problem


def rubric(slug: str = "design-basics") -> dict[str, Any]:
    return {
        "slug": slug,
        "domain": "systems",
        "title": "Design basics",
        "dimensions": [
            {"id": "requirements", "name": "Requirements", "scale": 3, "desc": "Clarifies requirements."},
            {"id": "scaling", "name": "Scaling", "scale": 3, "desc": "Scales the design."},
        ],
    }


def systems_problem(slug: str = "design-cache", module: str = "design", rubric_slug: str = "design-basics") -> dict[str, Any]:
    return {
        "slug": slug,
        "module": module,
        "title": "Design a cache",
        "difficulty": 3,
        "topics": ["caching"],
        "statement": "Design a distributed cache.",
        "systems": {
            "rubric": rubric_slug,
            "expectations": {
                "requirements": {"keywords": ["zqx-rubric-expectation-6f0c", "latency"], "guidance": "Names latency."},
                "scaling": {"keywords": ["sharding"], "guidance": "Shards."},
            },
        },
        "hints": ["Who reads?", "Partition the keys.", "Consistent hashing over nodes."],
        "remediation": {"scaling": "Study sharding."},
    }


def pack_document(
    *,
    track_slug: str = "test-track",
    subject: str = "coding",
    version: str = "1.0.0",
    labels: list[str] | None = None,
    modules: list[dict[str, Any]] | None = None,
    problems: list[dict[str, Any]] | None = None,
    rubrics: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "format": 1,
        "track": {
            "slug": track_slug,
            "subject": subject,
            "title": f"Track {track_slug}",
            "labels": labels if labels is not None else ["level:test"],
            "version": version,
            "modules": modules or [{"slug": "basics", "title": "Basics", "outcomes": ["strings"]}],
        },
        "problems": problems if problems is not None else [shout_problem(), add_problem()],
    }
    if rubrics:
        document["rubrics"] = rubrics
    return copy.deepcopy(document)


def pack_bytes(document: dict[str, Any]) -> bytes:
    return yaml.safe_dump(document, sort_keys=False).encode()


def publish(document: dict[str, Any], *, filename: str = "pack.yaml") -> PublishSummary:
    """Import and publish through the same service the command uses; fails the test when invalid."""
    _, check, summary = coursepack_import(
        content=pack_bytes(document), filename=filename, publish=True, source=CoursePackSource.COMMAND
    )
    assert check.ok, check.report()
    assert summary is not None
    return summary
