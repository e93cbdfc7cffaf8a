"""`atomic_made_durable_by_next_commit`: on SQLite the block's commit skips the disk sync and the
connection is back to syncing every commit before anything else commits — after a commit, in its
commit hooks, after a rollback; on PostgreSQL, and inside an outer block, it is plain `atomic()`."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.utils import timezone

from co_project.durability import atomic_made_durable_by_next_commit, make_durable
from co_project.models import TelemetryEvent

pytestmark = pytest.mark.django_db(transaction=True)

SQLITE_LEVELS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def synchronous() -> str:
    """The connection's sync level on SQLite; PostgreSQL's synchronous_commit."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA synchronous")
            return SQLITE_LEVELS[cursor.fetchone()[0]]
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def event(name: str) -> TelemetryEvent:
    return TelemetryEvent.objects.create(event=name, user_id="u", ts=timezone.now(), attrs={})


def test_the_block_commits_without_a_sync_and_every_later_commit_syncs() -> None:
    before = synchronous()
    seen: dict[str, str] = {}
    with atomic_made_durable_by_next_commit():
        seen["block"] = synchronous()
        event("inserted")
        transaction.on_commit(lambda: seen.setdefault("hook", synchronous()))
    if connection.vendor == "sqlite":
        assert (before, seen) == ("FULL", {"block": "NORMAL", "hook": "FULL"})
    else:
        assert seen == {"block": before, "hook": before} and before == "on"
    assert synchronous() == before
    assert list(TelemetryEvent.objects.values_list("event", flat=True)) == ["inserted"]


def test_a_rolled_back_block_changes_nothing_and_leaves_commits_syncing() -> None:
    before = synchronous()
    with pytest.raises(RuntimeError), atomic_made_durable_by_next_commit():
        event("rolled back")
        raise RuntimeError("the insert failed")
    assert synchronous() == before
    assert not TelemetryEvent.objects.exists()


def test_inside_an_outer_block_the_outer_commit_decides() -> None:
    before = synchronous()
    with transaction.atomic(), atomic_made_durable_by_next_commit():
        event("nested")
        assert synchronous() == before
    assert synchronous() == before
    assert TelemetryEvent.objects.count() == 1


def test_make_durable_leaves_nothing_unsynced_and_changes_nothing() -> None:
    with atomic_made_durable_by_next_commit():
        event("inserted")
    make_durable()
    assert TelemetryEvent.objects.count() == 1
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            busy, frames, checkpointed = cursor.fetchone()
        assert busy == 0 and frames == checkpointed  # everything in the WAL is in the database file
