"""The track recommender as a pure function of the catalogue and the learner model (no database):
easy problems last — while a problem within one step below the previous one carries a topic to
master, the pick is such a problem, since a deeper step down has to be climbed back one step at a
time — next to the guardrails, on the ladder and for arbitrary catalogues and learners
(hypothesis)."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

from django.conf import settings as django_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personalization.recommendation import LearnerSnapshot, recommend_track
from tests.personalization.factories import LADDER, MODULE_ORDER
from tracks.selectors import CatalogueEntry

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TRACK = uuid.uuid4()
TOPICS = ("arrays", "strings", "graphs", "dp", "hashing")


def entry(slug: str, module: int, difficulty: int, topics: tuple[str, ...], position: int = 0) -> CatalogueEntry:
    return CatalogueEntry(
        id=uuid.uuid5(TRACK, slug), slug=slug, title=slug, subject="coding", difficulty=difficulty,
        module_id=uuid.uuid5(TRACK, f"m{module}"), module_position=module, position=position,
        track_id=TRACK, track_slug="t", topics=topics,
    )  # fmt: skip


def ladder() -> dict[str, CatalogueEntry]:
    return {
        slug: entry(slug, MODULE_ORDER[module], difficulty, tuple(topics), n)
        for n, (slug, (module, difficulty, topics)) in enumerate(LADDER.items())
    }


def test_harder_work_first_then_the_easy_problems() -> None:
    """Every ladder problem solved, level 4, strings (only on a2, a4: difficulty 1–2, the first
    module) and graphs (b4, c2: difficulty 4) not mastered, b4 just served: graphs on c2 comes
    before strings, although the first module comes first; once graphs is mastered, strings."""
    problems = ladder()
    topics = {t for _, _, topics in LADDER.values() for t in topics}
    snapshot = LearnerSnapshot(
        level=4,
        mastery={**dict.fromkeys(topics, 90), "strings": 50, "graphs": 50},
        progress={p.id: (1, 1) for p in problems.values()},
        recent=[problems["b4"].id],
    )
    pick = recommend_track(catalogue=list(problems.values()), snapshot=snapshot, now=NOW, previous=problems["b4"])
    assert pick is not None
    assert (pick.problem.slug, pick.kind) == ("c2", "practice")
    assert pick.reasons[:2] == [
        "Topics not mastered yet (mastered at 80/100): graphs (50/100).",
        "Harder work first while you are at this difficulty: the easier problems left for your topics come later, "
        "so that no attempts are spent climbing back up.",
    ]
    snapshot.mastery["graphs"] = 90
    snapshot.recent = [problems["c2"].id, problems["b4"].id]
    pick = recommend_track(catalogue=list(problems.values()), snapshot=snapshot, now=NOW, previous=problems["c2"])
    assert pick is not None
    assert pick.problem.slug in {"a2", "a4"}
    assert not [r for r in pick.reasons if r.startswith("Harder work first")]


def test_a_fresh_learner_starts_on_the_first_module() -> None:
    """No previous problem, no floor: the first module's best, as before."""
    problems = ladder()
    pick = recommend_track(catalogue=list(problems.values()), snapshot=LearnerSnapshot(), now=NOW)
    assert pick is not None
    assert LADDER[pick.problem.slug][0] == "m1" and pick.problem.difficulty <= 2


@st.composite
def situations(draw: st.DrawFn) -> tuple[list[CatalogueEntry], LearnerSnapshot, CatalogueEntry | None, int]:
    catalogue = []
    for module in range(draw(st.integers(1, 3))):
        for index in range(draw(st.integers(1, 5))):
            topics = tuple(draw(st.lists(st.sampled_from(TOPICS), min_size=1, max_size=3, unique=True)))
            catalogue.append(entry(f"m{module}p{index}", module, draw(st.integers(1, 5)), topics, len(catalogue)))
    if len(catalogue) < 2:
        catalogue.append(entry("m0extra", 0, draw(st.integers(1, 5)), ("arrays",), len(catalogue)))
    previous = draw(st.none() | st.sampled_from(catalogue))
    progress = {}
    for problem in draw(st.lists(st.sampled_from(catalogue), unique_by=lambda e: e.id)):
        tried = draw(st.integers(1, 6))
        progress[problem.id] = (tried, draw(st.integers(0, tried)))
    if previous is not None and previous.id not in progress:
        progress[previous.id] = (1, draw(st.integers(0, 1)))
    fail_streak = draw(st.integers(0, 3)) if previous is not None else 0
    snapshot = LearnerSnapshot(
        level=draw(st.integers(1, 5)),
        fail_streak=fail_streak,
        fail_streak_difficulty=previous.difficulty if fail_streak else 0,
        mastery={topic: draw(st.integers(0, 100)) for topic in draw(st.lists(st.sampled_from(TOPICS), unique=True))},
        progress=progress,
        recent=[previous.id] if previous is not None else [],
    )
    return catalogue, snapshot, previous, draw(st.integers(1, 2))


checked = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=bool(os.environ.get("CI"))
)


@checked
@given(situations())
def test_the_pick_keeps_the_guardrails_and_goes_no_deeper_than_one_step_while_work_is_open_there(situation) -> None:
    catalogue, snapshot, previous, in_a_row = situation
    threshold = django_settings.CO_MASTERY_THRESHOLD
    open_topics = {t for e in catalogue for t in e.topics if snapshot.mastery.get(t, 0) < threshold}
    pick = recommend_track(catalogue=catalogue, snapshot=snapshot, now=NOW, previous=previous, in_a_row=in_a_row)
    assert (pick is None) == (not open_topics)
    if pick is None:
        return
    ceiling = min(snapshot.level, previous.difficulty if previous else 5) + 1
    if snapshot.fail_streak >= 2:
        ceiling = min(ceiling, snapshot.fail_streak_difficulty - 1)
    if not [g for g in pick.guardrails if "serving the easiest one left" in g]:
        assert pick.problem.difficulty <= ceiling
    if previous is None:
        return
    # What the learner may take now within one step below the previous problem: it carries a topic
    # to master, fits the guardrails, is not the previous problem again, and lies in the first
    # module with work left (a problem not solved yet carrying a topic to master, else any
    # problem carrying one) or was solved already (modules are started in order).
    solved = {pid for pid, (_, passes) in snapshot.progress.items() if passes}
    working = [e for e in catalogue if open_topics & set(e.topics)]
    focus = min(e.module_position for e in [e for e in working if e.id not in solved] or working)
    near = [
        e
        for e in working
        if e.id != previous.id
        and previous.difficulty - 1 <= e.difficulty <= ceiling
        and (e.module_position == focus or e.id in solved)
    ]
    if near:
        assert pick.problem in near
