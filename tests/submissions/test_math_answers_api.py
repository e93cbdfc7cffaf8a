"""Math answers as learners write them, through the API on the shipped math pack: notation, the
declared dependent variable, and where an unreadable answer stops being readable."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from submissions.models import Submission

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def math_pack() -> None:
    pack = Path(settings.BASE_DIR) / "coursepacks" / "math-foundations.yaml"
    call_command("import_coursepack", str(pack), "--publish", verbosity=0)


def _submit(api, problem: str, expression: str) -> dict:
    response = api.post(
        "/v1/submissions", {"problem_id": problem, "subject": "math", "payload": {"expression": expression}}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_the_public_problem_view_names_the_dependent_variable(api, math_pack) -> None:
    body = api.get("/v1/problems/derivative-product-rule").json()

    assert body["math"] == {"variables": ["x"], "form": "equivalent", "dependent": "f", "positive": []}


@pytest.mark.parametrize(
    "expression",
    ["f'(x) = 2x sin x + x² cos x", "df/dx = x(2 sin x + x cos x)", "2x·sin(x) + x^2·cos x", "x^2 cos x + 2 x sin x"],
)
def test_an_answer_written_as_learners_write_it_passes(api, math_pack, expression: str) -> None:
    body = _submit(api, "derivative-product-rule", expression)

    assert (body["status"], body["categories"]) == ("passed", [])
    assert body["math"]["equivalent"] is True
    assert body["math"]["error_position"] is None


def test_an_equation_for_another_name_is_invalid_and_says_where(api, math_pack) -> None:
    body = _submit(api, "derivative-product-rule", "g'(x) = 2x sin x + x^2 cos x")

    assert (body["status"], body["categories"]) == ("failed", ["invalid-expression"])
    assert body["math"]["error_position"] == 7
    assert body["math"]["message"] == (
        "Your answer is not a valid expression: write an expression, not an equation (an answer like f = … is fine) "
        "(at character 7)."
    )


def test_an_unknown_name_is_invalid_and_says_which_and_where(api, math_pack) -> None:
    body = _submit(api, "derivative-product-rule", "2x sin x + x^2 cosine(x)")

    assert (body["status"], body["categories"]) == ("failed", ["invalid-expression"])
    assert body["math"]["error_position"] == 16
    assert body["math"]["message"] == (
        "Your answer is not a valid expression: unknown name 'cosine'; you can use x and functions such as sin, cos, "
        "exp, ln, log and sqrt (at character 16)."
    )
    assert Submission.objects.get(id=body["id"]).status == "failed"


def test_hostile_text_is_invalid_never_a_server_error(api, math_pack) -> None:
    for text in ["__import__('os').system('id')", "x" * 600, "|" * 40, "sin^" * 50, "log_" * 30, "2e" + "9" * 40]:
        body = _submit(api, "derivative-product-rule", text)
        assert (body["status"], body["categories"]) == ("failed", ["invalid-expression"]), text
