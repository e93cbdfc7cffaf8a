"""Publishing course packs: exactly what the document says, idempotent, in place for new versions,
all or nothing; `seed` on the shipped packs; the command and the admin give the same content.
"""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client

import tracks.services
from tests.tracks import factories
from tests.tracks.snapshots import content_state
from tracks.models import (
    CoursePack,
    CoursePackSource,
    CoursePackStatus,
    HiddenTest,
    HiddenTestOrigin,
    Label,
    Module,
    Problem,
    ProblemLanguage,
    Rubric,
    Subject,
    Topic,
    Track,
)

pytestmark = pytest.mark.django_db

CONTENT_MODELS = (
    Track,
    Module,
    Problem,
    ProblemLanguage,
    HiddenTest,
    Rubric,
    Label,
    Topic,
    Track.labels.through,
    Problem.topics.through,
)


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def content_snapshot() -> dict[str, list[tuple]]:
    """Every field value (ids and timestamps included) of every content table and M2M link."""
    snapshot = {}
    for model in CONTENT_MODELS:
        names = [field.attname for field in model._meta.concrete_fields]
        rows = [
            tuple(json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value for value in row)
            for row in model.objects.values_list(*names)
        ]
        snapshot[model._meta.label] = sorted(rows, key=repr)
    return snapshot


def mixed_pack_document(**overrides: Any) -> dict[str, Any]:
    """A coding track with two coding problems, a math problem and a systems problem with a rubric."""
    math = factories.math_problem(subject="math", module="algebra")
    systems = factories.systems_problem(module="design")
    systems["subject"] = "systems"
    document = factories.pack_document(
        labels=["level:test", "company:acme"],
        modules=[
            {"slug": "basics", "title": "Basics", "outcomes": ["strings", "arithmetic"]},
            {"slug": "algebra", "title": "Algebra", "outcomes": ["polynomials"]},
            {"slug": "design", "title": "Design"},
        ],
        problems=[factories.shout_problem(), factories.add_problem(), math, systems],
        rubrics=[factories.rubric()],
        **overrides,
    )
    document["track"]["description"] = "A track for tests."
    return document


# --- first publish -------------------------------------------------------------------------------


def test_publish_creates_exactly_what_the_document_says() -> None:
    document = mixed_pack_document()

    summary = factories.publish(document)

    assert summary.as_dict() == {
        "track": "test-track",
        "version": "1.0.0",
        "created": [
            "track:test-track",
            "module:basics",
            "module:algebra",
            "module:design",
            "rubric:design-basics",
            "problem:shout",
            "problem:add-numbers",
            "problem:expand-square",
            "problem:design-cache",
        ],
        "updated": [],
        "unchanged": [],
        "retired": [],
    }
    track = Track.objects.get()
    assert (track.slug, track.subject, track.title, track.description, track.version, track.published) == (
        "test-track",
        Subject.CODING,
        "Track test-track",
        "A track for tests.",
        "1.0.0",
        True,
    )
    assert sorted(track.labels.values_list("name", flat=True)) == ["company:acme", "level:test"]
    assert list(Module.objects.values_list("track__slug", "slug", "title", "outcomes", "position", "published")) == [
        ("test-track", "basics", "Basics", ["strings", "arithmetic"], 0, True),
        ("test-track", "algebra", "Algebra", ["polynomials"], 1, True),
        ("test-track", "design", "Design", [], 2, True),
    ]
    rubric = Rubric.objects.get()
    assert (rubric.slug, rubric.domain, rubric.title, rubric.dimensions, rubric.metadata) == (
        "design-basics",
        "systems",
        "Design basics",
        factories.rubric()["dimensions"],
        {},
    )
    assert list(Problem.objects.order_by("position").values_list("slug", "subject", "module__slug", "position", "published")) == [
        ("shout", "coding", "basics", 0, True),
        ("add-numbers", "coding", "basics", 1, True),
        ("expand-square", "math", "algebra", 2, True),
        ("design-cache", "systems", "design", 3, True),
    ]

    shout_doc = document["problems"][0]
    shout = Problem.objects.get(slug="shout")
    assert (shout.title, shout.statement, shout.difficulty) == (shout_doc["title"], shout_doc["statement"], 1)
    assert (shout.parameters, shout.comparison, shout.float_tolerance) == (["text"], "exact", None)
    assert (shout.time_limit_ms, shout.memory_limit_mb) == (500, 128)
    assert shout.visible_tests == shout_doc["visible_tests"]
    assert shout.hidden_generators == shout_doc["hidden_generators"]
    assert shout.hints == shout_doc["hints"]
    assert shout.remediation == shout_doc["remediation"]
    assert (shout.math_variables, shout.math_answer, shout.math_form, shout.math_steps) == ([], "", "", [])
    assert (shout.rubric, shout.rubric_expectations) == (None, {})
    assert len(shout.content_hash) == 64
    assert list(shout.topics.values_list("slug", flat=True)) == ["strings"]
    assert list(shout.languages.values_list("language", "entrypoint", "starter_code", "reference_solution")) == [
        (
            "javascript",
            "shout",
            shout_doc["languages"]["javascript"]["starter"],
            shout_doc["languages"]["javascript"]["reference"],
        ),
        ("python", "shout", shout_doc["languages"]["python"]["starter"], shout_doc["languages"]["python"]["reference"]),
    ]
    assert list(shout.hidden_tests.values_list("position", "category", "origin")) == [
        (0, "long-input", HiddenTestOrigin.AUTHORED),
        (1, "mixed-case", HiddenTestOrigin.AUTHORED),
        (2, "long-input", HiddenTestOrigin.GENERATED),
        (3, "long-input", HiddenTestOrigin.GENERATED),
    ]

    add = Problem.objects.get(slug="add-numbers")
    assert (add.time_limit_ms, add.memory_limit_mb, add.hidden_generators) == (1000, 256, [])
    assert list(add.hidden_tests.values_list("position", "category", "input", "expected", "origin")) == [
        (0, "negatives", {"a": -5, "b": -7}, -12, HiddenTestOrigin.AUTHORED)
    ]

    math_doc = document["problems"][2]
    math = Problem.objects.get(slug="expand-square")
    assert (math.math_variables, math.math_answer, math.math_form, math.math_steps) == (
        ["x"],
        math_doc["math"]["answer"],
        "equivalent",
        math_doc["math"]["steps"],
    )
    assert (math.parameters, math.languages.count(), math.hidden_tests.count(), math.rubric) == ([], 0, 0, None)

    systems = Problem.objects.get(slug="design-cache")
    assert systems.rubric == rubric
    assert systems.rubric_expectations == document["problems"][3]["systems"]["expectations"]
    assert (systems.math_answer, systems.math_form, systems.languages.count()) == ("", "", 0)

    assert sorted(Topic.objects.values_list("slug", flat=True)) == ["arithmetic", "caching", "polynomials", "strings"]
    assert sorted(Label.objects.values_list("name", flat=True)) == ["company:acme", "level:test"]
    assert (ProblemLanguage.objects.count(), HiddenTest.objects.count()) == (4, 5)
    pack = CoursePack.objects.get()
    assert (pack.status, pack.source, pack.track_slug, pack.version) == (
        CoursePackStatus.PUBLISHED,
        CoursePackSource.COMMAND,
        "test-track",
        "1.0.0",
    )
    assert pack.published_at is not None


def test_publishing_the_same_pack_twice_changes_nothing() -> None:
    document = mixed_pack_document()
    factories.publish(document)
    before = content_snapshot()

    summary = factories.publish(document)

    assert content_snapshot() == before
    assert summary.changed is False
    assert (summary.created, summary.updated, summary.retired) == ([], [], [])
    assert summary.unchanged == [
        "track:test-track",
        "module:basics",
        "module:algebra",
        "module:design",
        "rubric:design-basics",
        "problem:shout",
        "problem:add-numbers",
        "problem:expand-square",
        "problem:design-cache",
    ]


# --- new versions --------------------------------------------------------------------------------


def version_one() -> dict[str, Any]:
    return factories.pack_document(
        modules=[{"slug": "basics", "title": "Basics"}, {"slug": "more", "title": "More"}],
        problems=[factories.add_problem(), factories.add_problem(slug="add-again", module="more"), factories.shout_problem()],
    )


def version_two() -> dict[str, Any]:
    """Changed statement, `shout` removed, `add-later` added, module `more` renamed."""
    document = copy.deepcopy(version_one())
    document["track"]["version"] = "2.0.0"
    document["track"]["modules"][1]["title"] = "More practice"
    document["problems"][0]["statement"] = "Return the sum of `a` and `b`."
    document["problems"][2] = factories.add_problem(slug="add-later", module="more")
    return document


def test_new_version_updates_in_place_and_retires_removed_problems() -> None:
    factories.publish(version_one())
    ids_before = dict(Problem.objects.values_list("slug", "id"))
    module_ids_before = dict(Module.objects.values_list("slug", "id"))
    track_id = Track.objects.get().id
    add_again_before = Problem.objects.get(slug="add-again")
    shout_hidden_before = list(HiddenTest.objects.filter(problem__slug="shout").values())

    summary = factories.publish(version_two())

    assert summary.as_dict() == {
        "track": "test-track",
        "version": "2.0.0",
        "created": ["problem:add-later"],
        "updated": ["track:test-track", "module:more", "problem:add-numbers"],
        "unchanged": ["module:basics", "problem:add-again"],
        "retired": ["problem:shout"],
    }
    ids_after = dict(Problem.objects.values_list("slug", "id"))
    assert set(ids_after) == {"add-numbers", "add-again", "add-later", "shout"}
    assert {slug: ids_after[slug] for slug in ("add-numbers", "add-again", "shout")} == {
        slug: ids_before[slug] for slug in ("add-numbers", "add-again", "shout")
    }
    assert dict(Module.objects.values_list("slug", "id")) == module_ids_before
    assert Track.objects.get().id == track_id
    assert Track.objects.get().version == "2.0.0"
    assert Module.objects.get(slug="more").title == "More practice"
    assert Problem.objects.get(slug="add-numbers").statement == "Return the sum of `a` and `b`."
    assert dict(Problem.objects.values_list("slug", "published")) == {
        "add-numbers": True,
        "add-again": True,
        "add-later": True,
        "shout": False,
    }
    add_again_after = Problem.objects.get(slug="add-again")
    assert (add_again_after.updated_at, add_again_after.content_hash) == (
        add_again_before.updated_at,
        add_again_before.content_hash,
    )
    assert list(HiddenTest.objects.filter(problem__slug="shout").values()) == shout_hidden_before
    assert list(Problem.objects.get(slug="add-later").hidden_tests.values_list("category", flat=True)) == ["negatives"]


def test_renamed_module_slug_moves_problems_and_retires_the_old_module() -> None:
    factories.publish(version_one())
    add_again_id = Problem.objects.get(slug="add-again").id
    old_module_id = Module.objects.get(slug="more").id
    document = version_one()
    document["track"]["modules"][1] = {"slug": "practice", "title": "Practice"}
    document["problems"][1]["module"] = "practice"

    summary = factories.publish(document)

    assert summary.as_dict() == {
        "track": "test-track",
        "version": "1.0.0",
        "created": ["module:practice"],
        "updated": ["problem:add-again"],
        "unchanged": ["track:test-track", "module:basics", "problem:add-numbers", "problem:shout"],
        "retired": ["module:more"],
    }
    moved = Problem.objects.get(slug="add-again")
    assert (moved.id, moved.module.slug, moved.published) == (add_again_id, "practice", True)
    assert list(Module.objects.order_by("position", "slug").values_list("id", "slug", "published")) == [
        (Module.objects.get(slug="basics").id, "basics", True),
        (old_module_id, "more", False),
        (Module.objects.get(slug="practice").id, "practice", True),
    ]


def test_publishing_is_all_or_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    factories.publish(version_one())
    before = content_snapshot()
    packs_before = list(CoursePack.objects.values_list("id", "status"))
    real_sync = tracks.services._sync_hidden_tests
    calls: list[str] = []

    def fail_on_second_problem(problem: Problem, cases: list[Any]) -> bool:
        calls.append(problem.slug)
        if len(calls) == 2:
            raise RuntimeError("injected failure half-way through publishing")
        return real_sync(problem, cases)

    monkeypatch.setattr(tracks.services, "_sync_hidden_tests", fail_on_second_problem)

    with pytest.raises(RuntimeError, match="injected failure half-way through publishing"):
        factories.publish(version_two())

    assert calls == ["add-numbers", "add-again"]
    assert content_snapshot() == before
    new_pack = CoursePack.objects.exclude(id__in=[pk for pk, _ in packs_before]).get()
    assert (new_pack.status, new_pack.published_at, new_pack.published_by) == (CoursePackStatus.VALID, None, None)
    assert list(CoursePack.objects.filter(id__in=[pk for pk, _ in packs_before]).values_list("id", "status")) == packs_before


def test_failed_first_publish_leaves_no_content(monkeypatch: pytest.MonkeyPatch) -> None:
    real_sync = tracks.services._sync_hidden_tests
    calls: list[str] = []

    def fail_on_second_problem(problem: Problem, cases: list[Any]) -> bool:
        calls.append(problem.slug)
        if len(calls) == 2:
            raise RuntimeError("injected failure")
        return real_sync(problem, cases)

    monkeypatch.setattr(tracks.services, "_sync_hidden_tests", fail_on_second_problem)

    with pytest.raises(RuntimeError, match="injected failure"):
        factories.publish(mixed_pack_document())

    assert calls == ["shout", "add-numbers"]
    assert content_snapshot() == {model._meta.label: [] for model in CONTENT_MODELS}
    assert CoursePack.objects.get().status == CoursePackStatus.VALID


# --- seed on the shipped packs -------------------------------------------------------------------


def run_seed() -> list[str]:
    out = io.StringIO()
    call_command("seed", stdout=out)
    return out.getvalue().splitlines()


def test_seed_publishes_the_shipped_packs() -> None:
    output = run_seed()

    assert [line.split(":")[0] for line in output] == [
        "coding-interview-meta.yaml",
        "math-foundations.yaml",
        "systems-design.yaml",
    ]
    assert all(" published " in line and "0 updated, 0 unchanged, 0 retired" in line for line in output)
    tracks_by_subject = {track.subject: track for track in Track.objects.all()}
    assert Track.objects.count() == 3
    assert sorted(tracks_by_subject) == ["coding", "math", "systems"]
    assert all(track.published for track in tracks_by_subject.values())
    assert set(CoursePack.objects.values_list("status", flat=True)) == {CoursePackStatus.PUBLISHED}
    assert CoursePack.objects.count() == 3

    coding = tracks_by_subject["coding"]
    assert coding.slug == "coding-interview-meta"
    assert list(coding.labels.values_list("name", flat=True)) == ["company:meta"]
    outcomes = dict(coding.modules.values_list("slug", "outcomes"))
    assert outcomes["arrays-strings"] == ["two-pointers", "sliding-window"]
    assert outcomes["hashing"] == ["hash-map"]

    coding_problems = Problem.objects.filter(module__track=coding, published=True).prefetch_related("languages", "hidden_tests")
    assert coding_problems.count() >= 12
    for problem in coding_problems:
        categories = {test.category for test in problem.hidden_tests.all()}
        assert problem.subject == Subject.CODING, problem.slug
        assert sorted(row.language for row in problem.languages.all()) == ["javascript", "python"], problem.slug
        assert len(problem.visible_tests) >= 3, problem.slug
        assert problem.hidden_tests.count() >= 8, problem.slug
        assert len(categories) >= 1, problem.slug
        assert len(problem.hints) == 3, problem.slug
        assert categories <= set(problem.remediation), problem.slug

    two_sum = Problem.objects.get(slug="two-sum")
    assert two_sum.module.slug == "hashing"
    assert two_sum.parameters == ["nums", "t"]
    assert dict(two_sum.languages.values_list("language", "entrypoint")) == {"python": "two_sum", "javascript": "twoSum"}

    math_problems = Problem.objects.filter(module__track=tracks_by_subject["math"], published=True)
    assert math_problems.count() >= 6
    assert all(problem.subject == Subject.MATH and problem.math_answer for problem in math_problems)
    assert any(problem.math_steps for problem in math_problems)

    systems_problems = Problem.objects.filter(module__track=tracks_by_subject["systems"], published=True)
    assert systems_problems.count() >= 2
    assert all(problem.rubric_id is not None for problem in systems_problems)
    assert all(set(problem.rubric_expectations) == {d["id"] for d in problem.rubric.dimensions} for problem in systems_problems)


def test_seed_twice_changes_nothing() -> None:
    run_seed()
    before = content_snapshot()
    packs_before = list(CoursePack.objects.values_list("id", "status", "published_at"))

    output = run_seed()

    assert output == [
        "coding-interview-meta.yaml: already published, unchanged",
        "math-foundations.yaml: already published, unchanged",
        "systems-design.yaml: already published, unchanged",
    ]
    assert content_snapshot() == before
    assert list(CoursePack.objects.values_list("id", "status", "published_at")) == packs_before


# --- the command and the admin give the same content ---------------------------------------------


def delete_all_content() -> None:
    for model in (HiddenTest, ProblemLanguage, Problem, Module, Track, Rubric, Label, Topic, CoursePack):
        model.objects.all().delete()


def test_command_and_admin_publish_the_same_content(tmp_path: Path, django_user_model: Any) -> None:
    content = factories.pack_bytes(mixed_pack_document())
    path = tmp_path / "mixed.yaml"
    path.write_bytes(content)

    out = io.StringIO()
    call_command("import_coursepack", str(path), "--publish", stdout=out)
    assert out.getvalue().splitlines()[-1] == "published: 9 created, 0 updated, 0 unchanged, 0 retired"
    from_command = content_state()
    assert len(from_command["problem"]) == 4
    assert len(from_command["hidden_test"]) == 5

    delete_all_content()
    assert all(rows == [] for rows in content_state().values())

    client = Client()
    client.force_login(django_user_model.objects.create_superuser("curator", "curator@example.com", "pw-curator-1"))
    upload = client.post("/admin/tracks/coursepack/add/", {"file": SimpleUploadedFile("mixed.yaml", content)})
    pack = CoursePack.objects.get()
    assert upload.status_code == 302
    assert upload["Location"] == f"/admin/tracks/coursepack/{pack.pk}/change/"
    published = client.post(f"/admin/tracks/coursepack/{pack.pk}/publish/")
    assert published.status_code == 302
    pack.refresh_from_db()
    assert (pack.status, pack.source) == (CoursePackStatus.PUBLISHED, CoursePackSource.ADMIN)

    assert content_state() == from_command
