"""`manage.py expire_study_tasks`: what the beat task does, on demand."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from study_paths.lifecycle import study_tasks_expire


class Command(BaseCommand):
    help = "Mark study tasks past their expiry `expired` (the same service Celery beat runs)."

    def handle(self, *args: object, **options: object) -> None:
        count = study_tasks_expire()
        self.stdout.write(self.style.SUCCESS(f"{count} study task(s) expired."))
