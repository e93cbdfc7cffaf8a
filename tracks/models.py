"""Curriculum content: tracks, modules, problems (with their tests and hints), rubrics, course packs.

Content is written only through `tracks.services` (course pack publishing, admin actions);
nothing here does I/O in `save()`. Rules that must always hold live in the database as
constraints, so a bug elsewhere cannot store a difficulty of 9 or two problems with one slug.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from tracks.choices import Comparison, Language, MathForm, RubricDomain, Subject


class Label(models.Model):
    """A filter label on tracks, e.g. `company:meta`; a table (not JSON) so filtering is portable."""

    name = models.CharField(max_length=100, unique=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Topic(models.Model):
    """A problem topic (`hash-map`, `two-pointers`); mastery is tracked per topic."""

    slug = models.SlugField(max_length=100, unique=True)

    class Meta:
        ordering = ("slug",)

    def __str__(self) -> str:
        return self.slug


class Track(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=100, unique=True)
    subject = models.CharField(max_length=16, choices=Subject.choices)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    labels = models.ManyToManyField(Label, related_name="tracks", blank=True)
    version = models.CharField(max_length=50, default="v1")
    published = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("slug",)
        indexes = [models.Index(fields=("published", "subject"), name="track_published_subject")]
        constraints = [
            models.CheckConstraint(condition=Q(subject__in=Subject.values), name="track_subject_valid"),
        ]

    def __str__(self) -> str:
        return self.title


class Module(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    track = models.ForeignKey(Track, on_delete=models.CASCADE, related_name="modules")
    slug = models.SlugField(max_length=100)
    title = models.CharField(max_length=200)
    outcomes = models.JSONField(default=list, blank=True, help_text='Learning outcomes, e.g. ["two-pointers"].')
    position = models.PositiveIntegerField(default=0)
    published = models.BooleanField(default=True)

    class Meta:
        ordering = ("track", "position", "slug")
        constraints = [models.UniqueConstraint(fields=("track", "slug"), name="module_slug_unique_in_track")]
        indexes = [models.Index(fields=("track", "position"), name="module_track_position")]

    def __str__(self) -> str:
        return f"{self.track.slug}/{self.slug}"


class Rubric(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=100, unique=True)
    domain = models.CharField(max_length=16, choices=RubricDomain.choices)
    title = models.CharField(max_length=200)
    dimensions = models.JSONField(help_text="[{id, name, scale (max score, ≤ 3), desc}]")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("slug",)
        constraints = [models.CheckConstraint(condition=Q(domain__in=RubricDomain.values), name="rubric_domain_valid")]

    def __str__(self) -> str:
        return self.title


class Problem(models.Model):
    """One practice problem. Hidden tests, references, generators, remediation, math answers and
    rubric expectations are staff-only: the public serializer never reads them."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=100, unique=True)
    subject = models.CharField(max_length=16, choices=Subject.choices)
    title = models.CharField(max_length=200)
    statement = models.TextField(help_text="Markdown shown to learners.")
    difficulty = models.PositiveSmallIntegerField()
    topics = models.ManyToManyField(Topic, related_name="problems", blank=True)
    # PROTECT: learners' history references problems; retire them instead of deleting.
    module = models.ForeignKey(Module, on_delete=models.PROTECT, related_name="problems")
    position = models.PositiveIntegerField(default=0)
    published = models.BooleanField(default=True)

    # coding
    parameters = models.JSONField(default=list, blank=True, help_text="Argument names in call order.")
    comparison = models.CharField(max_length=16, choices=Comparison.choices, default=Comparison.EXACT)
    float_tolerance = models.FloatField(null=True, blank=True)
    time_limit_ms = models.PositiveIntegerField(default=1000)
    memory_limit_mb = models.PositiveIntegerField(default=256)
    visible_tests = models.JSONField(default=list, blank=True, help_text="[{input: {...}, expected: ...}]")
    hidden_generators = models.JSONField(default=list, blank=True, help_text="[{category, seed, count, source}]")

    # every subject
    hints = models.JSONField(default=list, help_text="Exactly three hints: a nudge, an approach, a near-solution.")
    remediation = models.JSONField(default=dict, blank=True, help_text="{failure category: what to study}")

    # math
    math_variables = models.JSONField(default=list, blank=True)
    math_answer = models.TextField(blank=True, default="")
    math_form = models.CharField(max_length=16, choices=MathForm.choices, blank=True, default="")
    math_steps = models.JSONField(default=list, blank=True, help_text="Reference steps (staff-only).")
    math_dependent = models.CharField(
        max_length=64, blank=True, default="", help_text="The name an answer may define: y (y = …) or f (f(x) = …)."
    )
    math_positive = models.JSONField(default=list, blank=True, help_text="Variables that are positive (the rest: any real).")

    # systems
    rubric = models.ForeignKey(Rubric, on_delete=models.PROTECT, null=True, blank=True, related_name="problems")
    rubric_expectations = models.JSONField(default=dict, blank=True, help_text="{dimension id: {keywords, guidance}}")

    content_hash = models.CharField(max_length=64, blank=True, default="", help_text="sha256 of the authored content.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("module", "position", "slug")
        permissions = [
            (
                "view_hidden_content",
                "Can view hidden content (hidden tests, generators, references, math answers, rubric expectations)",
            ),
            ("retire_problem", "Can retire problems (hide them from learners)"),
        ]
        indexes = [
            models.Index(fields=("module", "position"), name="problem_module_position"),
            models.Index(fields=("published", "subject", "difficulty"), name="problem_pub_subject_diff"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(difficulty__gte=1, difficulty__lte=5), name="problem_difficulty_1_to_5"),
            models.CheckConstraint(condition=Q(subject__in=Subject.values), name="problem_subject_valid"),
            models.CheckConstraint(condition=Q(comparison__in=Comparison.values), name="problem_comparison_valid"),
            models.CheckConstraint(
                condition=~Q(comparison=Comparison.FLOAT) | Q(float_tolerance__gt=0),
                name="problem_float_needs_tolerance",
            ),
            models.CheckConstraint(condition=Q(time_limit_ms__gt=0), name="problem_time_limit_positive"),
            models.CheckConstraint(condition=Q(memory_limit_mb__gt=0), name="problem_memory_limit_positive"),
            models.CheckConstraint(
                condition=~Q(subject=Subject.SYSTEMS) | Q(rubric__isnull=False), name="problem_systems_needs_rubric"
            ),
            models.CheckConstraint(condition=~Q(subject=Subject.MATH) | ~Q(math_answer=""), name="problem_math_needs_answer"),
        ]

    def __str__(self) -> str:
        return self.slug


class ProblemLanguage(models.Model):
    """A language a coding problem offers: starter code, entrypoint and (staff-only) reference."""

    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="languages")
    language = models.CharField(max_length=16, choices=Language.choices)
    entrypoint = models.CharField(max_length=100)
    starter_code = models.TextField()
    reference_solution = models.TextField()

    class Meta:
        ordering = ("problem", "language")
        constraints = [
            models.UniqueConstraint(fields=("problem", "language"), name="problem_language_unique"),
            models.CheckConstraint(condition=Q(language__in=Language.values), name="problem_language_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.problem.slug} ({self.language})"


class HiddenTestOrigin(models.TextChoices):
    AUTHORED = "authored", "Authored case"
    GENERATED = "generated", "Generated (expected from the reference solution)"


class HiddenTest(models.Model):
    """A hidden test case. Never serialized to learners; results report only counts and categories."""

    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="hidden_tests")
    position = models.PositiveIntegerField()
    category = models.SlugField(max_length=64)
    input = models.JSONField()
    expected = models.JSONField()
    origin = models.CharField(max_length=16, choices=HiddenTestOrigin.choices, default=HiddenTestOrigin.AUTHORED)

    class Meta:
        ordering = ("problem", "position")
        constraints = [
            models.UniqueConstraint(fields=("problem", "position"), name="hidden_test_position_unique"),
            models.CheckConstraint(condition=Q(origin__in=HiddenTestOrigin.values), name="hidden_test_origin_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.problem.slug} hidden #{self.position} ({self.category})"


class CoursePackStatus(models.TextChoices):
    DRAFT = "draft", "Draft (not validated yet)"
    VALID = "valid", "Valid (ready to publish)"
    INVALID = "invalid", "Invalid (see report)"
    PUBLISHED = "published", "Published"


class CoursePackSource(models.TextChoices):
    ADMIN = "admin", "Admin upload"
    COMMAND = "command", "manage.py import_coursepack / seed"


class CoursePack(models.Model):
    """One uploaded version of a course pack file and what happened to it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    file = models.FileField(upload_to="coursepacks/%Y/%m/")
    original_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64, db_index=True)
    track_slug = models.CharField(max_length=100, blank=True, default="", db_index=True)
    version = models.CharField(max_length=50, blank=True, default="")
    status = models.CharField(max_length=16, choices=CoursePackStatus.choices, default=CoursePackStatus.DRAFT)
    validation_report = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=16, choices=CoursePackSource.choices)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-uploaded_at",)
        permissions = [("publish_coursepack", "Can publish course packs")]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=CoursePackStatus.values), name="coursepack_status_valid"),
            models.CheckConstraint(
                condition=~Q(status=CoursePackStatus.PUBLISHED) | Q(published_at__isnull=False),
                name="coursepack_published_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.track_slug or '?'} {self.version})"
