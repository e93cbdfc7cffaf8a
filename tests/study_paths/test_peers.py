"""`GET /v1/study-paths/{id}/progress?compare=peers`: percentiles per module among the learners of
the same track, from distributions the periodic job stores (anonymous value counts) — none below
CO_PEER_MIN_COHORT learners (with a reason), exact ones at and above it, computed here
independently from the simulated figures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import time_machine
from django.conf import settings

from study_paths import tasks
from study_paths.models import PeerModuleDistribution, StudyPath, StudyTask
from study_paths.services import study_path_create
from tests.study_paths.progress_history import grade, publish_progress_track

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
BELOW = "Fewer than 20 learners of this track have a graded attempt in this module yet."


@pytest.fixture
def clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=True):
        yield


# Learner i's graded attempts: in m0 every learner has some, in m1 only every other learner.
def _m0(i: int) -> list[tuple[bool, ...]]:
    return [(True,), (False, True), (False, False)][: 1 + i % 3] if i % 4 else [(False, False)]


def _m1(i: int) -> list[tuple[bool, ...]]:
    return [(i % 3 == 0,)] if i % 2 == 0 else []


def _learner(i: int, track: str = "peers") -> StudyPath:
    """Learner i's path with the graded tasks _m0(i) and _m1(i) (the path plans every problem)."""
    path = study_path_create(learner_id=f"learner-{i:02d}", track=track, config={"batch_size": 9}, seed=i)
    by_module: dict[str, list[StudyTask]] = {"m0": [], "m1": [], "m2": []}
    for task in StudyTask.objects.filter(path=path).select_related("module").order_by("position"):
        by_module[task.module.slug].append(task)
    for module, attempts in (("m0", _m0(i)), ("m1", _m1(i))):
        assert len(by_module[module]) >= len(attempts)
        for task, tries in zip(by_module[module], attempts, strict=False):
            grade(task, tries, NOW)
    return path


def _figures(attempts: list[tuple[bool, ...]]) -> tuple[float, int]:
    tries = [passed for task in attempts for passed in task]
    return round(sum(tries) / len(tries), 4), len(attempts)


def _percentile(values: list[float], mine: float) -> float:
    below = sum(value < mine for value in values)
    equal = sum(value == mine for value in values)
    return round(100 * (below + equal / 2) / len(values), 1)


def _compare(client, path: StudyPath) -> dict:
    response = client.get(f"/v1/study-paths/{path.id}/progress?compare=peers")
    assert response.status_code == 200, response.content
    return response.json()["peers"]


def test_below_the_cohort_there_are_no_percentiles_and_a_reason(clock, learner_client) -> None:
    publish_progress_track("peers", per_module=3)
    paths = [_learner(i) for i in range(settings.CO_PEER_MIN_COHORT - 1)]
    assert tasks.peer_distributions_refresh.apply().get() == 2  # m0 and m1; nobody graded in m2

    peers = _compare(learner_client("learner-04"), paths[4])

    nothing = {"contributors": None, "accuracy_percentile": None, "completed_percentile": None, "reason": BELOW}
    stored = PeerModuleDistribution.objects.get(module__slug="m0")
    assert peers == {
        "min_cohort": 20,
        "computed_at": stored.computed_at.isoformat(),
        "modules": {"m0": nothing, "m1": nothing, "m2": nothing},
    }
    assert stored.contributors == 19


def test_at_the_cohort_the_percentiles_are_exact(clock, learner_client, django_assert_num_queries) -> None:
    publish_progress_track("peers", per_module=3)
    count = settings.CO_PEER_MIN_COHORT
    paths = [_learner(i) for i in range(count + 21)]  # m0: 41 contributors, m1: 21
    tasks.peer_distributions_refresh.apply().get()
    m0 = [_figures(_m0(i)) for i in range(len(paths))]
    m1 = [_figures(_m1(i)) for i in range(len(paths)) if _m1(i)]
    assert (len(m0), len(m1)) == (41, 21)

    for i in (0, 1, 2, 5, 6, 40):
        client = learner_client(f"learner-{i:02d}")
        client.get(f"/v1/study-paths/{paths[i].id}/progress")  # the progress itself is cached
        # The stored distributions, the learner's attempts and completed tasks on the track.
        with django_assert_num_queries(3):
            peers = _compare(client, paths[i])
        mine0 = _figures(_m0(i))
        assert peers["modules"]["m0"] == {
            "contributors": 41,
            "accuracy_percentile": _percentile([a for a, _ in m0], mine0[0]),
            "completed_percentile": _percentile([c for _, c in m0], mine0[1]),
            "reason": None,
        }
        if _m1(i):
            mine1 = _figures(_m1(i))
            assert peers["modules"]["m1"] == {
                "contributors": 21,
                "accuracy_percentile": _percentile([a for a, _ in m1], mine1[0]),
                "completed_percentile": _percentile([c for _, c in m1], mine1[1]),
                "reason": None,
            }
        else:
            assert peers["modules"]["m1"] == {
                "contributors": 21,
                "accuracy_percentile": None,
                "completed_percentile": None,
                "reason": "You have no graded attempt in this module yet.",
            }
        assert peers["modules"]["m2"]["reason"] == BELOW


def test_the_stored_distribution_names_nobody(clock) -> None:
    publish_progress_track("peers", per_module=3)
    for i in range(4):
        _learner(i)
    tasks.peer_distributions_refresh.apply().get()

    rows = list(PeerModuleDistribution.objects.order_by("module__slug").values())
    assert [(row["contributors"], row["accuracy_counts"], row["completed_counts"]) for row in rows] == [
        # m0: learner 0 failed a task twice (0.0, 1 task), 1 passed one (1.0, 1), 2 passed 2 of 3 tries
        # (0.6667, 2 tasks), 3 passed 2 of 5 (0.4, 3).
        (4, [[0.0, 1], [0.4, 1], [0.6667, 1], [1.0, 1]], [[1, 2], [2, 1], [3, 1]]),
        # m1: learners 0 (a pass) and 2 (a fail).
        (2, [[0.0, 1], [1.0, 1]], [[1, 2]]),
    ]
    assert "learner-" not in str(rows)
    # A second run replaces the rows, it does not add to them.
    tasks.peer_distributions_refresh.apply().get()
    assert PeerModuleDistribution.objects.count() == 2


def test_the_job_is_on_the_beat_schedule() -> None:
    entries = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert entries["study_paths.peer_distributions_refresh"] == settings.CO_PEER_REFRESH_SECONDS == 3600.0
