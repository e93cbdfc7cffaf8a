"""A published ladder track (tests/personalization/factories.py) and helpers to read a path back."""

from __future__ import annotations

from typing import Any

from study_paths.models import StudyPath, StudyTask, TaskEvent
from tests.personalization.factories import LADDER, ladder_pack, publish_ladder
from tests.tracks.factories import add_problem, pack_document, publish
from tracks.selectors import problem_slugs

__all__ = ["LADDER", "events_of", "ladder_pack", "plan_of", "publish_ladder", "publish_wide_track"]


def publish_wide_track(track_slug: str, *, modules: int, per_module: int) -> None:
    """A track of `modules` modules with `per_module` problems each (difficulties 1–3, two topics)."""
    problems = [
        add_problem(
            slug=f"{track_slug}-m{m}-p{p}",
            module=f"m{m}",
            difficulty=1 + p % 3,
            topics=["arrays" if p % 2 else "strings"],
            title=f"Problem {m}.{p}",
        )
        for m in range(modules)
        for p in range(per_module)
    ]
    module_rows = [{"slug": f"m{m}", "title": f"Module {m}", "outcomes": [f"outcome-{m}"]} for m in range(modules)]
    publish(pack_document(track_slug=track_slug, modules=module_rows, problems=problems))


def plan_of(path: StudyPath, *, statuses: tuple[str, ...] | None = None) -> list[tuple[Any, ...]]:
    """(slug, kind, difficulty, status) of the path's tasks in order (replanned ones included)."""
    tasks = list(StudyTask.objects.filter(path=path).order_by("position"))
    slugs = problem_slugs(problem_ids=[t.problem_id for t in tasks if t.problem_id])
    return [
        (slugs.get(t.problem_id, t.problem_ref), t.kind, t.difficulty, t.status)
        for t in tasks
        if statuses is None or t.status in statuses
    ]


def events_of(task: StudyTask) -> list[tuple[int, str, dict[str, Any]]]:
    return list(TaskEvent.objects.filter(task=task).order_by("sequence").values_list("sequence", "event_type", "payload"))
