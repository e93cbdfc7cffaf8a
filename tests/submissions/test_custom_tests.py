"""A run with the learner's own tests: they run after the visible ones, in the same sandbox run,
and come back like them; they go with a run only, must name the problem's parameters, and stay
small. Refused requests store nothing."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from submissions.models import Submission

pytestmark = pytest.mark.django_db(transaction=True)

FIRST_COMPLEMENT = """
def two_sum(nums, t):
    seen = {}
    for j, value in enumerate(nums):
        if t - value in seen:
            return [seen[t - value], j]
        seen[value] = j
    return [-1, -1]
"""


@pytest.fixture
def seeded() -> None:
    call_command("seed", verbosity=0)


def _run(api, custom_tests: list, kind: str = "run"):
    payload = {"language": "python", "code": FIRST_COMPLEMENT, "custom_tests": custom_tests}
    return api.post(
        "/v1/submissions", {"problem_id": "two-sum", "subject": "coding", "kind": kind, "payload": payload}, format="json"
    )


def test_custom_tests_run_after_the_visible_ones_and_come_back_like_them(api, seeded) -> None:
    response = _run(
        api,
        [
            {"input": {"nums": [3, 2, 4, 3], "t": 6}, "expected": [0, 3]},
            {"input": {"nums": [1, 5], "t": 6}, "expected": [0, 1]},
        ],
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["kind"] == "run" and body["hidden"] is None
    assert body["visible"]["total"] == 5 and body["visible"]["passed"] == 4
    custom = body["visible"]["details"][3:]
    assert [(d["index"], d["input"], d["expected"], d["actual"], d["outcome"]) for d in custom] == [
        (3, {"nums": [3, 2, 4, 3], "t": 6}, [0, 3], [1, 2], "wrong_answer"),
        (4, {"nums": [1, 5], "t": 6}, [0, 1], [0, 1], "passed"),
    ]


@pytest.mark.parametrize(
    ("custom_tests", "kind", "status", "fields"),
    [
        (
            [{"input": {"nums": [1]}, "expected": 1}],
            "run",
            400,
            {"payload": {"custom_tests": {"0": {"input": ["Keys: nums, t."]}}}},
        ),
        ([{"input": {"nums": [1], "t": 2}, "expected": 1}], "submit", 400, {"payload": {"custom_tests": ["Use kind 'run'."]}}),
        ([{"input": {"nums": [1], "t": 2}, "expected": 1}] * 11, "run", 400, None),
        ([{"input": {"nums": list(range(4000)), "t": 2}, "expected": 1}], "run", 413, None),
    ],
    ids=["wrong-parameters", "on-a-submit", "more-than-ten", "too-large"],
)
def test_bad_custom_tests_are_refused_and_nothing_is_stored(api, seeded, custom_tests, kind, status, fields) -> None:
    response = _run(api, custom_tests, kind=kind)
    assert response.status_code == status, response.content
    if fields is not None:
        assert response.json()["error"]["fields"] == fields
    assert Submission.objects.count() == 0
