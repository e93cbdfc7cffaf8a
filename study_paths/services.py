"""Writes of study paths: creating a path with its first tasks, and reshaping the pending tail
after each verdict. The plan itself comes from `study_paths.planner` (pure); this module gathers
its inputs (the track from `tracks`, candidates from the problem bank, the learner model from
`personalization`), stores its output and appends the task events.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jsonschema
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from co_project.errors import NotFound, ProblemRepositoryNotReady
from personalization.selectors import DueReview as LearnerDueReview
from personalization.selectors import learner_profile, reviews_due, topic_mastery
from study_paths import events
from study_paths.errors import ActiveStudyPathExists, StudyPathConfigInvalid, StudyPathNotActive, StudyTaskFinished
from study_paths.models import (
    FINISHED_TASK_STATUSES,
    StudyPath,
    StudyPathStatus,
    StudyTask,
    TaskStatus,
)
from study_paths.planner import (
    QUEUE_REVIEW_SOURCE,
    TERMS,
    Candidate,
    DoneTask,
    DueReview,
    LearnerStart,
    Plan,
    PlanConfig,
    PlannedTask,
    planner_for,
)
from study_paths.selectors import study_path_active_for, study_path_task_rows
from tracks.problem_bank import problems_by_module
from tracks.selectors import TrackOutline, track_outline

logger = logging.getLogger("co.study_paths")

# --- config ------------------------------------------------------------------------------------

STUDY_PATH_CONFIG_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "daily_task_target": {"type": "integer", "minimum": 1, "maximum": 20},
        "difficulty_range": {
            "type": "object",
            "additionalProperties": False,
            "required": ["min", "max"],
            "properties": {
                "min": {"type": "integer", "minimum": 1, "maximum": 5},
                "max": {"type": "integer", "minimum": 1, "maximum": 5},
            },
        },
        "modules": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 100},
            "minItems": 1,
            "maxItems": 100,
            "uniqueItems": True,
        },
        "weights": {
            "type": "object",
            "additionalProperties": False,
            "properties": {term: {"type": "number", "minimum": 0, "maximum": 10} for term in TERMS},
        },
        "max_reviews_per_day": {"type": "integer", "minimum": 0, "maximum": 20},
        # The old name of max_reviews_per_day, still accepted (stored as max_reviews_per_day).
        "review_cap_per_day": {"type": "integer", "minimum": 0, "maximum": 20},
        "batch_size": {"type": "integer", "minimum": 1, "maximum": 50},
        "expire_after_days": {"type": "integer", "minimum": 1, "maximum": 90},
        "attempts_per_task": {"type": "integer", "minimum": 1, "maximum": 10},
    },
}
CONFIG_DEFAULTS: dict[str, Any] = {
    "daily_task_target": 3,
    "difficulty_range": {"min": 1, "max": 5},
    "max_reviews_per_day": 2,
    "batch_size": 10,
    "expire_after_days": 7,
    "attempts_per_task": 2,
}
CANDIDATES_PER_MODULE = 500


def _config_schema_check(config: Any) -> None:
    validator = jsonschema.Draft202012Validator(STUDY_PATH_CONFIG_SCHEMA)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        messages = [f"{'/'.join(map(str, e.absolute_path)) or '(config)'}: {e.message[:200]}" for e in errors[:20]]
        raise StudyPathConfigInvalid(fields={"config": messages})


def study_path_config_aliases_resolve(config: Any) -> Any:
    """The config with `review_cap_per_day` (the old name) renamed `max_reviews_per_day`; giving
    both with different values is a 400. Anything but an object is left to the schema."""
    if not isinstance(config, dict) or "review_cap_per_day" not in config:
        return config
    legacy = config["review_cap_per_day"]
    if "max_reviews_per_day" in config and config["max_reviews_per_day"] != legacy:
        raise StudyPathConfigInvalid(
            fields={"config": ["review_cap_per_day: the old name of max_reviews_per_day; give only max_reviews_per_day."]}
        )
    resolved = {key: value for key, value in config.items() if key != "review_cap_per_day"}
    resolved["max_reviews_per_day"] = legacy
    return resolved


def study_path_config_validate(config: Any) -> dict[str, Any]:
    """The config with every default filled in (stored so, a later change of a default never
    changes an existing path's plan); StudyPathConfigInvalid names every problem by its place.
    The schema first; then what a schema cannot say (min ≤ max). Module slugs are checked
    against the track by `study_path_modules`."""
    _config_schema_check(config)
    config = study_path_config_aliases_resolve(config)
    normalized = {**CONFIG_DEFAULTS, **config}
    normalized["weights"] = {**{t: float(settings.CO_RECOMMENDATION_WEIGHTS[t]) for t in TERMS}, **config.get("weights", {})}
    low, high = normalized["difficulty_range"]["min"], normalized["difficulty_range"]["max"]
    if low > high:
        raise StudyPathConfigInvalid(fields={"config": [f"difficulty_range: min {low} is above max {high}."]})
    return normalized


def study_path_modules(config: dict[str, Any], outline: TrackOutline, *, strict: bool = True) -> list[str]:
    """Module keys in the track's order, or in the config's order when it names them. Not strict
    (an existing path): a module retired since is left out instead of refused."""
    by_slug = {module.slug: module.key for module in outline.modules}
    named = config.get("modules")
    if named is None:
        return list(by_slug.values())
    unknown = [slug for slug in named if slug not in by_slug]
    if unknown and not strict:
        return [by_slug[slug] for slug in named if slug in by_slug]
    if unknown:
        raise StudyPathConfigInvalid(
            fields={"config": [f"modules: no published module {slug!r} in this track." for slug in unknown]}
        )
    return [by_slug[slug] for slug in named]


def _plan_config(config: dict[str, Any], modules: list[str]) -> PlanConfig:
    return PlanConfig(
        difficulty_min=config["difficulty_range"]["min"],
        difficulty_max=config["difficulty_range"]["max"],
        modules=tuple(modules),
        weights=dict(config["weights"]),
        daily_target=config["daily_task_target"],
        # Paths stored before the rename keep their `review_cap_per_day`.
        review_cap_per_day=config.get(
            "max_reviews_per_day", config.get("review_cap_per_day", CONFIG_DEFAULTS["max_reviews_per_day"])
        ),
        batch_size=config["batch_size"],
        mastery_threshold=settings.CO_MASTERY_THRESHOLD,
    )


# --- planner inputs ----------------------------------------------------------------------------


def _candidates(outline: TrackOutline, config: PlanConfig) -> tuple[list[Candidate], dict[str, str]]:
    """The plan's candidates from the problem bank, module by module in order, and the titles of
    those with a row here (what a new task shows)."""
    found: list[Candidate] = []
    titles: dict[str, str] = {}
    for module in config.modules:
        for item in problems_by_module(
            module=module, difficulty_range=(config.difficulty_min, config.difficulty_max), limit=CANDIDATES_PER_MODULE
        ):
            found.append(
                Candidate(
                    ref=item.id,
                    problem_id=item.id if item.source == "database" else None,
                    module=module,
                    difficulty=item.difficulty,
                    topics=item.topics,
                    slug=item.slug,
                )
            )
            if item.source == "database":
                titles[item.id] = item.title
    return found, titles


def _catalogue_digest(candidates: Sequence[Candidate]) -> str:
    """The catalogue version the plan saw: same digest, same candidates."""
    raw = json.dumps([[c.ref, c.slug, c.module, c.difficulty, list(c.topics)] for c in candidates], separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def _due_reviews(reviews: Sequence[LearnerDueReview]) -> list[DueReview]:
    return [
        DueReview(ref=r.problem_id, reason=r.reason, bucket=r.bucket, due_at=r.due_at.isoformat(), item_id=r.item_id)
        for r in reviews
    ]


def _learner_start(path: StudyPath) -> LearnerStart:
    start = path.learner_start
    return LearnerStart(
        level=int(start.get("level", 1)),
        mastery=dict(start.get("mastery", {})),
        passed=frozenset(start.get("passed", ())),
        attempted=frozenset(start.get("attempted", ())),
    )


def _module_ids(outline: TrackOutline) -> dict[str, uuid.UUID]:
    return {module.key: module.id for module in outline.modules}


def _new_tasks(
    path: StudyPath,
    planned: Sequence[PlannedTask],
    *,
    first_position: int,
    module_ids: dict[str, uuid.UUID],
    now: datetime,
    not_before: datetime | None = None,
) -> list[StudyTask]:
    """Rows for planned tasks; due dates never fall before `not_before` (the last kept task's),
    so the plan's order and the order of due dates agree and `next` follows the plan."""
    expire_after = timedelta(days=path.config["expire_after_days"])
    tasks = []
    for offset, item in enumerate(planned):
        due = max(now + timedelta(days=item.day), not_before or now)
        metadata: dict[str, Any] = {"reasons": list(item.reasons)}
        if item.review_source is not None:
            metadata["review_source"] = dict(item.review_source)
        tasks.append(
            StudyTask(
                path=path,
                learner_id=path.learner_id,
                module_id=module_ids[item.module],
                problem_id=uuid.UUID(item.problem_id) if item.problem_id else None,
                problem_ref=item.ref,
                kind=item.kind,
                difficulty=item.difficulty,
                topics=list(item.topics),
                position=first_position + offset,
                due_at=due,
                expires_at=due + expire_after,
                metadata=metadata,
                created_at=now,
                updated_at=now,
            )
        )
    return tasks


# --- create --------------------------------------------------------------------------------------


def study_path_create(
    *, learner_id: str, track: str, config: Any = None, now: datetime | None = None, seed: int | None = None
) -> StudyPath:
    """A new active path on the track with its first `batch_size` tasks (and their `created`
    events), returned with them as `upcoming_tasks` and with the `track_outline` it was planned
    against, shown as a read would show them (nothing to read back). 409 when the learner
    already has an active path on the track; 400 for a bad config; 409 (problem repository not
    ready) when the remote bank cannot answer."""
    now = now or timezone.now()
    config = {} if config is None else config
    _config_schema_check(config)
    outline = track_outline(reference=track)
    # A learner with an active path gets that answer before any finer point of the config. The
    # partial unique index settles a race between two creates (below).
    if study_path_active_for(learner_id=learner_id, track_id=outline.id) is not None:
        raise ActiveStudyPathExists()
    normalized = study_path_config_validate(config)
    modules = study_path_modules(normalized, outline)
    plan_config = _plan_config(normalized, modules)
    candidates, titles = _candidates(outline, plan_config)
    version = settings.CO_STUDY_PATH_ALGORITHM
    planner = planner_for(version)
    profile = learner_profile(learner_id=learner_id)
    refs = {c.ref for c in candidates}
    slug_of = {c.ref: c.slug for c in candidates}
    topics = {topic for c in candidates for topic in c.topics}
    start = LearnerStart(
        level=profile.level,
        mastery={topic: score for topic, score in sorted(profile.mastery.items()) if topic in topics},
        passed=profile.passed & refs,
        attempted=profile.attempted & refs,
    )
    seed = secrets.randbits(62) if seed is None else seed
    plan = planner(
        candidates=candidates,
        learner=start,
        config=plan_config,
        seed=seed,
        history=(),
        due_reviews=_due_reviews(profile.due_reviews),
        mastery_now=start.mastery,
    )
    path = StudyPath(
        learner_id=learner_id,
        track_id=outline.id,
        status=StudyPathStatus.ACTIVE,
        config=normalized,
        algorithm_version=version,
        seed=seed,
        learner_start={
            "level": start.level,
            "mastery": dict(start.mastery),
            "passed": sorted(start.passed),
            "attempted": sorted(start.attempted),
        },
        catalogue_digest=_catalogue_digest(candidates),
        created_at=now,
        updated_at=now,
    )
    with transaction.atomic():
        try:
            # No savepoint of its own: on a conflict the whole transaction is rolled back anyway.
            path.save(force_insert=True)
        except IntegrityError as exc:  # a concurrent create won the partial unique index
            raise ActiveStudyPathExists() from exc
        tasks = StudyTask.objects.bulk_create(
            _new_tasks(path, plan.tasks, first_position=1, module_ids=_module_ids(outline), now=now)
        )
        events.task_events_append(events=[events.task_created(task) for task in tasks], at=now, new_tasks=True)
    module_slugs = {module.id: module.slug for module in outline.modules}
    for task in tasks:
        task.module_slug = module_slugs[task.module_id]
        task.problem_title = titles.get(task.problem_ref) if task.problem_id else None
        task.problem_slug = slug_of.get(task.problem_ref) if task.problem_id else None
    path.upcoming_tasks = tasks
    path.track_outline = outline
    logger.info(
        "study path created",
        extra={"learner_id": learner_id, "path_id": str(path.id), "tasks": len(tasks), "algorithm": version},
    )
    return path


# --- adaptive continuation -----------------------------------------------------------------------

OPEN_TASK_STATUSES = (TaskStatus.IN_PROGRESS, TaskStatus.SUBMITTED)
VERDICTS = (TaskStatus.PASSED, TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.EXPIRED)


def _history(rows: Sequence[dict[str, Any]]) -> tuple[list[DoneTask], list[dict[str, Any]]]:
    """(the tasks the planner replays, the pending tail in order). Tasks a replanning dropped
    are not history: the learner never did them."""
    history, pending = [], []
    for row in rows:
        if row["status"] == TaskStatus.PENDING:
            pending.append(row)
            continue
        if row["metadata"].get("replanned"):
            continue
        source = row["metadata"].get("review_source") or {}
        history.append(
            DoneTask(
                ref=row["problem_ref"],
                module=row["module_key"],
                difficulty=row["difficulty"],
                topics=tuple(row["topics"]),
                kind=row["kind"],
                outcome="open" if row["status"] in OPEN_TASK_STATUSES else row["status"],
                review_key=source.get("key"),
            )
        )
    return history, pending


def _reviews_today(rows: Sequence[dict[str, Any]], *, now: datetime) -> int:
    """Review-queue tasks of the path the learner has open or finished (passed or failed) today
    (UTC): they count against today's `max_reviews_per_day`."""
    today = now.date()
    count = 0
    for row in rows:
        source = row["metadata"].get("review_source") or {}
        if source.get("source") != QUEUE_REVIEW_SOURCE or row["metadata"].get("replanned"):
            continue
        finished = row["finished_at"]
        if row["status"] in OPEN_TASK_STATUSES or (
            row["status"] in (TaskStatus.PASSED, TaskStatus.FAILED) and finished is not None and finished.date() == today
        ):
            count += 1
    return count


@dataclass(frozen=True)
class Replan:
    plan: Plan
    rows: list[dict[str, Any]]  # the path's tasks in order (study_path_task_rows)
    outline: TrackOutline
    catalogue_digest: str


def study_path_plan(*, path: StudyPath, now: datetime | None = None) -> Replan:
    """Regenerate the path's pending tail from its stored inputs and history, writing nothing.
    The path's own planner version is used, whatever CO_STUDY_PATH_ALGORITHM says now."""
    outline = track_outline(reference=str(path.track_id))
    module_ids = _module_ids(outline)
    key_of = {module_id: key for key, module_id in module_ids.items()}
    plan_config = _plan_config(path.config, study_path_modules(path.config, outline, strict=False))
    candidates, _titles = _candidates(outline, plan_config)
    rows = study_path_task_rows(path_id=path.id)
    for row in rows:
        row["module_key"] = key_of.get(row["module_id"], "")
    history, _ = _history(rows)
    plan = planner_for(path.algorithm_version)(
        candidates=candidates,
        learner=_learner_start(path),
        config=plan_config,
        seed=path.seed,
        history=history,
        due_reviews=_due_reviews(reviews_due(learner_id=path.learner_id, now=now)),
        reviews_today=_reviews_today(rows, now=now or timezone.now()),
        mastery_now=topic_mastery(learner_id=path.learner_id, topics=(t for c in candidates for t in c.topics)),
    )
    return Replan(plan=plan, rows=rows, outline=outline, catalogue_digest=_catalogue_digest(candidates))


def _same(row: dict[str, Any], planned: PlannedTask, key_of: dict[uuid.UUID, str]) -> bool:
    return (row["problem_ref"], key_of.get(row["module_id"], "")) == planned.identity()


def study_path_advance(*, task: StudyTask, verdict: str, now: datetime | None = None) -> StudyPath:
    """Record a task's verdict (passed, failed, skipped, expired) and reshape the pending tail.

    The tail is a projection that assumes passes, so after a pass it stays as it was and one task
    is appended; after a miss (or a skip) the tasks that differ from the new plan are dropped
    (`skipped`, marked `replanned`, with a `status_changed` event) and the new ones appended.
    Owns its transaction; locks the path, so verdicts on one path are applied one at a time.
    When the plan cannot be regenerated (the track was unpublished, the remote bank is down) the
    verdict is still recorded and the tail kept; the next verdict replans."""
    if verdict not in VERDICTS:
        raise ValueError(f"not a verdict: {verdict!r}")
    now = now or timezone.now()
    with transaction.atomic():
        path = StudyPath.objects.select_for_update().get(id=task.path_id)
        if path.status not in (StudyPathStatus.ACTIVE, StudyPathStatus.PAUSED):
            raise StudyPathNotActive()
        task = StudyTask.objects.select_for_update().get(id=task.id)
        if task.status in FINISHED_TASK_STATUSES:
            raise StudyTaskFinished()
        before = task.status
        task.status = verdict
        task.finished_at = now
        task.updated_at = now
        task.save(update_fields=["status", "finished_at", "updated_at"])
        changes = [
            events.task_expired(task, before=before)
            if verdict == TaskStatus.EXPIRED
            else events.task_status_changed(task, before=before, after=verdict, reason="verdict")
        ]

        try:  # reads only: a failure here leaves the transaction usable
            replan = study_path_plan(path=path, now=now)
        except (NotFound, ProblemRepositoryNotReady) as exc:
            logger.warning("study path not replanned", extra={"path_id": str(path.id), "reason": exc.message})
            events.task_events_append(events=changes, at=now)
            path.updated_at = now
            path.save(update_fields=["updated_at"])
            return path
        kept, created = study_path_tail_reshape(path=path, replan=replan, now=now, reason="replanned", changes=changes)
        still_open = kept or any(row["status"] in OPEN_TASK_STATUSES for row in replan.rows if row["id"] != task.id)
        path.updated_at = now
        fields = ["catalogue_digest", "updated_at"]
        if replan.plan.complete and not created and not still_open:
            path.status = StudyPathStatus.COMPLETED
            path.completed_at = now
            fields += ["status", "completed_at"]
        path.save(update_fields=fields)
    return path


def study_path_tail_reshape(
    *, path: StudyPath, replan: Replan, now: datetime, reason: str, changes: list[Any]
) -> tuple[int, list[StudyTask]]:
    """Make the pending tail the new plan's: the pending tasks it keeps stay (retyped if their
    kind changed), the others are dropped (`skipped`, marked `replanned`, a `status_changed`
    event with `reason`) and the new ones appended — all events, `changes` first, in one append.
    The caller holds the path's lock and saves the path. Returns (tasks kept, tasks created)."""
    plan, rows = replan.plan, replan.rows
    module_ids = _module_ids(replan.outline)
    key_of = {module_id: key for key, module_id in module_ids.items()}
    _, pending = _history(rows)
    kept = 0
    while kept < min(len(pending), len(plan.tasks)) and _same(pending[kept], plan.tasks[kept], key_of):
        kept += 1
    retyped = [
        StudyTask(id=row["id"], kind=planned.kind, updated_at=now)
        for row, planned in zip(pending[:kept], plan.tasks[:kept], strict=True)
        if row["kind"] != planned.kind
    ]
    if retyped:  # e.g. a challenge that a miss made a practice: same problem, same row
        StudyTask.objects.bulk_update(retyped, ["kind", "updated_at"])
    dropped = [
        StudyTask(
            id=row["id"],
            status=TaskStatus.SKIPPED,
            finished_at=now,
            updated_at=now,
            metadata={**row["metadata"], "replanned": True},
            path_id=path.id,
        )
        for row in pending[kept:]
    ]
    if dropped:
        StudyTask.objects.bulk_update(dropped, ["status", "finished_at", "updated_at", "metadata"])
        changes = [
            *changes,
            *(events.task_status_changed(t, before=TaskStatus.PENDING, after=TaskStatus.SKIPPED, reason=reason) for t in dropped),
        ]
    next_position = (rows[-1]["position"] if rows else 0) + 1
    created = StudyTask.objects.bulk_create(
        _new_tasks(
            path,
            plan.tasks[kept:],
            first_position=next_position,
            module_ids=module_ids,
            now=now,
            not_before=max((row["due_at"] for row in pending[:kept]), default=None),
        )
    )
    # New tasks' events are numbered from 1; the verdict's and the dropped tasks' follow theirs.
    events.task_events_append(events=[*changes, *(events.task_created(t) for t in created)], at=now)
    path.catalogue_digest = replan.catalogue_digest
    return kept, created
