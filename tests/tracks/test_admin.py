"""The curriculum admin through HTTP: course pack upload → report → publish, problem and rubric
editors that reject malformed JSON and wrong shapes, and hidden tests shown only to staff.
"""

from __future__ import annotations

import html
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.tracks import factories
from tests.tracks.snapshots import content_state
from tracks.models import CoursePack, CoursePackSource, CoursePackStatus, Module, Problem, Rubric, Topic, Track

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def superuser(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("curator", "curator@example.com", "pw-curator-1")


@pytest.fixture
def staff(superuser: Any) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def non_staff(django_user_model: Any) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_user("learner", "learner@example.com", "pw-learner-1"))
    return client


@pytest.fixture
def two_tracks() -> dict[str, Any]:
    """track-a (coding: shout, add-numbers) and track-b (math: expand-square)."""
    factories.publish(factories.pack_document(track_slug="track-a"), filename="a.yaml")
    factories.publish(
        factories.pack_document(
            track_slug="track-b",
            subject="math",
            modules=[{"slug": "algebra", "title": "Algebra"}],
            problems=[factories.math_problem()],
        ),
        filename="b.yaml",
    )
    return {"track_a": Track.objects.get(slug="track-a"), "track_b": Track.objects.get(slug="track-b")}


def upload(client: Client, content: bytes, name: str = "pack.yaml", *, follow: bool = False) -> Any:
    """Upload through the add form; with follow=True the change page (and its messages) is read."""
    return client.post("/admin/tracks/coursepack/add/", {"file": SimpleUploadedFile(name, content)}, follow=follow)


def login_redirect(path: str) -> str:
    return f"/admin/login/?next={path}"


def page_messages(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def two_hint_pack() -> bytes:
    return factories.pack_bytes(factories.pack_document(problems=[factories.add_problem(hints=["Plus.", "Add them."])]))


# --- reading an admin form the way a browser submits it ------------------------------------------


class _FormReader(HTMLParser):
    """Collects the successful controls of one <form>: what a browser would POST unchanged."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.data: dict[str, list[str]] = {}
        self._textarea: str | None = None
        self._text: list[str] = []
        self._select: dict[str, Any] | None = None

    def _add(self, name: str, value: str) -> None:
        self.data.setdefault(name, []).append(value)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.inside = attributes.get("id") == self.form_id
            return
        if not self.inside:
            return
        name = attributes.get("name")
        if tag == "input" and name:
            kind = attributes.get("type", "text")
            if kind in {"submit", "button", "image", "reset", "file"}:
                return
            if kind in {"checkbox", "radio"}:
                if "checked" in attributes:
                    self._add(name, attributes.get("value") or "on")
                return
            self._add(name, attributes.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []
        elif tag == "select" and name:
            self._select = {"name": name, "multiple": "multiple" in attributes, "selected": [], "first": None}
        elif tag == "option" and self._select is not None:
            value = attributes.get("value", "")
            if self._select["first"] is None:
                self._select["first"] = value
            if "selected" in attributes:
                self._select["selected"].append(value)

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "textarea" and self._textarea is not None:
            text = "".join(self._text)
            self._add(self._textarea, text[1:] if text.startswith("\n") else text)
            self._textarea = None
        elif tag == "select" and self._select is not None:
            chosen = self._select["selected"]
            if not chosen and not self._select["multiple"] and self._select["first"] is not None:
                chosen = [self._select["first"]]
            for value in chosen:
                self._add(self._select["name"], value)
            self._select = None


def form_data(response: Any, form_id: str) -> dict[str, list[str]]:
    reader = _FormReader(form_id)
    reader.feed(response.content.decode())
    assert reader.data, f"no form #{form_id} on the page"
    return {name: values for name, values in reader.data.items() if "__prefix__" not in name}


def problem_form_data(client: Client, problem: Problem) -> dict[str, list[str]]:
    response = client.get(f"/admin/tracks/problem/{problem.pk}/change/")
    assert response.status_code == 200
    return form_data(response, "problem_form")


def inline_formset(response: Any, prefix: str) -> Any:
    return next(inline.formset for inline in response.context["inline_admin_formsets"] if inline.formset.prefix == prefix)


# --- course packs: upload → report → publish -----------------------------------------------------


def test_upload_valid_pack_shows_report_and_publishes_on_request(staff: Client, superuser: Any) -> None:
    response = upload(staff, factories.pack_bytes(factories.pack_document()))

    pack = CoursePack.objects.get()
    change_url = f"/admin/tracks/coursepack/{pack.pk}/change/"
    assert (response.status_code, response["Location"]) == (302, change_url)
    assert (pack.status, pack.source, pack.uploaded_by, pack.original_name) == (
        CoursePackStatus.VALID,
        CoursePackSource.ADMIN,
        superuser,
        "pack.yaml",
    )
    assert Problem.objects.count() == 0

    page = staff.get(change_url)
    assert page.status_code == 200
    assert page_messages(page) == ["Uploaded and valid: review the report, then publish."]
    body = page.content.decode()
    assert "<strong>Valid</strong>" in body
    assert "<p><strong>test-track</strong> 1.0.0 — 1 modules, 2 problems, 5 hidden tests</p>" in body
    assert f'action="/admin/tracks/coursepack/{pack.pk}/publish/"' in body
    assert f'action="/admin/tracks/coursepack/{pack.pk}/validate/"' in body

    published = staff.post(f"/admin/tracks/coursepack/{pack.pk}/publish/", follow=True)

    assert published.redirect_chain == [(change_url, 302)]
    assert page_messages(published) == ["Published test-track 1.0.0: 4 created, 0 updated, 0 retired."]
    assert f'action="/admin/tracks/coursepack/{pack.pk}/publish/"' not in published.content.decode()
    pack.refresh_from_db()
    assert (pack.status, pack.published_by) == (CoursePackStatus.PUBLISHED, superuser)
    assert pack.published_at is not None
    assert sorted(Problem.objects.values_list("slug", "published")) == [("add-numbers", True), ("shout", True)]
    assert Track.objects.get().slug == "test-track"


def test_publishing_a_published_pack_again_changes_nothing(staff: Client) -> None:
    upload(staff, factories.pack_bytes(factories.pack_document()), follow=True)
    pack = CoursePack.objects.get()
    staff.post(f"/admin/tracks/coursepack/{pack.pk}/publish/", follow=True)
    before = content_state()
    published_at = CoursePack.objects.get().published_at

    again = staff.post(f"/admin/tracks/coursepack/{pack.pk}/publish/", follow=True)

    assert page_messages(again) == ["Published test-track 1.0.0: nothing changed."]
    assert content_state() == before
    assert CoursePack.objects.get().published_at == published_at


def test_upload_invalid_pack_shows_error_paths_and_publishes_nothing(staff: Client) -> None:
    response = upload(staff, two_hint_pack(), name="broken.yaml")

    pack = CoursePack.objects.get()
    assert response.status_code == 302
    assert pack.status == CoursePackStatus.INVALID
    page = staff.get(response["Location"])
    body = page.content.decode()
    assert page_messages(page) == ["Uploaded, but invalid: 1 error(s) below."]
    assert "<strong>1 error(s): nothing can be published</strong>" in body
    assert (
        '<li style="color:#ba2121"><code>problems[add-numbers].hints</code>: '
        + html.escape("['Plus.', 'Add them.'] is too short")
        + "</li>"
    ) in body
    assert "<strong>Valid</strong>" not in body
    assert f'action="/admin/tracks/coursepack/{pack.pk}/publish/"' not in body
    before = content_state()

    published = staff.post(f"/admin/tracks/coursepack/{pack.pk}/publish/", follow=True)

    assert page_messages(published) == ["broken.yaml (test-track 1.0.0): The course pack has errors; nothing was published."]
    pack.refresh_from_db()
    assert (pack.status, pack.published_at) == (CoursePackStatus.INVALID, None)
    assert content_state() == before
    assert (Track.objects.count(), Problem.objects.count()) == (0, 0)


def test_upload_malformed_yaml_shows_the_line(staff: Client) -> None:
    response = upload(staff, b"format: 1\ntrack: [unclosed\n", name="bad.yaml")

    page = staff.get(response["Location"])

    assert (
        "<code>(file)</code>: is not valid YAML/JSON at line 3, column 1: "
        + html.escape("expected ',' or ']', but got '<stream end>'")
    ) in page.content.decode()
    assert CoursePack.objects.get().status == CoursePackStatus.INVALID


def test_validate_again_revalidates_against_what_is_published_now(staff: Client) -> None:
    upload(
        staff,
        factories.pack_bytes(factories.pack_document(track_slug="track-a", problems=[factories.shout_problem()])),
        follow=True,
    )
    pack = CoursePack.objects.get()
    validated_at = pack.validated_at
    assert pack.status == CoursePackStatus.VALID
    # Meanwhile another track publishes a problem with the same slug.
    factories.publish(factories.pack_document(track_slug="track-b", problems=[factories.shout_problem()]))

    ignored = staff.get(f"/admin/tracks/coursepack/{pack.pk}/validate/")
    pack.refresh_from_db()
    assert (ignored.status_code, pack.status, pack.validated_at) == (302, CoursePackStatus.VALID, validated_at)

    response = staff.post(f"/admin/tracks/coursepack/{pack.pk}/validate/", follow=True)

    assert response.redirect_chain == [(f"/admin/tracks/coursepack/{pack.pk}/change/", 302)]
    assert page_messages(response) == ["Invalid: 1 error(s)."]
    pack.refresh_from_db()
    assert pack.status == CoursePackStatus.INVALID
    assert pack.validated_at > validated_at
    assert pack.validation_report["errors"] == [
        {"path": "problems[shout].slug", "message": "'shout' already belongs to track 'track-b'; problem slugs are unique"}
    ]
    assert "<code>problems[shout].slug</code>" in response.content.decode()
    assert list(Problem.objects.values_list("slug", "module__track__slug")) == [("shout", "track-b")]


def test_validate_again_on_a_valid_pack_says_valid(staff: Client) -> None:
    upload(staff, factories.pack_bytes(factories.pack_document()), follow=True)
    pack = CoursePack.objects.get()

    response = staff.post(f"/admin/tracks/coursepack/{pack.pk}/validate/", follow=True)

    assert page_messages(response) == ["Valid."]
    assert CoursePack.objects.get().status == CoursePackStatus.VALID


def test_publish_action_from_the_changelist(staff: Client) -> None:
    upload(staff, factories.pack_bytes(factories.pack_document()), follow=True)
    pack = CoursePack.objects.get()

    response = staff.post(
        "/admin/tracks/coursepack/", {"action": "publish_packs", "_selected_action": [str(pack.pk)]}, follow=True
    )

    assert page_messages(response) == ["Published test-track 1.0.0: 4 created, 0 updated, 0 retired."]
    assert CoursePack.objects.get().status == CoursePackStatus.PUBLISHED
    assert Problem.objects.count() == 2


def test_non_staff_cannot_upload_or_publish(non_staff: Client, staff: Client) -> None:
    upload(staff, factories.pack_bytes(factories.pack_document()))
    pack = CoursePack.objects.get()

    upload_response = upload(non_staff, factories.pack_bytes(factories.pack_document(track_slug="other")))
    publish_response = non_staff.post(f"/admin/tracks/coursepack/{pack.pk}/publish/")
    page = non_staff.get(f"/admin/tracks/coursepack/{pack.pk}/change/")

    assert (upload_response.status_code, upload_response["Location"]) == (302, login_redirect("/admin/tracks/coursepack/add/"))
    assert (publish_response.status_code, publish_response["Location"]) == (
        302,
        login_redirect(f"/admin/tracks/coursepack/{pack.pk}/publish/"),
    )
    assert page.status_code == 302
    assert list(CoursePack.objects.values_list("id", "status")) == [(pack.pk, CoursePackStatus.VALID)]
    assert Problem.objects.count() == 0


def test_staff_without_permissions_cannot_upload_or_publish(django_user_model: Any, staff: Client) -> None:
    upload(staff, factories.pack_bytes(factories.pack_document()))
    pack = CoursePack.objects.get()
    client = Client()
    client.force_login(django_user_model.objects.create_user("intern", "intern@example.com", "pw-intern-1", is_staff=True))

    upload_response = upload(client, factories.pack_bytes(factories.pack_document(track_slug="other")))
    publish_response = client.post(f"/admin/tracks/coursepack/{pack.pk}/publish/")

    assert (upload_response.status_code, upload_response["Location"]) == (302, "/admin/")
    assert publish_response.status_code == 403
    assert list(CoursePack.objects.values_list("id", "status")) == [(pack.pk, CoursePackStatus.VALID)]
    assert Problem.objects.count() == 0


# --- problem changelist --------------------------------------------------------------------------


def changelist_slugs(client: Client, query: str = "") -> list[str]:
    response = client.get(f"/admin/tracks/problem/{query}")
    assert response.status_code == 200
    return sorted(problem.slug for problem in response.context["cl"].result_list)


def test_problem_changelist_filters_and_searches(staff: Client, two_tracks: dict[str, Any]) -> None:
    track_a, track_b = two_tracks["track_a"], two_tracks["track_b"]
    algebra = Module.objects.get(track=track_b, slug="algebra")
    basics = Module.objects.get(track=track_a, slug="basics")
    strings = Topic.objects.get(slug="strings")

    page = staff.get("/admin/tracks/problem/")
    body = page.content.decode()
    assert all(slug in body for slug in ("shout", "add-numbers", "expand-square"))
    assert changelist_slugs(staff) == ["add-numbers", "expand-square", "shout"]
    assert changelist_slugs(staff, f"?module__track__id__exact={track_a.pk}") == ["add-numbers", "shout"]
    assert changelist_slugs(staff, f"?module__track__id__exact={track_b.pk}") == ["expand-square"]
    assert changelist_slugs(staff, f"?module__id__exact={algebra.pk}") == ["expand-square"]
    assert changelist_slugs(staff, f"?module__id__exact={basics.pk}") == ["add-numbers", "shout"]
    assert changelist_slugs(staff, "?difficulty=2") == ["add-numbers"]
    assert changelist_slugs(staff, "?difficulty=1") == ["expand-square", "shout"]
    assert changelist_slugs(staff, f"?topics__id__exact={strings.pk}") == ["shout"]
    assert changelist_slugs(staff, "?subject__exact=math") == ["expand-square"]
    assert changelist_slugs(staff, "?q=upper+case") == ["shout"]
    assert changelist_slugs(staff, "?q=add-numbers") == ["add-numbers"]
    assert changelist_slugs(staff, "?q=nothing-matches-this") == []


# --- problem change form -------------------------------------------------------------------------


def test_problem_change_form_saves_unchanged_data(staff: Client, two_tracks: dict[str, Any]) -> None:
    """The form reader posts what a browser would; unchanged, the form saves (so the rejections
    below are about the one field each changes)."""
    problem = Problem.objects.get(slug="shout")
    before = content_state()

    response = staff.post(f"/admin/tracks/problem/{problem.pk}/change/", problem_form_data(staff, problem))

    assert (response.status_code, response["Location"]) == (302, "/admin/tracks/problem/")
    after = content_state()
    # Languages are compared in the next test (trailing newlines of code are stripped there).
    assert {table: rows for table, rows in after.items() if table != "problem_language"} == {
        table: rows for table, rows in before.items() if table != "problem_language"
    }


def test_problem_change_form_saved_unchanged_keeps_code_and_statement_as_authored(staff: Client) -> None:
    """Opening a problem and saving it without edits must not rewrite authored text: otherwise
    the next publish of the very same pack reports (and makes) changes."""
    document = factories.pack_document(problems=[factories.shout_problem(statement="Return `text` in upper case.\n")])
    factories.publish(document)
    problem = Problem.objects.get(slug="shout")
    before = content_state()

    response = staff.post(f"/admin/tracks/problem/{problem.pk}/change/", problem_form_data(staff, problem))

    assert response.status_code == 302
    assert Problem.objects.get(pk=problem.pk).statement == "Return `text` in upper case.\n"
    assert dict(problem.languages.values_list("language", "starter_code")) == {
        "python": "def shout(text):\n    pass\n",
        "javascript": "function shout(text) {\n}\n",
    }
    assert content_state() == before
    assert factories.publish(document).changed is False


def test_problem_change_form_saves_a_changed_hint(staff: Client, two_tracks: dict[str, Any]) -> None:
    problem = Problem.objects.get(slug="shout")
    data = problem_form_data(staff, problem)
    data["hints"] = ['["One.", "Two.", "Three."]']

    response = staff.post(f"/admin/tracks/problem/{problem.pk}/change/", data)

    assert response.status_code == 302
    assert Problem.objects.get(pk=problem.pk).hints == ["One.", "Two.", "Three."]


def test_problem_change_form_rejects_malformed_json_in_hints(staff: Client, two_tracks: dict[str, Any]) -> None:
    problem = Problem.objects.get(slug="shout")
    data = problem_form_data(staff, problem)
    data["hints"] = ['["a", "b"']
    before, updated_at = content_state(), problem.updated_at

    response = staff.post(f"/admin/tracks/problem/{problem.pk}/change/", data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["hints"] == ["Not valid JSON: Expecting ',' delimiter at line 1, column 10."]
    assert "Not valid JSON: Expecting &#x27;,&#x27; delimiter at line 1, column 10." in response.content.decode()
    assert content_state() == before
    assert Problem.objects.get(pk=problem.pk).updated_at == updated_at


def test_problem_change_form_rejects_two_hints(staff: Client, two_tracks: dict[str, Any]) -> None:
    problem = Problem.objects.get(slug="shout")
    data = problem_form_data(staff, problem)
    data["hints"] = ['["a", "b"]']
    before = content_state()

    response = staff.post(f"/admin/tracks/problem/{problem.pk}/change/", data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["hints"] == ["value: ['a', 'b'] is too short"]
    assert html.escape("value: ['a', 'b'] is too short") in response.content.decode()
    assert content_state() == before


def test_problem_change_form_rejects_visible_test_keys_that_are_not_the_parameters(
    staff: Client, two_tracks: dict[str, Any]
) -> None:
    problem = Problem.objects.get(slug="shout")
    data = problem_form_data(staff, problem)
    data["visible_tests"] = ['[{"input": {"txt": "hi"}, "expected": "HI"}]']
    before = content_state()

    response = staff.post(f"/admin/tracks/problem/{problem.pk}/change/", data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["visible_tests"] == [
        "[0].input: keys must be exactly the parameters ['text']."
    ]
    assert content_state() == before


def test_problem_change_form_rejects_malformed_hidden_test_json(staff: Client, two_tracks: dict[str, Any]) -> None:
    problem = Problem.objects.get(slug="shout")
    data = problem_form_data(staff, problem)
    assert data["hidden_tests-TOTAL_FORMS"] == ["4"]
    data["hidden_tests-0-input"] = ['{"text": ']
    before = content_state()

    response = staff.post(f"/admin/tracks/problem/{problem.pk}/change/", data)

    assert response.status_code == 200
    assert inline_formset(response, "hidden_tests").errors[0] == {
        "input": ["Not valid JSON: Expecting value at line 1, column 10."]
    }
    assert "Not valid JSON: Expecting value at line 1, column 10." in response.content.decode()
    assert content_state() == before


def test_problem_change_form_rejects_a_hidden_test_input_that_is_not_an_object(staff: Client, two_tracks: dict[str, Any]) -> None:
    problem = Problem.objects.get(slug="shout")
    data = problem_form_data(staff, problem)
    data["hidden_tests-1-input"] = ['["aBc"]']
    before = content_state()

    response = staff.post(f"/admin/tracks/problem/{problem.pk}/change/", data)

    assert response.status_code == 200
    assert inline_formset(response, "hidden_tests").errors[1] == {
        "input": ["A test input is a JSON object of arguments by parameter name."]
    }
    assert content_state() == before


# --- hidden tests are for staff only -------------------------------------------------------------


def test_problem_change_page_shows_hidden_tests_to_the_superuser(staff: Client, two_tracks: dict[str, Any]) -> None:
    problem = Problem.objects.get(slug="shout")

    response = staff.get(f"/admin/tracks/problem/{problem.pk}/change/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "zqx-hidden-input-7f3a" in body
    assert "ZQX-HIDDEN-INPUT-7F3A" in body
    assert "zqx-generated-9b1c" in body
    assert inline_formset(response, "hidden_tests").total_form_count() == 4


def test_non_staff_is_sent_to_login_and_never_sees_hidden_tests(non_staff: Client, two_tracks: dict[str, Any]) -> None:
    problem = Problem.objects.get(slug="shout")
    path = f"/admin/tracks/problem/{problem.pk}/change/"

    response = non_staff.get(path)
    followed = non_staff.get(path, follow=True)

    assert (response.status_code, response["Location"]) == (302, login_redirect(path))
    assert followed.redirect_chain == [(login_redirect(path), 302)]
    for body in (response.content.decode(), followed.content.decode()):
        assert [marker for marker in factories.HIDDEN_MARKERS if marker in body] == []


def test_staff_without_hidden_test_permission_does_not_see_hidden_tests(
    django_user_model: Any, two_tracks: dict[str, Any]
) -> None:
    user = django_user_model.objects.create_user("reviewer", "reviewer@example.com", "pw-reviewer-1", is_staff=True)
    user.user_permissions.add(Permission.objects.get(content_type__app_label="tracks", codename="view_problem"))
    client = Client()
    client.force_login(user)
    problem = Problem.objects.get(slug="shout")

    response = client.get(f"/admin/tracks/problem/{problem.pk}/change/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "Return `text` in upper case." in body
    assert [inline.formset.prefix for inline in response.context["inline_admin_formsets"]] == []
    hidden_values = [json.dumps(value) for test in problem.hidden_tests.all() for value in (test.input, test.expected)]
    assert len(hidden_values) == 8
    assert [value for value in hidden_values if value in body or html.escape(value) in body] == []
    assert "zqx-hidden-input-7f3a" not in body


# --- tracks and rubrics --------------------------------------------------------------------------


def test_track_change_page_shows_the_module_inline(staff: Client) -> None:
    factories.publish(
        factories.pack_document(
            modules=[{"slug": "basics", "title": "Basics", "outcomes": ["strings"]}, {"slug": "more", "title": "More"}],
            problems=[factories.shout_problem(), factories.add_problem(module="more")],
        )
    )
    track = Track.objects.get()

    response = staff.get(f"/admin/tracks/track/{track.pk}/change/")

    assert response.status_code == 200
    modules = inline_formset(response, "modules")
    assert [form.instance.slug for form in modules.forms] == ["basics", "more"]
    data = form_data(response, "track_form")
    assert data["modules-TOTAL_FORMS"] == ["2"]
    assert (data["modules-0-slug"], data["modules-0-title"], data["modules-0-outcomes"]) == (
        ["basics"],
        ["Basics"],
        ['["strings"]'],
    )
    assert (data["modules-1-slug"], data["modules-1-title"]) == (["more"], ["More"])


def rubric_post(scale: int) -> dict[str, str]:
    return {
        "slug": "review-rubric",
        "domain": "systems",
        "title": "Review rubric",
        "dimensions": f'[{{"id": "requirements", "name": "Requirements", "scale": {scale}, "desc": "Clarifies."}}]',
        "metadata": "{}",
    }


def test_rubric_admin_rejects_a_dimension_with_scale_5(staff: Client) -> None:
    response = staff.post("/admin/tracks/rubric/add/", rubric_post(scale=5))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["dimensions"] == ["[0].scale: 5 is greater than the maximum of 3"]
    assert "[0].scale: 5 is greater than the maximum of 3" in response.content.decode()
    assert Rubric.objects.count() == 0


def test_rubric_admin_accepts_a_dimension_with_scale_3(staff: Client) -> None:
    response = staff.post("/admin/tracks/rubric/add/", rubric_post(scale=3))

    assert (response.status_code, response["Location"]) == (302, "/admin/tracks/rubric/")
    rubric = Rubric.objects.get()
    assert (rubric.slug, rubric.dimensions, rubric.metadata) == (
        "review-rubric",
        [{"id": "requirements", "name": "Requirements", "scale": 3, "desc": "Clarifies."}],
        {},
    )


# --- admin edits reach learners at once ------------------------------------------------------------
# Problem bundles are memoized per catalogue version (tracks/problem_bank.py); every admin edit of
# content bumps it once committed, so these tests commit like the admin does (transaction=True).


def _post_change(client: Client, path: str, form_id: str, **changes: str) -> None:
    data = form_data(client.get(path), form_id)
    data.update({name: [value] for name, value in changes.items()})
    response = client.post(path, data)
    assert response.status_code == 302, response.content.decode()[:2000]


def _shout_submission() -> dict[str, Any]:
    return {
        "problem_id": "shout",
        "subject": "coding",
        "payload": {"language": "python", "code": "def shout(text):\n    return text.upper()\n"},
    }


@pytest.mark.django_db(transaction=True)
def test_hidden_test_limit_and_remediation_edits_reach_the_next_grading(staff: Client, api: Any, fake_grader: Any) -> None:
    factories.publish(factories.pack_document())
    problem = Problem.objects.get(slug="shout")
    fake_grader.answer = {"status": "failed", "hidden": {"passed": 3, "total": 4, "categories": ["mixed-case"]}}
    first = api.post("/v1/submissions", _shout_submission(), format="json").json()
    assert first["remediation"] == [{"category": "mixed-case", "text": "Mixed case strings need care."}]

    _post_change(
        staff,
        f"/admin/tracks/problem/{problem.pk}/change/",
        "problem_form",
        **{
            "hidden_tests-1-input": '{"text": "xYz"}',
            "hidden_tests-1-expected": '"XYZ"',
            "time_limit_ms": "700",
            "remediation": '{"long-input": "zqx-remediation-5c7d", "mixed-case": "Case matters everywhere."}',
        },
    )

    second = api.post("/v1/submissions", _shout_submission(), format="json").json()
    before, after = (body["hidden_spec"] for body in fake_grader.bodies)
    assert before["tests"][1] == {"category": "mixed-case", "input": {"text": "aBc"}, "expected": "ABC"}
    assert after["tests"][1] == {"category": "mixed-case", "input": {"text": "xYz"}, "expected": "XYZ"}
    assert (before["time_limit_ms"], after["time_limit_ms"]) == (500, 700)
    assert second["remediation"] == [{"category": "mixed-case", "text": "Case matters everywhere."}]


@pytest.mark.django_db(transaction=True)
def test_rubric_topic_and_module_edits_reach_the_problem_view(staff: Client, api: Any) -> None:
    factories.publish(factories.pack_document())
    factories.publish(
        factories.pack_document(
            track_slug="systems-a",
            subject="systems",
            modules=[{"slug": "design", "title": "Design", "outcomes": []}],
            problems=[factories.systems_problem()],
            rubrics=[factories.rubric()],
        ),
        filename="systems.yaml",
    )
    shout, design = api.get("/v1/problems/shout").json(), api.get("/v1/problems/design-cache").json()
    assert (shout["topics"], shout["module"]["title"], design["rubric"]["title"]) == (["strings"], "Basics", "Design basics")

    _post_change(staff, f"/admin/tracks/rubric/{Rubric.objects.get().pk}/change/", "rubric_form", title="Design, revised")
    assert api.get("/v1/problems/design-cache").json()["rubric"]["title"] == "Design, revised"

    _post_change(staff, f"/admin/tracks/topic/{Topic.objects.get(slug='strings').pk}/change/", "topic_form", slug="text")
    assert api.get("/v1/problems/shout").json()["topics"] == ["text"]

    track = Track.objects.get(slug="test-track")
    _post_change(staff, f"/admin/tracks/track/{track.pk}/change/", "track_form", **{"modules-0-title": "Basics, revised"})
    assert api.get("/v1/problems/shout").json()["module"]["title"] == "Basics, revised"


@pytest.mark.django_db(transaction=True)
def test_problems_deleted_from_the_changelist_are_gone_at_once(staff: Client, api: Any) -> None:
    factories.publish(factories.pack_document())
    assert api.get("/v1/problems/add-numbers").status_code == 200

    response = staff.post(
        "/admin/tracks/problem/",
        {"action": "delete_selected", "_selected_action": [str(Problem.objects.get(slug="add-numbers").pk)], "post": "yes"},
    )

    assert response.status_code == 302
    assert not Problem.objects.filter(slug="add-numbers").exists()
    assert api.get("/v1/problems/add-numbers").status_code == 404
