"""Run on custom input through the API: the learner's output and the reference's value for up to
five inputs of their own, in separate sandbox runs; bad inputs are a 400 that stores nothing;
nothing hidden (hidden tests, the reference's code) reaches the learner."""

from __future__ import annotations

import json
from typing import Any

import pytest

from grading.evaluators.custom_input import NO_REFERENCE
from submissions.models import Submission
from tests.tracks.factories import HIDDEN_MARKERS, add_problem, pack_document, publish, shout_problem
from tracks.models import ProblemLanguage

pytestmark = pytest.mark.django_db(transaction=True)

# Right for short words only: the reference tells the learner where they are wrong.
SHOUT_PY = "def shout(text):\n    return text.upper() if len(text) < 5 else text\n"
SHOUT_JS = "function shout(text) {\n  return text.length < 5 ? text.toUpperCase() : text;\n}\n"


@pytest.fixture
def problems() -> None:
    publish(pack_document(problems=[shout_problem(), add_problem()]))


def _run(api, language: str, code: str, inputs: list[dict[str, Any]], problem: str = "shout", **extra: Any):
    return api.post(
        "/v1/submissions",
        {
            "problem_id": problem,
            "subject": "coding",
            "kind": "run",
            "payload": {"language": language, "code": code, "inputs": inputs},
            **extra,
        },
        format="json",
    )


def _line(index: int, text: str, output: Any, expected: Any, outcome: str, **extra: Any) -> dict[str, Any]:
    return {
        "index": index,
        "input": {"text": text},
        "output": output,
        "expected": expected,
        "expected_note": None,
        "outcome": outcome,
        "time_ms": extra.pop("time_ms", 0),
        "error": None,
        **extra,
    }


@pytest.mark.parametrize(("language", "code"), [("python", SHOUT_PY), ("javascript", SHOUT_JS)])
def test_a_run_on_custom_inputs_shows_the_output_beside_the_references(api, problems, language: str, code: str) -> None:
    response = _run(api, language, code, [{"text": "abc"}, {"text": "quiet please"}])

    assert response.status_code == 200, response.content
    body = response.json()
    for line in body["custom"]["details"]:
        line["time_ms"] = 0  # the run's own figure
    assert body["custom"] == {
        "reference": True,
        "details": [
            _line(0, "abc", "ABC", "ABC", "passed"),
            _line(1, "quiet please", "quiet please", "QUIET PLEASE", "wrong_answer"),
        ],
    }
    assert (body["status"], body["kind"], body["hidden"], body["error"]) == ("failed", "run", None, None)
    assert body["visible"] == {"passed": 0, "total": 0, "details": []}
    text = json.dumps(body)
    for marker in HIDDEN_MARKERS:
        assert marker not in text and marker.lower() not in text.lower()


def test_a_failing_program_keeps_its_outcome_and_the_expected_value_still_shows(api, problems) -> None:
    code = "def shout(text):\n    if text == 'boom':\n        raise ValueError('no')\n    return text.upper()\n"

    body = _run(api, "python", code, [{"text": "boom"}, {"text": "ok"}]).json()

    first, second = body["custom"]["details"]
    assert (first["outcome"], first["output"], first["expected"]) == ("runtime_error", None, "BOOM")
    assert first["error"].startswith("ValueError: no")
    assert (second["outcome"], second["output"], second["expected"]) == ("passed", "OK", "OK")
    assert body["status"] == "failed"


def test_all_inputs_matching_the_reference_is_a_passed_run(api, problems) -> None:
    body = _run(api, "python", "def shout(text):\n    return text.upper()\n", [{"text": "x"}] * 5).json()

    assert body["status"] == "passed"
    assert [line["outcome"] for line in body["custom"]["details"]] == ["passed"] * 5


def test_without_a_reference_the_output_shows_alone(api, problems) -> None:
    ProblemLanguage.objects.filter(problem__slug="shout").update(reference_solution="")

    body = _run(api, "python", SHOUT_PY, [{"text": "abc"}]).json()

    assert body["custom"]["reference"] is False
    [line] = body["custom"]["details"]
    assert (line["output"], line["expected"], line["expected_note"], line["outcome"]) == ("ABC", None, NO_REFERENCE, "ran")
    assert body["status"] == "passed"


def test_an_infinite_loop_on_a_custom_input_is_a_time_limit(api, problems) -> None:
    body = _run(api, "python", "def shout(text):\n    while True:\n        pass\n", [{"text": "a"}, {"text": "b"}]).json()

    assert body["status"] == "timeout"
    assert [line["outcome"] for line in body["custom"]["details"]] == ["time_limit", "time_limit"]
    assert [line["expected"] for line in body["custom"]["details"]] == ["A", "B"]


def test_a_syntax_error_is_reported_as_such(api, problems) -> None:
    body = _run(api, "python", "def shout(text):\n    return (\n", [{"text": "a"}]).json()

    assert body["error"]["kind"] == "syntax_error"
    assert body["custom"] == {"reference": True, "details": []}


@pytest.mark.parametrize(
    ("inputs", "problem", "fields"),
    [
        (
            [{"words": "hi"}],
            "shout",
            ["inputs[0] has no value for 'text'.", "inputs[0] names 'words', which is not a parameter (the parameters: text)."],
        ),
        ([{"text": 5}], "shout", ["inputs[0].text must be a string, as in the problem's examples."]),
        ([{"text": "a"}, {"text": ["a"]}], "shout", ["inputs[1].text must be a string, as in the problem's examples."]),
        ([{"a": 1, "b": "2"}], "add-numbers", ["inputs[0].b must be an integer, as in the problem's examples."]),
        ([{"text": "a" * 17000}], "shout", ["The inputs are 17014 bytes as JSON; at most 16384 bytes can be run."]),
    ],
)
def test_inputs_that_do_not_fit_the_parameters_are_a_400_and_store_nothing(api, problems, inputs, problem, fields) -> None:
    response = _run(api, "python", "def shout(text):\n    return text\n", inputs, problem=problem)

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["fields"] == {"payload": {"inputs": fields}}
    assert Submission.objects.count() == 0


def test_more_than_five_inputs_or_none_are_refused(api, problems) -> None:
    for inputs in ([{"text": "a"}] * 6, []):
        response = _run(api, "python", SHOUT_PY, inputs)
        assert response.status_code == 400
        assert list(response.json()["error"]["fields"]["payload"]) == ["inputs"]
    assert Submission.objects.count() == 0


def test_custom_inputs_are_only_run_never_submitted(api, problems) -> None:
    response = api.post(
        "/v1/submissions",
        {
            "problem_id": "shout",
            "subject": "coding",
            "payload": {"language": "python", "code": SHOUT_PY, "inputs": [{"text": "a"}]},
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"kind": ["Use 'run' to try your own inputs."]}
    assert Submission.objects.count() == 0


def test_with_a_remote_eval_service_custom_inputs_are_a_409(api, problems, settings) -> None:
    settings.CO_EVAL_BASE = "http://127.0.0.1:9"

    response = _run(api, "python", SHOUT_PY, [{"text": "a"}])

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "custom_input_unavailable"
    assert Submission.objects.count() == 0


def test_custom_inputs_and_custom_tests_together_are_refused(api, problems) -> None:
    payload = {
        "language": "python",
        "code": SHOUT_PY,
        "inputs": [{"text": "a"}],
        "custom_tests": [{"input": {"text": "a"}, "expected": "A"}],
    }

    response = api.post(
        "/v1/submissions", {"problem_id": "shout", "subject": "coding", "kind": "run", "payload": payload}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"payload": {"inputs": ["Not together with custom_tests."]}}
    assert Submission.objects.count() == 0
