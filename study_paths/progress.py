"""Progress analytics (seeds/004 CO-003-011): a path's progress and the learner's dashboard.

Read models computed with aggregate queries — the query count is the same after 10 tasks or
10,000 — and cached per learner (`study_paths.cache.read_model_answer`), forgotten by every task
event and path write. The definitions (also in the README):

* a task is **planned** unless a replanning dropped it (`metadata.replanned`: the learner never
  had it); `total` counts planned tasks, `completed` those that got a verdict after grading
  (`passed` or `failed`; skipped and expired tasks are not completed);
* **accuracy** is the share of graded attempts (task evaluations) that passed — a task passed
  at the second attempt is one pass in two attempts; null without a graded attempt;
* **time** of a completed task runs from its start to its verdict; `time_spent_seconds` sums it,
  `avg_time_seconds` averages it over the completed tasks (rounded to whole seconds);
* **days** are UTC days (learners have no time zone here); a **streak** is a run of consecutive
  days with at least one passed task; the current streak is alive while its last day is today or
  yesterday (today may still bring a pass);
* **current_difficulty** is the difficulty of the task the learner is on (a started one, else
  the first pending one in plan order), else of the last completed one; null on an empty path.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Case, Count, DurationField, ExpressionWrapper, F, IntegerField, Max, Q, QuerySet, Sum, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from co_project.errors import NotFound
from personalization.selectors import mastery_list, review_load_by_day
from study_paths import cache
from study_paths.models import StudyPath, StudyPathStatus, StudyTask, TaskEvaluation, TaskStatus

COMPLETED_STATUSES = (TaskStatus.PASSED, TaskStatus.FAILED)
OPEN_STATUSES = (TaskStatus.IN_PROGRESS, TaskStatus.SUBMITTED)
# The per-task difficulty progression lists the latest completed tasks only (the per-day one is whole).
PROGRESSION_TASKS = 100
REVIEW_LOAD_DAYS = 7


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _seconds(value: timedelta | None) -> float:
    return value.total_seconds() if value is not None else 0.0


def planned_tasks(**filters: Any) -> QuerySet[StudyTask]:
    """Tasks a replanning did not drop (no ordering: the aggregates group on their own keys)."""
    return StudyTask.objects.filter(**filters).exclude(metadata__has_key="replanned").order_by()


_DURATION = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
_COMPLETED = Q(status__in=COMPLETED_STATUSES)
_TIMED = Q(status__in=COMPLETED_STATUSES, started_at__isnull=False, finished_at__isnull=False)


@dataclass
class _Tally:
    total: int = 0
    completed: int = 0
    passed: int = 0
    timed: int = 0
    seconds: float = 0.0
    attempts: int = 0
    attempts_passed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        return {
            "completed": self.completed,
            "total": self.total,
            "passed": self.passed,
            "accuracy": _ratio(self.attempts_passed, self.attempts),
            "avg_time_seconds": round(self.seconds / self.timed) if self.timed else None,
            "time_spent_seconds": round(self.seconds),
            "attempts": self.attempts,
        }


def _streaks(pass_days: list[date], today: date) -> dict[str, Any]:
    longest = run = 0
    previous: date | None = None
    for day in pass_days:  # ascending, distinct
        run = run + 1 if previous is not None and day - previous == timedelta(days=1) else 1
        longest = max(longest, run)
        previous = day
    current = run if previous is not None and today - previous <= timedelta(days=1) else 0
    return {"current_days": current, "longest_days": longest, "last_pass_day": previous.isoformat() if previous else None}


def _current_difficulty(path_id: uuid.UUID) -> int | None:
    """One query: open tasks first, then pending in plan order, then finished ones latest first."""
    rank = Case(
        When(status__in=OPEN_STATUSES, then=Value(0)),
        When(status=TaskStatus.PENDING, then=Value(1)),
        When(status__in=COMPLETED_STATUSES, then=Value(2)),
        default=Value(3),
        output_field=IntegerField(),
    )
    order = Case(When(status__in=COMPLETED_STATUSES, then=-F("position")), default=F("position"), output_field=IntegerField())
    row = (
        planned_tasks(path_id=path_id)
        .exclude(status__in=(TaskStatus.SKIPPED, TaskStatus.EXPIRED))
        .annotate(rank=rank, order=order)
        .order_by("rank", "order")
        .values_list("difficulty", flat=True)
        .first()
    )
    return row


def study_path_progress_compute(*, path: StudyPath, today: date) -> dict[str, Any]:
    """The path's progress (five aggregate queries, whatever the history)."""
    tasks = planned_tasks(path_id=path.id)
    by_group = (
        tasks.values("module_id", "module__slug", "module__title", "module__position", "topics")
        .annotate(
            total=Count("id"),
            completed=Count("id", filter=_COMPLETED),
            passed=Count("id", filter=Q(status=TaskStatus.PASSED)),
            timed=Count("id", filter=_TIMED),
            seconds=Sum(_DURATION, filter=_TIMED),
        )
        .order_by()
    )
    attempts = (
        TaskEvaluation.objects.filter(task__path_id=path.id)
        .values("task__module_id", "task__topics")
        .annotate(attempts=Count("id"), passed=Count("id", filter=Q(score__gte=1.0)))
        .order_by()
    )
    modules: dict[uuid.UUID, _Tally] = defaultdict(_Tally)
    topics: dict[str, _Tally] = defaultdict(_Tally)
    overall = _Tally()
    for row in by_group:
        seconds = _seconds(row["seconds"])
        module = modules[row["module_id"]]
        module.extra = {
            "id": str(row["module_id"]),
            "slug": row["module__slug"],
            "title": row["module__title"],
            "position": row["module__position"],
        }
        for tally in (module, overall, *(topics[topic] for topic in dict.fromkeys(row["topics"]))):
            tally.total += row["total"]
            tally.completed += row["completed"]
            tally.passed += row["passed"]
            tally.timed += row["timed"]
            tally.seconds += seconds
    for row in attempts:
        module = modules[row["task__module_id"]]
        for tally in (module, overall, *(topics[topic] for topic in dict.fromkeys(row["task__topics"]))):
            tally.attempts += row["attempts"]
            tally.attempts_passed += row["passed"]

    days = list(
        tasks.filter(_COMPLETED, finished_at__isnull=False)
        .annotate(day=TruncDate("finished_at", tzinfo=UTC))
        .values("day")
        .annotate(
            completed=Count("id"),
            passed=Count("id", filter=Q(status=TaskStatus.PASSED)),
            difficulty_sum=Sum("difficulty"),
            difficulty_max=Max("difficulty"),
        )
        .order_by("day")
    )
    latest = list(
        tasks.filter(_COMPLETED)
        .order_by(F("finished_at").desc(nulls_last=True), "-position")
        .values("id", "position", "kind", "difficulty", "status", "finished_at", "module__slug")[:PROGRESSION_TASKS]
    )
    ordered = sorted((m for m in modules.values() if m.extra), key=lambda m: (m.extra["position"], m.extra["slug"]))
    return {
        "path_id": str(path.id),
        "track": {"id": str(path.track_id), "slug": path.track.slug, "title": path.track.title},
        "status": path.status,
        "modules": {m.extra["slug"]: {"id": m.extra["id"], "title": m.extra["title"], **m.figures()} for m in ordered},
        "topics": {topic: topics[topic].figures() for topic in sorted(topics)},
        "totals": overall.figures(),
        "overall_accuracy": _ratio(overall.attempts_passed, overall.attempts),
        "current_difficulty": _current_difficulty(path.id),
        "difficulty_progression": {
            "by_task": [
                {
                    "task_id": str(row["id"]),
                    "position": row["position"],
                    "module": row["module__slug"],
                    "kind": row["kind"],
                    "difficulty": row["difficulty"],
                    "status": row["status"],
                    "finished_at": row["finished_at"].isoformat() if row["finished_at"] else None,
                }
                for row in reversed(latest)
            ],
            "by_day": [
                {
                    "day": row["day"].isoformat(),
                    "completed": row["completed"],
                    "passed": row["passed"],
                    "avg_difficulty": round(row["difficulty_sum"] / row["completed"], 2),
                    "max_difficulty": row["difficulty_max"],
                }
                for row in days
            ],
        },
        "streaks": _streaks([row["day"] for row in days if row["passed"]], today),
    }


def study_path_progress(*, learner_id: str, path_id: uuid.UUID, now: datetime | None = None) -> dict[str, Any]:
    """The learner's path progress, cached (no query on a hit); anyone else's path is not found."""
    today = (now or timezone.now()).astimezone(UTC).date()

    def compute() -> dict[str, Any]:
        path = StudyPath.objects.filter(id=path_id, learner_id=learner_id).select_related("track").first()
        if path is None:
            raise NotFound("No such study path.")
        return study_path_progress_compute(path=path, today=today)

    return cache.read_model_answer(learner_id=learner_id, name=f"progress:{path_id}:{today.isoformat()}", compute=compute)


# --- the dashboard ---------------------------------------------------------------------------------


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def learner_dashboard_paths(*, learner_id: str, today: date) -> dict[str, Any]:
    """The study-path half of the dashboard (two queries): every path with its task figures."""
    tomorrow = _midnight(today + timedelta(days=1))
    week_start = _midnight(today - timedelta(days=today.weekday()))
    paths = list(StudyPath.objects.filter(learner_id=learner_id).select_related("track").order_by("-created_at", "id"))
    counts = {
        row["path_id"]: row
        for row in planned_tasks(learner_id=learner_id)
        .values("path_id")
        .annotate(
            total=Count("id"),
            completed=Count("id", filter=_COMPLETED),
            passed=Count("id", filter=Q(status=TaskStatus.PASSED)),
            due_today=Count("id", filter=Q(status__in=(TaskStatus.PENDING, *OPEN_STATUSES), due_at__lt=tomorrow)),
            done_this_week=Count("id", filter=Q(_COMPLETED, finished_at__gte=week_start)),
        )
    }
    items = []
    for path in paths:
        row = counts.get(path.id, {})
        active = path.status == StudyPathStatus.ACTIVE
        items.append(
            {
                "id": str(path.id),
                "track": {"id": str(path.track_id), "slug": path.track.slug, "title": path.track.title},
                "status": path.status,
                "tasks": {"total": row.get("total", 0), "completed": row.get("completed", 0), "passed": row.get("passed", 0)},
                # Only an active path's tasks are due: a paused path stops the clock.
                "due_today": row.get("due_today", 0) if active else 0,
                "done_this_week": row.get("done_this_week", 0),
            }
        )
    return {
        "day": today.isoformat(),
        "week_start": week_start.date().isoformat(),
        "due_today": sum(item["due_today"] for item in items),
        "done_this_week": sum(item["done_this_week"] for item in items),
        "paths": items,
    }


def learner_dashboard(*, learner_id: str, now: datetime | None = None) -> dict[str, Any]:
    """The learner's dashboard: the study-path half cached (no query on a hit), the learner-model
    half (topic mastery, review load) read fresh — any front door's verdict (a session's too) and
    the review scheduler change it, and it is two small queries bounded by the catalogue."""
    today = (now or timezone.now()).astimezone(UTC).date()
    answer = cache.read_model_answer(
        learner_id=learner_id,
        name=f"dashboard:{today.isoformat()}",
        compute=lambda: learner_dashboard_paths(learner_id=learner_id, today=today),
    )
    mastery = dict(mastery_list(learner_id=learner_id, key_type="topic").values_list("key_id", "score"))
    load = review_load_by_day(learner_id=learner_id, start=_midnight(today), days=REVIEW_LOAD_DAYS)
    return {
        **answer,
        "mastery_by_topic": mastery,
        "review_load": [{"day": day.isoformat(), "reviews": reviews} for day, reviews in load],
    }
