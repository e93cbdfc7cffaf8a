"""The admin's permission matrix, through HTTP with real users, groups and permissions.

Roles (groups):
- view-only: every `view_*` permission of the curriculum, nothing else;
- author: view, add and change content, upload packs, and `tracks.view_hidden_content` (an
  author edits hidden tests) — but cannot publish, retire, or set `published` by hand;
- publisher: author + `tracks.publish_coursepack` + `tracks.retire_problem`;
- superuser.

What each sees (hidden tests, reference solutions, generator sources, math answers and steps,
rubric expectations, validation messages) and what each can do (actions offered; a forged POST of
an action or custom view it may not use changes nothing).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.tracks import factories
from tests.tracks.snapshots import content_state
from tracks.models import CoursePack, CoursePackStatus, Problem, Track
from tracks.services import coursepack_upload, coursepack_validate

pytestmark = pytest.mark.django_db

CONTENT_MODELS = ("track", "module", "problem", "problemlanguage", "hiddentest", "rubric", "label", "topic")
VIEW_ONLY = [f"view_{model}" for model in (*CONTENT_MODELS, "coursepack")]
AUTHOR = [
    *VIEW_ONLY,
    *(f"{verb}_{model}" for verb in ("add", "change") for model in CONTENT_MODELS),
    "add_coursepack",
    "view_hidden_content",
]
PUBLISHER = [*AUTHOR, "publish_coursepack", "retire_problem"]
EDITOR = [code for code in AUTHOR if code != "view_hidden_content"]  # edits statements, not hidden content
ROLES = ("view-only", "author", "publisher", "superuser")

# Hidden content of the packs published below, one marker per kind.
HIDDEN_TEST_INPUT = "zqx-hidden-input-7f3a"
GENERATED_INPUT = "zqx-generated-9b1c"
REFERENCE_PYTHON = "zqx-reference-py-4d2e"
REFERENCE_JAVASCRIPT = "zqx-reference-js-8e5f"
GENERATOR_SOURCE = "zqx-generator-source-2a6b"
MATH_ANSWER = "73162940581"
MATH_STEP = "91827364510"
RUBRIC_EXPECTATION = "zqx-rubric-expectation-6f0c"


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def clients(django_user_model: Any) -> dict[str, Client]:
    return {role: client_for(role, django_user_model) for role in ROLES}


def client_for(role: str, django_user_model: Any) -> Client:
    if role == "superuser":
        user = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-1")
    else:
        user = django_user_model.objects.create_user(role, f"{role}@example.com", f"pw-{role}-1", is_staff=True)
        group = Group.objects.create(name=role)
        codenames = {"view-only": VIEW_ONLY, "author": AUTHOR, "publisher": PUBLISHER, "editor": EDITOR}[role]
        permissions = Permission.objects.filter(content_type__app_label="tracks", codename__in=codenames)
        assert permissions.count() == len(set(codenames))
        group.permissions.set(permissions)
        user.groups.add(group)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def content() -> dict[str, Problem]:
    """A coding, a math and a systems problem, each carrying hidden markers."""
    factories.publish(factories.pack_document(problems=[factories.shout_problem()]), filename="coding.yaml")
    factories.publish(
        factories.pack_document(
            track_slug="math-a",
            subject="math",
            modules=[{"slug": "algebra", "title": "Algebra"}],
            problems=[factories.math_problem()],
        ),
        filename="math.yaml",
    )
    factories.publish(
        factories.pack_document(
            track_slug="systems-a",
            subject="systems",
            modules=[{"slug": "design", "title": "Design"}],
            problems=[factories.systems_problem()],
            rubrics=[factories.rubric()],
        ),
        filename="systems.yaml",
    )
    return {problem.subject: problem for problem in Problem.objects.all()}


def page(client: Client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.content.decode()


def found(body: str, markers: tuple[str, ...]) -> list[str]:
    return [marker for marker in markers if marker in body or html.escape(marker) in body]


def action_names(client: Client, changelist: str) -> list[str]:
    response = client.get(changelist)
    assert response.status_code == 200
    form = response.context["action_form"]
    return sorted(name for name, _label in form.fields["action"].choices if name) if form else []


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


# --- every action declares its permission --------------------------------------------------------


def test_every_admin_action_declares_its_permission() -> None:
    undeclared = []
    for model, model_admin in admin.site._registry.items():
        for action in [*model_admin.actions, *dict(admin.site.actions).values()]:
            function = getattr(model_admin, action) if isinstance(action, str) else action
            if not getattr(function, "allowed_permissions", None):
                undeclared.append(f"{model._meta.label}: {getattr(function, '__name__', action)}")
    assert undeclared == []


# --- what each role sees -------------------------------------------------------------------------

CODING_HIDDEN = (HIDDEN_TEST_INPUT, GENERATED_INPUT, REFERENCE_PYTHON, REFERENCE_JAVASCRIPT, GENERATOR_SOURCE)
ALL_HIDDEN = (*CODING_HIDDEN, MATH_ANSWER, MATH_STEP, RUBRIC_EXPECTATION)


def test_problem_pages_show_hidden_content_only_with_the_permission(clients: dict[str, Client], content: dict) -> None:
    seen = {}
    for role, client in clients.items():
        coding = page(client, f"/admin/tracks/problem/{content['coding'].pk}/change/")
        math = page(client, f"/admin/tracks/problem/{content['math'].pk}/change/")
        systems = page(client, f"/admin/tracks/problem/{content['systems'].pk}/change/")
        # the statement and the starter code are for everyone
        assert "Return `text` in upper case." in coding and "def shout(text):" in html.unescape(coding)
        assert "Expand $(x+1)^2$." in math and "Design a distributed cache." in systems
        seen[role] = found(coding, CODING_HIDDEN) + found(math, (MATH_ANSWER, MATH_STEP)) + found(systems, (RUBRIC_EXPECTATION,))
        for path in ("/admin/tracks/problem/", "/admin/tracks/track/", "/admin/tracks/coursepack/"):
            assert found(page(client, path), ALL_HIDDEN) == [], (role, path)

    assert seen == {"view-only": [], "author": list(ALL_HIDDEN), "publisher": list(ALL_HIDDEN), "superuser": list(ALL_HIDDEN)}


def _pack_with_a_hidden_mismatch() -> CoursePack:
    """A pack whose hidden test expects a marker the reference does not return: the report's
    message quotes that hidden expectation."""
    problem = factories.shout_problem(
        hidden_tests=[{"category": "long-input", "input": {"text": "abc"}, "expected": "zqx-hidden-expected-1e9d"}],
        hidden_generators=[],
        remediation={"long-input": "Long inputs."},
    )
    pack = coursepack_upload(
        content=factories.pack_bytes(factories.pack_document(problems=[problem])), filename="mismatch.yaml", source="command"
    )
    coursepack_validate(pack=pack)
    pack.refresh_from_db()
    assert pack.status == CoursePackStatus.INVALID
    assert "zqx-hidden-expected-1e9d" in str(pack.validation_report)
    return pack


def test_pack_report_messages_and_file_only_with_the_permission_and_validate_only_for_uploaders(
    clients: dict[str, Client],
) -> None:
    pack = _pack_with_a_hidden_mismatch()
    validated_at = pack.validated_at

    for role, client in clients.items():
        body = page(client, f"/admin/tracks/coursepack/{pack.pk}/change/")
        assert "<code>problems[shout].hidden test #1 (long-input)</code>" in body, role  # where, for everyone
        assert ("zqx-hidden-expected-1e9d" in html.unescape(body)) is (role != "view-only"), role
        assert (pack.file.name in body) is (role != "view-only"), role
        assert ("details need the permission to view hidden content" in body) is (role == "view-only"), role

    viewer = clients["view-only"]
    view = viewer.post(f"/admin/tracks/coursepack/{pack.pk}/validate/")
    action = viewer.post("/admin/tracks/coursepack/", {"action": "validate_packs", "_selected_action": [str(pack.pk)]})

    assert (view.status_code, view.json()["error"]["code"], action.status_code) == (403, "permission_denied", 200)
    assert CoursePack.objects.get(pk=pack.pk).validated_at == validated_at


# --- what each role can do -----------------------------------------------------------------------

PROBLEM_ACTIONS = {
    "view-only": [],
    "author": ["check_reference_solutions"],
    "publisher": ["check_reference_solutions", "retire_problems"],
    "superuser": ["check_reference_solutions", "delete_selected", "retire_problems"],
}
PACK_ACTIONS = {
    "view-only": [],
    "author": ["validate_packs"],
    "publisher": ["publish_packs", "validate_packs"],
    "superuser": ["delete_selected", "publish_packs", "validate_packs"],
}


def test_actions_offered_to_each_role(clients: dict[str, Client]) -> None:
    offered = {
        role: (action_names(client, "/admin/tracks/problem/"), action_names(client, "/admin/tracks/coursepack/"))
        for role, client in clients.items()
    }

    assert offered == {role: (PROBLEM_ACTIONS[role], PACK_ACTIONS[role]) for role in ROLES}


def test_problem_actions_and_edits_by_role(clients: dict[str, Client], content: dict) -> None:
    from tests.tracks.test_admin import problem_form_data

    problem = content["coding"]
    before = content_state()
    for role in ("view-only", "author"):  # a forged retire changes nothing
        response = clients[role].post(
            "/admin/tracks/problem/", {"action": "retire_problems", "_selected_action": [str(problem.pk)]}, follow=True
        )
        assert response.status_code == 200, role
        assert messages_of(response) == ([] if role == "view-only" else ["No action selected."]), role
        assert content_state() == before, role

    data = problem_form_data(clients["superuser"], problem)
    data["title"] = ["Changed by a viewer"]
    assert clients["view-only"].post(f"/admin/tracks/problem/{problem.pk}/change/", data).status_code == 403
    assert content_state() == before

    # An author edits, but the published flag is read-only: unchecking it changes nothing.
    data = problem_form_data(clients["author"], problem)
    assert "published" not in data
    data["published"] = [""]
    data["title"] = ["Shout, revised"]
    assert clients["author"].post(f"/admin/tracks/problem/{problem.pk}/change/", data).status_code == 302
    problem.refresh_from_db()
    assert (problem.title, problem.published) == ("Shout, revised", True)
    assert problem.hidden_tests.count() == 4  # hidden tests and references saved as they were
    assert REFERENCE_PYTHON in problem.languages.get(language="python").reference_solution

    response = clients["publisher"].post(
        "/admin/tracks/problem/", {"action": "retire_problems", "_selected_action": [str(problem.pk)]}, follow=True
    )
    assert messages_of(response) == ["Retired 1 problem(s)."]
    assert Problem.objects.get(pk=problem.pk).published is False


def test_validate_and_publish_by_role(clients: dict[str, Client]) -> None:
    """Buttons by role; forged publishes (view, action) change nothing; an author uploads and
    validates, a publisher publishes."""
    clients["author"].post(
        "/admin/tracks/coursepack/add/",
        {"file": SimpleUploadedFile("pack.yaml", factories.pack_bytes(factories.pack_document()))},
    )
    pack = CoursePack.objects.get()
    assert pack.status == CoursePackStatus.VALID

    buttons = {}
    for role, client in clients.items():
        body = page(client, f"/admin/tracks/coursepack/{pack.pk}/change/")
        buttons[role] = [
            name for name in ("validate", "publish") if f'action="/admin/tracks/coursepack/{pack.pk}/{name}/"' in body
        ]
    assert buttons == {
        "view-only": [],
        "author": ["validate"],
        "publisher": ["validate", "publish"],
        "superuser": ["validate", "publish"],
    }

    for role in ("view-only", "author"):
        view = clients[role].post(f"/admin/tracks/coursepack/{pack.pk}/publish/")
        action = clients[role].post(
            "/admin/tracks/coursepack/", {"action": "publish_packs", "_selected_action": [str(pack.pk)]}, follow=True
        )
        assert (view.status_code, view.json()["error"]["code"]) == (403, "permission_denied"), role
        assert action.status_code == 200, role
        assert messages_of(action) == ([] if role == "view-only" else ["No action selected."]), role
        assert (CoursePack.objects.get().status, Problem.objects.count()) == (CoursePackStatus.VALID, 0), role

    validated = clients["author"].post(f"/admin/tracks/coursepack/{pack.pk}/validate/", follow=True)
    published = clients["publisher"].post(f"/admin/tracks/coursepack/{pack.pk}/publish/", follow=True)

    assert messages_of(validated) == ["Valid."]
    assert messages_of(published) == ["Published test-track 1.0.0: 4 created, 0 updated, 0 retired."]
    assert CoursePack.objects.get().status == CoursePackStatus.PUBLISHED


def test_an_editor_without_the_hidden_content_permission_saves_without_seeing_or_changing_it(
    django_user_model: Any, content: dict
) -> None:
    from tests.tracks.test_admin import problem_form_data

    editor = client_for("editor", django_user_model)
    for problem in content.values():
        path = f"/admin/tracks/problem/{problem.pk}/change/"
        assert found(page(editor, path), ALL_HIDDEN) == [], problem.slug
        before = content_state()
        data = problem_form_data(editor, problem)
        assert not {"hidden_generators", "math_answer", "math_steps", "rubric_expectations"} & set(data)
        assert not [name for name in data if name.startswith("hidden_tests-") or name.endswith("-reference_solution")]
        data["title"] = [f"{problem.title}, revised"]

        response = editor.post(path, data)

        assert response.status_code == 302, problem.slug
        after = content_state()
        assert [row for row in after["problem"] if row not in before["problem"]] == [
            tuple((name, f"{problem.title}, revised") if name == "title" else (name, value) for name, value in row)
            for row in before["problem"]
            if ("slug", problem.slug) in row
        ]
        assert {table: rows for table, rows in after.items() if table != "problem"} == {
            table: rows for table, rows in before.items() if table != "problem"
        }


def test_what_an_author_adds_waits_for_a_publisher(django_user_model: Any, content: dict) -> None:
    from tests.tracks.test_admin import form_data

    author, publisher = client_for("author", django_user_model), client_for("publisher", django_user_model)
    track = content["coding"].module.track
    path = f"/admin/tracks/track/{track.pk}/change/"

    for client, slug in ((author, "by-author"), (publisher, "by-publisher")):
        data = form_data(client.get(path), "track_form")
        index = int(data["modules-TOTAL_FORMS"][0])
        data["modules-TOTAL_FORMS"] = [str(index + 1)]
        data.update({f"modules-{index}-slug": [slug], f"modules-{index}-title": [slug], f"modules-{index}-outcomes": ["[]"]})
        data[f"modules-{index}-position"] = ["9"]
        data[f"modules-{index}-published"] = ["on"]
        data[f"modules-{index}-track"] = [str(track.pk)]
        response = client.post(path, data)
        assert response.status_code == 302, response.content.decode()[:3000]

    assert dict(track.modules.filter(slug__startswith="by-").values_list("slug", "published")) == {
        "by-author": False,
        "by-publisher": True,
    }
    assert Track.objects.get(pk=track.pk).published is True
