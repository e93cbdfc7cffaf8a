"""`GET /v1/tracks/{id-or-slug}/my-results`: the learner's status on each problem of a track, from
their graded submits through every front door (sessions and study tasks); only their own; runs,
pending and `error` submissions do not count; nothing of a hidden test; a fixed query count."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from submissions.models import Submission
from tests.personalization.factories import FAIL, PASS
from tests.tracks.factories import HIDDEN_MARKERS, add_problem, pack_document, publish, shout_problem
from tracks.models import Problem, Track

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PROBLEM_KEYS = {"problem_id", "slug", "module", "status", "attempts", "best_verdict", "last_verdict", "last_submitted_at"}


def publish_results_track(slug: str = "results") -> None:
    """Two modules: `shout` and `add-numbers` in the first, `add-more` in the second; and an
    unpublished module whose problem never shows."""
    modules = [
        {"slug": "basics", "title": "Basics", "outcomes": ["strings"]},
        {"slug": "more", "title": "More", "outcomes": ["sums"]},
    ]
    problems = [shout_problem(module="basics"), add_problem(module="basics"), add_problem(slug="add-more", module="more")]
    publish(pack_document(track_slug=slug, modules=modules, problems=problems))


def _results(client: APIClient, track: str = "results") -> dict:
    response = client.get(f"/v1/tracks/{track}/my-results")
    assert response.status_code == 200, response.content
    return response.json()


def _by_slug(body: dict) -> dict[str, dict]:
    return {row["slug"]: row for row in body["problems"]}


def _submission(learner: str, slug: str, status: str, at: datetime, *, kind: str = "submit") -> Submission:
    """A finished submission row as the pipeline leaves it, sent at `at`."""
    problem = Problem.objects.get(slug=slug)
    final = status not in ("pending", "running")
    submission = Submission.objects.create(
        learner_id=learner,
        problem=problem,
        problem_ref=slug,
        subject="coding",
        kind=kind,
        language="python",
        payload={"language": "python", "code": "..."},
        payload_sha256=uuid.uuid4().hex * 2,
        status=status,
        hidden_passed=0,
        hidden_total=4,
        failed_categories=["negatives"] if status == "failed" else [],
        finished_at=at + timedelta(seconds=1) if final else None,
    )
    Submission.objects.filter(id=submission.id).update(created_at=at)
    return submission


def _not_started(slug: str, module: str) -> dict:
    return {
        "problem_id": str(Problem.objects.get(slug=slug).id),
        "slug": slug,
        "module": module,
        "status": "not_started",
        "attempts": 0,
        "best_verdict": None,
        "last_verdict": None,
        "last_submitted_at": None,
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_task_events_cleared")
def test_graded_submits_from_a_session_and_a_study_task_set_each_problems_status(api, fake_grader) -> None:
    publish_results_track()
    track = Track.objects.get(slug="results")
    before = _results(api)
    assert before == {
        "track": {"id": str(track.id), "slug": "results", "title": "Track results"},
        "problems": [_not_started("shout", "basics"), _not_started("add-numbers", "basics"), _not_started("add-more", "more")],
        "totals": {"total": 3, "solved": 0, "attempted": 0, "not_started": 3},
    }

    # A study task's submit goes through the same pipeline: it counts.
    path = api.post("/v1/study-paths", {"track": "results", "config": {"batch_size": 3}}, format="json")
    assert path.status_code == 201, path.content
    task = next(t for t in path.json()["upcoming_tasks"] if t["problem"]["slug"] == "shout")
    fake_grader.answer = dict(FAIL)
    code = {"language": "python", "code": "def shout(text):\n    return text\n"}
    task_submit = api.post(f"/v1/study-tasks/{task['id']}/submit", code, format="json")
    assert (task_submit.status_code, task_submit.json()["status"]) == (200, "failed")

    # Sessions: add-numbers failed, then passed; a run of add-more counts for nothing.
    answer = {"language": "python", "code": "def add(a, b):\n    return 0\n"}
    add = {"problem_id": "add-numbers", "subject": "coding", "payload": answer}
    assert api.post("/v1/submissions", add, format="json").json()["status"] == "failed"
    fake_grader.answer = dict(PASS)
    assert api.post("/v1/submissions", add, format="json").json()["status"] == "passed"
    run = {**add, "problem_id": "add-more", "kind": "run"}
    assert api.post("/v1/submissions", run, format="json").json()["kind"] == "run"

    body = _results(api)
    submitted = Submission.objects.filter(learner_id="alice", kind="submit").order_by("created_at")
    submissions = {s.problem.slug: s for s in submitted.select_related("problem")}
    rows = _by_slug(body)
    assert rows["shout"] == {
        "problem_id": str(Problem.objects.get(slug="shout").id),
        "slug": "shout",
        "module": "basics",
        "status": "attempted",
        "attempts": 1,
        "best_verdict": "failed",
        "last_verdict": "failed",
        "last_submitted_at": submissions["shout"].created_at.isoformat(),
    }
    assert rows["add-numbers"] == {
        **_not_started("add-numbers", "basics"),
        "status": "solved",
        "attempts": 2,
        "best_verdict": "passed",
        "last_verdict": "passed",
        "last_submitted_at": submissions["add-numbers"].created_at.isoformat(),  # the later one (ordered)
    }
    assert rows["add-more"] == _not_started("add-more", "more")
    assert body["totals"] == {"total": 3, "solved": 1, "attempted": 1, "not_started": 1}


@pytest.mark.django_db
def test_only_the_learners_own_graded_submits_count_with_best_and_last_verdicts(api, learner_client) -> None:
    publish_results_track()
    minute = timedelta(minutes=1)
    # shout: failed, passed, then failed again → solved; best passed, last failed.
    for index, status in enumerate(("failed", "passed", "failed")):
        _submission("alice", "shout", status, START + index * minute)
    # add-numbers: a timeout then a wrong answer → attempted; best failed, last failed. Later
    # runs, a pending submit and our own `error` do not count.
    _submission("alice", "add-numbers", "timeout", START)
    _submission("alice", "add-numbers", "failed", START + minute)
    _submission("alice", "add-numbers", "passed", START + 2 * minute, kind="run")
    _submission("alice", "add-numbers", "pending", START + 3 * minute)
    _submission("alice", "add-numbers", "error", START + 4 * minute)
    # add-more: a timeout is a graded miss.
    _submission("alice", "add-more", "timeout", START + 5 * minute)
    # bob passed everything: none of it is alice's.
    for slug in ("shout", "add-numbers", "add-more"):
        _submission("bob", slug, "passed", START + 9 * minute)

    rows = _by_slug(_results(api))
    summary = {slug: (r["status"], r["attempts"], r["best_verdict"], r["last_verdict"]) for slug, r in rows.items()}
    assert summary == {
        "shout": ("solved", 3, "passed", "failed"),
        "add-numbers": ("attempted", 2, "failed", "failed"),
        "add-more": ("attempted", 1, "timeout", "timeout"),
    }
    assert rows["shout"]["last_submitted_at"] == (START + 2 * minute).isoformat()
    assert rows["add-numbers"]["last_submitted_at"] == (START + minute).isoformat()
    assert all(set(row) == PROBLEM_KEYS for row in rows.values())

    carol = _results(learner_client("carol"))
    assert carol["totals"] == {"total": 3, "solved": 0, "attempted": 0, "not_started": 3}
    assert _by_slug(_results(learner_client("bob")))["add-more"]["status"] == "solved"


@pytest.mark.django_db
def test_by_id_or_slug_in_the_tracks_order_without_retired_problems_or_hidden_data(api) -> None:
    publish_results_track()
    _submission("alice", "shout", "failed", START)
    Problem.objects.filter(slug="add-numbers").update(published=False)
    track = Track.objects.get(slug="results")

    by_slug = _results(api)
    assert _results(api, str(track.id)) == by_slug
    assert [row["slug"] for row in by_slug["problems"]] == ["shout", "add-more"]
    # The track page lists the same problems in the same order.
    detail = api.get("/v1/tracks/results").json()
    assert [p["slug"] for m in detail["modules"] for p in m["problems"]] == ["shout", "add-more"]
    text = json.dumps(by_slug)
    assert not any(marker in text for marker in HIDDEN_MARKERS)
    assert "negatives" not in text and "hidden" not in text


@pytest.mark.django_db
def test_the_query_count_is_the_same_at_two_history_sizes(api, learner_client, django_assert_num_queries) -> None:
    publish_results_track()
    _submission("alice", "shout", "failed", START)
    slugs = ("shout", "add-numbers", "add-more")
    statuses = ("failed", "timeout", "passed", "error")
    for index in range(240):
        _submission("bob", slugs[index % 3], statuses[index % 4], START + timedelta(minutes=index))
        _submission("bob", slugs[index % 3], "failed", START + timedelta(minutes=index), kind="run")

    for client, attempts in ((api, 1), (learner_client("bob"), 180)):
        # The track, its problems, one aggregate over the learner's submits.
        with django_assert_num_queries(3):
            body = _results(client)
        assert sum(row["attempts"] for row in body["problems"]) == attempts


@pytest.mark.django_db
def test_an_unknown_or_unpublished_track_is_404_and_no_token_is_401(api) -> None:
    publish_results_track()
    for reference in ("no-such-track", str(uuid.uuid4()), "x" * 300):
        response = api.get(f"/v1/tracks/{reference}/my-results")
        assert response.status_code == 404, response.content
        assert set(response.json()) == {"error", "request_id"}
        assert response.json()["error"]["code"] == "not_found"
    Track.objects.filter(slug="results").update(published=False)
    assert api.get("/v1/tracks/results/my-results").json()["error"]["code"] == "not_found"

    anonymous = APIClient().get("/v1/tracks/results/my-results")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"


@pytest.mark.django_db
def test_the_schema_documents_the_operation(client) -> None:
    schema = client.get("/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/v1/tracks/{reference}/my-results"]["get"]
    assert operation["operationId"] == "tracks_my_results"
    assert operation["tags"] == ["tracks"]
    assert {"200", "401", "404", "429"} <= set(operation["responses"])
    component = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    problem = schema["components"]["schemas"][component]["properties"]["problems"]["items"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][problem]["properties"]) == PROBLEM_KEYS
