"""`manage.py surface_due_reviews`: what the beat task does, on demand."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from personalization.services import review_surface_due


class Command(BaseCommand):
    help = "Surface review items that have come due (the same service Celery beat runs)."

    def handle(self, *args: object, **options: object) -> None:
        count = review_surface_due()
        self.stdout.write(self.style.SUCCESS(f"{count} review item(s) surfaced as due."))
