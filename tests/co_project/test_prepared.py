"""Prepared statements (co_project/prepared.py): compiled once, each call runs one statement
with its own values and gives what the ORM gives for the same queryset — values prepared and
read back through the same fields (UUIDs, datetimes, JSON), rows changed as `update()` changes
them — on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from co_project.models import TelemetryEvent
from co_project.prepared import Param, PreparedRead, PreparedUpdate

pytestmark = pytest.mark.django_db

field = TelemetryEvent._meta.get_field
COLUMNS = ("id", "event", "session_id", "ts", "attrs")

by_user_and_session = PreparedRead(
    TelemetryEvent,
    lambda _: (
        TelemetryEvent.objects.filter(
            user_id=Param("user_id", field("user_id")), session_id=Param("session_id", field("session_id"))
        )
        .order_by("id")
        .values_list(*COLUMNS)
    ),
)
# shape: how many users; one placeholder each
by_users = PreparedRead(
    TelemetryEvent,
    lambda count: (
        TelemetryEvent.objects.filter(user_id__in=[Param(f"user_{i}", field("user_id")) for i in range(count)])
        .order_by("id")
        .values_list("user_id", flat=True)
    ),
)
latest_of_user = PreparedRead(
    TelemetryEvent,
    lambda _: (
        TelemetryEvent.objects.filter(user_id=Param("user_id", field("user_id"))).only("id", "event", "attrs").order_by("-id")[:1]
    ),
)
event_changed = PreparedUpdate(
    TelemetryEvent,
    lambda shape: (
        TelemetryEvent.objects.filter(user_id=Param("user_id", field("user_id"))),
        {"attrs": Param("attrs", field("attrs")), "ts": Param("ts", field("ts"))}
        | ({"problem_id": F("event")} if shape == "copy event" else {}),
    ),
)


@pytest.fixture
def events() -> dict[str, TelemetryEvent]:
    now = timezone.now()
    session = uuid.uuid4()
    return {
        "a1": TelemetryEvent.objects.create(
            event="attempt_run", user_id="alice", session_id=session, ts=now, attrs={"n": [1, "ü"]}
        ),
        "a2": TelemetryEvent.objects.create(
            event="attempt_submit", user_id="alice", session_id=session, ts=now + timedelta(seconds=1), attrs={}
        ),
        "a3": TelemetryEvent.objects.create(event="hint_request", user_id="alice", session_id=None, ts=now, attrs={"x": None}),
        "b1": TelemetryEvent.objects.create(event="problem_open", user_id="bob", session_id=session, ts=now, attrs={"k": 1.5}),
    }


def test_a_prepared_read_gives_what_the_orm_gives_for_each_call_s_values(events) -> None:
    session = events["a1"].session_id
    for user, session_id in (("alice", session), ("bob", session), ("alice", str(session)), ("carol", session)):
        orm = list(TelemetryEvent.objects.filter(user_id=user, session_id=session_id).order_by("id").values_list(*COLUMNS))
        with CaptureQueriesContext(connection) as queries:
            prepared = by_user_and_session.rows(user_id=user, session_id=session_id)
        assert prepared == orm
        assert len(queries) == 1
    row = by_user_and_session.first(user_id="alice", session_id=session)
    assert row == (events["a1"].id, "attempt_run", session, events["a1"].ts, {"n": [1, "ü"]})
    assert isinstance(row[2], uuid.UUID) and row[3].tzinfo is not None
    assert by_user_and_session.first(user_id="nobody", session_id=session) is None


def test_shapes_are_compiled_apart(events) -> None:
    assert by_users.rows(1, user_0="bob") == [("bob",)]
    assert by_users.rows(2, user_0="bob", user_1="alice") == [("alice",), ("alice",), ("alice",), ("bob",)]
    assert by_users.rows(2, user_0="carol", user_1="dave") == []


def test_an_instance_has_the_selected_fields_and_saves_as_usual(events) -> None:
    latest = latest_of_user.instance(user_id="alice")
    assert isinstance(latest, TelemetryEvent)
    assert (latest.id, latest.event, latest.attrs) == (events["a3"].id, "hint_request", {"x": None})
    assert latest.get_deferred_fields() == {"user_id", "session_id", "problem_id", "ts"}
    latest.attrs = {"x": 2}
    latest.save(update_fields=["attrs"])
    assert TelemetryEvent.objects.get(id=latest.id).attrs == {"x": 2}
    assert latest_of_user.instance(user_id="nobody") is None


def test_a_prepared_update_changes_what_update_would_and_counts_the_rows(events) -> None:
    later = timezone.now() + timedelta(days=1)
    with CaptureQueriesContext(connection) as queries:
        changed = event_changed.run(user_id="alice", attrs={"done": True}, ts=later)
    assert changed == 3 and len(queries) == 1
    assert list(TelemetryEvent.objects.filter(user_id="alice").values_list("attrs", flat=True)) == [{"done": True}] * 3
    assert set(TelemetryEvent.objects.filter(user_id="alice").values_list("ts", flat=True)) == {later}
    assert TelemetryEvent.objects.get(id=events["b1"].id).attrs == {"k": 1.5}  # another user's row is untouched

    assert event_changed.run("copy event", user_id="bob", attrs=[], ts=later) == 1
    bob = TelemetryEvent.objects.get(id=events["b1"].id)
    assert (bob.problem_id, bob.attrs) == ("problem_open", [])  # an expression in the changes
    assert event_changed.run(user_id="nobody", attrs={}, ts=later) == 0


def test_an_update_returning_changes_the_rows_and_gives_them_back_in_one_statement(events) -> None:
    """The rows as the ORM reads them after the change (every column, through its converters:
    UUIDs, datetimes, JSON), whichever shape; the same statement runs for `run()` and `returning()`
    of different shapes without mixing them up."""
    later = timezone.now() + timedelta(days=1)
    with CaptureQueriesContext(connection) as queries:
        changed = event_changed.returning(user_id="alice", attrs={"done": ["ü", 1.5]}, ts=later)
    assert len(queries) == 1 and "RETURNING" in queries[0]["sql"]
    assert sorted(event.id for event in changed) == sorted(events[key].id for key in ("a1", "a2", "a3"))
    for event in changed:
        stored = TelemetryEvent.objects.get(id=event.id)
        assert [getattr(event, f.attname) for f in TelemetryEvent._meta.concrete_fields] == [
            getattr(stored, f.attname) for f in TelemetryEvent._meta.concrete_fields
        ]
        assert event.attrs == {"done": ["ü", 1.5]} and event.ts == later
        assert event._state.adding is False and event._state.db == "default"
    assert {event.session_id for event in changed} == {events["a1"].session_id, None}

    [bob] = event_changed.returning("copy event", user_id="bob", attrs=[], ts=later)
    assert (bob.problem_id, bob.attrs, bob.user_id) == ("problem_open", [], "bob")
    assert event_changed.returning(user_id="nobody", attrs={}, ts=later) == []
    assert event_changed.run(user_id="bob", attrs={"k": 2}, ts=later) == 1  # the plain statement is still the plain one


def test_none_is_stored_as_save_stores_it(events) -> None:
    """SQL NULL, not the JSON value null: a NOT NULL JSON column refuses it, as with update()."""
    with pytest.raises(IntegrityError), transaction.atomic():
        TelemetryEvent.objects.filter(user_id="bob").update(attrs=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        event_changed.run(user_id="bob", attrs=None, ts=timezone.now())
    assert TelemetryEvent.objects.get(id=events["b1"].id).attrs == {"k": 1.5}


def test_a_locking_read_locks_where_the_database_can(events) -> None:
    locked = PreparedRead(
        TelemetryEvent,
        lambda _: TelemetryEvent.objects.select_for_update().filter(user_id=Param("user_id", field("user_id"))).values_list("id"),
    )
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert locked.rows(user_id="bob") == [(events["b1"].id,)]
    assert queries[0]["sql"].endswith("FOR UPDATE") == connection.features.has_select_for_update


@pytest.mark.django_db(transaction=True)
def test_a_locking_read_outside_a_transaction_is_refused_as_the_orm_refuses_it() -> None:
    locked = PreparedRead(
        TelemetryEvent,
        lambda _: TelemetryEvent.objects.select_for_update().filter(user_id=Param("user_id", field("user_id"))).values_list("id"),
    )
    with transaction.atomic():
        assert locked.rows(user_id="bob") == []  # compiled inside one
    if connection.features.has_select_for_update:
        with pytest.raises(TransactionManagementError):
            list(TelemetryEvent.objects.select_for_update().filter(user_id="bob"))
        with pytest.raises(TransactionManagementError):
            locked.rows(user_id="bob")
    else:  # SQLite locks the whole database for a write transaction: nothing to refuse
        assert list(TelemetryEvent.objects.select_for_update().filter(user_id="bob")) == locked.rows(user_id="bob") == []
