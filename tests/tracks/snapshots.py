"""Content state without ids or timestamps, so two publishing paths can be compared.

`content_state()` describes every content table by natural keys (slugs, names, positions):
two databases that hold the same curriculum give equal states even though their primary keys
and timestamps differ. The import command and the admin must produce equal states from the
same pack bytes.
"""

from __future__ import annotations

import json
from typing import Any

from django.db.models import ForeignKey, Model

from tracks.models import HiddenTest, Label, Module, Problem, ProblemLanguage, Rubric, Topic, Track

# Fields that say nothing about the content itself.
_IGNORED_FIELDS = {"id", "created_at", "updated_at"}


def _natural_key(instance: Model | None) -> Any:
    if instance is None:
        return None
    if isinstance(instance, Track | Rubric):
        return instance.slug
    if isinstance(instance, Module):
        return (instance.track.slug, instance.slug)
    if isinstance(instance, Problem):
        return instance.slug
    raise TypeError(f"no natural key for {type(instance).__name__}")


def _plain(value: Any) -> Any:
    """JSON values become canonical text so rows are hashable, comparable and sortable."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def _rows(model: type[Model], extra: dict[str, Any] | None = None) -> list[tuple]:
    rows = []
    for instance in model.objects.all():
        row: list[tuple[str, Any]] = []
        for field in model._meta.concrete_fields:
            if field.name in _IGNORED_FIELDS:
                continue
            if isinstance(field, ForeignKey):
                row.append((field.name, _natural_key(getattr(instance, field.name))))
            else:
                row.append((field.name, _plain(getattr(instance, field.attname))))
        for name, read in (extra or {}).items():
            row.append((name, read(instance)))
        rows.append(tuple(row))
    return sorted(rows, key=repr)


def content_state() -> dict[str, list[tuple]]:
    """Every content table (and the label/topic links) by natural keys, without ids or timestamps."""
    return {
        "track": _rows(Track, {"labels": lambda track: tuple(sorted(track.labels.values_list("name", flat=True)))}),
        "module": _rows(Module),
        "problem": _rows(Problem, {"topics": lambda problem: tuple(sorted(problem.topics.values_list("slug", flat=True)))}),
        "problem_language": _rows(ProblemLanguage),
        "hidden_test": _rows(HiddenTest),
        "rubric": _rows(Rubric),
        "label": _rows(Label),
        "topic": _rows(Topic),
    }
