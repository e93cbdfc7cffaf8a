"""Publish the course packs shipped in coursepacks/ (idempotent: unchanged files are skipped)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from co_project.errors import ApplicationError
from tracks.services import seed_coursepacks


class Command(BaseCommand):
    help = "Import and publish the course packs shipped in the repository (safe to run again)."

    def handle(self, *args: object, **options: object) -> None:
        try:
            outcomes = seed_coursepacks(directory=settings.CO_SEED_COURSEPACK_DIR)
        except ApplicationError as exc:
            details = "\n".join(f"  {e['path']}: {e['message']}" for e in exc.fields.get("errors", []))
            raise CommandError(f"{exc.message}\n{details}".rstrip()) from exc
        for outcome in outcomes:
            if outcome.summary is None:
                self.stdout.write(f"{outcome.filename}: already published, unchanged")
            else:
                s = outcome.summary
                self.stdout.write(
                    f"{outcome.filename}: published {s.track} {s.version} "
                    f"({len(s.created)} created, {len(s.updated)} updated, "
                    f"{len(s.unchanged)} unchanged, {len(s.retired)} retired)"
                )
