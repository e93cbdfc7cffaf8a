"""Admin forms: JSON editors that reject malformed JSON and wrong shapes with readable messages.

The shapes come from the course pack schema (docs/coursepack.schema.json), so the admin and
course packs accept exactly the same content.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from tracks.coursepacks import schema_validator
from tracks.models import HiddenTest, Module, Problem, ProblemLanguage, Rubric, Subject


class SchemaJSONField(forms.JSONField):
    """A JSON textarea checked against one `$defs` entry of the course pack schema."""

    def __init__(self, *args: Any, definition: str | None = None, **kwargs: Any) -> None:
        self.definition = definition
        # An empty box means the field's empty value ([] or {}), not SQL NULL.
        self.empty_factory = kwargs.get("initial") if callable(kwargs.get("initial")) else None
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 6, "cols": 100, "style": "font-family: monospace"}))
        super().__init__(*args, **kwargs)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and value.strip():
            try:
                json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValidationError(
                    f"Not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.", code="invalid_json"
                ) from exc
        result = super().to_python(value)
        if result is None and self.empty_factory is not None:
            return self.empty_factory()
        return result

    def validate(self, value: Any) -> None:
        super().validate(value)
        if self.definition is None or value in self.empty_values:
            return
        messages = []
        for error in schema_validator(self.definition).iter_errors(value):
            where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
            messages.append(f"{where.lstrip('.') or 'value'}: {error.message}")
        if messages:
            raise ValidationError(messages[:10])


class AuthoredTextField(forms.CharField):
    """Statements and code are saved exactly as authored: no stripping, and the CRLF line endings
    browsers send normalised to LF (so an unchanged save changes nothing)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("strip", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 12, "cols": 100, "style": "font-family: monospace"}))
        super().__init__(*args, **kwargs)

    def to_python(self, value: Any) -> str:
        text = super().to_python(value)
        return text.replace("\r\n", "\n").replace("\r", "\n")


class ProblemAdminForm(forms.ModelForm):
    statement = AuthoredTextField(help_text="Markdown shown to learners.")
    parameters = SchemaJSONField(definition="parameters", required=False, initial=list)
    visible_tests = SchemaJSONField(definition="visibleTests", required=False, initial=list)
    hidden_generators = SchemaJSONField(definition="hiddenGenerators", required=False, initial=list)
    hints = SchemaJSONField(definition="hints")
    remediation = SchemaJSONField(definition="remediation", required=False, initial=dict)
    math_variables = SchemaJSONField(required=False, initial=list)
    math_steps = SchemaJSONField(required=False, initial=list)
    math_positive = SchemaJSONField(required=False, initial=list)
    rubric_expectations = SchemaJSONField(definition="rubricExpectations", required=False, initial=dict)

    class Meta:
        model = Problem
        fields = (
            "slug",
            "title",
            "subject",
            "module",
            "position",
            "difficulty",
            "topics",
            "published",
            "statement",
            "hints",
            "remediation",
            "parameters",
            "comparison",
            "float_tolerance",
            "time_limit_ms",
            "memory_limit_mb",
            "visible_tests",
            "hidden_generators",
            "math_variables",
            "math_answer",
            "math_form",
            "math_steps",
            "math_dependent",
            "math_positive",
            "rubric",
            "rubric_expectations",
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        subject, parameters = data.get("subject"), data.get("parameters") or []
        if subject == Subject.CODING and not parameters and "parameters" not in self.errors:
            self.add_error("parameters", 'A coding problem needs its parameter names, e.g. ["nums", "t"].')
        for index, case in enumerate(data.get("visible_tests") or []):
            if parameters and set(case.get("input", {})) != set(parameters):
                self.add_error("visible_tests", f"[{index}].input: keys must be exactly the parameters {parameters}.")
        if data.get("comparison") == "float" and not data.get("float_tolerance"):
            self.add_error("float_tolerance", "Required when comparison is float.")
        if subject == Subject.SYSTEMS and not data.get("rubric"):
            self.add_error("rubric", "A systems problem is graded against a rubric.")
        if subject == Subject.MATH and "math_answer" in self.fields and not data.get("math_answer"):
            self.add_error("math_answer", "A math problem needs its answer.")
        if subject == Subject.MATH and "math_variables" in data:
            from grading.evaluators.math_notation import check_variables

            problem = check_variables(
                data.get("math_variables") or [],
                dependent=data.get("math_dependent") or None,
                positive=data.get("math_positive") or [],
            )
            if problem is not None:
                self.add_error("math_variables", problem)
        return data


class ProblemLanguageAdminForm(forms.ModelForm):
    starter_code = AuthoredTextField()
    reference_solution = AuthoredTextField(help_text="Staff-only; never shown to learners.")

    class Meta:
        model = ProblemLanguage
        fields = ("language", "entrypoint", "starter_code", "reference_solution")


class HiddenTestAdminForm(forms.ModelForm):
    input = SchemaJSONField(widget=forms.Textarea(attrs={"rows": 2, "cols": 60, "style": "font-family: monospace"}))
    expected = SchemaJSONField(widget=forms.Textarea(attrs={"rows": 2, "cols": 40, "style": "font-family: monospace"}))

    class Meta:
        model = HiddenTest
        fields = ("position", "category", "input", "expected", "origin")

    def clean_input(self) -> Any:
        value = self.cleaned_data["input"]
        if not isinstance(value, dict):
            raise ValidationError("A test input is a JSON object of arguments by parameter name.")
        return value


class ModuleAdminForm(forms.ModelForm):
    outcomes = SchemaJSONField(definition="outcomes", required=False, initial=list)

    class Meta:
        model = Module
        fields = ("slug", "title", "outcomes", "position", "published")


class RubricAdminForm(forms.ModelForm):
    dimensions = SchemaJSONField(definition="rubricDimensions")
    metadata = SchemaJSONField(required=False, initial=dict)

    class Meta:
        model = Rubric
        fields = ("slug", "domain", "title", "dimensions", "metadata")


class CoursePackUploadForm(forms.Form):
    """The upload; `cleaned_data["content"]` holds the file's bytes, read in chunks up to the limit."""

    file = forms.FileField(help_text="A course pack in YAML or JSON (see docs/coursepack-format.md).")

    def __init__(self, *args: Any, refused: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refused = refused

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.refused:  # the upload handler stopped the file while it arrived: say so, not "required"
            self.errors.pop("file", None)
            self.add_error("file", self.refused)
            return data
        upload = data.get("file")
        if upload is None:
            return data
        limit = settings.CO_COURSEPACK_MAX_BYTES
        too_large = f"The file is larger than {limit} bytes, the most a course pack may be; nothing was stored."
        if upload.size is None or upload.size > limit:
            self.add_error("file", too_large)
            return data
        chunks, size = [], 0
        for chunk in upload.chunks():
            size += len(chunk)
            if size > limit:
                self.add_error("file", too_large)
                return data
            chunks.append(chunk)
        data["content"] = b"".join(chunks)
        return data
