"""Simulated study histories for the progress, dashboard and peer tests, and the expected figures
computed from what was simulated — not from the code under test.

A step takes the path's next pending task and gives it graded attempts through the study-task
origin's own verdict recorder (`study_task_verdict_record`, as the pipeline calls it: the task's
evaluation, events, status and the plan advancing), or skips it through the task service."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db import transaction

from study_paths.attempts import study_task_verdict_record
from study_paths.lifecycle import study_task_act
from study_paths.models import StudyPath, StudyTask, TaskEvaluation
from submissions.models import Submission
from submissions.origins import STUDY_TASK_ORIGIN, AttemptVerdict
from tests.tracks.factories import add_problem, pack_document, publish

TOPICS = (["arrays"], ["strings", "arrays"], ["hashing"], ["graphs", "strings"])


def publish_progress_track(slug: str = "progress", *, modules: int = 3, per_module: int = 8) -> None:
    """A track whose problems mix modules, difficulties 1–3 and one or two topics."""
    problems = [
        add_problem(
            slug=f"{slug}-m{m}-p{p}",
            module=f"m{m}",
            difficulty=1 + p % 3,
            topics=list(TOPICS[(m + p) % len(TOPICS)]),
            title=f"Problem {m}.{p}",
        )
        for m in range(modules)
        for p in range(per_module)
    ]
    module_rows = [{"slug": f"m{m}", "title": f"Module {m}", "outcomes": [f"outcome-{m}"]} for m in range(modules)]
    publish(pack_document(track_slug=slug, modules=module_rows, problems=problems))


@dataclass(frozen=True)
class Step:
    """`attempts`: each graded attempt passed or not (a pass ends the task); empty: a skip."""

    attempts: tuple[bool, ...]
    start: datetime
    minutes: float = 10.0


@dataclass
class Done:
    task_id: uuid.UUID
    module: str
    topics: list[str]
    difficulty: int
    position: int
    kind: str
    status: str
    attempts: tuple[bool, ...]
    started_at: datetime
    finished_at: datetime


@dataclass
class History:
    learner_id: str
    path: StudyPath
    done: list[Done] = field(default_factory=list)


def _next_pending(path: StudyPath) -> StudyTask:
    return StudyTask.objects.select_related("module").filter(path=path, status="pending").order_by("position").first()


def _verdict(task: StudyTask, *, passed: bool, at: datetime) -> None:
    StudyTask.objects.filter(id=task.id).update(status="submitted")
    submission = Submission.objects.create(
        learner_id=task.learner_id,
        origin=STUDY_TASK_ORIGIN,
        origin_id=task.id,
        problem_id=task.problem_id,
        problem_ref=task.problem_ref,
        subject="coding",
        language="python",
        payload={"language": "python", "code": "..."},
        payload_sha256="0" * 64,
        status="passed" if passed else "failed",
        visible_passed=3 if passed else 1,
        visible_total=3,
        hidden_passed=1 if passed else 0,
        hidden_total=1,
        finished_at=at,
    )
    with transaction.atomic():
        study_task_verdict_record(
            AttemptVerdict(
                origin_id=task.id,
                learner_id=task.learner_id,
                problem_id=task.problem_id,
                graded=True,
                status="passed" if passed else "failed",
                categories=[] if passed else ["negatives"],
                at=at,
                submission_id=submission.id,
                visible_passed=3 if passed else 1,
                visible_total=3,
                hidden_passed=1 if passed else 0,
                hidden_total=1,
                visible_outcomes=("passed",) * 3 if passed else ("passed", "wrong_answer", "wrong_answer"),
            )
        )


def simulate(history: History, steps: list[Step]) -> History:
    for step in steps:
        task = _next_pending(history.path)
        assert task is not None, "the path ran out of tasks"
        end = step.start + timedelta(minutes=step.minutes)
        if not step.attempts:
            study_task_act(learner_id=history.learner_id, task_id=task.id, action="skip", now=end)
            continue
        StudyTask.objects.filter(id=task.id).update(status="in_progress", started_at=step.start)
        for index, passed in enumerate(step.attempts):
            at = step.start + timedelta(minutes=step.minutes * (index + 1) / len(step.attempts))
            _verdict(task, passed=passed, at=at)
        task.refresh_from_db()
        assert task.status in ("passed", "failed"), task.status
        history.done.append(
            Done(
                task_id=task.id,
                module=task.module.slug,
                topics=list(task.topics),
                difficulty=task.difficulty,
                position=task.position,
                kind=task.kind,
                status=task.status,
                attempts=step.attempts,
                started_at=step.start,
                finished_at=end,
            )
        )
    return history


# --- expected figures ----------------------------------------------------------------------------


def _figures(done: list[Done], total: int) -> dict[str, Any]:
    attempts = sum(len(d.attempts) for d in done)
    passes = sum(sum(d.attempts) for d in done)
    seconds = sum((d.finished_at - d.started_at).total_seconds() for d in done)
    return {
        "completed": len(done),
        "total": total,
        "passed": sum(d.status == "passed" for d in done),
        "accuracy": round(passes / attempts, 4) if attempts else None,
        "avg_time_seconds": round(seconds / len(done)) if done else None,
        "time_spent_seconds": round(seconds),
        "attempts": attempts,
    }


def planned(path: StudyPath) -> list[StudyTask]:
    return [t for t in StudyTask.objects.select_related("module").filter(path=path) if not t.metadata.get("replanned")]


def expected_progress(history: History, today: date) -> dict[str, Any]:
    tasks = planned(history.path)
    modules: dict[str, list[StudyTask]] = defaultdict(list)
    topics: dict[str, list[StudyTask]] = defaultdict(list)
    for task in tasks:
        modules[task.module.slug].append(task)
        for topic in dict.fromkeys(task.topics):
            topics[topic].append(task)
    done_of = {d.task_id: d for d in history.done}
    module_rows = sorted({(t.module.position, t.module.slug, str(t.module_id), t.module.title) for t in tasks})
    days: dict[date, list[Done]] = defaultdict(list)
    for d in history.done:
        days[d.finished_at.date()].append(d)
    pass_days = sorted(day for day, items in days.items() if any(d.status == "passed" for d in items))
    longest, run, previous = 0, 0, None
    for day in pass_days:
        run = run + 1 if previous and (day - previous).days == 1 else 1
        longest, previous = max(longest, run), day
    current = run if previous and (today - previous).days <= 1 else 0
    latest = sorted(history.done, key=lambda d: (d.finished_at, d.position))[-100:]
    open_tasks = sorted((t for t in tasks if t.status in ("in_progress", "submitted")), key=lambda t: t.position)
    pending = sorted((t for t in tasks if t.status == "pending"), key=lambda t: t.position)
    finished = sorted((t for t in tasks if t.status in ("passed", "failed")), key=lambda t: -t.position)
    current_task = (open_tasks or pending or finished or [None])[0]
    return {
        "modules": {
            slug: {
                "id": module_id,
                "title": title,
                **_figures([done_of[t.id] for t in modules[slug] if t.id in done_of], len(modules[slug])),
            }
            for _, slug, module_id, title in module_rows
        },
        "topics": {
            topic: _figures([done_of[t.id] for t in topics[topic] if t.id in done_of], len(topics[topic]))
            for topic in sorted(topics)
        },
        "totals": _figures(history.done, len(tasks)),
        "overall_accuracy": _figures(history.done, len(tasks))["accuracy"],
        "current_difficulty": current_task.difficulty if current_task else None,
        "difficulty_progression": {
            "by_task": [
                {
                    "task_id": str(d.task_id),
                    "position": d.position,
                    "module": d.module,
                    "kind": d.kind,
                    "difficulty": d.difficulty,
                    "status": d.status,
                    "finished_at": d.finished_at.isoformat(),
                }
                for d in latest
            ],
            "by_day": [
                {
                    "day": day.isoformat(),
                    "completed": len(items),
                    "passed": sum(d.status == "passed" for d in items),
                    "avg_difficulty": round(sum(d.difficulty for d in items) / len(items), 2),
                    "max_difficulty": max(d.difficulty for d in items),
                }
                for day, items in sorted(days.items())
            ],
        },
        "streaks": {
            "current_days": current,
            "longest_days": longest,
            "last_pass_day": previous.isoformat() if previous else None,
        },
    }


def grade(task: StudyTask, attempts: tuple[bool, ...], at: datetime) -> None:
    """Give a task graded attempts straight in the rows (no replanning): its evaluations, and
    `passed` when the last attempt passed, else `failed` — for histories of many learners."""
    for index, passed in enumerate(attempts):
        submission = Submission.objects.create(
            learner_id=task.learner_id,
            origin=STUDY_TASK_ORIGIN,
            origin_id=task.id,
            problem_id=task.problem_id,
            problem_ref=task.problem_ref,
            subject="coding",
            payload={},
            payload_sha256="0" * 64,
            status="passed" if passed else "failed",
            finished_at=at,
        )
        TaskEvaluation.objects.create(
            task=task, submission=submission, score=1.0 if passed else 0.25, created_at=at + timedelta(seconds=index)
        )
    StudyTask.objects.filter(id=task.id).update(
        status="passed" if attempts[-1] else "failed", attempt_count=len(attempts), started_at=at, finished_at=at
    )
