"""Admin form fields keep authored text as written."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from tracks.forms import AuthoredTextField, SchemaJSONField


def test_authored_text_keeps_whitespace_and_normalises_line_endings() -> None:
    field = AuthoredTextField()
    assert field.clean("def f():\r\n    return 1\r\n\r\n") == "def f():\n    return 1\n\n"
    assert field.clean("  leading and trailing  \n") == "  leading and trailing  \n"


def test_schema_json_field_names_the_json_error_position() -> None:
    field = SchemaJSONField(definition="hints")
    with pytest.raises(ValidationError) as caught:
        field.clean('["a", "b"')
    assert caught.value.messages == ["Not valid JSON: Expecting ',' delimiter at line 1, column 10."]
