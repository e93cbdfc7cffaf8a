"""Serializer fields the apps' response shapes share."""

from __future__ import annotations

from datetime import datetime

from rest_framework import serializers


class OffsetDateTimeField(serializers.DateTimeField):
    """A datetime as `datetime.isoformat()` writes it, UTC as `+00:00` (DRF's own field writes
    `Z`): the shape session and submission responses have always had."""

    def to_representation(self, value: datetime | str | None) -> str | None:
        if value is None or isinstance(value, str):
            return value
        return value.isoformat()
