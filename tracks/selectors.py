"""Reads of curriculum content for the public API. Each selector fixes its own query plan
(select_related / prefetch_related), so the number of queries per request does not grow
with the number of tracks, modules or problems."""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet

from co_project.errors import NotFound
from tracks.memo import CatalogueMemo
from tracks.models import Label, Module, Problem, ProblemLanguage, Track

logger = logging.getLogger("co.tracks")


def track_list(*, subject: str | None = None, label: str | None = None) -> QuerySet[Track]:
    queryset = Track.objects.filter(published=True).prefetch_related(
        Prefetch("labels", queryset=Label.objects.order_by("name")),
        Prefetch("modules", queryset=Module.objects.filter(published=True).order_by("position", "slug")),
    )
    if subject:
        queryset = queryset.filter(subject=subject)
    if label:
        queryset = queryset.filter(labels__name=label)
    return queryset.order_by("slug")


def track_get(*, reference: str) -> Track:
    """A published track by id or slug, with its modules and their published problems."""
    problems = (
        Problem.objects.filter(published=True)
        .order_by("position", "slug")
        .prefetch_related("topics", Prefetch("languages", queryset=ProblemLanguage.objects.only("problem_id", "language")))
    )
    queryset = Track.objects.filter(published=True).prefetch_related(
        Prefetch("labels", queryset=Label.objects.order_by("name")),
        Prefetch(
            "modules",
            queryset=Module.objects.filter(published=True)
            .order_by("position", "slug")
            .prefetch_related(Prefetch("problems", queryset=problems)),
        ),
    )
    try:
        lookup = {"id": uuid.UUID(reference)}
    except ValueError:
        lookup = {"slug": reference}
    track = queryset.filter(**lookup).first()
    if track is None:
        raise NotFound(f"No published track '{reference[:100]}'.")
    return track


def track_id_for(*, reference: str) -> uuid.UUID:
    """The id of a published track named by id or slug (one query)."""
    try:
        lookup = {"id": uuid.UUID(reference)}
    except ValueError:
        lookup = {"slug": reference}
    track_id = Track.objects.filter(published=True, **lookup).values_list("id", flat=True).first()
    if track_id is None:
        raise NotFound(f"No published track '{reference[:100]}'.", fields={"track": ["No such track."]})
    return track_id


CATALOGUE_VERSION_KEY = "co:catalogue-version"


def catalogue_version() -> int:
    """Bumped whenever published content changes (publish, retire, admin edits), so caches of
    the catalogue (the recommender's, the process memo of problem bundles) are keyed by it and
    never serve stale content for long."""
    from django.core.cache import cache

    version = cache.get(CATALOGUE_VERSION_KEY)
    if version is None:  # never set, or evicted: start a version no earlier process can have cached
        cache.add(CATALOGUE_VERSION_KEY, fresh_catalogue_version(), timeout=None)
        version = cache.get(CATALOGUE_VERSION_KEY, 0)
    return int(version)


def catalogue_version_or_none() -> int | None:
    """The catalogue version, or None when it cannot be read (memos are then bypassed)."""
    try:
        return catalogue_version()
    except Exception:  # the cache is down: read the database, as without a memo
        logger.warning("catalogue version unavailable; the catalogue is read from the database", exc_info=True)
        return None


def fresh_catalogue_version() -> int:
    """A version no process has cached under: random, not time-based, so a stopped or repeated
    clock (a restored VM, a frozen test clock) cannot hand out one already used."""
    return secrets.randbelow(2**52)


@dataclass(frozen=True)
class CatalogueEntry:
    """A published problem as the recommender ranks it: plain values, cached and pickled."""

    id: uuid.UUID
    slug: str
    title: str
    subject: str
    difficulty: int
    module_id: uuid.UUID
    module_position: int
    position: int
    track_id: uuid.UUID
    track_slug: str
    topics: tuple[str, ...]


def catalogue_entries(*, track_id: uuid.UUID | None = None, subject: str | None = None) -> list[CatalogueEntry]:
    """Published problems of published modules and tracks, with their topics: two queries."""
    problems = Problem.objects.filter(published=True, module__published=True, module__track__published=True)
    if track_id is not None:
        problems = problems.filter(module__track_id=track_id)
    if subject:
        problems = problems.filter(subject=subject)
    topics: dict[uuid.UUID, list[str]] = {}
    for problem_id, slug in Problem.topics.through.objects.filter(problem__in=problems.values("id")).values_list(
        "problem_id", "topic__slug"
    ):
        topics.setdefault(problem_id, []).append(slug)
    rows = problems.values_list(
        "id",
        "slug",
        "title",
        "subject",
        "difficulty",
        "module_id",
        "module__position",
        "position",
        "module__track_id",
        "module__track__slug",
    )
    return [CatalogueEntry(*row, topics=tuple(sorted(topics.get(row[0], ())))) for row in rows]


def track_published_get(*, reference: str) -> Track:
    """A published track by id or slug (one query); not found names the `track_id` field."""
    try:
        lookup: dict[str, object] = {"id": uuid.UUID(reference)}
    except ValueError:
        lookup = {"slug": reference}
    track = Track.objects.filter(published=True, **lookup).first()
    if track is None:
        raise NotFound(f"No published track '{reference[:100]}'.", fields={"track_id": ["No such track."]})
    return track


def problem_published_get(*, reference: str) -> Problem:
    """A problem by id or slug, published in a published module of a published track, with its
    module (one query); not found names the `problem_id` field."""
    try:
        lookup: dict[str, object] = {"id": uuid.UUID(reference)}
    except ValueError:
        lookup = {"slug": reference}
    problem = (
        Problem.objects.select_related("module")
        .filter(published=True, module__published=True, module__track__published=True, **lookup)
        .first()
    )
    if problem is None:
        raise NotFound(f"No published problem '{reference[:100]}'.", fields={"problem_id": ["No such problem."]})
    return problem


def problem_slugs(*, problem_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Slug by problem id, retired problems included (one query; unknown ids are left out)."""
    return dict(Problem.objects.filter(id__in=problem_ids).values_list("id", "slug"))


def problem_topic_slugs(*, problem_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """Each problem's topic slugs, sorted (one query; problems without topics are left out)."""
    topics: dict[uuid.UUID, list[str]] = {}
    rows = Problem.topics.through.objects.filter(problem_id__in=problem_ids).order_by("problem_id", "topic__slug")
    for problem_id, slug in rows.values_list("problem_id", "topic__slug"):
        topics.setdefault(problem_id, []).append(slug)
    return topics


def track_slugs(*, track_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Slug by track id, unpublished tracks included (one query)."""
    return dict(Track.objects.filter(id__in=track_ids).values_list("id", "slug"))


def problem_rubric_id(*, problem_id: uuid.UUID) -> uuid.UUID | None:
    """The id of the rubric a problem is graded by, or None (no such problem, or no rubric)."""
    return Problem.objects.filter(id=problem_id).values_list("rubric_id", flat=True).first()


def module_key(*, track_slug: str, module_slug: str) -> str:
    """How the problem banks name a module: module slugs are unique only within their track."""
    return f"{track_slug}/{module_slug}"


@dataclass(frozen=True)
class ModuleOutline:
    id: uuid.UUID
    slug: str
    title: str
    position: int
    key: str  # the problem banks' name for it (`module_key`)


@dataclass(frozen=True)
class TrackOutline:
    """A published track and its published modules in order: what a study plan is laid over."""

    id: uuid.UUID
    slug: str
    title: str
    subject: str
    version: str
    modules: tuple[ModuleOutline, ...]


_outline_memo: CatalogueMemo[TrackOutline] = CatalogueMemo()


def track_outline(*, reference: str) -> TrackOutline:
    """A published track by id or slug with its published modules in order (two queries, none
    while the process memo holds it for the current catalogue version); not found names the
    `track` field."""
    version = catalogue_version_or_none()  # read before the rows: a bump after this invalidates them
    outline = _outline_memo.get(reference, version)
    if outline is None:
        outline = _track_outline_load(reference)
        if version is not None:
            _outline_memo.put(reference, version, outline)
    return outline


def _track_outline_load(reference: str) -> TrackOutline:
    try:
        lookup: dict[str, object] = {"id": uuid.UUID(reference)}
    except ValueError:
        lookup = {"slug": reference}
    track = (
        Track.objects.filter(published=True, **lookup)
        .prefetch_related(Prefetch("modules", queryset=Module.objects.filter(published=True).order_by("position", "slug")))
        .first()
    )
    if track is None:
        raise NotFound(f"No published track '{reference[:100]}'.", fields={"track": ["No such track."]})
    return TrackOutline(
        id=track.id,
        slug=track.slug,
        title=track.title,
        subject=track.subject,
        version=track.version,
        modules=tuple(
            ModuleOutline(
                id=m.id,
                slug=m.slug,
                title=m.title,
                position=m.position,
                key=module_key(track_slug=track.slug, module_slug=m.slug),
            )
            for m in track.modules.all()
        ),
    )


@dataclass(frozen=True)
class TrackProblemEntry:
    id: uuid.UUID
    slug: str
    module: str  # the module's slug


@dataclass(frozen=True)
class TrackProblems:
    """A published track and its published problems in the order its page lists them."""

    id: uuid.UUID
    slug: str
    title: str
    problems: tuple[TrackProblemEntry, ...]


def track_problems(*, reference: str) -> TrackProblems:
    """A published track by id or slug with the published problems of its published modules, in
    `track_get`'s order (module, then problem position), so a per-problem read lines up with the
    track's own listing (two queries); not found as `track_get`."""
    try:
        lookup: dict[str, object] = {"id": uuid.UUID(reference)}
    except ValueError:
        lookup = {"slug": reference}
    track = Track.objects.filter(published=True, **lookup).values("id", "slug", "title").first()
    if track is None:
        raise NotFound(f"No published track '{reference[:100]}'.")
    rows = (
        Problem.objects.filter(module__track_id=track["id"], module__published=True, published=True)
        .order_by("module__position", "module__slug", "position", "slug")
        .values_list("id", "slug", "module__slug")
    )
    return TrackProblems(
        id=track["id"],
        slug=track["slug"],
        title=track["title"],
        problems=tuple(TrackProblemEntry(id=id_, slug=slug, module=module) for id_, slug, module in rows),
    )
