"""`update_returning`: the updated rows' fields from one UPDATE … RETURNING, or from a locked read
and the update where the database cannot return rows (SQLite before 3.35)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from co_project.models import TelemetryEvent
from co_project.returning import update_returning

pytestmark = pytest.mark.django_db


def _events() -> tuple[TelemetryEvent, TelemetryEvent]:
    now = timezone.now()
    return (
        TelemetryEvent.objects.create(event="a", user_id="alice", ts=now, attrs={"n": 1}),
        TelemetryEvent.objects.create(event="b", user_id="bob", ts=now, attrs={"n": 2}),
    )


@pytest.fixture(params=["returning", "read after update"])
def database_returns_rows(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    returns = request.param == "returning"
    monkeypatch.setattr(type(connection.features), "can_return_rows_from_update", returns)
    return returns


def test_updates_the_matching_rows_and_returns_their_new_values(database_returns_rows) -> None:
    alice, bob = _events()
    rows = update_returning(
        TelemetryEvent.objects.filter(user_id="alice"),
        ("id", "event", "attrs", "ts"),
        event=Concat(F("event"), Value("!")),
        attrs={"n": 3},
    )
    assert rows == [(alice.id, "a!", {"n": 3}, alice.ts)]  # converted as the ORM reads them
    assert TelemetryEvent.objects.get(id=alice.id).event == "a!"
    assert TelemetryEvent.objects.get(id=bob.id).event == "b"


def test_no_matching_row_returns_nothing(database_returns_rows) -> None:
    _events()
    assert update_returning(TelemetryEvent.objects.filter(user_id="carol"), ("id",), event="x") == []
    assert set(TelemetryEvent.objects.values_list("event", flat=True)) == {"a", "b"}
