"""Request and response shapes of /v1/submissions (seeds/001 SubmissionCodingCreate,
SubmissionMathCreate, SubmissionResult), plus systems answers and run-vs-submit, and a learner's
results per problem of a track (`GET /v1/tracks/{id-or-slug}/my-results`)."""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from co_project.serializer_fields import OffsetDateTimeField, StrictCharField
from submissions.models import ProblemResultStatus, Submission, SubmissionKind, SubmissionStatus
from tracks.choices import Language, Subject

_SURROGATE = re.compile("[\ud800-\udfff]")


class _ProhibitSurrogates(ProhibitSurrogateCharactersValidator):
    """DRF's check without its Python loop over every character: one regex search, in C."""

    def __call__(self, value: Any) -> None:
        text = str(value)
        if not text.isascii() and (found := _SURROGATE.search(text)) is not None:
            raise ValidationError(self.message.format(code_point=ord(found.group())), code=self.code)


class AnswerTextField(StrictCharField):
    """Learner text that may be long (code, a design answer), taken as it is (no trimming)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(trim_whitespace=False, **kwargs)
        self.validators = [
            _ProhibitSurrogates() if isinstance(validator, ProhibitSurrogateCharactersValidator) else validator
            for validator in self.validators
        ]


class CustomTestSerializer(serializers.Serializer):
    input = serializers.DictField(help_text="Arguments by parameter name, like a visible test's.")
    expected = serializers.JSONField(help_text="What your program should return.")


class SubmissionCodingPayloadSerializer(serializers.Serializer):
    language = serializers.ChoiceField(choices=Language.choices)
    code = AnswerTextField(allow_blank=False)
    inputs = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        min_length=1,
        max_length=5,
        help_text=(
            "`kind: run` only: up to 5 inputs of your own, each an object with exactly the problem's parameters "
            "(values of the kinds its examples use). The run then shows your output for each, and the reference "
            "solution's output as `expected` when the problem has one, instead of running the visible tests."
        ),
    )
    custom_tests = CustomTestSerializer(
        many=True,
        required=False,
        max_length=10,
        help_text=(
            "`kind: run` only: up to 10 tests of your own, run after the visible ones and shown like "
            "them (their `index` follows the visible tests')."
        ),
    )


class SubmissionMathPayloadSerializer(serializers.Serializer):
    steps = serializers.ListField(child=StrictCharField(max_length=1000), required=False, default=list)
    expression = StrictCharField(max_length=1000)


class SubmissionSystemsPayloadSerializer(serializers.Serializer):
    text = AnswerTextField()


_PAYLOADS = {
    Subject.CODING: SubmissionCodingPayloadSerializer,
    Subject.MATH: SubmissionMathPayloadSerializer,
    Subject.SYSTEMS: SubmissionSystemsPayloadSerializer,
}


class _SubmissionCreateFields(serializers.Serializer):
    session_id = serializers.UUIDField(help_text="The caller's active session that presented the problem.")
    problem_id = StrictCharField(max_length=255, help_text="Problem id or slug.")


class SubmissionCodingCreateSerializer(_SubmissionCreateFields):
    subject = serializers.ChoiceField(choices=[Subject.CODING.value])
    kind = serializers.ChoiceField(
        choices=SubmissionKind.choices,
        default=SubmissionKind.SUBMIT,
        help_text="`run`: visible tests only, not graded. `submit` (default): graded against visible and hidden tests.",
    )
    payload = SubmissionCodingPayloadSerializer()


class SubmissionMathCreateSerializer(_SubmissionCreateFields):
    subject = serializers.ChoiceField(choices=[Subject.MATH.value])
    kind = serializers.ChoiceField(
        choices=[SubmissionKind.SUBMIT.value], default=SubmissionKind.SUBMIT.value, help_text="Only code is run."
    )
    payload = SubmissionMathPayloadSerializer()


class SubmissionSystemsCreateSerializer(_SubmissionCreateFields):
    subject = serializers.ChoiceField(choices=[Subject.SYSTEMS.value])
    kind = serializers.ChoiceField(
        choices=[SubmissionKind.SUBMIT.value], default=SubmissionKind.SUBMIT.value, help_text="Only code is run."
    )
    payload = SubmissionSystemsPayloadSerializer()


# The request as the schema documents it: one shape per subject, told apart by `subject`.
SubmissionCreateRequest = PolymorphicProxySerializer(
    component_name="SubmissionCreate",
    serializers={
        Subject.CODING.value: SubmissionCodingCreateSerializer,
        Subject.MATH.value: SubmissionMathCreateSerializer,
        Subject.SYSTEMS.value: SubmissionSystemsCreateSerializer,
    },
    resource_type_field_name="subject",
)


class SubmissionCreateSerializer(_SubmissionCreateFields):
    """Validates what `SubmissionCreateRequest` documents: the common fields, then the payload
    against its subject's shape."""

    subject = serializers.ChoiceField(choices=Subject.choices)
    kind = serializers.ChoiceField(choices=SubmissionKind.choices, default=SubmissionKind.SUBMIT)
    payload = serializers.DictField()

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        payload = _PAYLOADS[data["subject"]](data=data["payload"])
        if not payload.is_valid():
            raise serializers.ValidationError({"payload": payload.errors})
        data["payload"] = dict(payload.validated_data)
        return data


class SubmissionPendingSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=[SubmissionStatus.PENDING, SubmissionStatus.RUNNING])


class VisibleTestDetailSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    input = serializers.DictField()
    expected = serializers.JSONField()
    actual = serializers.JSONField(allow_null=True)
    outcome = serializers.ChoiceField(
        choices=["passed", "wrong_answer", "runtime_error", "time_limit", "memory_limit", "output_limit"]
    )
    time_ms = serializers.IntegerField()
    error = serializers.CharField(allow_null=True)


class VisibleResultSerializer(serializers.Serializer):
    passed = serializers.IntegerField()
    total = serializers.IntegerField()
    details = VisibleTestDetailSerializer(many=True)


class HiddenResultSerializer(serializers.Serializer):
    passed = serializers.IntegerField()
    total = serializers.IntegerField()
    categories = serializers.ListField(child=serializers.CharField(), help_text="Failed hidden-test categories.")


class CustomInputDetailSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    input = serializers.DictField()
    output = serializers.JSONField(allow_null=True, help_text="What your code returned (null when it failed).")
    expected = serializers.JSONField(allow_null=True, help_text="The reference solution's value for this input.")
    expected_note = serializers.CharField(allow_null=True, help_text="Why there is no expected value, when there is none.")
    outcome = serializers.ChoiceField(
        choices=["passed", "wrong_answer", "ran", "runtime_error", "time_limit", "memory_limit", "output_limit"],
        help_text="`ran`: your code returned a value and there is no expected value to compare it with.",
    )
    time_ms = serializers.IntegerField()
    error = serializers.CharField(allow_null=True)


class CustomInputResultSerializer(serializers.Serializer):
    reference = serializers.BooleanField(help_text="Whether a reference solution gave the expected values.")
    details = CustomInputDetailSerializer(many=True)


class RemediationSerializer(serializers.Serializer):
    category = serializers.CharField()
    text = serializers.CharField()


class SubmissionResultSerializer(serializers.Serializer):
    """A finished submission. Hidden tests appear only as counts and failed categories."""

    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=SubmissionStatus.choices)
    kind = serializers.ChoiceField(choices=SubmissionKind.choices)
    problem_id = serializers.CharField(source="problem_ref")
    session_id = serializers.UUIDField(allow_null=True)
    subject = serializers.ChoiceField(choices=Subject.choices)
    language = serializers.CharField(allow_blank=True)
    visible = VisibleResultSerializer(required=False, help_text="Coding only.")
    hidden = HiddenResultSerializer(required=False, allow_null=True, help_text="Coding submits only; null for runs.")
    custom = CustomInputResultSerializer(required=False, help_text="Runs on custom inputs only.")
    categories = serializers.ListField(child=serializers.CharField(), required=False, help_text="Math and systems.")
    remediation = RemediationSerializer(many=True)
    exec_ms = serializers.IntegerField()
    peak_memory_kb = serializers.IntegerField(required=False)
    isolation = serializers.CharField(required=False)
    error = serializers.DictField(allow_null=True, help_text="{kind, message}: e.g. a syntax error.")
    math = serializers.DictField(required=False, help_text="Math: equivalence, form, per-step checks.")
    rubric = serializers.DictField(required=False, help_text="Systems: per-dimension scores and feedback.")
    created_at = OffsetDateTimeField()
    finished_at = OffsetDateTimeField()

    # The row's own fields; everything else is the result the pipeline stored with the verdict.
    ROW_FIELDS = ("id", "problem_id", "session_id", "subject", "language", "created_at")

    def to_representation(self, submission: Submission) -> dict[str, Any]:
        """The row's fields, then the stored result as it was stored (reading it is one query)."""
        shown: dict[str, Any] = {}
        for name in self.ROW_FIELDS:
            field = self.fields[name]
            value = field.get_attribute(submission)
            shown[name] = None if value is None else field.to_representation(value)
        return {**shown, **submission.result}


GRADED_VERDICTS = [SubmissionStatus.PASSED, SubmissionStatus.FAILED, SubmissionStatus.TIMEOUT]


class ProblemResultSerializer(serializers.Serializer):
    problem_id = serializers.UUIDField()
    slug = serializers.CharField()
    module = serializers.CharField(help_text="The module's slug (`id` of the track's modules).")
    status = serializers.ChoiceField(
        choices=ProblemResultStatus.choices,
        help_text="`solved`: a graded submit passed; `attempted`: graded submits, none passed; `not_started`: none.",
    )
    attempts = serializers.IntegerField(help_text="Graded submits (passed, failed or timed out); runs do not count.")
    best_verdict = serializers.ChoiceField(
        choices=GRADED_VERDICTS, allow_null=True, help_text="`passed`, else `failed`, else `timeout`; null when not started."
    )
    last_verdict = serializers.ChoiceField(choices=GRADED_VERDICTS, allow_null=True, help_text="The latest graded submit's.")
    last_submitted_at = OffsetDateTimeField(allow_null=True, help_text="When the latest graded submit was sent.")


class TrackResultsTrackSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="track_id")
    slug = serializers.CharField(source="track_slug")
    title = serializers.CharField(source="track_title")


class TrackResultsTotalsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    solved = serializers.IntegerField()
    attempted = serializers.IntegerField()
    not_started = serializers.IntegerField()


class TrackResultsSerializer(serializers.Serializer):
    track = TrackResultsTrackSerializer(source="*")
    problems = ProblemResultSerializer(many=True, help_text="Every published problem of the track, in its order.")
    totals = TrackResultsTotalsSerializer(help_text="How many of the track's problems have each status.")
