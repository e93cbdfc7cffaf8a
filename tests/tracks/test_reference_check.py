"""Authoring check: reference solutions run against all their tests in the learner sandbox,
at publish time and from the admin; a failing reference is refused with the test named."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from tests.tracks import factories
from tracks.models import Problem, ProblemLanguage
from tracks.services import coursepack_dry_run

pytestmark = pytest.mark.django_db


def _findings(document: dict) -> list[tuple[str, str]]:
    report = coursepack_dry_run(content=factories.pack_bytes(document)).report()
    return sorted((item["path"], item["message"]) for item in report["errors"])


def test_a_reference_too_slow_for_its_own_limit_is_refused_naming_the_test() -> None:
    slow = factories.add_problem(limits={"time_ms": 100, "memory_mb": 128})
    # CPU time, which is what a time limit judges (a program that sleeps is stopped only by the
    # wall-time backstop, which a re-check widens on a loaded machine).
    slow["languages"]["python"]["reference"] = (
        "import time\n\ndef add(a, b):\n    if a == -5:\n        start = time.process_time()\n"
        "        while time.process_time() - start < 1:\n            pass\n    return a + b\n"
    )
    assert _findings(factories.pack_document(problems=[slow])) == [
        ("problems[add-numbers].hidden test #1 (negatives)", "python reference exceeded the time limit (100 ms)")
    ]


def test_a_javascript_reference_that_crashes_on_a_generated_case_is_refused() -> None:
    shout = factories.shout_problem()
    shout["languages"]["javascript"]["reference"] = (
        "function shout(text) {\n"
        "  if (text.startsWith('zqx-generated')) throw new Error('boom');\n"
        "  return text.toUpperCase();\n"
        "}\n"
    )
    findings = _findings(factories.pack_document(problems=[shout]))
    assert [path for path, _ in findings] == [
        "problems[shout].hidden test #3 (long-input)",
        "problems[shout].hidden test #4 (long-input)",
    ]
    assert all(message.startswith("javascript reference") for _, message in findings)


def test_valid_references_pass_in_the_sandbox() -> None:
    assert _findings(factories.pack_document()) == []


def test_admin_action_names_the_failing_test(client, django_user_model) -> None:
    factories.publish(factories.pack_document())
    admin = django_user_model.objects.create_superuser("staff", "staff@example.com", "pw-123456789")
    client.force_login(admin)
    # A staff edit in the admin broke the reference.
    ProblemLanguage.objects.filter(problem__slug="add-numbers", language="python").update(
        reference_solution="def add(a, b):\n    return a - b\n"
    )
    problems = Problem.objects.filter(slug__in=["add-numbers", "shout"]).order_by("slug")
    response = client.post(
        "/admin/tracks/problem/",
        {"action": "check_reference_solutions", "_selected_action": [str(p.pk) for p in problems]},
        follow=True,
    )
    assert response.status_code == 200
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert "shout: every reference solution passes all its tests." in messages
    assert "problems[add-numbers].visible_tests[0]: python reference returned -1, expected 3" in messages
    assert "problems[add-numbers].hidden test #1 (negatives): python reference returned 2, expected -12" in messages
    assert not any("javascript" in m for m in messages)


SHOUT_JS = "function shout(text) {\n  return text.toUpperCase();\n}\n"


@pytest.mark.parametrize(
    "reference",
    [
        SHOUT_JS,
        SHOUT_JS + "module.exports = shout;\n",
        "module.exports = function (text) {\n  return text.toUpperCase();\n};\n",
        "module.exports = (text) => text.toUpperCase();\n",
        "module.exports = { shout: (text) => text.toUpperCase() };\n",
        "module.exports.shout = (text) => text.toUpperCase();\n",
        "exports.shout = function (text) {\n  return text.toUpperCase();\n};\n",
        "const shout = (text) => text.toUpperCase();\nmodule.exports = { shout };\n",
    ],
    ids=["global", "exports-the-function", "anonymous", "arrow", "object", "property", "exports-alias", "const"],
)
def test_a_javascript_reference_validates_however_learner_code_may_export_its_function(reference: str) -> None:
    shout = factories.shout_problem()
    shout["languages"]["javascript"]["reference"] = reference

    assert _findings(factories.pack_document(problems=[shout])) == []


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("module.exports = { yell: (text) => text.toUpperCase() };\n", "'shout' is not defined in the reference solution"),
        ("module.exports = 'shout';\n", "'shout' is not defined in the reference solution"),
        ("export function shout(text) {\n  return text;\n}\n", "reference does not compile: SyntaxError"),
    ],
)
def test_a_javascript_reference_that_exports_no_such_function_is_refused(reference: str, message: str) -> None:
    shout = factories.shout_problem()
    shout["languages"]["javascript"]["reference"] = reference

    [(path, found)] = _findings(factories.pack_document(problems=[shout]))
    assert path == "problems[shout].languages.javascript"
    assert found.startswith(message)
