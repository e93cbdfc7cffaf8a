"""Public curriculum API: tracks list/detail, problem detail; filters, shapes, query counts,
and no hidden data anywhere in the responses."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.tracks.factories import (
    HIDDEN_MARKERS,
    add_problem,
    math_problem,
    pack_document,
    publish,
    rubric,
    shout_problem,
    systems_problem,
)
from tracks.models import Problem, Track

pytestmark = pytest.mark.django_db


def _publish_three_tracks() -> None:
    publish(pack_document(track_slug="coding-a", labels=["company:meta", "level:test"]))
    publish(
        pack_document(
            track_slug="math-a",
            subject="math",
            labels=["level:intro"],
            modules=[{"slug": "algebra", "title": "Algebra", "outcomes": ["expand"]}],
            problems=[math_problem()],
        )
    )
    publish(
        pack_document(
            track_slug="systems-a",
            subject="systems",
            labels=[],
            modules=[{"slug": "design", "title": "Design", "outcomes": []}],
            problems=[systems_problem()],
            rubrics=[rubric()],
        )
    )


def test_list_tracks_shape(api) -> None:
    _publish_three_tracks()
    response = api.get("/v1/tracks")
    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None
    assert [t["slug"] for t in body["items"]] == ["coding-a", "math-a", "systems-a"]
    coding = body["items"][0]
    track = Track.objects.get(slug="coding-a")
    assert coding == {
        "id": str(track.id),
        "slug": "coding-a",
        "subject": "coding",
        "title": "Track coding-a",
        "description": "",
        "labels": ["company:meta", "level:test"],
        "version": "1.0.0",
        "modules": [{"id": "basics", "title": "Basics", "outcomes": ["strings"], "position": 0}],
    }


@pytest.mark.parametrize(
    ("query", "slugs"),
    [
        ("subject=coding", ["coding-a"]),
        ("subject=math", ["math-a"]),
        ("subject=systems", ["systems-a"]),
        ("label=company:meta", ["coding-a"]),
        ("label=level:intro", ["math-a"]),
        ("label=company:none", []),
        ("subject=math&label=company:meta", []),
        ("subject=coding&label=level:test", ["coding-a"]),
    ],
)
def test_list_tracks_filters(api, query: str, slugs: list[str]) -> None:
    _publish_three_tracks()
    response = api.get(f"/v1/tracks?{query}")
    assert response.status_code == 200
    assert [t["slug"] for t in response.json()["items"]] == slugs


def test_unpublished_tracks_are_not_listed(api) -> None:
    _publish_three_tracks()
    Track.objects.filter(slug="math-a").update(published=False)
    assert [t["slug"] for t in api.get("/v1/tracks").json()["items"]] == ["coding-a", "systems-a"]
    assert api.get("/v1/tracks/math-a").status_code == 404


def test_list_is_paginated_with_a_cursor(api) -> None:
    for index in range(3):
        publish(pack_document(track_slug=f"t{index}", problems=[add_problem(slug=f"add-{index}")]))
    first = api.get("/v1/tracks?limit=2").json()
    assert [t["slug"] for t in first["items"]] == ["t0", "t1"]
    assert first["next"] is not None
    second = api.get(first["next"]).json()
    assert [t["slug"] for t in second["items"]] == ["t2"]
    assert second["next"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("subject=", "subject"),
        ("subject=chemistry", "subject"),
        ("label=", "label"),
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=%C3%BB", "cursor"),
    ],
)
def test_invalid_list_parameters_are_400_naming_the_parameter(api, query: str, field: str) -> None:
    """A filter value outside the documented ones, a page size outside 1–100 or a cursor this API
    did not issue is refused, never silently widened to the whole list or the default page."""
    _publish_three_tracks()
    response = api.get(f"/v1/tracks?{query}")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert list(error["fields"]) == [field]


def test_page_size_bounds_are_accepted(api) -> None:
    _publish_three_tracks()
    assert len(api.get("/v1/tracks?limit=1").json()["items"]) == 1
    assert len(api.get("/v1/tracks?limit=100").json()["items"]) == 3
    assert [t["slug"] for t in api.get("/v1/tracks?label=%20company:meta").json()["items"]] == []


def test_track_list_query_count_does_not_grow(api) -> None:
    publish(pack_document(track_slug="t0", problems=[add_problem(slug="add-0")]))
    with CaptureQueriesContext(connection) as few:
        assert api.get("/v1/tracks").status_code == 200
    for index in range(1, 6):
        publish(
            pack_document(
                track_slug=f"t{index}",
                labels=[f"l{index}", "shared"],
                modules=[{"slug": "basics", "title": "B"}, {"slug": "more", "title": "M"}],
                problems=[add_problem(slug=f"add-{index}")],
            )
        )
    with CaptureQueriesContext(connection) as many:
        assert len(api.get("/v1/tracks").json()["items"]) == 6
    assert len(few) == len(many) == 3


def test_track_detail_by_slug_and_id(api) -> None:
    _publish_three_tracks()
    track = Track.objects.get(slug="coding-a")
    by_slug = api.get("/v1/tracks/coding-a")
    by_id = api.get(f"/v1/tracks/{track.id}")
    assert by_slug.status_code == by_id.status_code == 200
    assert by_slug.json() == by_id.json()
    module = by_slug.json()["modules"][0]
    shout = Problem.objects.get(slug="shout")
    assert module["id"] == "basics"
    assert module["problems"][0] == {
        "id": str(shout.id),
        "slug": "shout",
        "title": "Shout",
        "subject": "coding",
        "difficulty": 1,
        "topics": ["strings"],
        "languages": ["javascript", "python"],
    }
    assert [p["slug"] for p in module["problems"]] == ["shout", "add-numbers"]


def test_track_detail_query_count_does_not_grow(api) -> None:
    publish(pack_document(track_slug="t0", problems=[add_problem(slug="add-0")]))
    with CaptureQueriesContext(connection) as few:
        assert api.get("/v1/tracks/t0").status_code == 200
    publish(
        pack_document(
            track_slug="t0",
            version="2",
            modules=[{"slug": "basics", "title": "B"}, {"slug": "more", "title": "M"}],
            problems=[add_problem(slug=f"add-{i}", module="more" if i % 2 else "basics") for i in range(8)] + [shout_problem()],
        )
    )
    with CaptureQueriesContext(connection) as many:
        body = api.get("/v1/tracks/t0").json()
    assert sum(len(m["problems"]) for m in body["modules"]) == 9
    assert len(few) == len(many)


def test_unknown_track_is_404(api) -> None:
    response = api.get("/v1/tracks/no-such-track")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert api.get("/v1/tracks/00000000-0000-0000-0000-000000000000").status_code == 404


def test_problem_detail_shape(api) -> None:
    _publish_three_tracks()
    shout = Problem.objects.get(slug="shout")
    response = api.get("/v1/problems/shout")
    assert response.status_code == 200
    body = response.json()
    assert api.get(f"/v1/problems/{shout.id}").json() == body
    assert body == {
        "id": str(shout.id),
        "slug": "shout",
        "subject": "coding",
        "title": "Shout",
        "statement": "Return `text` in upper case.",
        "statement_html": "<p>Return <code>text</code> in upper case.</p>",
        "difficulty": 1,
        "topics": ["strings"],
        "track": {"id": str(shout.module.track.id), "slug": "coding-a", "title": "Track coding-a"},
        "module": {"id": "basics", "title": "Basics", "outcomes": ["strings"]},
        "parameters": ["text"],
        "languages": {
            "javascript": {"entrypoint": "shout", "starter_code": "function shout(text) {\n}\n"},
            "python": {"entrypoint": "shout", "starter_code": "def shout(text):\n    pass\n"},
        },
        "visible_tests": [
            {"input": {"text": "hi"}, "expected": "HI"},
            {"input": {"text": "Hello"}, "expected": "HELLO"},
            {"input": {"text": ""}, "expected": ""},
        ],
        "comparison": "exact",
        "float_tolerance": None,
        "limits": {"time_ms": 500, "memory_mb": 128},
        "hint_levels": 3,
        "math": None,
        "rubric": None,
    }


def test_math_and_systems_problem_views(api) -> None:
    _publish_three_tracks()
    math = api.get("/v1/problems/expand-square").json()
    assert math["math"] == {"variables": ["x"], "form": "equivalent", "dependent": None, "positive": []}
    assert math["languages"] == {} and math["visible_tests"] == []
    design = api.get("/v1/problems/design-cache").json()
    assert design["rubric"]["title"] == "Design basics"
    assert [d["id"] for d in design["rubric"]["dimensions"]] == ["requirements", "scaling"]


def test_problem_detail_query_count(api) -> None:
    _publish_three_tracks()
    with CaptureQueriesContext(connection) as queries:
        assert api.get("/v1/problems/shout").status_code == 200
    assert len(queries) == 3


def test_retired_and_unknown_problems_are_404(api) -> None:
    _publish_three_tracks()
    Problem.objects.filter(slug="shout").update(published=False)
    assert api.get("/v1/problems/shout").status_code == 404
    response = api.get("/v1/problems/never-heard-of-it")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_no_hidden_data_in_any_public_response(api) -> None:
    """Markers planted in hidden tests, generated cases, references, generators, remediation,
    math answers/steps and rubric expectations never appear in public responses."""
    _publish_three_tracks()
    assert Problem.objects.get(slug="shout").hidden_tests.filter(input__text__startswith="zqx-generated").count() == 2
    texts = [api.get("/v1/tracks").content.decode()]
    for track in Track.objects.all():
        texts.append(api.get(f"/v1/tracks/{track.slug}").content.decode())
        texts.append(api.get(f"/v1/tracks/{track.id}").content.decode())
    for problem in Problem.objects.all():
        texts.append(api.get(f"/v1/problems/{problem.slug}").content.decode())
    everything = "\n".join(texts).lower()
    for marker in HIDDEN_MARKERS:
        assert marker.lower() not in everything, marker
    for forbidden_key in ('"hidden', '"reference', '"remediation"', '"generators', '"answer"', '"steps"', '"expectations"'):
        assert forbidden_key not in everything, forbidden_key
