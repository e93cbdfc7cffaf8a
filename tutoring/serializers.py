"""Request and response shapes of /v1/tutor/messages (seeds/001 TutorMessageCreate)."""

from __future__ import annotations

from rest_framework import serializers

from co_project.serializer_fields import StrictCharField, StrictIntegerField
from submissions.errors import CodeTooLarge
from tracks.choices import Language

MAX_CODE_BYTES = 64 * 1024
MAX_MESSAGE_CHARS = 2000


class TutorVisibleResultSerializer(serializers.Serializer):
    passed = StrictIntegerField(min_value=0, required=False)
    total = StrictIntegerField(min_value=0, required=False)
    details = serializers.ListField(child=serializers.DictField(), required=False, max_length=50)


class TutorHiddenResultSerializer(serializers.Serializer):
    passed = StrictIntegerField(min_value=0, required=False)
    total = StrictIntegerField(min_value=0, required=False)
    categories = serializers.ListField(child=StrictCharField(max_length=100), required=False, max_length=50)


class TutorLastEvalSerializer(serializers.Serializer):
    """The evaluation result the learner is looking at (a SubmissionResult); only these fields are read."""

    status = StrictCharField(max_length=16, required=False)
    visible = TutorVisibleResultSerializer(required=False)
    hidden = TutorHiddenResultSerializer(required=False)


class TutorMessageCreateSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    problem_id = StrictCharField(max_length=255, help_text="The problem's id or slug; it must be one of the session's.")
    hint_level = StrictIntegerField(min_value=1, max_value=3, help_text="1 a nudge, 2 an approach, 3 a near-solution.")
    last_eval = TutorLastEvalSerializer(required=False, help_text="The last evaluation the learner saw, if the client has one.")
    message = StrictCharField(max_length=MAX_MESSAGE_CHARS, required=False, allow_blank=True, default="")
    code = StrictCharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    language = serializers.ChoiceField(choices=Language.choices, required=False, allow_blank=True, default="")

    def validate_code(self, value: str) -> str:
        size = len(value.encode())
        if size > MAX_CODE_BYTES:
            raise CodeTooLarge(f"Code is {size} bytes; the limit is {MAX_CODE_BYTES} bytes (64 KiB).")
        return value


class TutorTurnStartedSerializer(serializers.Serializer):
    turn_id = serializers.UUIDField()
    stream_url = serializers.CharField(help_text="Open it with EventSource (or `curl -N`); the token is in the query.")
    token = serializers.CharField(help_text="Single-use stream token, bound to this learner and turn.")
    expires_at = serializers.DateTimeField(help_text="Open the stream before this time.")
