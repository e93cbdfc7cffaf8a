"""Track sessions until mastery, through the HTTP API under time control: simulated learners with a
latent skill per topic (bench/learning_efficacy.py in small) and the recommender's guardrails —
no `409 nothing_to_practise` while a topic is not mastered, a true message once all are, no jump
above +1 from the previous problem, no problem three times in a row, every topic practised (a
single-problem one too), reviews served when due, first problems that follow the learner's
profile, harder work before a deeper step down, and a pacing term that scores every problem within
±1 of the level."""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from personalization.models import LearnerState, Mastery
from personalization.recommendation import LearnerSnapshot, score_candidate
from personalization.services import GradedAttempt, attempt_record, review_surface_due
from tests.personalization.factories import LADDER, SimulatedLearner, publish_ladder
from tracks.models import Problem
from tracks.selectors import CatalogueEntry

pytestmark = pytest.mark.django_db(transaction=True)

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
TOPICS = sorted({t for _, _, topics in LADDER.values() for t in topics})


@pytest.fixture
def ladder(settings) -> None:
    settings.CO_RATE_LIMIT = "100000/min"  # long walks: more requests than a minute's default allowance
    publish_ladder()


def learner(learner_client, fake_grader, name: str) -> SimulatedLearner:
    return SimulatedLearner(learner_client(name, ttl=90 * 86400), fake_grader, name)


def level_of(learner_id: str) -> int:
    return LearnerState.objects.filter(learner_id=learner_id).values_list("level", flat=True).first() or 1


def history(learner_id: str, passes: list[str]) -> None:
    """Clean passes recorded by the service the verdicts use (a learner's earlier practice)."""
    ids = dict(Problem.objects.filter(module__track__slug="ladder").values_list("slug", "id"))
    for slug in passes:
        attempt_record(attempt=GradedAttempt(learner_id=learner_id, problem_id=ids[slug], passed=True, at=START))


@dataclass
class Walk:
    served: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    attempts: int = 0
    mastered: bool = False


def walk_track(sim: SimulatedLearner, skill: dict[str, float], *, seed: int, cap: int, clock) -> Walk:
    """Study the ladder in track sessions: pass or fail as the latent skill decides, at most two
    tries per problem, a day passes every ten attempts (due reviews surface)."""
    rng = random.Random(seed)
    walk = Walk()
    sim.start(mode="track", track_id="ladder")
    while walk.attempts < cap:
        if sim.session["status"] != "active":
            walk.mastered = sim.session["report"]["ended_by"] == "track_mastered"
            return walk
        slug = sim.current["slug"]
        _, difficulty, topics = LADDER[slug]
        assert difficulty <= level_of(sim.learner_id) + 1, f"{slug} above level {level_of(sim.learner_id)} + 1"
        if walk.served:
            assert difficulty <= LADDER[walk.served[-1]][1] + 1, f"jump {walk.served[-1]} → {slug}"
        assert walk.served[-2:] != [slug, slug], f"{slug} a third time in a row"
        walk.served.append(slug)
        walk.kinds.append(sim.session["problems"][-1]["recommendation"]["kind"])
        for _ in range(2):
            mean = sum(skill[t] for t in topics) / len(topics)
            passed = rng.random() < 1 / (1 + math.exp(-1.6 * (mean - difficulty + 0.5)))
            for topic in topics:
                skill[topic] += 0.25 if passed else 0.12
            sim.submit(passed=passed)
            walk.attempts += 1
            if walk.attempts % 10 == 0:
                clock.shift(timedelta(days=1))
                review_surface_due()
            if passed:
                break
        sim.act("advance")
    return walk


@pytest.mark.parametrize(
    ("name", "skill", "cap", "must_master"),
    [
        ("strong", dict.fromkeys(TOPICS, 4.0), 80, True),
        ("weak", dict.fromkeys(TOPICS, 1.2), 60, False),
        ("weak-on-a-few", {t: 0.5 if t in ("graphs", "dp") else 3.0 for t in TOPICS}, 60, False),
    ],
)
def test_simulated_learners_keep_the_guardrails_until_the_track_is_mastered(
    learner_client, fake_grader, ladder, name, skill, cap, must_master
) -> None:
    with time_machine.travel(START, tick=False) as clock:
        sim = learner(learner_client, fake_grader, name)
        walk = walk_track(sim, dict(skill), seed=7, cap=cap, clock=clock)
        scores = dict(Mastery.objects.filter(learner_id=name, key_type="topic").values_list("key_id", "score"))
        assert set(scores) == set(TOPICS)  # every topic practised, dp (one problem) too
        if walk.mastered:
            assert min(scores.values()) >= 80
        else:
            # Not done yet: the session is still active and offers the next problem; no 409.
            assert min(scores.values()) < 80
            assert sim.session["status"] == "active" and sim.current is not None
            again = sim.client.post("/v1/sessions", {"subject": "coding", "mode": "track", "track_id": "ladder"}, format="json")
            assert again.status_code == 201, again.json()
        assert walk.mastered or not must_master
        assert "practice" in walk.kinds  # solved problems come back while their topics are not mastered
        if name == "weak":
            assert "review" in walk.kinds  # missed problems come back once due


def test_solving_every_problem_once_does_not_end_practice(learner_client, fake_grader, ladder) -> None:
    """What the old recommender did: once each problem was solved, `409 nothing_to_practise`."""
    alice = learner(learner_client, fake_grader, "alice")
    history("alice", list(LADDER))  # every problem solved once, mastery still low
    body = alice.start(mode="track", track_id="ladder")
    recommendation = body["problems"][0]["recommendation"]
    assert recommendation["kind"] == "practice"
    assert recommendation["reasons"][0].startswith("Topics not mastered yet (mastered at 80/100): ")
    assert not [r for r in recommendation["reasons"] + recommendation["guardrails"] if "unlock" in r]


def test_first_problems_follow_the_learners_profile(learner_client, fake_grader, ladder) -> None:
    """A fresh learner starts on the first module; one who has mastered its topics starts on the
    next module, at their level."""
    fresh = learner(learner_client, fake_grader, "fresh")
    practised = learner(learner_client, fake_grader, "practised")
    history("practised", ["a1", "a2", "a3", "a4", "b2"] * 4)  # arrays, strings, hashing ≥ 80; level 3
    first_fresh = fresh.start(mode="track", track_id="ladder")["current_problem"]["slug"]
    first_practised = practised.start(mode="track", track_id="ladder")["current_problem"]["slug"]
    assert LADDER[first_fresh][0] == "m1" and LADDER[first_fresh][1] <= 2
    assert LADDER[first_practised][0] == "m2" and 2 <= LADDER[first_practised][1] <= 4
    assert first_practised != first_fresh


def test_no_jump_above_one_step_from_the_previous_problem(learner_client, fake_grader, ladder) -> None:
    """At level 4 after a difficulty-1 problem, the next one is at most difficulty 2, and says why."""
    bob = learner(learner_client, fake_grader, "bob")
    history("bob", ["a3", "b2", "b4"])  # level 4; strings not practised yet (only a2 and a4 carry it)
    assert level_of("bob") == 4
    bob.start(mode="practice", problem_id="a2")
    bob.submit(passed=True)
    body = bob.client.get("/v1/recommendations/next?track=ladder").json()
    assert body["problem"]["difficulty"] <= 2
    assert "At most one step above the previous problem (a2, difficulty 1)." in body["guardrails"]


def test_harder_work_comes_before_a_deeper_step_down(learner_client, fake_grader, ladder) -> None:
    """Strings (only a2, a4: difficulty 1–2, the first module) and graphs (b4, c2: difficulty 4)
    left to master, b4 just passed: c2 comes first, since from a1 or a2 the way back up to graphs
    would cost attempts on topics already mastered; strings once graphs is mastered."""
    carol = learner(learner_client, fake_grader, "carol")
    history("carol", ["a1", "a2", "a3", "a4", "b1", *["b2"] * 3, *["b3"] * 3, "c1", "c1", "c2", "c3", "c3", "b4"])
    scores = dict(Mastery.objects.filter(learner_id="carol", key_type="topic").values_list("key_id", "score"))
    assert {t for t, score in scores.items() if score < 80} == {"strings", "graphs"}
    body = carol.client.get("/v1/recommendations/next?track=ladder").json()
    assert (body["problem"]["slug"], body["kind"]) == ("c2", "practice")
    assert body["reasons"][1].startswith("Harder work first while you are at this difficulty")
    history("carol", ["c2", "c2"])  # graphs mastered
    body = carol.client.get("/v1/recommendations/next?track=ladder").json()
    assert body["problem"]["slug"] in {"a2", "a4"}


def test_pacing_scores_every_problem_within_one_level() -> None:
    """Pacing: 1 at the level, 2/3 one step away either side; below that it fades out."""
    snapshot = LearnerSnapshot(level=4)
    weights = {"weakness": 0.0, "novelty": 0.0, "pacing": 1.0, "diversity": 0.0}

    def pacing(difficulty: int) -> float:
        entry = CatalogueEntry(
            id=uuid.uuid4(), slug=f"d{difficulty}", title="", subject="coding", difficulty=difficulty,
            module_id=uuid.uuid4(), module_position=0, position=0, track_id=uuid.uuid4(), track_slug="t", topics=("x",),
        )  # fmt: skip
        return score_candidate(entry, snapshot, set(), weights)[1]["pacing"]["value"]

    assert [pacing(d) for d in (1, 2, 3, 4, 5)] == [0.0, 0.333, 0.667, 1.0, 0.667]
