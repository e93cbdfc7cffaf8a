"""One learner cannot hold more than CO_MAX_CONCURRENT_EVALUATIONS_PER_LEARNER submissions in the
pipeline at once: the next one is a 429 in the error envelope and stores nothing, while another
learner is unaffected and a replay of a queued submission still returns it."""

from __future__ import annotations

import pytest
from django.utils import timezone

from submissions.models import Submission, SubmissionStatus
from tests.submissions.test_pipeline import (  # noqa: F401 - fixtures
    _pending_submission,
    coding,
    eval_service,
    published,
    submission_counts,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_queued(eval_service, published) -> list[Submission]:  # noqa: F811 - the fixtures above
    """Alice has two submissions waiting for their verdict (one queued, one being graded)."""
    queued = [_pending_submission(), _pending_submission()]
    Submission.objects.filter(id=queued[1].id).update(status=SubmissionStatus.RUNNING)
    return queued


def test_the_third_concurrent_submission_of_a_learner_is_refused_with_429(api, learner_client, two_queued) -> None:
    before = submission_counts()

    refused = api.post("/v1/submissions", coding(), format="json", HTTP_IDEMPOTENCY_KEY="third")

    assert refused.status_code == 429, refused.json()
    body = refused.json()
    assert body["error"]["code"] == "too_many_evaluations"
    assert set(body) == {"error", "request_id"} and body["error"]["fields"] == {}
    assert submission_counts() == before  # nothing stored, nothing graded

    other = learner_client("bob").post("/v1/submissions", coding(), format="json")
    assert other.status_code == 200 and other.json()["status"] == "passed", other.json()


def test_once_a_verdict_is_in_the_learner_may_submit_again(api, two_queued, settings) -> None:
    Submission.objects.filter(id=two_queued[0].id).update(status=SubmissionStatus.PASSED, finished_at=timezone.now())

    accepted = api.post("/v1/submissions", coding(), format="json")

    assert accepted.status_code == 200 and accepted.json()["status"] == "passed", accepted.json()


def test_the_cap_is_a_setting(api, two_queued, settings) -> None:
    settings.CO_MAX_CONCURRENT_EVALUATIONS_PER_LEARNER = 3
    assert api.post("/v1/submissions", coding(), format="json").status_code == 200
    settings.CO_MAX_CONCURRENT_EVALUATIONS_PER_LEARNER = 1
    assert api.post("/v1/submissions", coding(), format="json").status_code == 429


def test_a_replay_of_a_queued_submission_returns_it_not_429(api, eval_service, published) -> None:  # noqa: F811
    first = api.post("/v1/submissions", coding(), format="json", HTTP_IDEMPOTENCY_KEY="same")
    assert first.status_code == 200
    Submission.objects.update(status=SubmissionStatus.PENDING)
    _pending_submission()  # a second one in flight: alice is at the cap

    replay = api.post("/v1/submissions", coding(), format="json", HTTP_IDEMPOTENCY_KEY="same")

    assert replay.status_code in (200, 202), replay.json()
    assert replay.json()["id"] == first.json()["id"]
