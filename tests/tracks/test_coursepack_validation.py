"""Course pack validation: every finding names the problem and field it is about, and an invalid
pack publishes nothing — through `coursepack_dry_run` and through `manage.py import_coursepack`.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from tests.tracks import factories
from tests.tracks.snapshots import content_state
from tracks.models import CoursePack, CoursePackStatus, HiddenTest, HiddenTestOrigin, Module, Problem, Track
from tracks.services import coursepack_dry_run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def findings(report: dict[str, Any], kind: str = "errors") -> list[tuple[str, str]]:
    return sorted((item["path"], item["message"]) for item in report[kind])


def content_counts() -> dict[str, int]:
    return {
        "tracks": Track.objects.count(),
        "modules": Module.objects.count(),
        "problems": Problem.objects.count(),
        "hidden_tests": HiddenTest.objects.count(),
    }


NOTHING = {"tracks": 0, "modules": 0, "problems": 0, "hidden_tests": 0}


def write_pack(tmp_path: Path, document: dict[str, Any] | bytes, name: str = "pack.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(document if isinstance(document, bytes) else factories.pack_bytes(document))
    return path


def run_import(*args: str) -> tuple[str, CommandError | None]:
    """(stdout, the CommandError raised or None): the report is printed before the command fails."""
    out = io.StringIO()
    try:
        call_command("import_coursepack", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


# --- packs with mistakes -------------------------------------------------------------------------


def schema_mistakes_pack() -> dict[str, Any]:
    """Mistakes a JSON schema catches: hints with 2 items, a difficulty out of range."""
    add = factories.add_problem(hints=["Think about the plus sign.", "Add them."])
    shout = factories.shout_problem(difficulty=9)
    return factories.pack_document(problems=[add, shout])


def reference_mistakes_pack() -> dict[str, Any]:
    """Mistakes between sections: unknown module, input keys, remediation, tolerance, rubric
    dimensions, undeclared math variable, duplicate slug (a coding track may carry math and
    systems problems, each naming its subject)."""
    shout = factories.shout_problem()
    shout["visible_tests"][1] = {"input": {"txt": "Hello"}, "expected": "HELLO"}
    math = factories.math_problem(subject="math", module="basics")
    math["math"]["answer"] = "x**2 + 2*x*y + 1"
    systems = factories.systems_problem(module="basics")
    systems["subject"] = "systems"
    del systems["systems"]["expectations"]["scaling"]
    problems = [
        factories.add_problem(module="nowhere"),
        shout,
        factories.add_problem(slug="no-remedy", remediation={}),
        factories.add_problem(slug="average", comparison="float"),
        systems,
        math,
        factories.add_problem(slug="twice"),
        factories.add_problem(slug="twice"),
    ]
    return factories.pack_document(problems=problems, rubrics=[factories.rubric()])


REFERENCE_MISTAKES = sorted(
    [
        ("problems[add-numbers].module", "'nowhere' is not a module of track 'test-track'"),
        ("problems[shout].visible_tests[1].input", "keys ['txt'] must be exactly the parameters ['text']"),
        ("problems[no-remedy].remediation", "has no entry for hidden category 'negatives'"),
        ("problems[average].float_tolerance", "is required when comparison is 'float'"),
        ("problems[design-cache].systems.expectations", "has no expectations for rubric dimension 'scaling'"),
        (
            "problems[expand-square].math.answer",
            "is not a valid expression: unknown name 'y'; you can use x and functions such as sin, cos, exp, ln, log and sqrt "
            "(at character 12)",
        ),
        ("problems[twice]", "problem slug appears more than once"),
    ]
)


def runner_mistakes_pack() -> dict[str, Any]:
    """Mistakes only running the references finds: a Python reference that is wrong on one
    visible test (a falsy check), a JavaScript reference whose entrypoint has another name."""
    add = factories.add_problem()
    add["languages"]["python"]["reference"] = "def add(a, b):\n    return a + b if a or b else None\n"
    shout = factories.shout_problem()
    shout["languages"]["javascript"]["entrypoint"] = "Shout"
    return factories.pack_document(problems=[add, shout])


RUNNER_MISTAKES = sorted(
    [
        ("problems[add-numbers].visible_tests[2]", "python reference returned null, expected 0"),
        ("problems[shout].languages.javascript", "'Shout' is not defined in the reference solution"),
    ]
)


# --- what the report says ------------------------------------------------------------------------


def test_schema_mistakes_name_problem_and_field() -> None:
    check = coursepack_dry_run(content=factories.pack_bytes(schema_mistakes_pack()))

    report = check.report()
    assert report["ok"] is False
    assert findings(report) == [
        ("problems[add-numbers].hints", "['Think about the plus sign.', 'Add them.'] is too short"),
        ("problems[shout].difficulty", "9 is greater than the maximum of 5"),
    ]
    assert content_counts() == NOTHING
    assert CoursePack.objects.count() == 0


def test_reference_mistakes_name_problem_and_field() -> None:
    check = coursepack_dry_run(content=factories.pack_bytes(reference_mistakes_pack()))

    report = check.report()
    assert report["ok"] is False
    assert findings(report) == REFERENCE_MISTAKES
    assert report["summary"] == {"track": "test-track", "version": "1.0.0", "modules": 1, "problems": 8, "hidden_tests": 0}
    assert content_counts() == NOTHING
    assert CoursePack.objects.count() == 0


def test_runner_mistakes_name_problem_and_field() -> None:
    check = coursepack_dry_run(content=factories.pack_bytes(runner_mistakes_pack()))

    report = check.report()
    assert report["ok"] is False
    assert findings(report) == RUNNER_MISTAKES
    assert findings(report, "warnings") == []
    assert content_counts() == NOTHING


def test_pack_with_every_mistake_at_once_reports_them_all_in_one_pass(tmp_path: Path) -> None:
    """Structural, cross-section and reference mistakes in one file: one report names every one
    (structurally sound problems are still checked; references run for the problems without
    findings), and nothing is published."""
    document = reference_mistakes_pack()
    document["problems"] += [
        factories.add_problem(slug="short-hints", hints=["Think about the plus sign.", "Add them."]),
        factories.shout_problem(slug="too-hard", difficulty=9),
    ]
    wrong_add = factories.add_problem(slug="add-wrong")
    wrong_add["languages"]["python"]["reference"] = "def add(a, b):\n    return a + b if a or b else None\n"
    wrong_js = factories.shout_problem(slug="shout-js")
    wrong_js["languages"]["javascript"]["entrypoint"] = "Shout"
    document["problems"] += [wrong_add, wrong_js]
    path = write_pack(tmp_path, document)

    _, error = run_import(str(path))

    assert str(error) == "The course pack is invalid."
    pack = CoursePack.objects.get()
    assert pack.status == CoursePackStatus.INVALID
    assert pack.published_at is None
    assert findings(pack.validation_report) == sorted(
        [
            *REFERENCE_MISTAKES,
            ("problems[short-hints].hints", "['Think about the plus sign.', 'Add them.'] is too short"),
            ("problems[too-hard].difficulty", "9 is greater than the maximum of 5"),
            ("problems[add-wrong].visible_tests[2]", "python reference returned null, expected 0"),
            ("problems[shout-js].languages.javascript", "'Shout' is not defined in the reference solution"),
        ]
    )
    assert content_counts() == NOTHING


def test_malformed_yaml_is_reported_with_line_and_column(tmp_path: Path) -> None:
    content = b"format: 1\ntrack:\n  slug: a\n   title: b\n"

    check = coursepack_dry_run(content=content)

    assert check.report() == {
        "ok": False,
        "errors": [
            {"path": "(file)", "message": "is not valid YAML/JSON at line 4, column 9: mapping values are not allowed here"}
        ],
        "warnings": [],
        "summary": {},
    }
    output, error = run_import(str(write_pack(tmp_path, content)))

    assert str(error) == "The course pack is invalid."
    assert output.splitlines() == [
        "ERROR   (file): is not valid YAML/JSON at line 4, column 9: mapping values are not allowed here",
        "invalid: 1 error(s); nothing was published",
    ]
    pack = CoursePack.objects.get()
    assert (pack.status, pack.track_slug, pack.version) == (CoursePackStatus.INVALID, "", "")
    assert content_counts() == NOTHING


# --- through the command -------------------------------------------------------------------------


def test_command_stores_invalid_pack_with_its_report_and_publishes_nothing(tmp_path: Path) -> None:
    content = factories.pack_bytes(reference_mistakes_pack())
    path = write_pack(tmp_path, content, "broken.yaml")

    output, error = run_import(str(path), "--publish")

    assert str(error) == "The course pack is invalid."
    output = output.splitlines()
    assert output[0] == "track test-track 1.0.0: 1 modules, 8 problems, 0 hidden tests"
    assert sorted(line for line in output if line.startswith("ERROR")) == sorted(
        f"ERROR   {where}: {message}" for where, message in REFERENCE_MISTAKES
    )
    assert output[-1] == "invalid: 7 error(s); nothing was published"
    pack = CoursePack.objects.get()
    assert pack.status == CoursePackStatus.INVALID
    assert pack.original_name == "broken.yaml"
    assert (pack.track_slug, pack.version) == ("test-track", "1.0.0")
    assert pack.validation_report == coursepack_dry_run(content=content).report()
    assert findings(pack.validation_report) == REFERENCE_MISTAKES
    assert pack.published_at is None
    assert content_counts() == NOTHING


def test_command_reports_runner_mistakes_as_json(tmp_path: Path) -> None:
    path = write_pack(tmp_path, runner_mistakes_pack())

    output, error = run_import(str(path), "--json")

    assert str(error) == "The course pack is invalid."
    report = json.loads(output)
    assert report["ok"] is False
    assert findings(report) == RUNNER_MISTAKES
    assert CoursePack.objects.get().status == CoursePackStatus.INVALID
    assert content_counts() == NOTHING


def test_command_dry_run_stores_no_course_pack(tmp_path: Path) -> None:
    path = write_pack(tmp_path, reference_mistakes_pack())

    output, error = run_import(str(path), "--dry-run")

    assert str(error) == "The course pack is invalid."
    assert sorted(line for line in output.splitlines() if line.startswith("ERROR")) == sorted(
        f"ERROR   {where}: {message}" for where, message in REFERENCE_MISTAKES
    )
    assert CoursePack.objects.count() == 0
    assert content_counts() == NOTHING


def test_command_dry_run_of_a_valid_pack_writes_nothing(tmp_path: Path) -> None:
    path = write_pack(tmp_path, factories.pack_document())

    output, error = run_import(str(path), "--dry-run")

    assert error is None

    assert output.splitlines() == ["track test-track 1.0.0: 1 modules, 2 problems, 5 hidden tests", "valid"]
    assert CoursePack.objects.count() == 0
    assert content_counts() == NOTHING


def test_command_without_publish_stores_a_valid_pack_unpublished(tmp_path: Path) -> None:
    path = write_pack(tmp_path, factories.pack_document())

    output, error = run_import(str(path))

    assert error is None

    pack = CoursePack.objects.get()
    assert pack.status == CoursePackStatus.VALID
    assert output.splitlines()[-1] == (
        f"Stored as course pack {pack.pk} (status valid); publish it with --publish or in the admin."
    )
    assert content_counts() == NOTHING


def test_command_rejects_dry_run_with_publish_and_missing_files(tmp_path: Path) -> None:
    path = write_pack(tmp_path, factories.pack_document())

    _, both = run_import(str(path), "--dry-run", "--publish")
    _, missing = run_import(str(tmp_path / "missing.yaml"))

    assert str(both) == "--dry-run and --publish exclude each other."
    assert str(missing) == f"{tmp_path / 'missing.yaml'} is not a file."

    assert CoursePack.objects.count() == 0
    assert content_counts() == NOTHING


def test_problem_slug_owned_by_another_track_is_an_error(tmp_path: Path) -> None:
    factories.publish(factories.pack_document(track_slug="track-a", problems=[factories.shout_problem()]))
    before = content_state()
    other = factories.pack_document(track_slug="track-b", problems=[factories.shout_problem(), factories.add_problem()])

    check = coursepack_dry_run(content=factories.pack_bytes(other))
    _, error = run_import(str(write_pack(tmp_path, other)), "--publish")

    assert str(error) == "The course pack is invalid."
    expected = [("problems[shout].slug", "'shout' already belongs to track 'track-a'; problem slugs are unique")]
    assert findings(check.report()) == expected
    rejected = CoursePack.objects.get(track_slug="track-b")
    assert rejected.status == CoursePackStatus.INVALID
    assert findings(rejected.validation_report) == expected
    assert content_state() == before
    assert list(Problem.objects.values_list("slug", "module__track__slug")) == [("shout", "track-a")]


def test_republishing_own_track_is_not_a_slug_conflict() -> None:
    document = factories.pack_document(problems=[factories.shout_problem()])
    factories.publish(document)

    check = coursepack_dry_run(content=factories.pack_bytes(document))

    assert check.report()["errors"] == []


# --- generators ----------------------------------------------------------------------------------


def test_generator_that_raises_is_reported_at_the_generator() -> None:
    shout = factories.shout_problem()
    shout["hidden_generators"][0]["source"] = "def generate(rng, index):\n    raise ValueError('boom')\n"

    check = coursepack_dry_run(content=factories.pack_bytes(factories.pack_document(problems=[shout])))

    report = check.report()
    assert report["ok"] is False
    assert findings(report) == [("problems[shout].hidden_generators[0]", "generator failed: ValueError: boom (line 2)")]
    assert content_counts() == NOTHING


def test_generated_case_the_reference_fails_on_is_reported_at_the_generator() -> None:
    shout = factories.shout_problem()
    shout["hidden_generators"][0]["source"] = "def generate(rng, index):\n    return {'text': index}\n"

    check = coursepack_dry_run(content=factories.pack_bytes(factories.pack_document(problems=[shout])))

    assert (
        findings(check.report())
        == [
            (
                "problems[shout].hidden_generators[0]",
                "python reference failed on a generated case: AttributeError: 'int' object has no attribute 'upper' (line 3)",
            )
        ]
        * 2
    )


def expected_generated_inputs(seed: int, count: int) -> list[dict[str, str]]:
    """What the shout generator returns, with the documented seeding ("{seed}:{index}")."""
    return [
        {"text": "zqx-generated-9b1c" + str(random.Random(f"{seed}:{index}").randint(0, 9) + index)} for index in range(count)
    ]


def test_generated_cases_get_expected_outputs_from_the_python_reference() -> None:
    document = factories.pack_document(problems=[factories.shout_problem()])

    factories.publish(document)

    problem = Problem.objects.get(slug="shout")
    rows = list(problem.hidden_tests.order_by("position").values_list("position", "category", "input", "expected", "origin"))
    generated = expected_generated_inputs(seed=7, count=2)
    assert rows == [
        (0, "long-input", {"text": "zqx-hidden-input-7f3a"}, "ZQX-HIDDEN-INPUT-7F3A", HiddenTestOrigin.AUTHORED),
        (1, "mixed-case", {"text": "aBc"}, "ABC", HiddenTestOrigin.AUTHORED),
        (2, "long-input", generated[0], generated[0]["text"].upper(), HiddenTestOrigin.GENERATED),
        (3, "long-input", generated[1], generated[1]["text"].upper(), HiddenTestOrigin.GENERATED),
    ]


def test_generated_cases_are_reproducible() -> None:
    document = factories.pack_document(problems=[factories.shout_problem()])
    content = factories.pack_bytes(document)
    first_check, second_check = coursepack_dry_run(content=content), coursepack_dry_run(content=content)
    assert first_check.hidden_tests == second_check.hidden_tests
    assert [case.origin for case in first_check.hidden_tests["shout"]] == ["authored", "authored", "generated", "generated"]

    factories.publish(document)
    first = list(HiddenTest.objects.order_by("problem__slug", "position").values())
    factories.publish(document)
    second = list(HiddenTest.objects.order_by("problem__slug", "position").values())

    assert len(first) == 4
    assert second == first
    assert CoursePack.objects.filter(status=CoursePackStatus.PUBLISHED).count() == 2
