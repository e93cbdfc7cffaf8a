"""`manage.py finish_expired_mocks`: what the beat task does, on demand."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from sessions_app.services import session_finish_expired_mocks


class Command(BaseCommand):
    help = "End every mock interview past its deadline and write its report (Celery beat does this every few seconds)."

    def handle(self, *args: object, **options: object) -> None:
        count = session_finish_expired_mocks()
        self.stdout.write(self.style.SUCCESS(f"{count} mock interview(s) finished."))
