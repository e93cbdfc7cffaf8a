"""Creating a study path and advancing it, through the services, on the real database: the first
tasks follow the learner model, bad input writes nothing, every task gets its events, a verdict
reshapes only what it must, regenerating from the stored inputs gives the stored plan, a path
keeps its planner version, and path creation costs the same queries on any track or history."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core import checks
from django.utils import timezone

from co_project.errors import NotFound
from personalization.models import ReviewItem
from personalization.services import GradedAttempt, attempt_record
from study_paths import planner
from study_paths.apps import check_study_path_algorithm
from study_paths.errors import ActiveStudyPathExists, StudyPathConfigInvalid, StudyTaskFinished
from study_paths.models import StudyPath, StudyTask, TaskEvent
from study_paths.services import study_path_advance, study_path_create, study_path_plan
from tests.study_paths.factories import events_of, plan_of, publish_ladder, publish_wide_track
from tracks.problem_bank import DatabaseProblemBank
from tracks.selectors import track_outline

pytestmark = pytest.mark.django_db


def _id(slug: str) -> uuid.UUID:
    bundle = DatabaseProblemBank().get(slug)
    assert bundle is not None
    return uuid.UUID(bundle.id)


def _pending(path: StudyPath) -> list[StudyTask]:
    return list(StudyTask.objects.filter(path=path, status="pending").order_by("position"))


def _nothing_written() -> None:
    assert (StudyPath.objects.count(), StudyTask.objects.count(), TaskEvent.objects.count()) == (0, 0, 0)


def _solve(learner_id: str, *slugs: str, passed: bool = True) -> None:
    for slug in slugs:
        attempt_record(attempt=GradedAttempt(learner_id=learner_id, problem_id=_id(slug), passed=passed))


# --- create ---------------------------------------------------------------------------------


def test_create_plans_the_first_batch_with_a_created_event_each() -> None:
    publish_ladder()
    now = timezone.now()

    path = study_path_create(
        learner_id="alice", track="ladder", config={"batch_size": 6, "daily_task_target": 2}, now=now, seed=7
    )

    path.refresh_from_db()
    assert (path.learner_id, path.status, path.algorithm_version, path.seed) == ("alice", "active", "v2", 7)
    assert path.config == {
        "daily_task_target": 2,
        "difficulty_range": {"min": 1, "max": 5},
        "max_reviews_per_day": 2,
        "batch_size": 6,
        "expire_after_days": 7,
        "attempts_per_task": 2,
        "weights": {"weakness": 0.35, "novelty": 0.25, "pacing": 0.3, "diversity": 0.1},
    }
    assert path.learner_start == {"level": 1, "mastery": {}, "passed": [], "attempted": []}
    assert len(path.catalogue_digest) == 64
    # A new learner starts at difficulty 1; never +2; module m1 first; topics rotate.
    assert plan_of(path) == [
        ("a1", "practice", 1, "pending"),
        ("a4", "challenge", 2, "pending"),
        ("a3", "practice", 2, "pending"),
        ("a2", "practice", 1, "pending"),
        ("b1", "practice", 2, "pending"),
        ("b3", "challenge", 3, "pending"),
    ]
    tasks = list(StudyTask.objects.filter(path=path).order_by("position"))
    assert [t.position for t in tasks] == [1, 2, 3, 4, 5, 6]
    assert [(t.due_at - now).days for t in tasks] == [0, 0, 1, 1, 2, 2]
    assert all(t.expires_at == t.due_at + timedelta(days=7) for t in tasks)
    assert {t.learner_id for t in tasks} == {"alice"}
    for task in tasks:
        assert events_of(task) == [
            (
                1,
                "created",
                {"position": task.position, "kind": task.kind, "problem": task.problem_ref, "difficulty": task.difficulty},
            )
        ]


def test_create_starts_at_the_learners_level_and_leaves_out_what_they_solved() -> None:
    publish_ladder()
    _solve("strong", "a1", "a3", "b2")  # level 1 → 2 → 3

    path = study_path_create(learner_id="strong", track="ladder", config={"batch_size": 7}, seed=7)

    assert path.learner_start["level"] == 3
    assert sorted(path.learner_start["passed"]) == sorted(str(_id(s)) for s in ("a1", "a3", "b2"))
    # Solved problems are left out; a2 (difficulty 1, below level − 1) too, its topic being
    # covered by a4; the first task is at most one above the learner's level and every step ≤ +1.
    assert plan_of(path) == [
        ("a4", "practice", 2, "pending"),
        ("b3", "practice", 3, "pending"),
        ("b4", "challenge", 4, "pending"),
        ("b1", "practice", 2, "pending"),
        ("c1", "practice", 3, "pending"),
        ("c2", "practice", 4, "pending"),
        ("c3", "challenge", 5, "pending"),
    ]


def test_two_learners_with_one_profile_get_orders_that_differ_by_seed() -> None:
    publish_ladder()
    plans = {
        seed: [slug for slug, *_ in plan_of(study_path_create(learner_id=f"l{seed}", track="ladder", seed=seed))]
        for seed in range(6)
    }
    assert len({tuple(p) for p in plans.values()}) > 1
    same = study_path_create(learner_id="twin", track="ladder", seed=3)
    assert [slug for slug, *_ in plan_of(same)] == plans[3]


def test_create_injects_due_reviews_of_this_track_first() -> None:
    publish_ladder()
    now = timezone.now()
    _solve("alice", "a2", passed=False)
    ReviewItem.objects.filter(learner_id="alice").update(next_due_at=now - timedelta(hours=1))

    path = study_path_create(learner_id="alice", track="ladder", config={"batch_size": 3}, now=now, seed=7)

    first = StudyTask.objects.filter(path=path).order_by("position").first()
    assert (first.problem_id, first.kind) == (_id("a2"), "review")
    assert first.metadata["review_source"]["source"] == "review_queue"
    assert first.metadata["review_source"]["reason"] == "fail"
    assert first.metadata["review_source"]["bucket"] == 0
    assert [kind for _, kind, *_ in plan_of(path)].count("review") == 1


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"batch_size": 0}, "batch_size: 0 is less than the minimum of 1"),
        ({"difficulty_range": {"min": 4, "max": 2}}, "difficulty_range: min 4 is above max 2."),
        ({"difficulty_range": {"min": 1}}, "difficulty_range: 'max' is a required property"),
        ({"weights": {"luck": 1}}, "weights: Additional properties are not allowed ('luck' was unexpected)"),
        ({"modules": ["m1", "m1"]}, "modules: ['m1', 'm1'] has non-unique elements"),
        ({"modules": ["m9"]}, "modules: no published module 'm9' in this track."),
        ({"colour": "blue"}, "(config): Additional properties are not allowed ('colour' was unexpected)"),
        ([], "(config): [] is not of type 'object'"),
    ],
)
def test_a_bad_config_is_a_clear_400_and_writes_nothing(config: object, message: str) -> None:
    publish_ladder()
    with pytest.raises(StudyPathConfigInvalid) as raised:
        study_path_create(learner_id="alice", track="ladder", config=config)
    assert raised.value.code == "study_path_config_invalid"
    assert raised.value.fields == {"config": [message]}
    _nothing_written()


def test_config_modules_choose_the_modules() -> None:
    publish_ladder()
    _solve("alice", "a1", "a3")  # level 2: module m3 starts at difficulty 3, one step up
    path = study_path_create(learner_id="alice", track="ladder", config={"modules": ["m3"], "batch_size": 10}, seed=1)
    assert [(slug, difficulty) for slug, _, difficulty, _ in plan_of(path)] == [("c1", 3), ("c2", 4), ("c3", 5)]


def test_a_module_out_of_reach_leaves_the_plan_empty_rather_than_jump() -> None:
    publish_ladder()  # a new learner (level 1) and only module m3 (difficulties 3–5)
    path = study_path_create(learner_id="alice", track="ladder", config={"modules": ["m3"]}, seed=1)
    assert plan_of(path) == []
    assert study_path_plan(path=path).plan.notes == (
        "Nothing within one step of difficulty 1 is left; the path waits for new content.",
    )


def test_an_unknown_track_is_not_found_and_writes_nothing() -> None:
    publish_ladder()
    with pytest.raises(NotFound):
        study_path_create(learner_id="alice", track="no-such-track")
    _nothing_written()


def test_a_second_active_path_on_the_track_is_a_conflict() -> None:
    publish_ladder()
    first = study_path_create(learner_id="alice", track="ladder", seed=1)
    counts = (StudyPath.objects.count(), StudyTask.objects.count(), TaskEvent.objects.count())

    with pytest.raises(ActiveStudyPathExists) as raised:
        study_path_create(learner_id="alice", track="ladder", seed=2)

    assert raised.value.code == "study_path_active_exists"
    # The conflict is the answer before finer points of the config (a schema error still comes first).
    with pytest.raises(ActiveStudyPathExists):
        study_path_create(learner_id="alice", track="ladder", config={"modules": ["m9"]})
    with pytest.raises(StudyPathConfigInvalid):
        study_path_create(learner_id="alice", track="ladder", config={"batch_size": 0})
    assert (StudyPath.objects.count(), StudyTask.objects.count(), TaskEvent.objects.count()) == counts
    StudyPath.objects.filter(id=first.id).update(status="archived")
    assert study_path_create(learner_id="alice", track="ladder", seed=2).status == "active"
    assert study_path_create(learner_id="bob", track="ladder", seed=2).status == "active"


# --- advance --------------------------------------------------------------------------------


def test_a_pass_keeps_the_tail_and_appends_one_task() -> None:
    publish_ladder()
    path = study_path_create(learner_id="alice", track="ladder", config={"batch_size": 4}, seed=7)
    before = _pending(path)

    study_path_advance(task=before[0], verdict="passed")

    after = _pending(path)
    assert [t.id for t in after[:3]] == [t.id for t in before[1:]]
    assert len(after) == 4 and after[3].position == 5
    assert events_of(StudyTask.objects.get(id=before[0].id)) == [
        (1, "created", events_of(before[0])[0][2]),
        (2, "status_changed", {"from": "pending", "to": "passed", "reason": "verdict"}),
    ]
    assert [e[1] for e in events_of(after[3])] == ["created"]
    assert not StudyTask.objects.filter(path=path, metadata__replanned=True).exists()


def test_two_misses_at_one_difficulty_step_down_and_reshape_the_tail() -> None:
    publish_ladder()
    path = study_path_create(learner_id="alice", track="ladder", config={"batch_size": 4}, seed=7)
    study_path_advance(task=_pending(path)[0], verdict="passed")  # a1 (1)
    assert [(s, d) for s, _, d, _ in plan_of(path, statuses=("pending",))][:2] == [("a4", 2), ("a3", 2)]

    study_path_advance(task=_pending(path)[0], verdict="failed")  # a4 (2)
    study_path_advance(task=_pending(path)[0], verdict="failed")  # the next one at 2

    done = [row for row in plan_of(path) if row[3] in ("passed", "failed")]
    assert [(d, status) for _, _, d, status in done] == [(1, "passed"), (2, "failed"), (2, "failed")]
    assert _pending(path)[0].difficulty == 1  # stepped down: never a third miss at 2
    replanned = StudyTask.objects.filter(path=path, metadata__replanned=True)
    assert replanned.exists()
    for task in replanned:
        assert task.status == "skipped"
        assert events_of(task)[-1][1:] == ("status_changed", {"from": "pending", "to": "skipped", "reason": "replanned"})
    # Positions stay unique and ordered; the pending tail is always batch_size long here.
    assert len(_pending(path)) == 4


def test_regenerating_from_the_stored_inputs_gives_the_stored_plan() -> None:
    publish_ladder()
    path = study_path_create(learner_id="alice", track="ladder", config={"batch_size": 5}, seed=99)
    for verdict in ["failed", "passed", "failed", "failed", "skipped", "passed"]:
        stored = [(t.problem_ref, t.kind, t.difficulty) for t in _pending(path)]
        regenerated = study_path_plan(path=StudyPath.objects.get(id=path.id)).plan.tasks
        assert [(t.ref, t.kind, t.difficulty) for t in regenerated] == stored
        study_path_advance(task=_pending(path)[0], verdict=verdict)
    path.refresh_from_db()
    assert [(t.problem_ref, t.kind, t.difficulty) for t in _pending(path)] == [
        (t.ref, t.kind, t.difficulty) for t in study_path_plan(path=path).plan.tasks
    ]


def test_a_finished_task_cannot_take_a_second_verdict() -> None:
    publish_ladder()
    path = study_path_create(learner_id="alice", track="ladder", seed=7)
    task = _pending(path)[0]
    study_path_advance(task=task, verdict="passed")
    events = TaskEvent.objects.count()
    with pytest.raises(StudyTaskFinished):
        study_path_advance(task=task, verdict="failed")
    assert StudyTask.objects.get(id=task.id).status == "passed"
    assert TaskEvent.objects.count() == events


def test_passing_everything_completes_the_path(settings) -> None:
    # v1 ends once each problem is passed; these passes skip the learner model, under which v2
    # would go on until mastery (tests/study_paths/test_whole_path.py covers v2's end).
    settings.CO_STUDY_PATH_ALGORITHM = "v1"
    publish_ladder()
    path = study_path_create(learner_id="alice", track="ladder", config={"batch_size": 3}, seed=5)
    for _ in range(20):
        pending = _pending(path)
        if not pending:
            break
        study_path_advance(task=pending[0], verdict="passed")
    path.refresh_from_db()
    assert (path.status, path.completed_at is not None) == ("completed", True)
    assert {slug for slug, _, _, status in plan_of(path) if status == "passed"} == {
        "a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4", "c1", "c2", "c3"
    }  # fmt: skip


# --- algorithm versions -----------------------------------------------------------------------


def test_a_path_keeps_its_planner_version(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    publish_ladder()
    old = study_path_create(learner_id="alice", track="ladder", config={"batch_size": 3}, seed=7)

    def plan_nothing(**_: object) -> planner.Plan:
        return planner.Plan(tasks=(), complete=False, notes=("v3 plans nothing",))

    monkeypatch.setitem(planner.PLANNERS, "v3", plan_nothing)
    settings.CO_STUDY_PATH_ALGORITHM = "v3"

    study_path_advance(task=_pending(old)[0], verdict="passed")
    assert len(_pending(old)) == 3  # still v2: the tail was extended
    assert StudyPath.objects.get(id=old.id).algorithm_version == "v2"
    new = study_path_create(learner_id="bob", track="ladder", seed=7)
    assert (new.algorithm_version, StudyTask.objects.filter(path=new).count()) == ("v3", 0)


def test_an_unknown_algorithm_fails_the_system_check(settings) -> None:
    settings.CO_STUDY_PATH_ALGORITHM = "v9"
    [error] = check_study_path_algorithm()
    assert (error.id, error.level) == ("study_paths.E001", checks.ERROR)
    settings.CO_STUDY_PATH_ALGORITHM = "v1"
    assert check_study_path_algorithm() == []


# --- query counts -----------------------------------------------------------------------------

# The track and its modules (2), its problems and topics (2), the learner model (3), the active-path
# check (1), the path, its tasks and their events (3), and the savepoint around them (2: one
# transaction, without a savepoint of its own for the path's insert).
CREATE_QUERIES = 13


@pytest.mark.parametrize(("modules", "per_module", "history"), [(2, 3, 0), (6, 8, 0), (6, 8, 30)])
def test_create_costs_the_same_queries_on_any_track_and_history(django_assert_num_queries, modules, per_module, history) -> None:
    slug = f"wide-{modules}-{per_module}"
    publish_wide_track(slug, modules=modules, per_module=per_module)
    for index in range(history):
        bundle = DatabaseProblemBank().get(f"{slug}-m{index % modules}-p{index % per_module}")
        attempt_record(attempt=GradedAttempt(learner_id="alice", problem_id=uuid.UUID(bundle.id), passed=index % 3 != 0))

    with django_assert_num_queries(CREATE_QUERIES):
        path = study_path_create(learner_id="alice", track=slug, config={"batch_size": 10}, seed=1)

    assert StudyTask.objects.filter(path=path).count() == min(10, modules * per_module)


def test_a_verdict_is_recorded_even_when_the_plan_cannot_be_regenerated() -> None:
    from tracks.models import Track

    publish_ladder()
    path = study_path_create(learner_id="alice", track="ladder", config={"batch_size": 3}, seed=7)
    before = [t.id for t in _pending(path)]
    Track.objects.filter(slug="ladder").update(published=False)

    study_path_advance(task=_pending(path)[0], verdict="failed")

    assert StudyTask.objects.get(id=before[0]).status == "failed"
    assert [t.id for t in _pending(path)] == before[1:]  # the tail is kept until a replan succeeds
    assert events_of(StudyTask.objects.get(id=before[0]))[-1][1] == "status_changed"


def test_a_module_retired_after_creation_leaves_the_plan_without_error() -> None:
    from tracks.models import Module

    publish_ladder()
    path = study_path_create(learner_id="alice", track="ladder", config={"modules": ["m1", "m2"], "batch_size": 3}, seed=7)
    Module.objects.filter(slug="m2").update(published=False)

    study_path_advance(task=_pending(path)[0], verdict="passed")

    assert {t.module.slug for t in _pending(path) if t.position > 3} <= {"m1"}


# --- the remote problem bank ------------------------------------------------------------------


@pytest.fixture
def remote_bank(settings):
    from tests.servers import FakeProblemBank

    with FakeProblemBank() as server:
        settings.CO_PROBLEM_BANK_BASE = server.url
        settings.CO_PROBLEM_BANK_TIMEOUT_SECONDS = 0.5
        settings.CO_PROBLEM_BANK_RETRIES = 1
        settings.CO_PROBLEM_BANK_CACHE_SECONDS = 300
        settings.CO_PROBLEM_BANK_TOKEN = None
        yield server


def test_candidates_come_from_the_remote_bank_too(remote_bank) -> None:
    publish_ladder()
    remote_bank.modules["ladder/m3"] = [
        {"id": "remote-graphs", "slug": "remote-graphs", "title": "R", "difficulty": 3, "topics": ["bfs"]}
    ]

    _solve("carol", "a1", "a3")  # level 2: module m3 (difficulty 3 and up) is one step away
    path = study_path_create(learner_id="carol", track="ladder", config={"modules": ["m3"], "batch_size": 5}, seed=2)

    remote = StudyTask.objects.get(path=path, problem_ref="remote-graphs")
    assert (remote.problem_id, remote.difficulty, remote.topics, remote.module.slug) == (None, 3, ["bfs"], "m3")
    assert sorted(slug for slug, *_ in plan_of(path)) == ["c1", "c2", "c3", "remote-graphs"]


def test_an_unreachable_remote_bank_is_a_409_and_writes_nothing(remote_bank) -> None:
    from co_project.errors import ProblemRepositoryNotReady

    publish_ladder()
    remote_bank.behaviour.always_status = 503
    with pytest.raises(ProblemRepositoryNotReady):
        study_path_create(learner_id="alice", track="ladder")
    _nothing_written()


# Locks (path, task), the verdict, the path's tasks, due reviews, the learner's topic mastery,
# event numbers, the new task, the events, the path, and the transaction's savepoint pair; the
# track and its modules come from the process memo (read once per catalogue version).
ADVANCE_QUERIES = 12


@pytest.mark.parametrize("history", [0, 30])
def test_a_verdict_costs_the_same_queries_whatever_the_history(django_assert_num_queries, history: int) -> None:
    publish_wide_track("wide", modules=4, per_module=12)
    path = study_path_create(learner_id="alice", track="wide", config={"batch_size": 5}, seed=1)
    for index in range(history):
        study_path_advance(task=_pending(path)[0], verdict="failed" if index % 3 else "passed")
    task = _pending(path)[0]
    track_outline(reference=str(path.track_id))  # the memo as any request after a process's first finds it

    with django_assert_num_queries(ADVANCE_QUERIES):
        study_path_advance(task=task, verdict="passed")

    assert len(_pending(path)) == 5


def test_an_expired_task_gets_an_expired_event() -> None:
    publish_ladder()
    path = study_path_create(learner_id="alice", track="ladder", config={"batch_size": 2}, seed=7)
    task = _pending(path)[0]

    study_path_advance(task=task, verdict="expired")

    assert StudyTask.objects.get(id=task.id).status == "expired"
    payload = {"from": "pending", "to": "expired", "expires_at": task.expires_at.isoformat()}
    assert events_of(task)[1:] == [(2, "expired", payload)]


def test_a_create_that_loses_the_race_is_a_conflict_and_writes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both creates pass the early check (as two concurrent ones can); the partial unique index
    refuses the second, which then writes nothing."""
    from study_paths import services

    publish_ladder()
    monkeypatch.setattr(services, "study_path_active_for", lambda **_: None)
    first = study_path_create(learner_id="alice", track="ladder", config={"batch_size": 2}, seed=1)
    counts = (StudyPath.objects.count(), StudyTask.objects.count(), TaskEvent.objects.count())

    with pytest.raises(ActiveStudyPathExists):
        study_path_create(learner_id="alice", track="ladder", config={"batch_size": 2}, seed=2)

    assert (StudyPath.objects.count(), StudyTask.objects.count(), TaskEvent.objects.count()) == counts
    assert StudyPath.objects.get().id == first.id


@pytest.mark.requires_services
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_make_one_path() -> None:
    """Two requests at once on PostgreSQL: one path, one conflict, whichever check catches it."""
    import threading

    from django.db import connection

    publish_ladder()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def create(seed: int) -> None:
        try:
            barrier.wait(timeout=10)
            study_path_create(learner_id="alice", track="ladder", config={"batch_size": 2}, seed=seed)
            outcomes.append("created")
        except ActiveStudyPathExists:
            outcomes.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["conflict", "created"]
    assert StudyPath.objects.filter(learner_id="alice").count() == 1
    assert StudyTask.objects.count() == 2
