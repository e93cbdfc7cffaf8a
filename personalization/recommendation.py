"""Next-problem recommendation (seeds/001 §D) with its guardrails, explained.

score(c) = w_weakness × weakness + w_novelty × novelty + w_pacing × pacing + w_diversity × diversity

* weakness  — 1 − the learner's mean mastery (0–1) over the candidate's topics (unknown topic: 0);
* novelty   — 1 never attempted, 0.5 attempted but not yet passed, 0 already passed;
* pacing    — 1 − |difficulty − target| / 3 (≥ 0). The target is the learner's level with no
              recent miss, level − 0.5 after one miss, level − 1 after two: problems within ±1 of
              the level all score, the level itself best, so practice does not drift to the top;
* diversity — 0 for one of the last three problems attempted (recency), else 1 − the share of
              the candidate's topics seen in them.

Weights come from `CO_RECOMMENDATION_WEIGHTS`. Guardrails, applied before scoring:

1. difficulty is never more than +1 above the learner's level, nor more than +1 above the
   previous problem's (no jump from 2 to 4);
2. after two consecutive misses at difficulty d, nothing at d or above is served (never a third
   consecutive failure at the same level): the recommender steps down, or serves a review item,
   and says so. Only when no easier problem exists at all does it serve the easiest one left;
3. due review items are injected: the most overdue one that fits the guardrails is served first
   (after two misses that is the "review instead" of stepping down);
4. the problem just served is not served again next while anything else fits.

A track (`recommend_track`, track sessions and `?track=`) is done when every one of its topics is
mastered (score ≥ `CO_MASTERY_THRESHOLD`): until then the candidates are the problems that carry a
topic not mastered yet, solved or not (a solved one comes back as practice), in the first module
(by position) that still has such a topic — so a topic with a single problem gets practised too.
Easy problems come last: one at most one step below the previous problem goes first (in that
module, else a solved one elsewhere), because a deeper step down has to be climbed back one step
at a time, on problems whose topics may be mastered already.

Everything the recommender reads is bounded by the catalogue (mastery per topic, progress per
problem, review items), so its cost and query count do not grow with the learner's history.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import models
from django.utils import timezone

from personalization.models import LearnerState, Mastery, MasteryKeyType, ReviewItem
from tracks.selectors import CatalogueEntry, catalogue_entries, catalogue_version

TERMS = ("weakness", "novelty", "pacing", "diversity")


class RecommendationKind(models.TextChoices):
    NEW = "new", "A problem not solved yet"
    REVIEW = "review", "From the review queue"
    PRACTICE = "practice", "Practice of a solved problem"


STREAK_LIMIT = 2
RECENT_PROBLEMS = 3


@dataclass
class LearnerSnapshot:
    level: int = 1
    fail_streak: int = 0
    fail_streak_difficulty: int = 0
    mastery: dict[str, int] = field(default_factory=dict)
    progress: dict[uuid.UUID, tuple[int, int]] = field(default_factory=dict)  # attempts, passes
    recent: list[uuid.UUID] = field(default_factory=list)  # the last problems attempted, newest first
    reviews: dict[uuid.UUID, tuple[datetime, int, str]] = field(default_factory=dict)  # due ones: due, bucket, reason
    review_item_ids: dict[uuid.UUID, int] = field(default_factory=dict)  # due ones: the review item's id
    due_count: int = 0


@dataclass
class Recommendation:
    problem: CatalogueEntry
    kind: str  # new | review | practice
    score: float
    terms: dict[str, dict[str, float]]
    reasons: list[str]
    guardrails: list[str]
    learner: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        p = self.problem
        return {
            "problem": {
                "id": str(p.id),
                "slug": p.slug,
                "title": p.title,
                "subject": p.subject,
                "difficulty": p.difficulty,
                "topics": list(p.topics),
                "track": p.track_slug,
            },
            "kind": self.kind,
            "score": self.score,
            "terms": self.terms,
            "reasons": self.reasons,
            "guardrails": self.guardrails,
            "learner": self.learner,
        }


# --- loading -------------------------------------------------------------------------------------


CATALOGUE_CACHE_SECONDS = 300


def catalogue_load(*, track_id: uuid.UUID | None = None, subject: str | None = None) -> list[CatalogueEntry]:
    """Published problems of published tracks with their topics, cached per catalogue version
    (two queries on a miss, none on a hit)."""
    key = f"co:catalogue:{catalogue_version()}:{track_id or '-'}:{subject or '-'}"
    entries = _process_catalogues.get(key)
    if entries is not None and entries[0] > time.monotonic():
        return entries[1]
    catalogue = cache.get(key)
    if catalogue is None:
        catalogue = catalogue_entries(track_id=track_id, subject=subject)
        cache.set(key, catalogue, timeout=CATALOGUE_CACHE_SECONDS)
    if len(_process_catalogues) >= 64:
        _process_catalogues.clear()
    _process_catalogues[key] = (time.monotonic() + CATALOGUE_CACHE_SECONDS, catalogue)
    return catalogue


# This process's copies (unpickling 1,000 entries from the shared cache costs more than scoring them).
_process_catalogues: dict[str, tuple[float, list[CatalogueEntry]]] = {}


DUE_REVIEWS_LOADED = 100


def learner_snapshot(*, learner_id: str) -> LearnerSnapshot:
    """The learner's state (level, streak, progress), topic mastery and the most overdue due
    reviews: three queries (four when more than DUE_REVIEWS_LOADED are due)."""
    snapshot = LearnerSnapshot()
    now = timezone.now()
    state = LearnerState.objects.filter(learner_id=learner_id).first()
    if state is not None:
        snapshot.level = max(1, state.level)
        snapshot.fail_streak = state.fail_streak
        snapshot.fail_streak_difficulty = state.fail_streak_difficulty
        snapshot.progress = {uuid.UUID(key): (tried, solved) for key, (tried, solved) in state.progress.items()}
        snapshot.recent = [uuid.UUID(key) for key in state.recent]
    snapshot.mastery = dict(
        Mastery.objects.filter(learner_id=learner_id, key_type=MasteryKeyType.TOPIC).values_list("key_id", "score")
    )
    due = ReviewItem.objects.filter(learner_id=learner_id, retired_at__isnull=True, next_due_at__lte=now)
    rows = due.order_by("next_due_at").values_list("problem_id", "next_due_at", "bucket", "reason", "id")[:DUE_REVIEWS_LOADED]
    snapshot.reviews = {problem_id: (due_at, bucket, reason) for problem_id, due_at, bucket, reason, _ in rows}
    snapshot.review_item_ids = {problem_id: item_id for problem_id, *_, item_id in rows}
    snapshot.due_count = len(snapshot.reviews) if len(snapshot.reviews) < DUE_REVIEWS_LOADED else due.count()
    return snapshot


# --- scoring -------------------------------------------------------------------------------------

PACING_WIDTH = 3.0


def _recent_topics(snapshot: LearnerSnapshot, by_id: dict[uuid.UUID, CatalogueEntry]) -> tuple[set[str], list[str]]:
    topics: set[str] = set()
    slugs = []
    for problem_id in snapshot.recent:
        entry = by_id.get(problem_id)
        if entry is not None:
            topics.update(entry.topics)
            slugs.append(entry.slug)
    return topics, slugs


def pacing_target(snapshot: LearnerSnapshot) -> float:
    if snapshot.fail_streak >= STREAK_LIMIT:
        return max(1.0, snapshot.level - 1.0)
    if snapshot.fail_streak == 1:
        return max(1.0, snapshot.level - 0.5)
    return float(snapshot.level)


def score_candidate(
    entry: CatalogueEntry, snapshot: LearnerSnapshot, recent_topics: set[str], weights: dict[str, float]
) -> tuple[float, dict[str, dict[str, float]]]:
    levels = [snapshot.mastery.get(topic, 0) for topic in entry.topics] or [0]
    weakness = 1.0 - sum(levels) / len(levels) / 100.0
    attempts, passes = snapshot.progress.get(entry.id, (0, 0))
    novelty = 1.0 if not attempts else (0.0 if passes else 0.5)
    pacing = max(0.0, 1.0 - abs(entry.difficulty - pacing_target(snapshot)) / PACING_WIDTH)
    if entry.id in snapshot.recent:
        diversity = 0.0
    else:
        overlap = len(set(entry.topics) & recent_topics) / len(entry.topics) if entry.topics else 0.0
        diversity = 1.0 - overlap
    values = {"weakness": weakness, "novelty": novelty, "pacing": pacing, "diversity": diversity}
    terms = {
        name: {"value": round(values[name], 3), "weight": weights[name], "contribution": round(weights[name] * values[name], 4)}
        for name in TERMS
    }
    return round(sum(t["contribution"] for t in terms.values()), 4), terms


def _reasons(
    entry: CatalogueEntry, terms: dict[str, dict[str, float]], snapshot: LearnerSnapshot, recent: list[str]
) -> list[str]:
    reasons = []
    weak = sorted(entry.topics, key=lambda topic: snapshot.mastery.get(topic, 0))
    if weak:
        described = ", ".join(
            f"{topic} ({snapshot.mastery[topic]}/100)" if topic in snapshot.mastery else f"{topic} (not practised yet)"
            for topic in weak[:2]
        )
        reasons.append(f"Works on your weaker topics: {described}.")
    novelty = terms["novelty"]["value"]
    if novelty == 1.0:
        reasons.append("You have not tried this problem yet.")
    elif novelty == 0.5:
        reasons.append("You have tried this problem but not solved it yet.")
    else:
        reasons.append("You solved this before; it is here for practice.")
    reasons.append(
        f"Difficulty {entry.difficulty} fits your level {snapshot.level}"
        + (" (a step up)." if entry.difficulty > snapshot.level else ".")
    )
    if recent and terms["diversity"]["value"] == 1.0:
        reasons.append("Its topics differ from your last problems (" + ", ".join(recent) + ").")
    return reasons


class _Picker:
    """What both recommenders share: weights, the guardrails' limits, scoring and explaining."""

    def __init__(self, catalogue: list[CatalogueEntry], snapshot: LearnerSnapshot, previous: CatalogueEntry | None) -> None:
        self.snapshot = snapshot
        self.weights = {name: float(settings.CO_RECOMMENDATION_WEIGHTS[name]) for name in TERMS}
        self.by_id = {entry.id: entry for entry in catalogue}
        if previous is None and snapshot.recent:
            previous = self.by_id.get(snapshot.recent[0])
        self.previous = previous
        self.recent_topics, self.recent_slugs = _recent_topics(snapshot, self.by_id)
        self.learner = {"level": snapshot.level, "fail_streak": snapshot.fail_streak, "due_reviews": snapshot.due_count}
        self.ceiling = snapshot.level + 1
        self.guardrails: list[str] = []
        if previous is not None and previous.difficulty + 1 < self.ceiling:
            self.ceiling = previous.difficulty + 1
            self.guardrails.append(
                f"At most one step above the previous problem ({previous.slug}, difficulty {previous.difficulty})."
            )
        self.streak_cap: int | None = None
        if snapshot.fail_streak >= STREAK_LIMIT and snapshot.fail_streak_difficulty:
            self.streak_cap = snapshot.fail_streak_difficulty - 1
            self.guardrails.append(
                f"{snapshot.fail_streak} misses in a row at difficulty {snapshot.fail_streak_difficulty}: "
                f"stepping down to difficulty ≤ {max(self.streak_cap, 0)}."
            )

    def fits(self, entry: CatalogueEntry, exclude: set[uuid.UUID] | frozenset[uuid.UUID]) -> bool:
        return (
            entry.id not in exclude
            and entry.difficulty <= self.ceiling
            and (self.streak_cap is None or entry.difficulty <= self.streak_cap)
        )

    def solved(self, entry: CatalogueEntry) -> bool:
        return bool(self.snapshot.progress.get(entry.id, (0, 0))[1])

    def kind(self, entry: CatalogueEntry) -> str:
        return RecommendationKind.PRACTICE if self.solved(entry) else RecommendationKind.NEW

    def best(self, entries: Iterable[CatalogueEntry]) -> CatalogueEntry | None:
        scored = [(score_candidate(e, self.snapshot, self.recent_topics, self.weights)[0], e) for e in entries]
        if not scored:
            return None
        return max(scored, key=lambda pair: (pair[0], -pair[1].difficulty, pair[1].slug))[1]

    def build(self, entry: CatalogueEntry, kind: str, extra: list[str], rails: list[str] | None = None) -> Recommendation:
        score, terms = score_candidate(entry, self.snapshot, self.recent_topics, self.weights)
        return Recommendation(
            problem=entry,
            kind=kind,
            score=score,
            terms=terms,
            reasons=extra + _reasons(entry, terms, self.snapshot, self.recent_slugs),
            guardrails=[*self.guardrails, *(rails or [])],
            learner=self.learner,
        )

    def due_review(self, now: datetime, exclude: set[uuid.UUID] | frozenset[uuid.UUID]) -> Recommendation | None:
        reviews = [
            (self.by_id[pid], due, bucket, reason)
            for pid, (due, bucket, reason) in self.snapshot.reviews.items()
            if pid in self.by_id and due <= now and self.fits(self.by_id[pid], exclude)
        ]
        if not reviews:
            return None
        entry, due_at, bucket, reason = min(reviews, key=lambda r: (r[1], r[0].slug))
        return self.build(
            entry,
            RecommendationKind.REVIEW,
            [f"A review is due (since {due_at:%Y-%m-%d %H:%M} UTC, reason {reason}, bucket {bucket})."],
            ["Due reviews are served before new problems."],
        )

    def easiest(self, entries: list[CatalogueEntry], why: str) -> Recommendation | None:
        """Nothing fits the guardrails: the easiest candidate, and the guardrail says so."""
        if not entries:
            return None
        lowest = min(e.difficulty for e in entries)
        choice = self.best(e for e in entries if e.difficulty == lowest)
        assert choice is not None
        return self.build(choice, self.kind(choice), [], [f"{why}; serving the easiest one left (difficulty {lowest})."])


def recommend(
    *,
    catalogue: list[CatalogueEntry],
    snapshot: LearnerSnapshot,
    now: datetime,
    exclude: set[uuid.UUID] | frozenset[uuid.UUID] = frozenset(),
    inject_reviews: bool = True,
    previous: CatalogueEntry | None = None,
) -> Recommendation | None:
    """Pick the next problem of a subject (practice sessions, mocks, `/v1/recommendations/next`):
    a due review, else the best unsolved problem, else practice of a solved one. `previous` is the
    problem served before (default: the last one attempted)."""
    picker = _Picker(catalogue, snapshot, previous)
    if inject_reviews:
        review = picker.due_review(now, exclude)
        if review is not None:
            return review
    unsolved = [e for e in catalogue if not picker.solved(e) and e.id not in exclude]
    choice = picker.best(e for e in unsolved if picker.fits(e, exclude))
    if choice is not None:
        return picker.build(choice, RecommendationKind.NEW, [])
    if picker.streak_cap is not None:
        easier = picker.best(e for e in catalogue if picker.fits(e, exclude))
        if easier is not None:
            return picker.build(easier, picker.kind(easier), ["Stepping down to an easier problem."])
    practice = picker.best(e for e in catalogue if picker.fits(e, exclude) and picker.solved(e))
    if practice is not None:
        return picker.build(
            practice,
            RecommendationKind.PRACTICE,
            ["Practice at your level keeps your mastery up."],
            [f"Every unsolved problem is above difficulty {picker.ceiling}: practising a solved one."],
        )
    left = unsolved or [e for e in catalogue if e.id not in exclude]
    return picker.easiest(left, f"Nothing at or below difficulty {picker.ceiling}")


def topics_to_master(catalogue: list[CatalogueEntry], snapshot: LearnerSnapshot) -> set[str]:
    """The catalogue's topics whose mastery is below `CO_MASTERY_THRESHOLD`."""
    threshold = settings.CO_MASTERY_THRESHOLD
    return {topic for entry in catalogue for topic in entry.topics if snapshot.mastery.get(topic, 0) < threshold}


def recommend_track(
    *,
    catalogue: list[CatalogueEntry],
    snapshot: LearnerSnapshot,
    now: datetime,
    previous: CatalogueEntry | None = None,
    in_a_row: int = 1,
) -> Recommendation | None:
    """Pick the next problem of a track, or None once every topic of the track is mastered.

    A due review first; else the best problem carrying a topic to master (solved ones come back as
    practice) within one step below the previous problem, in the first module that still has a
    topic to master, else a solved one elsewhere; else such a problem further down in that module;
    else elsewhere in the track; else a step up towards them (the hardest problem the guardrails
    allow). The previous problem (served `in_a_row` times in a row) comes straight back only when
    it is the one problem left that carries a topic to master, and never a third time in a row."""
    open_topics = topics_to_master(catalogue, snapshot)
    if not open_topics:
        return None
    picker = _Picker(catalogue, snapshot, previous)
    working = [e for e in catalogue if open_topics & set(e.topics)]
    avoid = {picker.previous.id} if picker.previous is not None and len(catalogue) > 1 else set()
    pick = _track_pick(picker, working, open_topics, now, avoid)
    # Again only when nothing else carries a topic to master: else the step up leads towards it.
    only_one_left = all(e.id in avoid for e in working)
    if avoid and in_a_row < MAX_IN_A_ROW and only_one_left and (pick is None or not open_topics & set(pick.problem.topics)):
        again = _track_pick(picker, working, open_topics, now, set())
        if again is not None and open_topics & set(again.problem.topics):
            again.guardrails.append("The one problem left within reach for a topic you have still to master: again.")
            return again
    if pick is not None:
        return pick
    left = [e for e in working if e.id not in avoid] or working
    return picker.easiest(left, f"Nothing at or below difficulty {picker.ceiling}")


MAX_IN_A_ROW = 2


def _track_pick(
    picker: _Picker, working: list[CatalogueEntry], open_topics: set[str], now: datetime, avoid: set[uuid.UUID]
) -> Recommendation | None:
    snapshot = picker.snapshot
    threshold = settings.CO_MASTERY_THRESHOLD
    review = picker.due_review(now, avoid)
    if review is not None:
        return review
    # The first module with a problem not yet solved that carries a topic to master: new problems
    # (harder ones, further on) raise mastery faster than repeating a module's easy ones. Once
    # every such problem is solved, the first module with a topic to master.
    unsolved = [e for e in working if not picker.solved(e)]
    focus = min(e.module_position for e in unsolved or working)
    # Easy problems last: from difficulty d the next problem may be at most d + 1, so one at d − 1
    # or above leaves the way back up open, while a deeper step down has to be climbed back one
    # step at a time, on problems whose topics may be mastered already. So a problem within one
    # step below the previous one comes first: the focus module's, else a solved one elsewhere
    # (a module is never started before the ones ahead of it).
    floor = picker.previous.difficulty - 1 if picker.previous is not None else 0
    near = [e for e in working if e.difficulty >= floor and picker.fits(e, avoid)]
    near_here = picker.best(e for e in near if e.module_position == focus)
    if near_here is not None:
        return picker.build(near_here, picker.kind(near_here), [_mastery_reason(near_here, snapshot, open_topics, threshold)])
    near_solved = picker.best(e for e in near if picker.solved(e))
    if near_solved is not None:
        return picker.build(
            near_solved,
            RecommendationKind.PRACTICE,
            [
                _mastery_reason(near_solved, snapshot, open_topics, threshold),
                "Harder work first while you are at this difficulty: the easier problems left for your topics "
                "come later, so that no attempts are spent climbing back up.",
            ],
        )
    in_module = picker.best(e for e in working if e.module_position == focus and picker.fits(e, avoid))
    if in_module is not None:
        return picker.build(in_module, picker.kind(in_module), [_mastery_reason(in_module, snapshot, open_topics, threshold)])
    elsewhere = picker.best(e for e in working if picker.fits(e, avoid))
    if elsewhere is not None:
        return picker.build(
            elsewhere,
            picker.kind(elsewhere),
            [
                _mastery_reason(elsewhere, snapshot, open_topics, threshold),
                "The problems left in the current module are above this step; working on another module first.",
            ],
        )
    within = [e for e in picker.by_id.values() if picker.fits(e, avoid)]
    if not within:
        return None
    top = max(e.difficulty for e in within)
    step = picker.best(e for e in within if e.difficulty == top)
    assert step is not None
    return picker.build(
        step,
        picker.kind(step),
        ["A step up towards the harder problems whose topics you have still to master."],
        [f"Every problem with a topic left to master is above difficulty {picker.ceiling}."],
    )


def _mastery_reason(entry: CatalogueEntry, snapshot: LearnerSnapshot, open_topics: set[str], threshold: int) -> str:
    below = ", ".join(f"{t} ({snapshot.mastery.get(t, 0)}/100)" for t in entry.topics if t in open_topics)
    return f"Topics not mastered yet (mastered at {threshold}/100): {below}."
