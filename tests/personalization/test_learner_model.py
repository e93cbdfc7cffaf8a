"""The learner model through the API with simulated learners (strong, struggling, hint-leaning):
mastery numbers, guardrails, review-queue buckets under time control, due-review injection,
explained recommendations, and query counts that do not grow with history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from co_project.models import TelemetryEvent
from personalization.models import LearnerState, Mastery, ReviewItem
from personalization.services import GradedAttempt, attempt_record, review_surface_due
from tests.personalization.factories import LADDER, MODULE_ORDER, SimulatedLearner, publish_ladder
from tracks.models import Problem

pytestmark = pytest.mark.django_db(transaction=True)

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def ladder() -> None:
    publish_ladder()


def learner(learner_client, fake_grader, name: str) -> SimulatedLearner:
    # Long-lived tokens: some tests travel weeks ahead.
    return SimulatedLearner(learner_client(name, ttl=90 * 86400), fake_grader, name)


def mastery_of(learner_id: str) -> dict[str, tuple[int, float, int]]:
    return {
        f"{m.key_type}:{m.key_id}": (m.score, round(m.ema, 4), m.attempts) for m in Mastery.objects.filter(learner_id=learner_id)
    }


# --- mastery rule --------------------------------------------------------------------------------


def test_mastery_follows_the_documented_rule(learner_client, fake_grader, ladder) -> None:
    alice = learner(learner_client, fake_grader, "alice")
    alice.start(mode="practice", problem_id="a3")  # difficulty 2: topics arrays, hashing; outcome basics
    alice.submit(passed=False)  # 1/3 visible + 0/1 hidden = 1 of 4 tests → p = 25 × 1/4 = 6.25
    # α for a miss at d=2: 0.35 × (1.4 − 0.4) = 0.35 → ema = 0.35 × 6.25 = 2.1875
    assert mastery_of("alice") == {
        "topic:arrays": (2, 2.1875, 1),
        "topic:hashing": (2, 2.1875, 1),
        "outcome:basics": (2, 2.1875, 1),
    }
    alice.submit(passed=True)  # clean pass at d=2: p = 100, α = 0.35 × (0.6 + 0.4) = 0.35
    expected = round(2.1875 + 0.35 * (100 - 2.1875), 4)  # 36.4219
    assert mastery_of("alice")["topic:arrays"] == (36, expected, 2)

    response = alice.client.get("/v1/mastery")
    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None
    assert [(i["key_type"], i["key_id"], i["score"], i["attempts"]) for i in body["items"]] == [
        ("outcome", "basics", 36, 2),
        ("topic", "arrays", 36, 2),
        ("topic", "hashing", 36, 2),
    ]
    assert set(body["items"][0]) == {"key_type", "key_id", "score", "ema", "attempts", "mastered", "updated_at"}
    assert [i["mastered"] for i in body["items"]] == [False, False, False]  # 36 < CO_MASTERY_THRESHOLD (80)
    only_topics = alice.client.get("/v1/mastery?key_type=topic").json()["items"]
    assert [i["key_id"] for i in only_topics] == ["arrays", "hashing"]
    bad = alice.client.get("/v1/mastery?key_type=skill")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"


def test_a_pass_after_heavy_hints_counts_for_less_than_a_clean_pass(learner_client, fake_grader, ladder) -> None:
    clean = learner(learner_client, fake_grader, "clean")
    clean.start(mode="practice", problem_id="a1")
    clean.submit(passed=True)

    hinted = learner(learner_client, fake_grader, "hinted")
    hinted.start(mode="practice", problem_id="a1")
    hinted.hint(1)
    hinted.hint(3)
    hinted.submit(passed=True)

    # d=1: α = 0.35 × 0.8 = 0.28. Clean: 0.28 × 100 = 28. Level-3 hints: 0.28 × 45 = 12.6.
    assert mastery_of("clean")["topic:arrays"] == (28, 28.0, 1)
    assert mastery_of("hinted")["topic:arrays"] == (13, 12.6, 1)
    assert hinted.session["problems"][0]["hints_used"] == 2
    assert hinted.session["last_hint_level"] == 3
    # A heavy-hint pass is queued for review and does not raise the level.
    assert ReviewItem.objects.get(learner_id="hinted").reason == "heavy-hint"
    assert not ReviewItem.objects.filter(learner_id="clean").exists()


def test_a_slow_pass_counts_for_less_and_is_queued_as_slow(learner_client, fake_grader, ladder) -> None:
    with time_machine.travel(START, tick=False) as clock:
        slow = learner(learner_client, fake_grader, "slow")
        slow.start(mode="practice", problem_id="a1")
        clock.shift(timedelta(minutes=11))  # expected for difficulty 1: 10 minutes
        slow.submit(passed=True)
    # p = 100 × 0.85 = 85; α = 0.28 → 23.8
    assert mastery_of("slow")["topic:arrays"] == (24, 23.8, 1)
    item = ReviewItem.objects.get(learner_id="slow")
    assert (item.reason, item.bucket, item.next_due_at) == ("slow", 0, START + timedelta(minutes=11, days=1))


def test_runs_and_errors_do_not_touch_the_learner_model(learner_client, fake_grader, ladder) -> None:
    alice = learner(learner_client, fake_grader, "alice")
    alice.start(mode="practice", problem_id="a1")
    fake_grader.answer = {"status": "passed", "visible": {"passed": 3, "total": 3, "details": []}}
    run = alice.client.post(
        "/v1/submissions",
        {
            "session_id": alice.session["id"],
            "problem_id": "a1",
            "subject": "coding",
            "kind": "run",
            "payload": {"language": "python", "code": "def add(a, b):\n    return a + b\n"},
        },
        format="json",
    )
    assert run.status_code == 200
    fake_grader.stop()  # the eval service is gone: the verdict is `error`, our failure, not the learner's
    broken = alice.client.post(
        "/v1/submissions",
        {
            "session_id": alice.session["id"],
            "problem_id": "a1",
            "subject": "coding",
            "payload": {"language": "python", "code": "def add(a, b):\n    return a - b\n"},
        },
        format="json",
    )
    assert broken.json()["status"] == "error"
    assert Mastery.objects.count() == 0
    assert ReviewItem.objects.count() == 0
    assert LearnerState.objects.count() == 0
    row = alice.refresh()["problems"][0]
    assert (row["runs"], row["attempts"], row["state"]) == (1, 0, "open")


# --- simulated learners and the guardrails ---------------------------------------------------------


def test_strong_learner_walks_the_modules_in_order_and_practises_until_every_topic_is_mastered(
    learner_client, fake_grader, ladder, settings
) -> None:
    settings.CO_RATE_LIMIT = "100000/min"  # a long walk: more requests than a minute's default allowance
    strong = learner(learner_client, fake_grader, "strong")
    strong.start(mode="track", track_id="ladder")
    seen: list[str] = []
    while strong.session["status"] == "active":
        level = LearnerState.objects.filter(learner_id="strong").values_list("level", flat=True).first() or 1
        slug = strong.current["slug"]
        difficulty = LADDER[slug][1]
        assert difficulty <= level + 1, f"{slug} (difficulty {difficulty}) served at level {level}"
        if seen:
            assert difficulty <= LADDER[seen[-1]][1] + 1, f"{seen[-1]} → {slug}"
        assert seen[-2:] != [slug, slug], f"{slug} a third time in a row"
        seen.append(slug)
        strong.submit(passed=True)
        strong.act("advance")
        assert len(seen) < 100
    first_visits = list(dict.fromkeys(seen))
    assert "c3" in first_visits  # the only problem on dp
    assert [MODULE_ORDER[LADDER[s][0]] for s in first_visits] == sorted(MODULE_ORDER[LADDER[s][0]] for s in first_visits)
    kinds = {p["recommendation"]["kind"] for p in strong.session["problems"]}
    assert kinds == {"new", "practice"}  # solved problems came back while their topics were not mastered
    topics = {t for _, _, topics in LADDER.values() for t in topics}
    scores = dict(Mastery.objects.filter(learner_id="strong", key_type="topic").values_list("key_id", "score"))
    assert set(scores) == topics and min(scores.values()) >= 80
    report = strong.session["report"]
    assert strong.session["status"] == "completed" and strong.session["current_problem"] is None
    assert report["ended_by"] == "track_mastered"
    assert report["message"].startswith("Every topic of track 'ladder' is mastered (score ≥ 80/100")
    assert LearnerState.objects.get(learner_id="strong").level == 5
    assert not ReviewItem.objects.filter(learner_id="strong").exists()
    # A new track session says the same, truthfully; it is not "nothing to practise".
    again = strong.client.post("/v1/sessions", {"subject": "coding", "mode": "track", "track_id": "ladder"}, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "track_mastered"
    assert again.json()["error"]["message"] == report["message"]
    nothing = strong.client.get("/v1/recommendations/next?track=ladder")
    assert (nothing.status_code, nothing.json()["error"]["code"]) == (409, "track_mastered")


def test_struggling_learner_never_gets_a_third_failure_at_the_same_level(learner_client, fake_grader, ladder) -> None:
    """The learner solves only difficulty 1 and fails everything harder, twice each time."""
    weak = learner(learner_client, fake_grader, "weak")
    weak.start(mode="track", track_id="ladder")
    step_downs = 0
    for _ in range(12):
        slug = weak.current["slug"]
        difficulty = LADDER[slug][1]
        if difficulty == 1:
            weak.submit(passed=True)
        else:
            weak.submit(passed=False)
            weak.submit(passed=False)
        weak.act("advance")
        if difficulty > 1:
            nxt = weak.current
            assert LADDER[nxt["slug"]][1] < difficulty, f"after two misses at {difficulty}: {nxt['slug']}"
            assert weak.session["problems"][-1]["recommendation"]["guardrails"][0].startswith(
                f"2 misses in a row at difficulty {difficulty}"
            )
            step_downs += 1
    assert step_downs >= 3
    # Every failed problem is in the review queue, reset to bucket 0.
    failed = {s for s, (_, d, _) in LADDER.items() if d > 1} & set(
        ReviewItem.objects.filter(learner_id="weak").values_list("problem__slug", flat=True)
    )
    assert failed and all(
        (i.reason, i.bucket) == ("fail", 0) for i in ReviewItem.objects.filter(learner_id="weak", problem__slug__in=failed)
    )
    assert LearnerState.objects.get(learner_id="weak").level == 1


def test_hint_leaning_learner_is_kept_at_their_level(learner_client, fake_grader, ladder) -> None:
    leaner = learner(learner_client, fake_grader, "leaner")
    leaner.start(mode="track", track_id="ladder")
    served = []
    for _ in range(8):
        served.append(LADDER[leaner.current["slug"]][1])
        leaner.hint(2)
        leaner.hint(3)
        leaner.submit(passed=True)
        leaner.act("advance")
    assert max(served) <= 2  # level 1 + 1: heavy-hint passes never unlock harder problems
    assert LearnerState.objects.get(learner_id="leaner").level == 1
    assert set(ReviewItem.objects.filter(learner_id="leaner").values_list("reason", flat=True)) == {"heavy-hint"}
    practice = [p for p in leaner.session["problems"] if p["recommendation"].get("kind") == "practice"]
    assert practice and practice[0]["recommendation"]["reasons"][0].startswith("Topics not mastered yet (mastered at 80/100)")
    reasons = [r for p in leaner.session["problems"] for r in p["recommendation"]["reasons"] + p["recommendation"]["guardrails"]]
    assert not [r for r in reasons if "unlock" in r]  # no claim of a lock that does not exist


def test_giving_up_records_a_miss(learner_client, fake_grader, ladder) -> None:
    quitter = learner(learner_client, fake_grader, "quitter")
    quitter.start(mode="practice", problem_id="b1")
    session = quitter.act("giveup")
    assert session["status"] == "abandoned"
    assert session["problems"][0]["state"] == "given_up"
    assert mastery_of("quitter")["topic:loops"] == (0, 0.0, 1)
    item = ReviewItem.objects.get(learner_id="quitter")
    assert (item.problem.slug, item.reason, item.bucket) == ("b1", "fail", 0)
    state = LearnerState.objects.get(learner_id="quitter")
    assert (state.fail_streak, state.fail_streak_difficulty) == (1, 2)


# --- the review queue ------------------------------------------------------------------------------


def test_review_buckets_promote_on_success_reset_on_failure_and_retire(learner_client, fake_grader, ladder) -> None:
    with time_machine.travel(START, tick=False) as clock:
        alice = learner(learner_client, fake_grader, "alice")
        alice.start(mode="practice", problem_id="a3")

        def queue() -> list[tuple[str, str, int, int, str, bool]]:
            items = alice.client.get("/v1/review-queue").json()["items"]
            return [
                (i["problem"]["slug"], i["reason"], i["bucket"], i["interval_days"], i["next_due_at"], i["due"]) for i in items
            ]

        def due_in(days: int) -> str:
            return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

        alice.submit(passed=False)
        assert queue() == [("a3", "fail", 0, 1, due_in(1), False)]
        alice.submit(passed=True)
        assert queue() == [("a3", "fail", 1, 3, due_in(3), False)]
        clock.shift(timedelta(days=3))
        assert queue() == [("a3", "fail", 1, 3, due_in(0), True)]
        alice.submit(passed=True)
        assert queue() == [("a3", "fail", 2, 7, due_in(7), False)]
        alice.submit(passed=False)  # a failure resets the bucket
        assert queue() == [("a3", "fail", 0, 1, due_in(1), False)]
        for bucket, days in ((1, 3), (2, 7), (3, 21)):
            clock.shift(timedelta(days=1))
            alice.submit(passed=True)
            assert queue() == [("a3", "fail", bucket, days, due_in(days), False)]
        alice.submit(passed=True)  # a successful review at bucket 3 retires the item
        assert queue() == []
        assert ReviewItem.objects.get(learner_id="alice").retired_at == datetime.now(UTC)
        alice.submit(passed=False)  # one row per learner and problem: it comes back at bucket 0
        assert queue() == [("a3", "fail", 0, 1, due_in(1), False)]
        assert ReviewItem.objects.filter(learner_id="alice").count() == 1


def test_due_items_are_surfaced_by_the_scheduler_and_injected_into_recommendations(learner_client, fake_grader, ladder) -> None:
    with time_machine.travel(START, tick=False) as clock:
        alice = learner(learner_client, fake_grader, "alice")
        alice.start(mode="practice", problem_id="a4")
        alice.submit(passed=False)
        assert review_surface_due() == 0
        first = alice.client.get("/v1/recommendations/next").json()
        assert first["kind"] == "new" and first["problem"]["slug"] != "a4"

        clock.shift(timedelta(days=1, seconds=1))
        assert review_surface_due() == 1
        assert review_surface_due() == 0  # surfaced once per due date
        assert ReviewItem.objects.get(learner_id="alice").surfaced_at == datetime.now(UTC)
        response = alice.client.get("/v1/recommendations/next")
        body = response.json()
        assert body["kind"] == "review"
        assert body["problem"]["slug"] == "a4"
        assert body["reasons"][0].startswith("A review is due (since 2026-11-03 09:00 UTC, reason fail, bucket 0)")
        assert "Due reviews are served before new problems." in body["guardrails"]
        assert body["learner"] == {"level": 1, "fail_streak": 1, "due_reviews": 1}


def test_surface_due_reviews_command_uses_the_same_service(learner_client, fake_grader, ladder, capsys) -> None:
    alice = learner(learner_client, fake_grader, "alice")
    alice.start(mode="practice", problem_id="a4")
    alice.submit(passed=False)
    with time_machine.travel(datetime.now(UTC) + timedelta(days=2)):
        call_command("surface_due_reviews")
    assert capsys.readouterr().out.strip() == "1 review item(s) surfaced as due."


# --- recommendations -------------------------------------------------------------------------------


def test_recommendation_names_problem_score_terms_and_reasons(learner_client, fake_grader, ladder) -> None:
    alice = learner(learner_client, fake_grader, "alice")
    response = alice.client.get("/v1/recommendations/next?track=ladder")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"problem", "kind", "score", "terms", "reasons", "guardrails", "learner"}
    assert set(body["terms"]) == {"weakness", "novelty", "pacing", "diversity"}
    assert body["score"] == pytest.approx(sum(t["contribution"] for t in body["terms"].values()), abs=1e-3)
    for term in body["terms"].values():
        assert term["contribution"] == pytest.approx(term["weight"] * term["value"], abs=1e-3)
    assert {t: body["terms"][t]["weight"] for t in body["terms"]} == {
        "weakness": 0.35,
        "novelty": 0.25,
        "pacing": 0.3,
        "diversity": 0.1,
    }
    # A new learner: level 1, nothing tried, so difficulty ≤ 2 and every term says why.
    assert body["problem"]["difficulty"] <= 2
    assert body["kind"] == "new"
    assert body["reasons"][0] == f"Topics not mastered yet (mastered at 80/100): {', '.join(body['problem']['topics'])} (0/100)."
    assert body["reasons"][2] == "You have not tried this problem yet."
    assert body["learner"] == {"level": 1, "fail_streak": 0, "due_reviews": 0}
    event = TelemetryEvent.objects.get(event="recommendation_served")
    assert (event.user_id, event.problem_id, event.attrs["kind"]) == ("alice", body["problem"]["slug"], "new")

    assert alice.client.get("/v1/recommendations/next?track=nope").status_code == 404
    bad = alice.client.get("/v1/recommendations/next?subject=poetry")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"


def test_recommendation_weights_come_from_settings(learner_client, fake_grader, ladder, settings) -> None:
    settings.CO_RECOMMENDATION_WEIGHTS = {"weakness": 0.0, "novelty": 0.0, "pacing": 1.0, "diversity": 0.0}
    body = learner(learner_client, fake_grader, "alice").client.get("/v1/recommendations/next").json()
    assert body["score"] == body["terms"]["pacing"]["value"]


# --- cost does not grow with history ---------------------------------------------------------------


def _history(learner_id: str, attempts: int) -> None:
    problems = list(Problem.objects.filter(module__track__slug="ladder").values_list("id", flat=True))
    for index in range(attempts):
        attempt_record(
            attempt=GradedAttempt(
                learner_id=learner_id,
                problem_id=problems[index % len(problems)],
                passed=index % 3 == 0,
                tests_passed=1,
                tests_total=4,
            )
        )


@pytest.mark.parametrize("path", ["/v1/mastery", "/v1/recommendations/next", "/v1/review-queue"])
def test_query_counts_do_not_grow_with_history(learner_client, ladder, path) -> None:
    counts = []
    learner_client("warm-up").get(path)  # the recommender's catalogue cache is filled once for everyone
    for learner_id, attempts in (("short", 3), ("long", 60)):
        _history(learner_id, attempts)
        client = learner_client(learner_id)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(path).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
