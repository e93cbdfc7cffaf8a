"""`manage.py create_review_tasks`: what the beat task does, on demand."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from study_paths.reviews import review_tasks_create


class Command(BaseCommand):
    help = (
        "Turn due review-queue items into `review` tasks on the learners' active study paths, within each "
        "path's max_reviews_per_day (the same service Celery beat runs)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--learner", metavar="SUB", help="Only this learner (the JWT `sub`).")

    def handle(self, *args: Any, **options: Any) -> None:
        count = review_tasks_create(learner_id=options["learner"])
        self.stdout.write(self.style.SUCCESS(f"{count} review task(s) created."))
