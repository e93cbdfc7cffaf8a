"""The remote problem bank (HTTP backend) through `GET /v1/problems/{id}` and the service layer,
against a real HTTP server started by the test (tests/servers.py)."""

from __future__ import annotations

import copy

import pytest
import redis
from django.conf import settings as django_settings
from django.core.cache import cache

from co_project.errors import ProblemRepositoryNotReady
from co_project.sealed_cache import sealed_cache_set
from grading.problems import HiddenCase
from tests.servers import FakeProblemBank
from tests.tracks import factories
from tracks.problem_bank import HttpProblemBank, problem_bundle_require

pytestmark = pytest.mark.django_db

RETRIES = 2
REMOTE_HIDDEN_MARKERS = (
    "zqx-remote-hidden-input-31c4",
    "zqx-remote-hidden-expected-31c4",
    "zqx-remote-reference-77aa",
    "zqx-remote-remediation-90bd",
)

# The course-pack problem shape, with one visible test using the older `expect` key.
REMOTE_BUNDLE = {
    "id": "remote-1",
    "slug": "remote-1",
    "subject": "coding",
    "title": "Remote pair sum",
    "statement": "Return indices `[i, j]` with `nums[i] + nums[j] == t`.",
    "difficulty": 2,
    "topics": ["arrays", "hash-map"],
    "parameters": ["nums", "t"],
    "languages": {
        "python": {
            "entrypoint": "pair_sum",
            "starter": "def pair_sum(nums, t):\n    pass\n",
            "reference": "def pair_sum(nums, t):\n    # zqx-remote-reference-77aa\n    return [0, 1]\n",
        }
    },
    "comparison": "exact",
    "limits": {"time_ms": 700, "memory_mb": 64},
    "visible_tests": [
        {"input": {"nums": [2, 7, 11, 15], "t": 9}, "expected": [0, 1]},
        {"input": {"nums": [3, 3], "t": 6}, "expect": [0, 1]},
    ],
    "hidden_tests": [
        {
            "category": "large-n",
            "input": {"nums": ["zqx-remote-hidden-input-31c4"], "t": 1},
            "expected": "zqx-remote-hidden-expected-31c4",
        },
        {"category": "negatives", "input": {"nums": [-1, -2], "t": -3}, "expected": [0, 1]},
    ],
    "hints": ["Think about complements.", "Use a dictionary."],
    "remediation": {"large-n": "zqx-remote-remediation-90bd"},
}

REMOTE_PUBLIC_VIEW = {
    "id": "remote-1",
    "slug": "remote-1",
    "subject": "coding",
    "title": "Remote pair sum",
    "statement": "Return indices `[i, j]` with `nums[i] + nums[j] == t`.",
    "statement_html": "<p>Return indices <code>[i, j]</code> with <code>nums[i] + nums[j] == t</code>.</p>",
    "difficulty": 2,
    "topics": ["arrays", "hash-map"],
    "track": None,
    "module": None,
    "parameters": ["nums", "t"],
    "languages": {"python": {"entrypoint": "pair_sum", "starter_code": "def pair_sum(nums, t):\n    pass\n"}},
    "visible_tests": [
        {"input": {"nums": [2, 7, 11, 15], "t": 9}, "expected": [0, 1]},
        {"input": {"nums": [3, 3], "t": 6}, "expected": [0, 1]},
    ],
    "comparison": "exact",
    "float_tolerance": None,
    "limits": {"time_ms": 700, "memory_mb": 64},
    "hint_levels": 2,
    "math": None,
    "rubric": None,
}

# The older shape of seeds/000 §5: `expect`, `hidden_spec`, no parameters or title.
SEED_SHAPE_BUNDLE = {
    "id": "two-sum-old",
    "statement": "Return indices i<j such that nums[i]+nums[j]==t.",
    "visible_tests": [
        {"input": {"nums": [2, 7, 11, 15], "t": 9}, "expect": [0, 1]},
        {"input": {"nums": [3, 3], "t": 6}, "expect": [0, 1]},
    ],
    "hidden_spec": {
        "generator": {"seeds": [1, 2], "cases": ["duplicates", "negatives", "large-n"]},
        "time_limit_ms": 200,
        "mem_limit_mb": 128,
    },
}


@pytest.fixture
def bank(problem_bank_server: FakeProblemBank, settings) -> FakeProblemBank:
    """The fake bank holding `remote-1`, configured as this process's remote problem bank."""
    problem_bank_server.bundles["remote-1"] = copy.deepcopy(REMOTE_BUNDLE)
    settings.CO_PROBLEM_BANK_BASE = problem_bank_server.url
    settings.CO_PROBLEM_BANK_TIMEOUT_SECONDS = 0.5
    settings.CO_PROBLEM_BANK_RETRIES = RETRIES
    settings.CO_PROBLEM_BANK_CACHE_SECONDS = 300
    settings.CO_PROBLEM_BANK_TOKEN = None
    return problem_bank_server


def _assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["error"]["code"] == code
    assert body["request_id"] == response["X-Request-ID"]
    return body


def _assert_no_hidden_content(text: str) -> None:
    for marker in (*REMOTE_HIDDEN_MARKERS, *factories.HIDDEN_MARKERS):
        assert marker not in text


# --- the public view ----------------------------------------------------------------------


def test_remote_problem_public_view(api, bank: FakeProblemBank) -> None:
    response = api.get("/v1/problems/remote-1")

    assert response.status_code == 200, response.content
    assert response.json() == REMOTE_PUBLIC_VIEW
    _assert_no_hidden_content(response.content.decode())
    assert bank.requested_paths() == ["/internal/problems/remote-1/bundle"]
    assert bank.requests[0].method == "GET"


def test_remote_problem_in_the_older_seed_shape(api, bank: FakeProblemBank) -> None:
    bank.bundles["two-sum-old"] = copy.deepcopy(SEED_SHAPE_BUNDLE)

    response = api.get("/v1/problems/two-sum-old")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == "two-sum-old"
    assert body["slug"] == "two-sum-old"
    assert body["title"] == "two-sum-old"
    assert body["statement"] == "Return indices i<j such that nums[i]+nums[j]==t."
    assert body["visible_tests"] == [
        {"input": {"nums": [2, 7, 11, 15], "t": 9}, "expected": [0, 1]},
        {"input": {"nums": [3, 3], "t": 6}, "expected": [0, 1]},
    ]
    assert body["parameters"] == ["nums", "t"]
    assert body["limits"] == {"time_ms": 200, "memory_mb": 128}
    assert body["languages"] == {}
    assert body["hint_levels"] == 0
    assert "generator" not in response.content.decode()


def test_remote_bundle_is_cached(api, bank: FakeProblemBank) -> None:
    first = api.get("/v1/problems/remote-1")
    assert first.status_code == 200
    assert bank.request_count() == 1

    second = api.get("/v1/problems/remote-1")

    assert second.status_code == 200
    assert second.json() == first.json()
    assert bank.request_count() == 1


def test_missing_remote_problem_is_404(api, bank: FakeProblemBank) -> None:
    response = api.get("/v1/problems/not-in-any-bank")

    body = _assert_envelope(response, 404, "not_found")
    assert body["error"]["message"] == "No published problem 'not-in-any-bank'."
    assert bank.requested_paths() == ["/internal/problems/not-in-any-bank/bundle"]


def test_404_from_the_bank_is_not_retried_and_is_remembered(api, bank: FakeProblemBank) -> None:
    bank.behaviour.always_status = 404

    _assert_envelope(api.get("/v1/problems/remote-1"), 404, "not_found")
    _assert_envelope(api.get("/v1/problems/remote-1"), 404, "not_found")

    assert bank.request_count() == 1


def test_reference_is_url_quoted(api, bank: FakeProblemBank) -> None:
    response = api.get("/v1/problems/a%3Fb%C3%A9")

    _assert_envelope(response, 404, "not_found")
    assert bank.requested_paths() == ["/internal/problems/a%3Fb%C3%A9/bundle"]


# --- failures of the bank -------------------------------------------------------------------


def test_transient_500s_are_retried(api, bank: FakeProblemBank) -> None:
    bank.behaviour.fail_first = 2

    response = api.get("/v1/problems/remote-1")

    assert response.status_code == 200, response.content
    assert response.json() == REMOTE_PUBLIC_VIEW
    assert bank.request_count() == 3


def test_bank_always_failing_is_409_after_bounded_retries(api, bank: FakeProblemBank) -> None:
    bank.behaviour.always_status = 500

    response = api.get("/v1/problems/remote-1")

    body = _assert_envelope(response, 409, "problem_repository_not_ready")
    assert bank.request_count() == RETRIES + 1
    assert bank.url not in response.content.decode()
    assert body["error"]["fields"] == {}


def test_failures_are_not_cached(api, bank: FakeProblemBank) -> None:
    bank.behaviour.always_status = 500
    _assert_envelope(api.get("/v1/problems/remote-1"), 409, "problem_repository_not_ready")
    assert bank.request_count() == RETRIES + 1

    bank.behaviour.always_status = None
    response = api.get("/v1/problems/remote-1")

    assert response.status_code == 200, response.content
    assert bank.request_count() == RETRIES + 2


def test_bank_slower_than_the_timeout_is_409(api, bank: FakeProblemBank) -> None:
    bank.behaviour.delay_seconds = 30

    response = api.get("/v1/problems/remote-1")

    _assert_envelope(response, 409, "problem_repository_not_ready")
    assert bank.request_count() == RETRIES + 1


def test_bank_unreachable_is_409(api, bank: FakeProblemBank, settings) -> None:
    bank.stop()  # nothing listens on its port any more

    response = api.get("/v1/problems/remote-1")

    _assert_envelope(response, 409, "problem_repository_not_ready")


def test_invalid_json_is_409(api, bank: FakeProblemBank) -> None:
    bank.behaviour.invalid_json = True

    response = api.get("/v1/problems/remote-1")

    _assert_envelope(response, 409, "problem_repository_not_ready")
    assert bank.request_count() == 1


@pytest.mark.parametrize(
    "malformed",
    [
        pytest.param({"visible_tests": "not a list"}, id="visible-tests-a-string"),
        pytest.param({"visible_tests": {"input": {}, "expected": 1}}, id="visible-tests-an-object"),
        pytest.param({"visible_tests": 7}, id="visible-tests-a-number"),
        pytest.param({"visible_tests": ["not an object"]}, id="visible-test-not-an-object"),
        pytest.param({"visible_tests": [{"input": [1, 2], "expected": 3}]}, id="visible-input-not-an-object"),
        pytest.param({"hidden_tests": [{"input": {}, "expected": 1}]}, id="hidden-test-without-category"),
        pytest.param({"hidden_tests": "nope"}, id="hidden-tests-not-a-list"),
        pytest.param({"difficulty": "hard"}, id="difficulty-not-a-number"),
        pytest.param({"limits": ["700"]}, id="limits-not-an-object"),
        pytest.param({"topics": 5}, id="topics-not-a-list"),
        pytest.param({"languages": {"python": "def f(): pass"}}, id="language-spec-not-an-object"),
    ],
)
def test_malformed_bundle_is_409(api, bank: FakeProblemBank, malformed: dict) -> None:
    bank.bundles["remote-1"].update(malformed)

    response = api.get("/v1/problems/remote-1")

    _assert_envelope(response, 409, "problem_repository_not_ready")
    _assert_no_hidden_content(response.content.decode())


def test_bundle_that_is_not_an_object_is_409(api, bank: FakeProblemBank) -> None:
    bank.bundles["remote-1"] = ["a", "list"]

    _assert_envelope(api.get("/v1/problems/remote-1"), 409, "problem_repository_not_ready")


# --- database first, token, service layer -------------------------------------------------------


def test_database_wins_over_the_remote_bank(api, bank: FakeProblemBank) -> None:
    factories.publish(factories.pack_document())
    remote_shout = copy.deepcopy(REMOTE_BUNDLE) | {"id": "shout", "slug": "shout", "statement": "REMOTE statement"}
    bank.bundles["shout"] = remote_shout

    response = api.get("/v1/problems/shout")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["statement"] == "Return `text` in upper case."
    assert body["track"]["slug"] == "test-track"
    assert body["module"] == {"id": "basics", "title": "Basics", "outcomes": ["strings"]}
    _assert_no_hidden_content(response.content.decode())
    assert bank.request_count() == 0


def test_bank_token_is_sent_when_set(api, bank: FakeProblemBank, settings) -> None:
    settings.CO_PROBLEM_BANK_TOKEN = "bank-secret-token-5e1"

    response = api.get("/v1/problems/remote-1")

    assert response.status_code == 200
    assert bank.requests[0].headers["authorization"] == "Bearer bank-secret-token-5e1"
    assert bank.requests[0].headers["accept"] == "application/json"
    assert "bank-secret-token-5e1" not in response.content.decode()


def test_no_authorization_header_without_a_token(api, bank: FakeProblemBank) -> None:
    assert api.get("/v1/problems/remote-1").status_code == 200
    assert "authorization" not in bank.requests[0].headers


def test_require_with_hidden_returns_remote_hidden_cases(bank: FakeProblemBank) -> None:
    bundle = problem_bundle_require(reference="remote-1", include_hidden=True)

    assert bundle.source == "remote"
    assert bundle.hidden_tests == [
        HiddenCase(
            category="large-n",
            input={"nums": ["zqx-remote-hidden-input-31c4"], "t": 1},
            expected="zqx-remote-hidden-expected-31c4",
        ),
        HiddenCase(category="negatives", input={"nums": [-1, -2], "t": -3}, expected=[0, 1]),
    ]
    assert bundle.visible_tests == REMOTE_PUBLIC_VIEW["visible_tests"]
    assert bundle.languages["python"]["reference"] == REMOTE_BUNDLE["languages"]["python"]["reference"]
    assert bundle.remediation == {"large-n": "zqx-remote-remediation-90bd"}


def test_require_without_hidden_has_no_hidden_cases(bank: FakeProblemBank) -> None:
    assert problem_bundle_require(reference="remote-1").hidden_tests is None


def test_require_raises_not_ready_when_no_bank_has_the_problem(bank: FakeProblemBank) -> None:
    with pytest.raises(ProblemRepositoryNotReady) as caught:
        problem_bundle_require(reference="nowhere", include_hidden=True)

    assert caught.value.status_code == 409
    assert caught.value.code == "problem_repository_not_ready"
    assert caught.value.fields == {"problem_id": ["The problem bank has no problem 'nowhere'."]}
    assert bank.requested_paths() == ["/internal/problems/nowhere/bundle"]


def test_require_raises_not_ready_without_a_remote_bank(settings) -> None:
    settings.CO_PROBLEM_BANK_BASE = None

    with pytest.raises(ProblemRepositoryNotReady) as caught:
        problem_bundle_require(reference="remote-1", include_hidden=True)

    assert caught.value.status_code == 409


def test_require_raises_not_ready_when_the_bank_fails(bank: FakeProblemBank) -> None:
    bank.behaviour.always_status = 503

    with pytest.raises(ProblemRepositoryNotReady) as caught:
        problem_bundle_require(reference="remote-1", include_hidden=True)

    assert caught.value.status_code == 409
    assert bank.request_count() == RETRIES + 1


# --- the cache is sealed ------------------------------------------------------------------------

# What a reader of the shared cache must not find: hidden tests, references, remediation, and
# with them the rest of the bundle (the whole value is encrypted).
PLAIN_BUNDLE_TEXT = (*REMOTE_HIDDEN_MARKERS, "Remote pair sum", "pair_sum", "large-n", '"hidden_tests"')


def _cache_key(reference: str) -> str:
    """Where the HTTP bank caches a reference's bundle."""
    return HttpProblemBank("http://127.0.0.1:9", timeout=1, retries=0, cache_seconds=1)._cache_key(reference)


def _assert_sealed(raw: bytes) -> None:
    for text in PLAIN_BUNDLE_TEXT:
        assert text.encode() not in raw, text


def test_the_cached_bundle_is_sealed_and_still_saves_the_second_fetch(bank: FakeProblemBank) -> None:
    first = problem_bundle_require(reference="remote-1", include_hidden=True)
    stored = cache.get(_cache_key("remote-1"))

    second = problem_bundle_require(reference="remote-1", include_hidden=True)

    assert isinstance(stored, bytes)
    _assert_sealed(stored)
    assert second == first and second.hidden_tests == first.hidden_tests
    assert bank.request_count() == 1


def test_a_remembered_404_is_sealed_too(api, bank: FakeProblemBank) -> None:
    bank.behaviour.always_status = 404
    _assert_envelope(api.get("/v1/problems/remote-1"), 404, "not_found")

    stored = cache.get(_cache_key("remote-1"))

    assert isinstance(stored, bytes) and b"missing" not in stored and b"null" not in stored
    _assert_envelope(api.get("/v1/problems/remote-1"), 404, "not_found")
    assert bank.request_count() == 1


@pytest.mark.parametrize(
    "forged",
    [
        "plain",  # what an unsealed cache would have trusted
        "another-key",  # sealed, but not with a key derived from our secret
        "moved",  # our own sealed value of another problem, copied under this key
    ],
)
def test_a_cache_entry_someone_else_wrote_is_not_trusted(bank: FakeProblemBank, forged: str, settings) -> None:
    """Anything sharing the cache could write a bundle whose hidden tests every program passes."""
    easy = {
        **copy.deepcopy(REMOTE_BUNDLE),
        "hidden_tests": [{"category": "easy", "input": {"nums": [], "t": 0}, "expected": None}],
    }
    if forged == "plain":
        cache.set(_cache_key("remote-1"), easy, timeout=300)
    elif forged == "another-key":
        ours, settings.SECRET_KEY = settings.SECRET_KEY, "an-attackers-guess-of-the-secret-key-0123456789-abcdefghijklmnop"
        sealed_cache_set(_cache_key("remote-1"), {"bundle": easy}, timeout=300)
        settings.SECRET_KEY = ours
    else:
        bank.bundles["easy"] = easy
        problem_bundle_require(reference="easy", include_hidden=True)
        cache.set(_cache_key("remote-1"), cache.get(_cache_key("easy")), timeout=300)

    bundle = problem_bundle_require(reference="remote-1", include_hidden=True)

    assert [case.category for case in bundle.hidden_tests] == ["large-n", "negatives"]
    assert bank.requested_paths()[-1] == "/internal/problems/remote-1/bundle"


@pytest.mark.requires_services
def test_redis_holds_no_hidden_test_in_plain(bank: FakeProblemBank) -> None:
    """What anything else connected to the Redis reads: the raw bytes of every key we wrote."""
    assert django_settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache"
    problem_bundle_require(reference="remote-1", include_hidden=True)
    client = redis.Redis.from_url(django_settings.CACHES["default"]["LOCATION"])

    keys = client.keys("*problem-bank*")
    raw = [client.get(key) for key in keys]
    bundle = problem_bundle_require(reference="remote-1", include_hidden=True)

    assert len(keys) == 1 and raw[0]
    _assert_sealed(raw[0])
    assert [case.category for case in bundle.hidden_tests] == ["large-n", "negatives"]
    assert bank.request_count() == 1  # the second fetch was served from Redis
