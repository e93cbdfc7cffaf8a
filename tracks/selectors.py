"""Reads of curriculum content for the public API. Each selector fixes its own query plan
(select_related / prefetch_related), so the number of queries per request does not grow
with the number of tracks, modules or problems."""

from __future__ import annotations

import time
import uuid

from django.db.models import Prefetch, QuerySet

from co_project.errors import NotFound
from tracks.models import Label, Module, Problem, ProblemLanguage, Track


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
        cache.add(CATALOGUE_VERSION_KEY, time.time_ns() // 1000, timeout=None)
        version = cache.get(CATALOGUE_VERSION_KEY, 0)
    return int(version)
