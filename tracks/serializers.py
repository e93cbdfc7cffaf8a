"""Public shapes of curriculum content. Nothing here has a field for hidden tests, generators,
reference solutions, remediation, math answers or rubric expectations: what is not declared
cannot leak."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from co_project.serializer_fields import QueryParamsSerializer
from tracks.models import Subject
from tracks.statement import statement_html


class TrackListQuerySerializer(QueryParamsSerializer):
    subject = serializers.ChoiceField(choices=Subject.choices, required=False)
    label = serializers.CharField(required=False, max_length=100, trim_whitespace=False)


class TrackModuleSerializer(serializers.Serializer):
    id = serializers.CharField(source="slug", help_text="Module slug (stable across pack versions).")
    title = serializers.CharField()
    outcomes = serializers.ListField(child=serializers.CharField())
    position = serializers.IntegerField()


class TrackSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    subject = serializers.ChoiceField(choices=Subject.choices)
    title = serializers.CharField()
    description = serializers.CharField()
    labels = serializers.SerializerMethodField()
    version = serializers.CharField()
    modules = TrackModuleSerializer(many=True)

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_labels(self, track: Any) -> list[str]:
        return [label.name for label in track.labels.all()]


class ProblemSummarySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    title = serializers.CharField()
    subject = serializers.ChoiceField(choices=Subject.choices)
    difficulty = serializers.IntegerField(min_value=1, max_value=5)
    topics = serializers.SerializerMethodField()
    languages = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_topics(self, problem: Any) -> list[str]:
        return [topic.slug for topic in problem.topics.all()]

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(choices=["python", "javascript"])))
    def get_languages(self, problem: Any) -> list[str]:
        return sorted(row.language for row in problem.languages.all())


class TrackModuleDetailSerializer(TrackModuleSerializer):
    problems = ProblemSummarySerializer(many=True)


class TrackDetailSerializer(TrackSerializer):
    modules = TrackModuleDetailSerializer(many=True)


class PublicLanguageSerializer(serializers.Serializer):
    entrypoint = serializers.CharField()
    starter_code = serializers.CharField(source="starter")


class PublicTestSerializer(serializers.Serializer):
    input = serializers.DictField(help_text="Arguments by parameter name.")
    expected = serializers.JSONField()


class PublicProblemModuleSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="Module slug.")
    title = serializers.CharField()
    outcomes = serializers.ListField(child=serializers.CharField())


class PublicMathSerializer(serializers.Serializer):
    variables = serializers.ListField(child=serializers.CharField())
    form = serializers.CharField(help_text="The form the answer must take, e.g. `equivalent`, `expanded`.")
    dependent = serializers.CharField(
        allow_null=True, help_text="The name an answer may define, e.g. `y` (`y = …`) or `f` (`f(x) = …`); null when none."
    )
    positive = serializers.ListField(
        child=serializers.CharField(), help_text="Variables the problem takes as positive; the others are any real number."
    )


class PublicRubricDimensionSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    scale = serializers.IntegerField(help_text="The highest score on this dimension (≤ 3).")
    desc = serializers.CharField()


class PublicRubricSerializer(serializers.Serializer):
    title = serializers.CharField()
    dimensions = PublicRubricDimensionSerializer(many=True)


class PublicProblemSerializer(serializers.Serializer):
    """The learner's view of a problem bundle (from the database or the remote bank)."""

    id = serializers.CharField()
    slug = serializers.CharField()
    subject = serializers.ChoiceField(choices=Subject.choices)
    title = serializers.CharField()
    statement = serializers.CharField(help_text="Markdown.")
    statement_html = serializers.SerializerMethodField()
    difficulty = serializers.IntegerField(min_value=1, max_value=5)
    topics = serializers.ListField(child=serializers.CharField())
    track = serializers.DictField(allow_null=True, help_text="{id, slug, title} when the problem belongs to a track.")
    module = serializers.SerializerMethodField()
    parameters = serializers.ListField(child=serializers.CharField())
    languages = serializers.SerializerMethodField()
    visible_tests = PublicTestSerializer(many=True)
    comparison = serializers.CharField()
    float_tolerance = serializers.FloatField(allow_null=True)
    limits = serializers.SerializerMethodField()
    hint_levels = serializers.SerializerMethodField()
    math = serializers.SerializerMethodField()
    rubric = serializers.SerializerMethodField()

    @extend_schema_field(
        serializers.CharField(help_text="The statement rendered to HTML and sanitized (no script, style or raw HTML).")
    )
    def get_statement_html(self, bundle: Any) -> str:
        return statement_html(bundle.statement)

    @extend_schema_field(PublicProblemModuleSerializer(allow_null=True))
    def get_module(self, bundle: Any) -> dict[str, Any] | None:
        if not bundle.module:
            return None
        return {key: bundle.module[key] for key in ("id", "title", "outcomes")}

    @extend_schema_field(serializers.DictField(child=PublicLanguageSerializer()))
    def get_languages(self, bundle: Any) -> dict[str, Any]:
        return {name: PublicLanguageSerializer(spec).data for name, spec in sorted(bundle.languages.items())}

    @extend_schema_field(serializers.DictField(child=serializers.IntegerField(), help_text="{time_ms (per test), memory_mb}"))
    def get_limits(self, bundle: Any) -> dict[str, int]:
        return {"time_ms": bundle.time_limit_ms, "memory_mb": bundle.memory_limit_mb}

    @extend_schema_field(serializers.IntegerField(help_text="How many tutor hint levels exist (1..n)."))
    def get_hint_levels(self, bundle: Any) -> int:
        return len(bundle.hints)

    @extend_schema_field(PublicMathSerializer(allow_null=True, help_text="Math only."))
    def get_math(self, bundle: Any) -> dict[str, Any] | None:
        """The answer's variables and required form; never the answer or reference steps."""
        if not bundle.math:
            return None
        return {
            "variables": bundle.math.get("variables", []),
            "form": bundle.math.get("form") or "equivalent",
            "dependent": bundle.math.get("dependent") or None,
            "positive": bundle.math.get("positive") or [],
        }

    @extend_schema_field(PublicRubricSerializer(allow_null=True, help_text="Systems only."))
    def get_rubric(self, bundle: Any) -> dict[str, Any] | None:
        """The rubric a systems answer is graded against; never the authored expectations."""
        if not bundle.rubric:
            return None
        return {
            "title": bundle.rubric["title"],
            "dimensions": [
                {key: dimension[key] for key in ("id", "name", "scale", "desc")} for dimension in bundle.rubric["dimensions"]
            ],
        }
