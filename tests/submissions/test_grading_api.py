"""Grading for real through the API, on the shipped course packs: sandboxed Python and
JavaScript, SymPy math, rubric grading; hidden data never leaves; the service keeps serving."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from submissions.models import RubricScore, Submission
from tracks.models import HiddenTest, Problem

pytestmark = pytest.mark.django_db(transaction=True)

TWO_SUM_PY = """
import bisect

def two_sum(nums, t):
    positions = {}
    for index, value in enumerate(nums):
        positions.setdefault(value, []).append(index)
    for i, value in enumerate(nums):
        candidates = positions.get(t - value, [])
        k = bisect.bisect_right(candidates, i)
        if k < len(candidates):
            return [i, candidates[k]]
    return [-1, -1]
"""

# The classic one-pass hash map: finds the pair with the smallest j, not the smallest i.
TWO_SUM_PY_FIRST_COMPLEMENT = """
def two_sum(nums, t):
    seen = {}
    for j, value in enumerate(nums):
        if t - value in seen:
            return [seen[t - value], j]
        seen[value] = j
    return [-1, -1]
"""

TWO_SUM_JS = """
function twoSum(nums, t) {
  const positions = new Map();
  nums.forEach((v, i) => { if (!positions.has(v)) positions.set(v, []); positions.get(v).push(i); });
  for (let i = 0; i < nums.length; i++) {
    const c = positions.get(t - nums[i]) || [];
    const j = c.find((k) => k > i);
    if (j !== undefined) return [i, j];
  }
  return [-1, -1];
}
"""

TWO_SUM_JS_FIRST_COMPLEMENT = """
function twoSum(nums, t) {
  const seen = new Map();
  for (let j = 0; j < nums.length; j++) {
    if (seen.has(t - nums[j])) return [seen.get(t - nums[j]), j];
    seen.set(nums[j], j);
  }
  return [-1, -1];
}
"""


# The same programs, which also write the harness's own messages on its results fd (the learner's
# code shares the harness's process): garbage, a `done` claiming a huge peak, their own result.
FORGE_PY = (
    "import json, os, sys\n_calls = [-1]\n"
    + TWO_SUM_PY.replace("def two_sum(", "def _honest(")
    + """
def two_sum(nums, t):
    _calls[0] += 1
    answer = _honest(nums, t)
    for line in ('garbage', '{"e":"done","peak_kb":987654321}', '{"e":"compiled"}',
                 '{"e":"result","i":%d,"outcome":"ok","time_ms":987654,"value":%s}' % (_calls[0], json.dumps(answer))):
        os.write(int(sys.argv[1]), line.encode() + b"\\n")
    return answer
"""
)
FORGE_JS = (
    TWO_SUM_JS.replace("function twoSum(", "function honest(")
    + """
const fs = require("fs");
let calls = -1;
function twoSum(nums, t) {
  calls += 1;
  const answer = honest(nums, t);
  for (const line of ["garbage", '{"e":"done","peak_kb":987654321}', '{"e":"compiled"}',
                      `{"e":"result","i":${calls},"outcome":"ok","time_ms":987654,"value":${JSON.stringify(answer)}}`]) {
    fs.writeSync(Number(process.argv[2]), line + "\\n");
  }
  return answer;
}
"""
)


@pytest.fixture
def seeded() -> None:
    call_command("seed", verbosity=0)


def _submit(api, language: str, code: str, problem: str = "two-sum", **extra) -> dict:
    response = api.post(
        "/v1/submissions",
        {"problem_id": problem, "subject": "coding", "payload": {"language": language, "code": code}, **extra},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()


def _hidden_strings(problem: str) -> list[str]:
    """Distinctive serialized hidden inputs/outputs of a problem (long enough not to collide)."""
    import json

    values = []
    for test in HiddenTest.objects.filter(problem__slug=problem):
        for value in (test.input, test.expected):
            text = json.dumps(value)
            if len(text) > 24:
                values.append(text)
    return values


@pytest.mark.parametrize(("language", "code"), [("python", TWO_SUM_PY), ("javascript", TWO_SUM_JS)])
def test_correct_two_sum_passes_every_hidden_test(api, seeded, language: str, code: str) -> None:
    body = _submit(api, language, code)
    total = HiddenTest.objects.filter(problem__slug="two-sum").count()
    assert body["status"] == "passed", body
    assert body["visible"]["passed"] == body["visible"]["total"] == len(Problem.objects.get(slug="two-sum").visible_tests)
    assert body["hidden"] == {"passed": total, "total": total, "categories": []}
    assert body["remediation"] == [] and body["error"] is None
    # Python forks from the helper (root here and in CI); Node starts under bubblewrap.
    assert body["isolation"] == ("zygote" if language == "python" else "bubblewrap")
    assert {d["outcome"] for d in body["visible"]["details"]} == {"passed"}


@pytest.mark.parametrize(
    ("language", "code"), [("python", TWO_SUM_PY_FIRST_COMPLEMENT), ("javascript", TWO_SUM_JS_FIRST_COMPLEMENT)]
)
def test_mishandling_duplicates_fails_with_the_category_and_its_remediation(api, seeded, language: str, code: str) -> None:
    body = _submit(api, language, code)
    problem = Problem.objects.get(slug="two-sum")
    assert body["status"] == "failed"
    assert "duplicates" in body["hidden"]["categories"]
    assert {"category": "duplicates", "text": problem.remediation["duplicates"]} in body["remediation"]
    assert [r["category"] for r in body["remediation"]] == body["hidden"]["categories"]
    assert body["hidden"]["passed"] < body["hidden"]["total"]
    # Only counts and categories: no hidden input or expected output in the response.
    text = str(body)
    for hidden in _hidden_strings("two-sum"):
        assert hidden not in text


@pytest.mark.parametrize(
    ("language", "code"),
    [
        ("python", "def two_sum(nums, t):\n    while True:\n        pass\n"),
        ("javascript", "function twoSum(nums, t) {\n  for (;;) {}\n}\n"),
    ],
)
def test_an_infinite_loop_ends_as_timeout_within_the_limit(api, seeded, language: str, code: str) -> None:
    body = _submit(api, language, code)
    assert body["status"] == "timeout"
    assert body["visible"]["details"][0]["outcome"] == "time_limit"
    # The run stops at its first timeout: only that test's category is named, with its
    # remediation; the tests never reached count as not passed.
    first = HiddenTest.objects.filter(problem__slug="two-sum").order_by("position").first()
    assert body["hidden"]["passed"] == 0
    assert body["hidden"]["categories"] == [first.category]
    assert [r["category"] for r in body["remediation"]] == [first.category]


@pytest.mark.parametrize(
    ("language", "code", "message"),
    [
        ("python", "def two_sum(nums, t):\n    return [\n", "SyntaxError"),
        ("javascript", "function twoSum(nums, t) { return [; }", "SyntaxError"),
    ],
)
def test_syntax_errors_are_reported_as_such(api, seeded, language: str, code: str, message: str) -> None:
    body = _submit(api, language, code)
    assert body["status"] == "failed"
    assert body["error"]["kind"] == "syntax_error"
    assert message in body["error"]["message"]


def test_request_fields_take_only_their_json_types(api, seeded) -> None:
    """A number where the schema says string is refused, not turned into text and graded."""
    for payload, field in (
        ({"language": "python", "code": 12}, "code"),
        ({"language": "python", "code": ["def two_sum(nums, t):", "    pass"]}, "code"),
    ):
        response = api.post("/v1/submissions", {"problem_id": "two-sum", "subject": "coding", "payload": payload}, format="json")
        assert response.status_code == 400, response.content
        assert list(response.json()["error"]["fields"]["payload"]) == [field]
    math = api.post(
        "/v1/submissions",
        {"problem_id": "expand-binomial-square", "subject": "math", "payload": {"expression": 9}},
        format="json",
    )
    assert math.status_code == 400
    assert math.json()["error"]["fields"] == {"payload": {"expression": ["Not a valid string."]}}
    assert Submission.objects.count() == 0


def test_run_kind_grades_visible_tests_only(api, seeded) -> None:
    body = _submit(api, "python", TWO_SUM_PY_FIRST_COMPLEMENT, kind="run")
    assert body["kind"] == "run" and body["hidden"] is None
    assert body["status"] == "passed"  # the visible tests do not separate the two


def test_math_answer_in_an_equivalent_form_passes(api, seeded) -> None:
    problem = Problem.objects.get(slug="derivative-product-rule")
    assert problem.math_form == "equivalent"
    response = api.post(
        "/v1/submissions",
        {"problem_id": "derivative-product-rule", "subject": "math", "payload": {"expression": problem.math_answer + " + 0*x"}},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["status"] == "passed"


def test_math_right_value_wrong_form_is_reported(api, seeded) -> None:
    response = api.post(
        "/v1/submissions",
        {"problem_id": "expand-binomial-square", "subject": "math", "payload": {"expression": "(x+3)^2"}},
        format="json",
    )
    body = response.json()
    assert body["status"] == "failed"
    assert body["categories"] == ["wrong-form"]
    assert body["math"]["equivalent"] is True and body["math"]["form_ok"] is False
    assert body["remediation"][0]["category"] == "wrong-form"


def test_systems_answer_is_scored_per_rubric_dimension(api, seeded) -> None:
    text = (
        "Requirements: shorten URLs and redirect; read-heavy traffic, 100:1 read write ratio, low latency, high availability. "
        "API: POST /urls returns a short code; GET /{code} redirects with 301. Data model: code, long url, owner, created_at. "
        "High-level design: stateless app servers behind a load balancer, a key-value store, base62 encoding of a counter. "
        "Scaling: cache hot codes in Redis, shard by code, replicate reads, CDN for redirects. "
        "Trade-offs: counter versus random codes and collisions, eventual consistency of replicas, cache invalidation."
    )
    response = api.post(
        "/v1/submissions",
        {"problem_id": "design-url-shortener", "subject": "systems", "payload": {"text": text}},
        format="json",
    )
    body = response.json()
    assert response.status_code == 200
    assert body["rubric"]["grader"] == "builtin"
    assert len(body["rubric"]["dimensions"]) == 5
    assert all(set(d) == {"id", "name", "score", "max_score", "feedback", "why"} for d in body["rubric"]["dimensions"])
    assert all(d["why"].startswith(f"{d['score']} of {d['max_score']}") for d in body["rubric"]["dimensions"])
    score = RubricScore.objects.get(submission_id=body["id"])
    assert set(score.scores) == {d["id"] for d in body["rubric"]["dimensions"]}
    assert set(score.feedback) == set(score.scores)


def test_service_keeps_serving_after_hostile_submissions(api, seeded, client) -> None:
    hostile = [
        ("python", "import os\ndef two_sum(nums, t):\n    while True:\n        os.fork()\n"),
        ("python", "def two_sum(nums, t):\n    return open('/etc/shadow').read()\n"),
        ("python", "import os\ndef two_sum(nums, t):\n    os.kill(os.getppid(), 9)\n    return [0, 1]\n"),
        ("javascript", "function twoSum(){ const a=[]; for(;;) a.push(new Array(1e6).fill(1)); }"),
        ("javascript", "function twoSum(){ return require('fs').readFileSync('/etc/shadow', 'utf8'); }"),
    ]
    for language, code in hostile:
        body = _submit(api, language, code)
        assert body["status"] in {"failed", "timeout"}, body
        assert "root:" not in str(body)
    assert client.get("/health").status_code == 200
    assert Submission.objects.filter(status__in=["pending", "running"]).count() == 0


def test_a_named_math_mistake_brings_the_problems_remediation(api, seeded) -> None:
    response = api.post(
        "/v1/submissions",
        {"problem_id": "derivative-chain-rule", "subject": "math", "payload": {"expression": "cos(3x^2 + 1)"}},
        format="json",
    )
    body = response.json()
    assert response.status_code == 200
    assert (body["status"], body["categories"]) == ("failed", ["wrong-answer", "chain-rule"])
    problem = Problem.objects.get(slug="derivative-chain-rule")
    assert body["remediation"] == [{"category": "chain-rule", "text": problem.remediation["chain-rule"]}]


@pytest.mark.parametrize(
    ("language", "honest", "forger"), [("python", TWO_SUM_PY, FORGE_PY), ("javascript", TWO_SUM_JS, FORGE_JS)]
)
def test_forged_harness_messages_change_nothing_the_learner_sees(api, seeded, language: str, honest: str, forger: str) -> None:
    """Figures come from the trusted side (coarse), never from what the program writes."""
    shown = []
    for code in (honest, forger):
        body = _submit(api, language, code)
        for key in ("id", "created_at", "finished_at", "exec_ms"):
            body.pop(key)
        for detail in body["visible"]["details"]:
            # The CPU time of each visible test (its own run; it may vary by a millisecond).
            assert 0 <= detail.pop("time_ms") < 1000
        shown.append(body)
    assert shown[0]["status"] == "passed"
    assert shown[1] == shown[0]
    peak = shown[1]["peak_memory_kb"]
    assert peak % 1024 == 0 and (peak // 1024) & (peak // 1024 - 1) == 0 and 0 < peak <= 512 * 1024
