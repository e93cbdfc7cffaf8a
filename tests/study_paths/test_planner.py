"""The planner's rules on small hand-made catalogues (pure: no database)."""

from __future__ import annotations

import pytest

from study_paths.planner import (
    PLANNERS,
    Candidate,
    DoneTask,
    DueReview,
    LearnerStart,
    PlanConfig,
    PlannedTask,
    plan_tail_v1,
    plan_tail_v2,
    planner_for,
)


def c(ref: str, difficulty: int, *topics: str, module: str = "t/m1") -> Candidate:
    return Candidate(ref=ref, problem_id=None, module=module, difficulty=difficulty, topics=topics, slug=ref)


def done(task: PlannedTask | Candidate, outcome: str, kind: str = "practice") -> DoneTask:
    return DoneTask(task.ref, task.module, task.difficulty, task.topics, getattr(task, "kind", kind), outcome)


def shape(tasks: tuple[PlannedTask, ...]) -> list[tuple[str, str, int]]:
    return [(t.ref, t.kind, t.difficulty) for t in tasks]


CONFIG = PlanConfig(modules=("t/m1", "t/m2"), batch_size=20)


def test_modules_in_order_rising_one_step_at_a_time_with_topics_rotating() -> None:
    catalogue = [
        c("m1-hard", 3, "graphs"),
        c("m1-easy-a", 1, "arrays"),
        c("m1-easy-b", 1, "arrays"),
        c("m1-mid", 2, "strings"),
        c("m2-a", 2, "dp", module="t/m2"),
        c("m2-b", 3, "dp", module="t/m2"),
    ]
    plan = plan_tail_v1(candidates=catalogue, learner=LearnerStart(level=1), config=CONFIG, seed=1)
    assert shape(plan.tasks) == [
        ("m1-easy-a", "practice", 1),  # at the learner's level
        ("m1-mid", "challenge", 2),  # not m1-easy-b: it shares the topic of the task before
        ("m1-hard", "challenge", 3),  # only now: never 1 → 3
        ("m1-easy-b", "practice", 1),
        ("m2-a", "practice", 2),  # the next module once the first is done
        ("m2-b", "practice", 3),  # the same topic: no other was available
    ]
    assert [t.day for t in plan.tasks] == [0, 0, 0, 1, 1, 1]


def test_two_misses_at_the_lowest_difficulty_move_up_rather_than_try_a_third() -> None:
    catalogue = [c("a", 1, "x"), c("b", 1, "y"), c("d", 1, "z"), c("e", 2, "w")]
    config = PlanConfig(modules=("t/m1",), batch_size=3)
    history = [done(catalogue[0], "failed"), done(catalogue[1], "failed")]
    plan = plan_tail_v1(candidates=catalogue, learner=LearnerStart(), config=config, seed=1, history=history)
    assert plan.tasks[0].ref == "e"
    assert plan.tasks[0].reasons == ("No easier problem exists; moving off difficulty 1.",)


def test_two_misses_step_down_to_a_review_of_a_solved_problem_when_nothing_new_is_easier() -> None:
    catalogue = [c("easy", 1, "x"), c("hard-a", 2, "y"), c("hard-b", 2, "z")]
    config = PlanConfig(modules=("t/m1",), batch_size=2)
    history = [done(catalogue[0], "passed"), done(catalogue[1], "failed"), done(catalogue[2], "failed")]
    plan = plan_tail_v1(candidates=catalogue, learner=LearnerStart(), config=config, seed=1, history=history)
    assert shape(plan.tasks)[0] == ("easy", "review", 1)
    assert plan.tasks[0].review_source == {"source": "step_down"}


def test_due_reviews_come_first_within_the_daily_cap_and_once_per_coming_due() -> None:
    catalogue = [c(f"p{i}", 1, f"topic-{i}") for i in range(6)]
    reviews = [DueReview(f"p{i}", "fail", 0, f"2026-12-0{i + 1}T00:00:00+00:00") for i in range(3)]
    config = PlanConfig(modules=("t/m1",), daily_target=3, review_cap_per_day=2, batch_size=6)

    solved = LearnerStart(passed=frozenset({"p0", "p1", "p2"}))

    plan = plan_tail_v1(candidates=catalogue, learner=solved, config=config, seed=1, due_reviews=reviews)

    assert [(t.ref, t.kind, t.day) for t in plan.tasks] == [
        ("p0", "review", 0),
        ("p1", "review", 0),
        ("p4", "practice", 0),
        ("p2", "review", 1),  # the third review waits for the next day
        ("p3", "practice", 1),
        ("p5", "practice", 1),
    ]
    assert plan.tasks[0].review_source == {
        "source": "review_queue",
        "key": "p0@2026-12-01T00:00:00+00:00",
        "reason": "fail",
        "bucket": 0,
        "due_at": "2026-12-01T00:00:00+00:00",
    }
    # Done once, a review is not injected again for the same coming-due.
    history = [DoneTask("p0", "t/m1", 1, ("topic-0",), "review", "passed", review_key="p0@2026-12-01T00:00:00+00:00")]
    again = plan_tail_v1(
        candidates=catalogue, learner=LearnerStart(), config=config, seed=1, due_reviews=reviews, history=history
    )
    assert [t.ref for t in again.tasks if t.kind == "review"] == ["p1", "p2"]


def test_a_skipped_problem_leaves_the_pool_and_the_path_completes_when_all_are_solved() -> None:
    catalogue = [c("a", 1, "x"), c("b", 1, "y")]
    config = PlanConfig(modules=("t/m1",), batch_size=5)
    history = [done(catalogue[0], "skipped"), done(catalogue[1], "passed")]
    plan = plan_tail_v1(candidates=catalogue, learner=LearnerStart(), config=config, seed=1, history=history)
    assert (plan.tasks, plan.complete) == ((), True)


def test_the_seed_only_breaks_ties() -> None:
    catalogue = [c(f"p{i}", 1, f"topic-{i}") for i in range(8)]
    config = PlanConfig(modules=("t/m1",), batch_size=8)
    orders = {
        tuple(t.ref for t in plan_tail_v1(candidates=catalogue, learner=LearnerStart(), config=config, seed=s).tasks)
        for s in range(5)
    }
    assert len(orders) > 1
    # A weaker topic outranks every tie, whatever the seed.
    weak = LearnerStart(mastery={"topic-5": 0, **{f"topic-{i}": 90 for i in range(8) if i != 5}})
    for seed in range(5):
        assert plan_tail_v1(candidates=catalogue, learner=weak, config=config, seed=seed).tasks[0].ref == "p5"


def test_planner_registry() -> None:
    assert planner_for("v1") is plan_tail_v1
    assert planner_for("v2") is plan_tail_v2
    assert set(PLANNERS) == {"v1", "v2"}
    with pytest.raises(LookupError, match="no study-path planner 'v0' \\(known: v1, v2\\)"):
        planner_for("v0")


def test_after_stepping_down_v2_climbs_back_through_solved_problems_where_v1_waits() -> None:
    """Two misses at 5, a step-down review at 2 passed: the only problem left (5) is three steps up."""
    catalogue = [c("d2", 2, "a"), c("d3", 3, "b"), c("d4", 4, "c"), c("top", 5, "d")]
    config = PlanConfig(modules=("t/m1",), batch_size=4)
    solved = LearnerStart(level=4, passed=frozenset({"d2", "d3", "d4"}), attempted=frozenset({"d2", "d3", "d4"}))
    history = [done(catalogue[3], "failed"), done(catalogue[3], "failed"), done(catalogue[0], "passed", kind="review")]

    waiting = plan_tail_v1(candidates=catalogue, learner=solved, config=config, seed=1, history=history)
    climbing = plan_tail_v2(candidates=catalogue, learner=solved, config=config, seed=1, history=history)

    assert (waiting.tasks, waiting.complete) == ((), False)
    assert waiting.notes == ("Nothing within one step of difficulty 2 is left; the path waits for new content.",)
    assert shape(climbing.tasks) == [("d3", "review", 3), ("d4", "review", 4), ("top", "challenge", 5)]
    assert climbing.tasks[0].review_source == {"source": "climb"}
    assert climbing.notes == ()


def test_v2_goes_on_with_the_topics_not_yet_mastered_once_every_problem_is_solved() -> None:
    catalogue = [c("a1", 1, "arrays"), c("a2", 2, "arrays"), c("s1", 1, "strings"), c("s2", 2, "strings")]
    config = PlanConfig(modules=("t/m1",), batch_size=3, mastery_threshold=80)
    solved = frozenset(ref.ref for ref in catalogue)
    learner = LearnerStart(level=2, passed=solved, attempted=solved)
    history = [done(catalogue[1], "passed")]

    practising = plan_tail_v2(
        candidates=catalogue, learner=learner, config=config, seed=1, history=history, mastery_now={"arrays": 90, "strings": 40}
    )
    mastered = plan_tail_v2(
        candidates=catalogue, learner=learner, config=config, seed=1, history=history, mastery_now={"arrays": 90, "strings": 85}
    )
    solved_once = plan_tail_v1(candidates=catalogue, learner=learner, config=config, seed=1, history=history)

    # Only the strings problems (the topic below 80), one step at a time: s2 (2), then s1.
    assert shape(practising.tasks) == [("s2", "practice", 2), ("s1", "practice", 1)]
    assert practising.tasks[0].reasons == ("Practising until mastered: strings.",)
    assert not practising.complete
    assert (mastered.tasks, mastered.complete) == ((), True)
    assert (solved_once.tasks, solved_once.complete) == ((), True)  # v1 ends once each is solved
