"""Writes to the learner model. Every graded attempt — from a session, `/v1/submissions` or a
study task — and every give-up goes through `attempt_record`, inside the transaction that
records the verdict, so the learner model never disagrees with the submissions table.

The mastery rule (also in the README):

* An attempt's **performance** p (0–100):
  - a pass scores 100 × hint factor × pace factor. The hint factor depends on the highest hint
    level the learner asked for on that problem: none 1.0, level 1 (a nudge) 0.85, level 2 (an
    approach) 0.65, level 3 (a near-solution) 0.45 — a pass after heavy hints counts for less
    than a clean pass. The pace factor is 0.85 when the problem took longer than expected for its
    difficulty (`CO_EXPECTED_MINUTES`), else 1.0;
  - a failed attempt scores partial credit, 25 × the fraction of tests passed (0 when unknown);
  - giving up scores 0.
* The **EMA** moves towards p by α: ema += α (p − ema), starting at 0. α is `CO_MASTERY_ALPHA`
  (0.35) weighted by difficulty d (1–5): passes on hard problems move it more
  (× (0.6 + 0.2 d)), misses on hard problems move it less (× (1.4 − 0.2 d)).
* The **score** is the EMA rounded to an integer 0–100.
* Every topic of the problem and every outcome of its module is updated the same way.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from co_project.errors import Conflict, NotFound
from co_project.prepared import Param, PreparedRead, PreparedUpdate
from co_project.telemetry import telemetry_emit
from personalization.models import (
    REVIEW_INTERVAL_DAYS,
    LearnerState,
    Mastery,
    MasteryKeyType,
    ReviewItem,
    ReviewLog,
    ReviewReason,
    ReviewState,
)
from personalization.recommendation import (
    RECENT_PROBLEMS,
    catalogue_load,
    learner_snapshot,
    recommend,
    recommend_track,
)
from personalization.scheduling import MemoryState, elapsed_days, is_fast, review_rating, review_scheduler
from tracks.problem_bank import DatabaseProblemBank, ProblemBundle
from tracks.selectors import track_id_for

logger = logging.getLogger("co.personalization")

HINT_FACTOR = {0: 1.0, 1: 0.85, 2: 0.65, 3: 0.45}
SLOW_PACE_FACTOR = 0.85
FAIL_PARTIAL_CREDIT = 25.0
HEAVY_HINT_LEVEL = 2


@dataclass(frozen=True)
class GradedAttempt:
    """One graded outcome on a problem: a pass, a failed attempt or a give-up."""

    learner_id: str
    problem_id: uuid.UUID
    passed: bool
    gave_up: bool = False
    tests_passed: int = 0
    tests_total: int = 0
    max_hint_level: int = 0
    seconds_taken: float | None = None
    at: datetime | None = None


def expected_seconds(difficulty: int) -> int:
    minutes = settings.CO_EXPECTED_MINUTES
    return 60 * minutes[max(0, min(difficulty, len(minutes)) - 1)]


def attempt_performance(attempt: GradedAttempt, difficulty: int) -> tuple[float, bool]:
    """(performance 0–100, was it slow) for one attempt — the mastery rule's first step."""
    slow = attempt.seconds_taken is not None and attempt.seconds_taken > expected_seconds(difficulty)
    if attempt.passed:
        performance = 100.0 * HINT_FACTOR[min(max(attempt.max_hint_level, 0), 3)]
        if slow:
            performance *= SLOW_PACE_FACTOR
        return performance, slow
    if attempt.gave_up or not attempt.tests_total:
        return 0.0, slow
    return FAIL_PARTIAL_CREDIT * attempt.tests_passed / attempt.tests_total, slow


def mastery_alpha(*, passed: bool, difficulty: int) -> float:
    d = max(1, min(difficulty, 5))
    weight = 0.6 + 0.2 * d if passed else 1.4 - 0.2 * d
    return settings.CO_MASTERY_ALPHA * weight


# The reads of every graded attempt, compiled once (co_project/prepared.py).
_LEARNER = Param("learner_id", LearnerState._meta.pk)
_PROBLEM = Param("problem_id", ReviewItem._meta.get_field("problem").target_field)
_state_locked = PreparedRead(
    LearnerState, lambda _: LearnerState.objects.select_for_update().filter(learner_id=_LEARNER).order_by()[:1]
)
_review_item = PreparedRead(
    ReviewItem, lambda _: ReviewItem.objects.filter(learner_id=_LEARNER, problem_id=_PROBLEM).order_by()[:1]
)
_mastery_rows = PreparedRead(
    Mastery,
    # shape: (how many key ids, the key types): the SQL has one placeholder per value.
    lambda shape: (
        Mastery.objects.filter(
            learner_id=_LEARNER,
            key_id__in=[Param(f"key_id_{i}", Mastery._meta.get_field("key_id")) for i in range(shape[0])],
            key_type__in=list(shape[1]),
        )
        .order_by()
        .values_list("key_type", "key_id", "ema", "score", "attempts")
    ),
)

# What an attempt changes in the learner's state row (`save(update_fields=...)`, compiled once).
_STATE_CHANGES = ("level", "fail_streak", "fail_streak_difficulty", "attempts", "progress", "recent", "updated_at")
_state_write = PreparedUpdate(
    LearnerState,
    lambda _: (
        LearnerState.objects.filter(learner_id=_LEARNER),
        {name: Param(name, LearnerState._meta.get_field(name)) for name in _STATE_CHANGES},
    ),
)


def _locked_state(learner_id: str) -> LearnerState:
    """The learner's state row, locked: per-learner updates of the model are serialized here."""
    state = _state_locked.instance(learner_id=learner_id)
    if state is None:  # first attempt ever (a concurrent first attempt makes get_or_create find it)
        LearnerState.objects.get_or_create(learner_id=learner_id)
        state = LearnerState.objects.select_for_update().get(learner_id=learner_id)
    return state


def _update_mastery(*, learner_id: str, keys: list[tuple[str, str]], performance: float, alpha: float) -> dict[str, Any]:
    """One read and one upsert for all keys. The new values are absolute, computed from rows read
    under the learner's state lock, so no other update of this learner can interleave."""
    key_ids = list(dict.fromkeys(key_id for _, key_id in keys))
    shape = (len(key_ids), tuple(sorted({t for t, _ in keys})))
    values = {f"key_id_{i}": key_id for i, key_id in enumerate(key_ids)}
    rows = _mastery_rows.rows(shape, learner_id=learner_id, **values) if key_ids else []
    current = {(key_type, key_id): (ema, score, attempts) for key_type, key_id, ema, score, attempts in rows}
    rows: list[Mastery] = []
    deltas: dict[str, Any] = {}
    for key in keys:
        ema, before, attempts = current.get(key, (0.0, 0, 0))
        ema += alpha * (performance - ema)
        score = max(0, min(100, round(ema)))
        rows.append(Mastery(learner_id=learner_id, key_type=key[0], key_id=key[1], ema=ema, score=score, attempts=attempts + 1))
        deltas[f"{key[0]}:{key[1]}"] = {"before": before, "after": score}
    if rows:
        # INSERT … ON CONFLICT DO UPDATE: new and existing rows in one statement (bulk_update's
        # CASE WHEN per column costs more to build than the few rows it writes).
        Mastery.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["learner_id", "key_type", "key_id"],
            update_fields=["ema", "score", "attempts", "updated_at"],
        )
    return deltas


def _review_restart(reason: str, now: datetime) -> dict[str, Any]:
    """A review item (re)started at bucket 0, due in a day: a mock-interview gap."""
    return {
        "reason": reason,
        "bucket": 0,
        "next_due_at": now + timedelta(days=REVIEW_INTERVAL_DAYS[0]),
        "retired_at": None,
        "surfaced_at": None,
    }


def _memory(item: ReviewItem) -> MemoryState:
    return MemoryState(
        bucket=item.bucket,
        next_due_at=item.next_due_at,
        last_reviewed_at=item.last_reviewed_at,
        stability=item.stability,
        difficulty=item.difficulty,
    )


def _review_after(*, attempt: GradedAttempt, slow: bool, difficulty: int, now: datetime) -> dict[str, Any] | None:
    """Apply the review-queue rules for one attempt and log it as a review of its item; returns
    the item's new state (or None). A graded attempt on a problem in the queue is a review of it
    (whichever front door it came through); so is the attempt that puts it in the queue (a miss,
    a slow or hint-heavy pass). The configured scheduler (personalization.scheduling) says when
    it comes due next and what recall it predicted. Runs under the learner's state lock."""
    scheduler = review_scheduler()
    heavy = attempt.max_hint_level >= HEAVY_HINT_LEVEL
    fast = is_fast(
        seconds_taken=attempt.seconds_taken, expected_seconds=expected_seconds(difficulty), max_hint_level=attempt.max_hint_level
    )
    rating = review_rating(passed=attempt.passed, heavy_hints=heavy, slow=slow, fast=fast)
    item = _review_item.instance(learner_id=attempt.learner_id, problem_id=attempt.problem_id)
    active = item is not None and item.retired_at is None
    if active:
        memory: MemoryState | None = _memory(item)
        action = "reset" if not attempt.passed else "promoted"
        reason = ReviewReason.FAIL if not attempt.passed else item.reason
    else:
        # A new item, or a retired one starting over: the scheduler sees a new card.
        memory = None
        if not attempt.passed:
            reason = ReviewReason.FAIL
        elif heavy:
            reason = ReviewReason.HEAVY_HINT
        elif slow:
            reason = ReviewReason.SLOW
        else:
            return None
        action = "reset" if not attempt.passed else "added"
    scheduled = scheduler.review(memory, rating, now)
    if item is None:
        item = ReviewItem(learner_id=attempt.learner_id, problem_id=attempt.problem_id)
    item.reason = reason
    item.last_reviewed_at = now
    item.scheduler = scheduler.name
    if scheduled.retire:
        item.retired_at = now
        item.save()
        action = "retired"
    else:
        item.bucket = scheduled.bucket
        item.next_due_at = scheduled.next_due_at
        item.stability = scheduled.stability
        item.difficulty = scheduled.difficulty
        item.retired_at = None
        item.surfaced_at = None
        item.save()
    ReviewLog.objects.create(
        learner_id=attempt.learner_id,
        review_item=item,
        reviewed_at=now,
        rating=rating,
        state=ReviewState.REVIEW if memory is not None else ReviewState.NEW,
        duration_ms=None if attempt.seconds_taken is None else min(int(attempt.seconds_taken * 1000), 2**31 - 1),
        predicted_recall=None if memory is None else scheduler.predicted_recall(memory, now),
        elapsed_days=elapsed_days(memory, now),
        scheduler=scheduler.name,
    )
    result: dict[str, Any] = {"action": action, "bucket": item.bucket, "rating": int(rating)}
    if action == "added":
        result["reason"] = reason
    if action != "retired":
        result["next_due_at"] = item.next_due_at
    return result


@dataclass(frozen=True)
class ProblemFacts:
    """What the learner model weighs about a problem: its difficulty, topics and module outcomes."""

    difficulty: int
    topics: tuple[str, ...]
    outcomes: tuple[str, ...]

    @classmethod
    def of(cls, bundle: ProblemBundle) -> ProblemFacts:
        return cls(bundle.difficulty, tuple(bundle.topics), tuple((bundle.module or {}).get("outcomes") or ()))


def problem_facts(*, problem_id: uuid.UUID) -> ProblemFacts:
    """From the memoized bundle (retired problems too: history keeps pointing at them)."""
    bundle = DatabaseProblemBank().get(str(problem_id), include_retired=True)
    if bundle is None:
        raise NotFound(f"No problem {problem_id}.")
    return ProblemFacts.of(bundle)


def attempt_record(*, attempt: GradedAttempt, problem: ProblemFacts | None = None) -> dict[str, Any]:
    """Update mastery, the review queue, progress and level/streak for one graded outcome.

    Call it inside the transaction that records the verdict (or the give-up). A caller that
    already holds the problem's bundle (the grader) passes its facts; else they are looked up.
    """
    now = attempt.at or timezone.now()
    facts = problem or problem_facts(problem_id=attempt.problem_id)
    difficulty = facts.difficulty
    performance, slow = attempt_performance(attempt, difficulty)
    keys = [(MasteryKeyType.TOPIC.value, slug) for slug in facts.topics]
    keys += [(MasteryKeyType.OUTCOME.value, str(outcome)[:100]) for outcome in facts.outcomes]
    outcome = "passed" if attempt.passed else ("gave_up" if attempt.gave_up else "failed")
    # Joins the caller's transaction (the verdict's) without a savepoint; standalone, it is one.
    with transaction.atomic(savepoint=False):
        state = _locked_state(attempt.learner_id)
        mastery = _update_mastery(
            learner_id=attempt.learner_id,
            keys=list(dict.fromkeys(keys)),
            performance=performance,
            alpha=mastery_alpha(passed=attempt.passed, difficulty=difficulty),
        )
        review = _review_after(attempt=attempt, slow=slow, difficulty=difficulty, now=now)
        key = str(attempt.problem_id)
        tried, solved = state.progress.get(key, (0, 0))
        state.progress[key] = [tried + 1, solved + int(attempt.passed)]
        state.recent = [key, *(k for k in state.recent if k != key)][:RECENT_PROBLEMS]
        if attempt.passed:
            state.fail_streak = 0
            if attempt.max_hint_level < HEAVY_HINT_LEVEL and difficulty > state.level:
                state.level = min(difficulty, state.level + 1)
        else:
            state.fail_streak += 1
            state.fail_streak_difficulty = difficulty
        state.attempts += 1
        state.updated_at = timezone.now()
        _state_write.run(**{name: getattr(state, name) for name in ("learner_id", *_STATE_CHANGES)})
    logger.info(
        "learner model updated",
        extra={"learner_id": attempt.learner_id, "problem_id": str(attempt.problem_id), "outcome": outcome},
    )
    return {
        "outcome": outcome,
        "performance": round(performance, 1),
        "slow": slow,
        "mastery": mastery,
        "review": review,
        "level": state.level,
        "fail_streak": state.fail_streak,
    }


def review_record_mock_gap(*, learner_id: str, problem_id: uuid.UUID, at: datetime | None = None) -> None:
    """A problem not solved in a mock interview enters the queue (bucket 0, due in a day)."""
    now = at or timezone.now()
    ReviewItem.objects.update_or_create(
        learner_id=learner_id,
        problem_id=problem_id,
        defaults=_review_restart(ReviewReason.MOCK_GAP, now),
    )


def review_surface_due(*, now: datetime | None = None) -> int:
    """Mark review items that have come due since they were last surfaced; returns how many.

    Run by Celery beat (`personalization.surface_due_reviews`) and `manage.py surface_due_reviews`.
    Surfaced items are what `GET /v1/review-queue` lists as due and what the recommender injects.
    """
    now = now or timezone.now()
    due = ReviewItem.objects.filter(
        Q(surfaced_at__isnull=True) | Q(surfaced_at__lt=F("next_due_at")), retired_at__isnull=True, next_due_at__lte=now
    )
    surfaced = due.update(surfaced_at=now)
    if surfaced:
        logger.info("review items surfaced", extra={"count": surfaced})
    return surfaced


class TrackMastered(Conflict):
    code = "track_mastered"


def track_mastered_message(*, track_ref: str) -> str:
    return (
        f"Every topic of track '{track_ref}' is mastered (score ≥ {settings.CO_MASTERY_THRESHOLD}/100 in "
        "GET /v1/mastery): there is nothing left to practise on this track. Pick another track, or "
        "practise any of its problems in a practice session."
    )


def recommendation_next(*, learner_id: str, track_ref: str | None = None, subject: str | None = None) -> dict[str, Any]:
    """The next problem for the learner, explained; emits `recommendation_served`. On a track it
    is the track session's pick; a mastered track is a 409 `track_mastered` that says so."""
    track_id = track_id_for(reference=track_ref) if track_ref else None
    now = timezone.now()
    catalogue = catalogue_load(track_id=track_id, subject=subject)
    snapshot = learner_snapshot(learner_id=learner_id)
    if track_ref and catalogue:
        pick = recommend_track(catalogue=catalogue, snapshot=snapshot, now=now)
        if pick is None:
            raise TrackMastered(track_mastered_message(track_ref=track_ref))
    else:
        pick = recommend(catalogue=catalogue, snapshot=snapshot, now=now)
    if pick is None:
        raise NotFound("There is nothing to recommend here yet: no published problems.")
    result = pick.as_dict()
    telemetry_emit(
        event="recommendation_served",
        user_id=learner_id,
        problem_id=pick.problem.slug,
        attrs={"kind": pick.kind, "score": pick.score, "track": track_ref or "", "subject": subject or ""},
        ts=now,
    )
    return result
