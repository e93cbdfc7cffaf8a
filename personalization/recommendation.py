"""Next-problem recommendation (seeds/001 §D) with its guardrails, explained.

score(c) = w_weakness × weakness + w_novelty × novelty + w_pacing × pacing + w_diversity × diversity

* weakness  — 1 − the learner's mean mastery (0–1) over the candidate's topics (unknown topic: 0.5);
* novelty   — 1 never attempted, 0.5 attempted but not yet passed, 0 already passed;
* pacing    — 1 − |difficulty − target| / 2 (≥ 0). The target is the learner's level + 0.5 with no
              recent miss (stretch a little), the level after one miss, level − 1 after two;
* diversity — 1 − the share of the candidate's topics seen in the last three problems attempted.

Weights come from `CO_RECOMMENDATION_WEIGHTS`. Guardrails, applied before scoring:

1. difficulty is never more than +1 above the learner's level;
2. after two consecutive misses at difficulty d, nothing at d or above is served (never a third
   consecutive failure at the same level): the recommender steps down, or serves a review item,
   and says so. Only when no easier problem exists at all does it serve the easiest one left;
3. due review items are injected: the most overdue one that fits the guardrails is served first
   (after two misses that is the "review instead" of stepping down).

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
    snapshot.reviews = {
        problem_id: (due_at, bucket, reason)
        for problem_id, due_at, bucket, reason in due.order_by("next_due_at").values_list(
            "problem_id", "next_due_at", "bucket", "reason"
        )[:DUE_REVIEWS_LOADED]
    }
    snapshot.due_count = len(snapshot.reviews) if len(snapshot.reviews) < DUE_REVIEWS_LOADED else due.count()
    return snapshot


# --- scoring -------------------------------------------------------------------------------------


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
        return float(snapshot.level)
    return snapshot.level + 0.5


def score_candidate(
    entry: CatalogueEntry, snapshot: LearnerSnapshot, recent_topics: set[str], weights: dict[str, float]
) -> tuple[float, dict[str, dict[str, float]]]:
    known = [snapshot.mastery.get(topic) for topic in entry.topics]
    levels = [50 if score is None else score for score in known] or [50]
    weakness = 1.0 - sum(levels) / len(levels) / 100.0
    attempts, passes = snapshot.progress.get(entry.id, (0, 0))
    novelty = 1.0 if not attempts else (0.0 if passes else 0.5)
    pacing = max(0.0, 1.0 - abs(entry.difficulty - pacing_target(snapshot)) / 2.0)
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
    weak = sorted(entry.topics, key=lambda topic: snapshot.mastery.get(topic, 50))
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


def recommend(
    *,
    catalogue: list[CatalogueEntry],
    snapshot: LearnerSnapshot,
    now: datetime,
    among: set[uuid.UUID] | None = None,
    exclude: set[uuid.UUID] | frozenset[uuid.UUID] = frozenset(),
    inject_reviews: bool = True,
) -> Recommendation | None:
    """Pick the next problem. `among` restricts new problems (a track module); reviews and
    step-downs may come from the whole catalogue given."""
    weights = {name: float(settings.CO_RECOMMENDATION_WEIGHTS[name]) for name in TERMS}
    by_id = {entry.id: entry for entry in catalogue}
    recent_topics, recent_slugs = _recent_topics(snapshot, by_id)
    learner = {
        "level": snapshot.level,
        "fail_streak": snapshot.fail_streak,
        "due_reviews": snapshot.due_count,
    }
    ceiling = snapshot.level + 1
    guardrails = []
    streak_cap: int | None = None
    if snapshot.fail_streak >= STREAK_LIMIT and snapshot.fail_streak_difficulty:
        streak_cap = snapshot.fail_streak_difficulty - 1
        guardrails.append(
            f"{snapshot.fail_streak} misses in a row at difficulty {snapshot.fail_streak_difficulty}: "
            f"stepping down to difficulty ≤ {max(streak_cap, 0)}."
        )

    def fits(entry: CatalogueEntry) -> bool:
        return entry.id not in exclude and entry.difficulty <= ceiling and (streak_cap is None or entry.difficulty <= streak_cap)

    def build(entry: CatalogueEntry, kind: str, extra: list[str], rails: list[str]) -> Recommendation:
        score, terms = score_candidate(entry, snapshot, recent_topics, weights)
        return Recommendation(
            problem=entry,
            kind=kind,
            score=score,
            terms=terms,
            reasons=extra + _reasons(entry, terms, snapshot, recent_slugs),
            guardrails=rails,
            learner=learner,
        )

    def best(entries: Iterable[CatalogueEntry]) -> CatalogueEntry | None:
        scored = [(score_candidate(e, snapshot, recent_topics, weights)[0], e) for e in entries]
        if not scored:
            return None
        return max(scored, key=lambda pair: (pair[0], -pair[1].difficulty, pair[1].slug))[1]

    reviews = [(by_id[pid], due, bucket, reason) for pid, (due, bucket, reason) in snapshot.reviews.items() if pid in by_id]
    if inject_reviews:
        due = sorted((r for r in reviews if r[1] <= now and fits(r[0])), key=lambda r: (r[1], r[0].slug))
        if due:
            entry, due_at, bucket, reason = due[0]
            return build(
                entry,
                "review",
                [f"A review is due (since {due_at:%Y-%m-%d %H:%M} UTC, reason {reason}, bucket {bucket})."],
                [*guardrails, "Due reviews are served before new problems."],
            )

    pool = [e for e in catalogue if (among is None or e.id in among) and not snapshot.progress.get(e.id, (0, 0))[1]]
    choice = best(e for e in pool if fits(e))
    if choice is not None:
        return build(choice, "new", [], guardrails)

    if streak_cap is not None:
        # Step down (due reviews that fit were served above): any easier problem.
        easier = best(e for e in catalogue if fits(e))
        if easier is not None:
            kind = "practice" if snapshot.progress.get(easier.id, (0, 0))[1] else "new"
            return build(easier, kind, ["Stepping down to an easier problem."], guardrails)
        fallback = [e for e in pool if e.id not in exclude and e.difficulty <= ceiling]
        if fallback:
            lowest = min(e.difficulty for e in fallback)
            choice = best(e for e in fallback if e.difficulty == lowest)
            assert choice is not None
            return build(
                choice, "new", [], [*guardrails, f"No easier problem exists; serving the easiest one left (difficulty {lowest})."]
            )

    if among is not None:
        # The module has nothing within reach: prepare with an unsolved problem elsewhere in the catalogue.
        elsewhere = best(e for e in catalogue if fits(e) and not snapshot.progress.get(e.id, (0, 0))[1])
        if elsewhere is not None:
            return build(elsewhere, "new", ["The next problems are above your level; preparing first."], guardrails)
    practice = best(e for e in catalogue if fits(e) and snapshot.progress.get(e.id, (0, 0))[1])
    if practice is not None:
        return build(
            practice,
            "practice",
            ["Solve one at your level without heavy hints to unlock harder problems."],
            [*guardrails, f"Nothing unsolved at or below difficulty {ceiling}: practising what you know."],
        )
    open_pool = [e for e in pool if e.id not in exclude]
    if open_pool:
        # Nothing at all within the cap (e.g. a track that starts above the learner's level).
        lowest = min(e.difficulty for e in open_pool)
        choice = best(e for e in open_pool if e.difficulty == lowest)
        assert choice is not None
        return build(
            choice,
            "new",
            [],
            [*guardrails, f"Nothing exists at or below difficulty {ceiling}; serving the easiest remaining problem."],
        )
    return None
