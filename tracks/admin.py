"""Admin for curriculum staff: tracks with modules, problems with their tests and hints,
rubrics, and course packs (upload → validate → read the report → publish).

Course pack actions call `tracks.services`, the same functions `import_coursepack` uses.

Permissions, beyond Django's view/add/change/delete per model:

- `tracks.view_hidden_content`: hidden tests, generator sources and seeds, reference solutions,
  math answers and steps, rubric expectations, validation messages and pack files. Without it
  they are left out of every page (forms, inlines, read-only views), not just hidden by CSS.
- `tracks.publish_coursepack`: publish packs; with `tracks.retire_problem`, also set the
  `published` flag of tracks and problems by hand (otherwise it is read-only, and a problem an
  author adds starts unpublished).
- `tracks.retire_problem`: the retire action.
- validating (a pack again, or a problem's references) needs `tracks.add_coursepack` or
  `tracks.change_problem` with `tracks.view_hidden_content`, since its findings quote hidden data.

Every action declares its permission, so an action is offered only to who may run it, and a
forged POST of another is refused; the custom views check the same permissions (403).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from co_project.errors import ApplicationError
from co_project.uploads import upload_refused
from tracks import forms, services
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

VIEW_HIDDEN_CONTENT = "tracks.view_hidden_content"
PUBLISH_COURSEPACK = "tracks.publish_coursepack"
RETIRE_PROBLEM = "tracks.retire_problem"


def can_view_hidden_content(user: AbstractBaseUser | AnonymousUser) -> bool:
    return user.has_perm(VIEW_HIDDEN_CONTENT)


def can_set_published(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Publishing and retiring by hand is what publishing a pack and retiring a problem do."""
    return user.has_perm(PUBLISH_COURSEPACK) and user.has_perm(RETIRE_PROBLEM)


def _without_fields(form: type[BaseForm], names: frozenset[str]) -> type[BaseForm]:
    """The form class without these fields, declared or generated from the model, so a save
    neither shows nor changes them."""
    meta = getattr(form, "Meta", None)
    attributes: dict[str, Any] = dict.fromkeys(names & set(form.declared_fields))
    if meta is not None:
        meta_attributes: dict[str, Any] = {"exclude": [*(getattr(meta, "exclude", None) or ()), *names]}
        if isinstance(getattr(meta, "fields", None), list | tuple):
            meta_attributes["fields"] = [name for name in meta.fields if name not in names]
        attributes["Meta"] = type("Meta", (meta,), meta_attributes)
    return type(form.__name__, (form,), attributes)


class HiddenContentMixin:
    """Leaves `hidden_content_fields` out of the fieldsets and the form for staff without
    `tracks.view_hidden_content` (read-only pages render the fieldsets, so they omit them too)."""

    hidden_content_fields: frozenset[str] = frozenset()

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list:
        fieldsets = super().get_fieldsets(request, obj)  # type: ignore[misc]
        if can_view_hidden_content(request.user):
            return fieldsets
        kept = []
        for name, options in fieldsets:
            fields = [field for field in options["fields"] if field not in self.hidden_content_fields]
            if fields:
                kept.append((name, {**options, "fields": fields}))
        return kept


class ModuleInline(admin.TabularInline):
    model = Module
    form = forms.ModuleAdminForm
    extra = 0
    ordering = ("position",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple:
        readonly = tuple(super().get_readonly_fields(request, obj))
        return readonly if can_set_published(request.user) else (*readonly, "published")


class CatalogueChangeMixin:
    """Edits of content in the admin invalidate the catalogue caches (the recommender's catalogue,
    the memo of problem bundles) once committed: saves with their inlines, deletes one at a time
    and the changelist's bulk delete. Every admin over content a bundle shows uses it."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)  # type: ignore[misc]
        transaction.on_commit(services.catalogue_changed)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        super().delete_model(request, obj)  # type: ignore[misc]
        transaction.on_commit(services.catalogue_changed)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        super().delete_queryset(request, queryset)  # type: ignore[misc]
        transaction.on_commit(services.catalogue_changed)


@admin.register(Track)
class TrackAdmin(CatalogueChangeMixin, admin.ModelAdmin):
    list_display = ("slug", "title", "subject", "version", "published", "updated_at")
    list_filter = ("subject", "published", "labels")
    search_fields = ("slug", "title")
    filter_horizontal = ("labels",)
    inlines = (ModuleInline,)

    def get_readonly_fields(self, request: HttpRequest, obj: Track | None = None) -> tuple:
        readonly = tuple(super().get_readonly_fields(request, obj))
        return readonly if can_set_published(request.user) else (*readonly, "published")

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is Module and not can_set_published(request.user):
            for module_form in formset.extra_forms:
                module_form.instance.published = False  # an author's new module waits for a publisher
        super().save_formset(request, form, formset, change)


@admin.register(Label)
class LabelAdmin(CatalogueChangeMixin, admin.ModelAdmin):
    search_fields = ("name",)


@admin.register(Topic)
class TopicAdmin(CatalogueChangeMixin, admin.ModelAdmin):
    search_fields = ("slug",)


class ProblemLanguageInline(HiddenContentMixin, admin.StackedInline):
    model = ProblemLanguage
    form = forms.ProblemLanguageAdminForm
    extra = 0
    hidden_content_fields = frozenset({"reference_solution"})

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        if can_view_hidden_content(request.user):
            return formset
        return type(formset.__name__, (formset,), {"form": _without_fields(formset.form, self.hidden_content_fields)})


class HiddenTestInline(admin.TabularInline):
    """Every field of a hidden test is hidden content: without the permission the inline is absent."""

    model = HiddenTest
    form = forms.HiddenTestAdminForm
    extra = 0
    ordering = ("position",)
    classes = ("collapse",)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_view_hidden_content(request.user) and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_view_hidden_content(request.user) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_view_hidden_content(request.user) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_view_hidden_content(request.user) and super().has_delete_permission(request, obj)


@admin.register(Problem)
class ProblemAdmin(HiddenContentMixin, CatalogueChangeMixin, admin.ModelAdmin):
    form = forms.ProblemAdminForm
    hidden_content_fields = frozenset({"hidden_generators", "math_answer", "math_steps", "rubric_expectations"})
    list_display = ("slug", "title", "track", "module", "subject", "difficulty", "published", "updated_at")
    list_filter = ("module__track", "module", "subject", "difficulty", "topics", "published")
    list_select_related = ("module__track",)
    search_fields = ("slug", "title", "statement")
    filter_horizontal = ("topics",)
    readonly_fields = ("content_hash", "created_at", "updated_at")
    inlines = (ProblemLanguageInline, HiddenTestInline)
    actions = ("check_reference_solutions", "retire_problems")
    fieldsets = (
        (None, {"fields": ("slug", "title", "subject", "module", "position", "difficulty", "topics", "published", "statement")}),
        ("Hints and remediation", {"fields": ("hints", "remediation")}),
        (
            "Coding",
            {
                "fields": (
                    "parameters",
                    "comparison",
                    "float_tolerance",
                    "time_limit_ms",
                    "memory_limit_mb",
                    "visible_tests",
                    "hidden_generators",
                )
            },
        ),
        (
            "Math",
            {
                "classes": ("collapse",),
                "fields": ("math_variables", "math_answer", "math_form", "math_steps", "math_dependent", "math_positive"),
            },
        ),
        ("Systems", {"classes": ("collapse",), "fields": ("rubric", "rubric_expectations")}),
        ("Bookkeeping", {"classes": ("collapse",), "fields": ("content_hash", "created_at", "updated_at")}),
    )

    @admin.display(ordering="module__track__slug")
    def track(self, problem: Problem) -> str:
        return problem.module.track.slug

    def get_form(self, request: HttpRequest, obj: Problem | None = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        return form if can_view_hidden_content(request.user) else _without_fields(form, self.hidden_content_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Problem | None = None) -> tuple:
        readonly = tuple(super().get_readonly_fields(request, obj))
        return readonly if can_set_published(request.user) else (*readonly, "published")

    def save_model(self, request: HttpRequest, obj: Problem, form: Any, change: bool) -> None:
        if not change and not can_set_published(request.user):
            obj.published = False  # an author's new problem waits for a publisher
        super().save_model(request, obj, form, change)

    def has_validate_permission(self, request: HttpRequest) -> bool:
        return self.has_change_permission(request) and can_view_hidden_content(request.user)

    def has_retire_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(RETIRE_PROBLEM)

    @admin.action(description="Check reference solutions against all tests in the sandbox", permissions=["validate"])
    def check_reference_solutions(self, request: HttpRequest, queryset: Any) -> None:
        for problem in queryset.prefetch_related("languages"):
            findings = services.problem_reference_check(problem=problem)
            if not findings:
                self.message_user(request, f"{problem.slug}: every reference solution passes all its tests.", messages.SUCCESS)
            for where, message in findings:
                self.message_user(request, f"{where}: {message}", messages.ERROR)

    @admin.action(description="Retire selected problems (hide from learners, keep history)", permissions=["retire"])
    def retire_problems(self, request: HttpRequest, queryset: Any) -> None:
        for problem in queryset:
            services.problem_retire(problem=problem)
        self.message_user(request, f"Retired {queryset.count()} problem(s).", messages.SUCCESS)


@admin.register(Rubric)
class RubricAdmin(CatalogueChangeMixin, admin.ModelAdmin):
    form = forms.RubricAdminForm
    list_display = ("slug", "title", "domain", "updated_at")
    list_filter = ("domain",)
    search_fields = ("slug", "title")


def _render_report(report: dict[str, Any], *, with_messages: bool = True) -> str:
    if not report:
        return "Not validated yet."
    summary = report.get("summary") or {}
    head = ""
    if summary:
        head = format_html(
            "<p><strong>{}</strong> {} — {} modules, {} problems, {} hidden tests</p>",
            summary.get("track"),
            summary.get("version"),
            summary.get("modules"),
            summary.get("problems"),
            summary.get("hidden_tests"),
        )
    verdict = format_html(
        '<p style="color:{}"><strong>{}</strong></p>',
        "green" if report.get("ok") else "#ba2121",
        "Valid" if report.get("ok") else f"{len(report.get('errors', []))} error(s): nothing can be published",
    )

    def message(finding: dict[str, str]) -> str:
        # A finding's message may quote hidden content (expected outputs, generator errors).
        return finding["message"] if with_messages else "details need the permission to view hidden content"

    errors = format_html_join(
        "", '<li style="color:#ba2121"><code>{}</code>: {}</li>', ((e["path"], message(e)) for e in report.get("errors", []))
    )
    warnings = format_html_join(
        "", "<li><code>{}</code>: {} (warning)</li>", ((w["path"], message(w)) for w in report.get("warnings", []))
    )
    return format_html("{}{}<ul>{}{}</ul>", head, verdict, errors, warnings)


@admin.register(CoursePack)
class CoursePackAdmin(admin.ModelAdmin):
    list_display = ("original_name", "track_slug", "version", "status", "source", "uploaded_by", "uploaded_at", "published_at")
    list_filter = ("status", "source", "track_slug")
    search_fields = ("original_name", "track_slug", "sha256")
    readonly_fields = (
        "original_name",
        "file",
        "sha256",
        "track_slug",
        "version",
        "status",
        "report",
        "source",
        "uploaded_by",
        "uploaded_at",
        "validated_at",
        "published_by",
        "published_at",
    )
    exclude = ("validation_report",)
    actions = ("validate_packs", "publish_packs")
    change_form_template = "admin/tracks/coursepack/change_form.html"

    @admin.display(description="Validation report")
    def report(self, pack: CoursePack) -> str:
        return _render_report(pack.validation_report)

    @admin.display(description="Validation report")
    def report_without_messages(self, pack: CoursePack) -> str:
        return _render_report(pack.validation_report, with_messages=False)

    def get_readonly_fields(self, request: HttpRequest, obj: CoursePack | None = None) -> tuple:
        if can_view_hidden_content(request.user):
            return self.readonly_fields
        # The pack file holds every hidden test and reference; the report's messages may quote them.
        swap = {"report": "report_without_messages"}
        return tuple(swap.get(name, name) for name in self.readonly_fields if name != "file")

    def get_fields(self, request: HttpRequest, obj: CoursePack | None = None) -> list:
        return list(self.get_readonly_fields(request, obj))

    def has_change_permission(self, request: HttpRequest, obj: CoursePack | None = None) -> bool:
        # Packs are immutable once uploaded: the change page is a read-only report with actions.
        return False

    def has_validate_permission(self, request: HttpRequest) -> bool:
        """Validating runs the pack's code again and rewrites its report: who may upload may."""
        return self.has_add_permission(request)

    def has_publish_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PUBLISH_COURSEPACK)

    def get_urls(self) -> list:
        info = self.opts.app_label, self.opts.model_name
        return [
            path("<uuid:pack_id>/validate/", self.admin_site.admin_view(self.validate_view), name="{}_{}_validate".format(*info)),
            path("<uuid:pack_id>/publish/", self.admin_site.admin_view(self.publish_view), name="{}_{}_publish".format(*info)),
            *super().get_urls(),
        ]

    def _change_url(self, pack: CoursePack) -> str:
        return reverse("admin:tracks_coursepack_change", args=[pack.pk])

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        if not self.has_add_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        data, files = (request.POST, request.FILES) if request.method == "POST" else (None, None)
        form = forms.CoursePackUploadForm(data, files, refused=upload_refused(request))
        if request.method == "POST" and form.is_valid():
            pack = services.coursepack_upload(
                content=form.cleaned_data["content"],
                filename=form.cleaned_data["file"].name,
                source=CoursePackSource.ADMIN,
                uploaded_by=request.user,
            )
            check = services.coursepack_validate(pack=pack)
            if check.ok:
                self.message_user(request, "Uploaded and valid: review the report, then publish.", messages.SUCCESS)
            else:
                self.message_user(request, f"Uploaded, but invalid: {len(check.errors)} error(s) below.", messages.ERROR)
            return HttpResponseRedirect(self._change_url(pack))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "form": form,
            "title": "Upload a course pack",
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/tracks/coursepack/upload.html", context)

    def _publish(self, request: HttpRequest, pack: CoursePack) -> None:
        try:
            summary = services.coursepack_publish(pack=pack, published_by=request.user)
        except ApplicationError as exc:
            self.message_user(request, f"{pack}: {exc.message}", messages.ERROR)
            return
        if summary.changed:
            self.message_user(
                request,
                f"Published {summary.track} {summary.version}: {len(summary.created)} created, "
                f"{len(summary.updated)} updated, {len(summary.retired)} retired.",
                messages.SUCCESS,
            )
        else:
            self.message_user(request, f"Published {summary.track} {summary.version}: nothing changed.", messages.INFO)

    def validate_view(self, request: HttpRequest, pack_id: str) -> HttpResponse:
        if request.method == "POST" and not self.has_validate_permission(request):
            raise PermissionDenied
        pack = get_object_or_404(CoursePack, pk=pack_id)
        if request.method == "POST":
            check = services.coursepack_validate(pack=pack)
            level = messages.SUCCESS if check.ok else messages.ERROR
            self.message_user(request, "Valid." if check.ok else f"Invalid: {len(check.errors)} error(s).", level)
        return HttpResponseRedirect(self._change_url(pack))

    def publish_view(self, request: HttpRequest, pack_id: str) -> HttpResponse:
        if request.method == "POST" and not self.has_publish_permission(request):
            raise PermissionDenied
        pack = get_object_or_404(CoursePack, pk=pack_id)
        if request.method == "POST":
            self._publish(request, pack)
        return HttpResponseRedirect(self._change_url(pack))

    @admin.action(description="Validate selected course packs", permissions=["validate"])
    def validate_packs(self, request: HttpRequest, queryset: Any) -> None:
        for pack in queryset:
            check = services.coursepack_validate(pack=pack)
            level = messages.SUCCESS if check.ok else messages.ERROR
            self.message_user(request, f"{pack}: {'valid' if check.ok else f'{len(check.errors)} error(s)'}", level)

    @admin.action(description="Publish selected course packs", permissions=["publish"])
    def publish_packs(self, request: HttpRequest, queryset: Any) -> None:
        for pack in queryset.order_by("uploaded_at"):
            self._publish(request, pack)

    def render_change_form(self, request: HttpRequest, context: dict, *args: Any, **kwargs: Any) -> HttpResponse:
        pack = context.get("original")
        if pack is not None:
            context["coursepack_actions"] = {
                "validate_url": reverse("admin:tracks_coursepack_validate", args=[pack.pk]),
                "publish_url": reverse("admin:tracks_coursepack_publish", args=[pack.pk]),
                "can_validate": self.has_validate_permission(request),
                "can_publish": self.has_publish_permission(request)
                and pack.status in {CoursePackStatus.VALID, CoursePackStatus.DRAFT},
            }
        return super().render_change_form(request, context, *args, **kwargs)
