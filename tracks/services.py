"""Writes to curriculum content. Every path that changes content — the admin, `import_coursepack`,
`seed` — goes through these functions, so they all produce the same database state.

Publishing is one transaction (nothing half-published) and idempotent: each row is compared
with what the pack says and saved only when something differs, so publishing the same pack
twice changes nothing. Rows are matched by slug, so a new pack version updates problems in
place and learners' history keeps pointing at the same ids; problems that left the pack are
retired (unpublished), never deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from co_project.errors import ApplicationError, Conflict, PayloadTooLarge
from tracks.coursepacks import PackCheck, check_coursepack
from tracks.models import (
    CoursePack,
    CoursePackSource,
    CoursePackStatus,
    HiddenTest,
    Label,
    Module,
    Problem,
    ProblemLanguage,
    Rubric,
    Topic,
    Track,
)

logger = logging.getLogger("co.tracks")


class CoursePackInvalid(ApplicationError):
    code = "coursepack_invalid"
    default_message = "The course pack has errors; nothing was published."


class CoursePackTooLarge(PayloadTooLarge):
    code = "coursepack_too_large"
    default_message = "The course pack file is too large; nothing was stored."


@dataclass
class PublishSummary:
    track: str
    version: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.retired)

    def as_dict(self) -> dict[str, Any]:
        return {
            "track": self.track,
            "version": self.version,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "retired": self.retired,
        }


# --- course pack lifecycle: upload → validate → publish ------------------------------------


def _too_large(what: str) -> CoursePackTooLarge:
    limit = settings.CO_COURSEPACK_MAX_BYTES
    return CoursePackTooLarge(f"{what} is larger than {limit} bytes, the most a course pack may be; nothing was stored.")


def coursepack_read_file(*, path: Path) -> bytes:
    """A pack file's bytes, never more than the limit: the size is checked before reading, and
    the read stops past the limit (a file that grows meanwhile is refused too)."""
    limit = settings.CO_COURSEPACK_MAX_BYTES
    if path.stat().st_size > limit:
        raise _too_large(str(path))
    with path.open("rb") as handle:
        content = handle.read(limit + 1)
    if len(content) > limit:
        raise _too_large(str(path))
    return content


def coursepack_dry_run(*, content: bytes) -> PackCheck:
    """Validate without writing anything (`import_coursepack --dry-run`)."""
    return check_coursepack(content)


def coursepack_upload(
    *, content: bytes, filename: str, source: CoursePackSource, uploaded_by: AbstractBaseUser | None = None
) -> CoursePack:
    """Store an uploaded pack file as a draft; nothing is checked or published yet (a file over
    the size limit is refused before anything is stored)."""
    if len(content) > settings.CO_COURSEPACK_MAX_BYTES:
        raise _too_large(Path(filename).name or "The file")
    pack = CoursePack(
        original_name=Path(filename).name[:255] or "coursepack.yaml",
        sha256=hashlib.sha256(content).hexdigest(),
        source=source,
        uploaded_by=uploaded_by,
    )
    pack.file.save(pack.original_name, ContentFile(content), save=False)
    pack.save()
    return pack


def _read(pack: CoursePack) -> bytes:
    with pack.file.open("rb") as handle:
        return handle.read()


def _record_check(pack: CoursePack, check: PackCheck) -> None:
    track = (check.document or {}).get("track") if isinstance(check.document, dict) else None
    pack.validation_report = check.report()
    pack.validated_at = timezone.now()
    if isinstance(track, dict):
        pack.track_slug = str(track.get("slug", ""))[:100]
        pack.version = str(track.get("version", ""))[:50]
    if pack.status != CoursePackStatus.PUBLISHED:
        pack.status = CoursePackStatus.VALID if check.ok else CoursePackStatus.INVALID
    pack.save(update_fields=["validation_report", "validated_at", "track_slug", "version", "status"])


def coursepack_validate(*, pack: CoursePack) -> PackCheck:
    """Check the pack and store the report; status becomes valid or invalid."""
    check = check_coursepack(_read(pack))
    _record_check(pack, check)
    return check


def coursepack_publish(*, pack: CoursePack, published_by: AbstractBaseUser | None = None) -> PublishSummary:
    """Validate again (content may depend on what is published meanwhile) and publish atomically."""
    check = check_coursepack(_read(pack))
    if not check.ok:
        _record_check(pack, check)
        raise CoursePackInvalid(fields={"errors": [finding.as_dict() for finding in check.errors]})
    with transaction.atomic():
        locked = CoursePack.objects.select_for_update().get(pk=pack.pk)
        summary = _publish_document(check)
        catalogue_changed()  # now, and again once committed (a reader may cache in between)
        transaction.on_commit(catalogue_changed)
        if locked.status != CoursePackStatus.PUBLISHED:
            locked.status = CoursePackStatus.PUBLISHED
            locked.published_at = timezone.now()
            locked.published_by = published_by
            locked.validation_report = check.report()
            locked.validated_at = locked.published_at
            locked.track_slug = summary.track
            locked.version = summary.version
            locked.save()
    pack.refresh_from_db()
    logger.info(
        "course pack published",
        extra={"coursepack": str(pack.pk), "track": summary.track, "version": summary.version, "changed": summary.changed},
    )
    return summary


def coursepack_import(
    *, content: bytes, filename: str, publish: bool, source: CoursePackSource = CoursePackSource.COMMAND
) -> tuple[CoursePack, PackCheck, PublishSummary | None]:
    """What `import_coursepack` does: upload, validate, and publish when asked and valid."""
    pack = coursepack_upload(content=content, filename=filename, source=source)
    check = coursepack_validate(pack=pack)
    summary = coursepack_publish(pack=pack) if publish and check.ok else None
    return pack, check, summary


@dataclass(frozen=True)
class SeedOutcome:
    filename: str
    outcome: str  # "published" | "unchanged"
    summary: PublishSummary | None = None


def seed_coursepacks(*, directory: Path) -> list[SeedOutcome]:
    """Publish every pack shipped in `directory`; a file already published as-is is skipped."""
    outcomes: list[SeedOutcome] = []
    paths = sorted(p for p in directory.iterdir() if p.suffix in {".yaml", ".yml", ".json"})
    if not paths:
        raise Conflict(f"No course packs found in {directory}.")
    for path in paths:
        content = coursepack_read_file(path=path)
        digest = hashlib.sha256(content).hexdigest()
        if CoursePack.objects.filter(sha256=digest, status=CoursePackStatus.PUBLISHED).exists():
            outcomes.append(SeedOutcome(path.name, "unchanged"))
            continue
        _pack, check, summary = coursepack_import(content=content, filename=path.name, publish=True)
        if not check.ok:
            raise CoursePackInvalid(
                f"Shipped course pack {path.name} is invalid.",
                fields={"errors": [finding.as_dict() for finding in check.errors]},
            )
        outcomes.append(SeedOutcome(path.name, "published", summary))
    return outcomes


# --- upserts -----------------------------------------------------------------------------------


def _assign(instance: Model, values: dict[str, Any]) -> list[str]:
    """Set the fields that differ; return their names (empty when nothing changed)."""
    changed = []
    for name, value in values.items():
        if getattr(instance, name) != value:
            setattr(instance, name, value)
            changed.append(name)
    return changed


def _upsert(model: type[Model], lookup: dict[str, Any], values: dict[str, Any]) -> tuple[Model, str]:
    instance = model.objects.filter(**lookup).first()
    if instance is None:
        return model.objects.create(**lookup, **values), "created"
    changed = _assign(instance, values)
    if changed:
        if any(f.name == "updated_at" for f in instance._meta.fields):
            changed.append("updated_at")
        instance.save(update_fields=changed)
        return instance, "updated"
    return instance, "unchanged"


def _sync_m2m(manager: Any, model: type[Model], field_name: str, names: list[str]) -> bool:
    current = set(manager.values_list(field_name, flat=True))
    if current == set(names):
        return False
    objects = [model.objects.get_or_create(**{field_name: name})[0] for name in names]
    manager.set(objects)
    return True


def _content_hash(problem: dict[str, Any], hidden: list[Any]) -> str:
    payload = {"problem": problem, "hidden": [case.__dict__ for case in hidden]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _problem_values(problem: dict[str, Any], track_subject: str, module: Module, position: int, rubric: Rubric | None) -> dict:
    limits = problem.get("limits", {})
    math = problem.get("math", {})
    systems = problem.get("systems", {})
    return {
        "subject": problem.get("subject", track_subject),
        "title": problem["title"],
        "statement": problem["statement"],
        "difficulty": problem["difficulty"],
        "module": module,
        "position": position,
        "published": True,
        "parameters": problem.get("parameters", []),
        "comparison": problem.get("comparison", "exact"),
        "float_tolerance": problem.get("float_tolerance"),
        "time_limit_ms": limits.get("time_ms", 1000),
        "memory_limit_mb": limits.get("memory_mb", 256),
        "visible_tests": problem.get("visible_tests", []),
        "hidden_generators": problem.get("hidden_generators", []),
        "hints": problem["hints"],
        "remediation": problem.get("remediation", {}),
        "math_variables": math.get("variables", []),
        "math_answer": math.get("answer", ""),
        "math_form": math.get("form", "equivalent") if math else "",
        "math_steps": math.get("steps", []),
        "math_dependent": math.get("dependent", ""),
        "math_positive": math.get("positive", []),
        "rubric": rubric,
        "rubric_expectations": systems.get("expectations", {}),
    }


def _sync_languages(problem: Problem, languages: dict[str, dict[str, str]]) -> bool:
    changed = False
    existing = {row.language: row for row in problem.languages.all()}
    for language, spec in languages.items():
        values = {"entrypoint": spec["entrypoint"], "starter_code": spec["starter"], "reference_solution": spec["reference"]}
        row = existing.pop(language, None)
        if row is None:
            ProblemLanguage.objects.create(problem=problem, language=language, **values)
            changed = True
        elif fields := _assign(row, values):
            row.save(update_fields=fields)
            changed = True
    if existing:
        ProblemLanguage.objects.filter(pk__in=[row.pk for row in existing.values()]).delete()
        changed = True
    return changed


def _sync_hidden_tests(problem: Problem, cases: list[Any]) -> bool:
    desired = [(case.category, case.input, case.expected, case.origin) for case in cases]
    current = [(t.category, t.input, t.expected, t.origin) for t in problem.hidden_tests.order_by("position")]
    if desired == current:
        return False
    problem.hidden_tests.all().delete()
    HiddenTest.objects.bulk_create(
        HiddenTest(problem=problem, position=index, category=c, input=i, expected=e, origin=o)
        for index, (c, i, e, o) in enumerate(desired)
    )
    return True


def _publish_document(check: PackCheck) -> PublishSummary:
    document = check.document
    assert document is not None
    track_doc = document["track"]
    summary = PublishSummary(track=track_doc["slug"], version=track_doc["version"])

    def note(label: str, outcome: str) -> None:
        {"created": summary.created, "updated": summary.updated, "unchanged": summary.unchanged}[outcome].append(label)

    track, outcome = _upsert(
        Track,
        {"slug": track_doc["slug"]},
        {
            "subject": track_doc["subject"],
            "title": track_doc["title"],
            "description": track_doc.get("description", ""),
            "version": track_doc["version"],
            "published": True,
        },
    )
    if _sync_m2m(track.labels, Label, "name", track_doc.get("labels", [])) and outcome == "unchanged":
        outcome = "updated"
    note(f"track:{track.slug}", outcome)

    modules: dict[str, Module] = {}
    for position, module_doc in enumerate(track_doc["modules"]):
        module, outcome = _upsert(
            Module,
            {"track": track, "slug": module_doc["slug"]},
            {"title": module_doc["title"], "outcomes": module_doc.get("outcomes", []), "position": position, "published": True},
        )
        modules[module.slug] = module
        note(f"module:{module.slug}", outcome)

    rubrics: dict[str, Rubric] = {}
    for rubric_doc in document.get("rubrics", []):
        rubric, outcome = _upsert(
            Rubric,
            {"slug": rubric_doc["slug"]},
            {
                "domain": rubric_doc["domain"],
                "title": rubric_doc["title"],
                "dimensions": rubric_doc["dimensions"],
                "metadata": rubric_doc.get("metadata", {}),
            },
        )
        rubrics[rubric.slug] = rubric
        note(f"rubric:{rubric.slug}", outcome)

    for position, problem_doc in enumerate(document["problems"]):
        rubric = None
        if "systems" in problem_doc:
            slug = problem_doc["systems"]["rubric"]
            rubric = rubrics.get(slug) or Rubric.objects.get(slug=slug)
        hidden = check.hidden_tests.get(problem_doc["slug"], [])
        values = _problem_values(problem_doc, track.subject, modules[problem_doc["module"]], position, rubric)
        values["content_hash"] = _content_hash(problem_doc, hidden)
        problem, outcome = _upsert(Problem, {"slug": problem_doc["slug"]}, values)
        related_changed = _sync_m2m(problem.topics, Topic, "slug", problem_doc.get("topics", []))
        related_changed |= _sync_languages(problem, problem_doc.get("languages", {}))
        related_changed |= _sync_hidden_tests(problem, hidden)
        if related_changed and outcome == "unchanged":
            Problem.objects.filter(pk=problem.pk).update(updated_at=timezone.now())
            outcome = "updated"
        note(f"problem:{problem.slug}", outcome)

    slugs = [p["slug"] for p in document["problems"]]
    for problem in Problem.objects.filter(module__track=track, published=True).exclude(slug__in=slugs):
        problem.published = False
        problem.save(update_fields=["published", "updated_at"])
        summary.retired.append(f"problem:{problem.slug}")
    for module in Module.objects.filter(track=track, published=True).exclude(slug__in=list(modules)):
        module.published = False
        module.save(update_fields=["published"])
        summary.retired.append(f"module:{module.slug}")
    return summary


# --- staff edits in the admin ------------------------------------------------------------------


def problem_reference_check(*, problem: Problem) -> list[tuple[str, str]]:
    """Run the problem's stored reference solutions against all its stored tests in the sandbox;
    (where, what) for each failure, empty when every reference passes."""
    from tracks.reference_check import ReferenceCase, ReferenceProblem, check_references

    hidden = list(problem.hidden_tests.order_by("position"))
    reference_problem = ReferenceProblem(
        path=f"problems[{problem.slug}]",
        languages={
            row.language: {"entrypoint": row.entrypoint, "reference": row.reference_solution} for row in problem.languages.all()
        },
        parameters=problem.parameters,
        comparison=problem.comparison,
        float_tolerance=problem.float_tolerance,
        time_limit_ms=problem.time_limit_ms,
        memory_limit_mb=problem.memory_limit_mb,
        cases=[ReferenceCase(f"visible_tests[{i}]", t["input"], t["expected"]) for i, t in enumerate(problem.visible_tests)]
        + [ReferenceCase(f"hidden test #{t.position + 1} ({t.category})", t.input, t.expected) for t in hidden],
    )
    return check_references([reference_problem]) if reference_problem.languages else []


def problem_retire(*, problem: Problem) -> None:
    """Hide a problem from learners without breaking references from their history."""
    if problem.published:
        problem.published = False
        problem.save(update_fields=["published", "updated_at"])
        catalogue_changed()
        transaction.on_commit(catalogue_changed)


def catalogue_changed() -> None:
    """Published content changed: invalidate catalogue caches (see `selectors.catalogue_version`)."""
    from django.core.cache import cache

    from tracks.selectors import CATALOGUE_VERSION_KEY, fresh_catalogue_version

    try:
        cache.incr(CATALOGUE_VERSION_KEY)
    except ValueError:  # not set yet (or evicted): a fresh value invalidates everything
        cache.set(CATALOGUE_VERSION_KEY, fresh_catalogue_version(), timeout=None)
