"""The safety net: re-queue submissions whose enqueue or worker was lost, end the hopeless ones."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from grading.verdicts import error_verdict
from submissions.models import Submission, SubmissionStatus
from submissions.services.create import submission_enqueue
from submissions.services.evaluate import submission_finish


def submission_sweep() -> dict[str, int]:
    """Re-queue submissions whose enqueue or worker was lost; end the hopeless ones as error."""
    now = timezone.now()
    counts = {"requeued": 0, "expired": 0}
    deadline = now - timedelta(seconds=settings.CO_SUBMISSION_DEADLINE_SECONDS)
    unfinished = Q(status__in=[SubmissionStatus.PENDING, SubmissionStatus.RUNNING])
    for submission in Submission.objects.filter(unfinished, created_at__lt=deadline).only("id", "claim_token", "status"):
        with transaction.atomic():
            token = uuid.uuid4()
            taken = Submission.objects.filter(unfinished, id=submission.id, claim_token=submission.claim_token).update(
                status=SubmissionStatus.RUNNING, claim_token=token
            )
            if taken:
                fresh = Submission.objects.get(id=submission.id)
                late = error_verdict("pipeline", "Evaluation did not finish in time; please submit again.")
                submission_finish(fresh, token, late)
                counts["expired"] += 1

    requeue_before = now - timedelta(seconds=settings.CO_SUBMISSION_REQUEUE_SECONDS)
    stale = now - timedelta(seconds=settings.CO_SUBMISSION_STALE_SECONDS)
    lost = list(
        Submission.objects.filter(
            Q(status=SubmissionStatus.PENDING) & (Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=requeue_before))
            | Q(status=SubmissionStatus.RUNNING, started_at__lt=stale)
        ).values_list("id", "subject", "language")[:500]
    )
    Submission.objects.filter(id__in=[submission_id for submission_id, _, _ in lost]).update(enqueued_at=now)
    for submission_id, subject, language in lost:
        submission_enqueue(submission_id=submission_id, subject=subject, language=language)
        counts["requeued"] += 1
    return counts
