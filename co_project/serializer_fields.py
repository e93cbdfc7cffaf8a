"""Serializer pieces the apps share: the datetime shape of responses, JSON types taken as the
schema states them, query-parameter reading."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import QueryDict
from rest_framework import serializers
from rest_framework.fields import empty


class OffsetDateTimeField(serializers.DateTimeField):
    """A datetime as `datetime.isoformat()` writes it, UTC as `+00:00` (DRF's own field writes
    `Z`): the shape session and submission responses have always had."""

    def to_representation(self, value: datetime | str | None) -> str | None:
        if value is None or isinstance(value, str):
            return value
        return value.isoformat()


class StrictCharField(serializers.CharField):
    """A JSON string, and only a string: DRF's field also takes a number and turns it into text,
    so `"code": 12` would be graded as the program `12` while the schema says `string`."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, and only an integer: DRF's field also takes `"2"` and `true`."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class QueryParamsSerializer(serializers.Serializer):
    """Query parameters, validated as the values they are. DRF reads a `QueryDict` with HTML-form
    rules, where an empty optional value counts as absent: `?subject=` would then list every
    subject instead of being refused like any other value outside the documented enum."""

    def __init__(self, instance: Any = None, data: Any = empty, **kwargs: Any) -> None:
        if isinstance(data, QueryDict):
            data = data.dict()
        super().__init__(instance, data, **kwargs)
