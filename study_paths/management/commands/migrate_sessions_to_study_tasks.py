"""`manage.py migrate_sessions_to_study_tasks`: copy learners' track sessions into archived study
paths (study_paths/migration_from_sessions.py), preview it with --dry-run, undo a batch with
--rollback, list batches with --list."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from co_project.errors import ApplicationError
from study_paths.migration_from_sessions import (
    TrackPlan,
    sessions_migrate,
    sessions_migration_batches,
    sessions_migration_rollback,
)


def _since(value: str) -> datetime:
    """A date (its midnight, UTC) or an ISO 8601 time (UTC when it has no offset)."""
    try:
        day = parse_date(value)
        moment = datetime.combine(day, time.min, tzinfo=UTC) if day else parse_datetime(value)
    except ValueError:
        moment = None
    if moment is None:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD) or an ISO 8601 time")
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)


class Command(BaseCommand):
    help = (
        "Copy learners' track sessions into study paths: one archived path per learner and track, a task per "
        "presented problem, an evaluation per graded submission (the same submission rows), events in order "
        "with the original times. Idempotent; every row created carries the run's batch id for --rollback."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Print what would be created; write nothing.")
        parser.add_argument("--learner", metavar="SUB", help="Only this learner (the JWT `sub`).")
        parser.add_argument("--since", metavar="DATE", type=_since, help="Only sessions started at or after this date or time.")
        parser.add_argument("--rollback", metavar="BATCH_ID", type=int, help="Delete exactly what this batch created.")
        parser.add_argument("--list", action="store_true", help="List the batches.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["list"]:
                self._list()
            elif options["rollback"] is not None:
                self._rollback(options["rollback"], dry_run=options["dry_run"])
            else:
                self._migrate(learner=options["learner"], since=options["since"], dry_run=options["dry_run"])
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from exc

    def _migrate(self, *, learner: str | None, since: datetime | None, dry_run: bool) -> None:
        if dry_run:
            self.stdout.write("Dry run: nothing is written.")
        plans: list[TrackPlan] = []
        report = sessions_migrate(learner_id=learner, since=since, dry_run=dry_run, progress=plans.append)
        verb = "would add" if dry_run else "added"
        for plan in plans:
            counts = plan.counts
            where = "a new archived path" if plan.new_path else "its migrated path"
            self.stdout.write(
                f"{plan.learner_id} on {plan.track}: {verb} {counts.tasks} task(s), {counts.evaluations} evaluation(s), "
                f"{counts.events} event(s) from {plan.sessions} session(s) to {where}"
            )
        total = report.counts
        summary = f"{total.paths} path(s), {total.tasks} task(s), {total.evaluations} evaluation(s), {total.events} event(s)"
        if dry_run:
            self.stdout.write(f"Would create {summary}.")
        elif report.batch_id is None:
            self.stdout.write(self.style.SUCCESS("Nothing to migrate: every track session is already migrated."))
        else:
            self.stdout.write(
                self.style.SUCCESS(f"Batch {report.batch_id}: created {summary}. Undo with --rollback {report.batch_id}.")
            )

    def _rollback(self, batch_id: int, *, dry_run: bool) -> None:
        if dry_run:
            raise CommandError("--rollback takes no --dry-run; --list shows what each batch created.")
        deleted = sessions_migration_rollback(batch_id=batch_id)
        self.stdout.write(
            self.style.SUCCESS(
                f"Batch {batch_id} rolled back: deleted {deleted.paths} path(s), {deleted.tasks} task(s), "
                f"{deleted.evaluations} evaluation(s), {deleted.events} event(s)."
            )
        )

    def _list(self) -> None:
        for batch in sessions_migration_batches():
            scope = ", ".join(
                part
                for part in (
                    f"learner {batch.learner_id}" if batch.learner_id else "",
                    f"since {batch.since.isoformat()}" if batch.since else "",
                )
                if part
            )
            state = f"rolled back {batch.rolled_back_at.isoformat()}" if batch.rolled_back_at else "applied"
            self.stdout.write(
                f"batch {batch.id} {batch.started_at.isoformat()} {state}: {batch.created}" + (f" ({scope})" if scope else "")
            )
