"""Claim, grade and finish: a submission gets its verdict, its event and its learner-model
update in one transaction, only while its evaluation still holds the claim."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from datetime import timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from co_project import metrics
from co_project.prepared import Param, PreparedUpdate
from co_project.telemetry import telemetry_emit
from grading.verdicts import Verdict, error_verdict
from personalization.services import GradedAttempt, ProblemFacts, attempt_record
from submissions.models import RubricScore, Submission, SubmissionKind, SubmissionStatus
from submissions.origins import SESSION_ORIGIN, AttemptContext, AttemptVerdict, origin_get
from submissions.waiting import Announcement, verdict_announce
from tracks.choices import Subject
from tracks.problem_bank import ProblemBundle, problem_bundle_for_grading
from tracks.selectors import problem_rubric_id

logger = logging.getLogger("co.submissions")


_field = Submission._meta.get_field

# The claim: a pending row, or a running one whose evaluation went stale, taken with a fresh token
# and read back in the same statement (co_project/prepared.py).
_claim_row = PreparedUpdate(
    Submission,
    lambda _: (
        Submission.objects.filter(
            Q(status=SubmissionStatus.PENDING)
            | Q(status=SubmissionStatus.RUNNING, started_at__lt=Param("stale", _field("started_at"))),
            id=Param("submission_id", Submission._meta.pk),
        ),
        {
            "status": SubmissionStatus.RUNNING,
            "claim_token": Param("claim_token", _field("claim_token")),
            "started_at": Param("now", _field("started_at")),
            "attempts": F("attempts") + 1,
        },
    ),
)


def _claim(*, submission_id: uuid.UUID) -> tuple[Submission, uuid.UUID] | None:
    """Take the submission for evaluation: (the claimed row, the claim token), or None when it is
    final or someone else holds it. One conditional UPDATE claims the row and returns it."""
    token = uuid.uuid4()
    now = timezone.now()
    stale = now - timedelta(seconds=settings.CO_SUBMISSION_STALE_SECONDS)
    claimed = _claim_row.returning(submission_id=submission_id, claim_token=token, now=now, stale=stale)
    if not claimed:
        return None
    submission = claimed[0]
    queued_at = submission.enqueued_at or submission.created_at
    metrics.queue_wait_observe(
        subject=submission.subject, language=submission.language, seconds=(now - queued_at).total_seconds()
    )
    return submission, token


def _grade(submission: Submission, bundle: ProblemBundle) -> Verdict:
    payload = submission.payload
    if submission.subject == Subject.CODING and "inputs" in payload:
        from grading.evaluators.custom_input import evaluate_custom_inputs

        verdict = evaluate_custom_inputs(
            bundle=bundle, language=submission.language, code=payload["code"], inputs=payload["inputs"]
        )
    elif submission.subject == Subject.CODING:
        from grading.evaluators.coding import evaluate_code

        if payload.get("custom_tests"):
            # The learner's own tests run as more visible tests: the same run, the same comparison.
            bundle = dataclasses.replace(bundle, visible_tests=[*bundle.visible_tests, *payload["custom_tests"]])
        verdict = evaluate_code(
            bundle=bundle,
            language=submission.language,
            code=payload["code"],
            include_hidden=submission.kind == SubmissionKind.SUBMIT,
        )
    elif submission.subject == Subject.MATH:
        from grading.evaluators.math import evaluate_math

        math = bundle.math or {}
        result = evaluate_math(
            expression=payload["expression"],
            steps=payload.get("steps", []),
            answer=math.get("answer", ""),
            variables=math.get("variables", []),
            form=math.get("form") or "equivalent",
            dependent=math.get("dependent") or None,
            positive=math.get("positive") or [],
        )
        verdict = Verdict(
            status=result.status,
            failed_categories=list(result.categories),
            exec_ms=result.exec_ms,
            details={
                "math": {
                    "equivalent": result.equivalent,
                    "form_ok": result.form_ok,
                    "first_invalid_step": result.first_invalid_step,
                    "error_position": result.error_position,
                    "steps": [
                        {"index": s.index, "expression": s.expression, "ok": s.ok, "reason": s.reason} for s in result.steps
                    ],
                    "message": result.message,
                }
            },
        )
        if result.status == "error":
            verdict.error = {"kind": "math", "message": result.message}
    else:
        from grading.evaluators.rubric import grade_rubric

        result = grade_rubric(text=payload["text"], rubric=bundle.rubric or {}, expectations=bundle.rubric_expectations)
        verdict = Verdict(
            status=result.status,
            failed_categories=list(result.categories),
            details={
                "rubric": {
                    "grader": result.grader,
                    "total": result.total,
                    "max_total": result.max_total,
                    "dimensions": [
                        {
                            "id": d.id,
                            "name": d.name,
                            "score": d.score,
                            "max_score": d.max_score,
                            "feedback": d.feedback,
                            "why": d.why,
                        }
                        for d in result.dimensions
                    ],
                    "message": result.message,
                }
            },
            rubric_scores={"scores": result.scores, "feedback": result.feedback, "grader": result.grader},
        )
        if result.status == "error":
            verdict.error = {"kind": "rubric", "message": result.message}
    verdict.details["remediation"] = [
        {"category": category, "text": bundle.remediation[category]}
        for category in verdict.failed_categories
        if category in bundle.remediation
    ]
    return verdict


def _learner_result(submission: Submission, verdict: Verdict, finished_at: Any) -> dict[str, Any]:
    """The learner-facing result, stored with the verdict so reading it is one query."""
    graded = submission.kind == SubmissionKind.SUBMIT
    result: dict[str, Any] = {
        "status": verdict.status,
        "kind": submission.kind,
        "exec_ms": verdict.exec_ms,
        "error": verdict.error,
        "remediation": verdict.details.get("remediation", []),
    }
    if submission.subject == Subject.CODING:
        result["visible"] = {
            "passed": verdict.visible_passed,
            "total": verdict.visible_total,
            "details": verdict.visible_details,
        }
        result["hidden"] = (
            {"passed": verdict.hidden_passed, "total": verdict.hidden_total, "categories": verdict.failed_categories}
            if graded
            else None
        )
        result["peak_memory_kb"] = verdict.peak_memory_kb
        result["isolation"] = verdict.isolation
        if "custom" in verdict.details:
            result["custom"] = verdict.details["custom"]
    else:
        result["categories"] = verdict.failed_categories
    for key in ("math", "rubric"):
        if key in verdict.details:
            result[key] = verdict.details[key]
    result["finished_at"] = finished_at.isoformat()
    return result


# The verdict, written only while this evaluation still holds the claim; compiled once
# (co_project/prepared.py). The shape is the names of the fields `submission_finish` records.
_record_verdict = PreparedUpdate(
    Submission,
    lambda names: (
        Submission.objects.filter(
            id=Param("submission_id", Submission._meta.pk),
            status=SubmissionStatus.RUNNING,
            claim_token=Param("claim_token", _field("claim_token")),
        ),
        {name: Param(name, _field(name)) for name in names},
    ),
)


def submission_finish(submission: Submission, token: uuid.UUID, verdict: Verdict, bundle: ProblemBundle | None = None) -> bool:
    """Record the verdict if we still hold the claim; emit the event in the same transaction."""
    now = timezone.now()
    fields = {
        "status": verdict.status,
        "visible_passed": verdict.visible_passed,
        "visible_total": verdict.visible_total,
        "visible_details": verdict.visible_details,
        "hidden_passed": verdict.hidden_passed,
        "hidden_total": verdict.hidden_total,
        "failed_categories": verdict.failed_categories,
        "result": _learner_result(submission, verdict, now),
        "exec_ms": verdict.exec_ms,
        "peak_memory_kb": verdict.peak_memory_kb,
        "isolation": verdict.isolation,
        "error_reason": verdict.error_reason,
        "finished_at": now,
    }
    with transaction.atomic():
        finished = _record_verdict.run(tuple(fields), submission_id=submission.id, claim_token=token, **fields)
        if not finished:
            return False
        # Counted before the waiters wake, so a client that saw the verdict finds it counted.
        transaction.on_commit(lambda: _verdict_observe(submission, verdict, now))
        announcement: Announcement = {"status": verdict.status, "result": fields["result"]}
        transaction.on_commit(lambda: verdict_announce(submission_id=submission.id, announcement=announcement))
        if verdict.rubric_scores is not None and submission.problem_id is not None:
            rubric_id = problem_rubric_id(problem_id=submission.problem_id)
            if rubric_id is not None:
                RubricScore.objects.create(submission_id=submission.id, rubric_id=rubric_id, **verdict.rubric_scores)
        telemetry_emit(
            event="attempt_submit" if submission.kind == SubmissionKind.SUBMIT else "attempt_run",
            user_id=submission.learner_id,
            session_id=submission.session_id,
            problem_id=submission.problem_ref,
            attrs={
                "submission_id": str(submission.id),
                "status": verdict.status,
                "language": submission.language,
                "visible_passed": verdict.visible_passed,
                "visible_total": verdict.visible_total,
                "hidden_passed": verdict.hidden_passed,
                "hidden_total": verdict.hidden_total,
                "categories": verdict.failed_categories,
                "exec_ms": verdict.exec_ms,
            },
            ts=now,
        )
        _update_learner_model(submission, verdict, now, bundle)
    return True


def _verdict_observe(submission: Submission, verdict: Verdict, finished_at: Any) -> None:
    """The verdict's metrics, once it is committed: every submission counts exactly once."""
    metrics.verdict_observe(
        subject=submission.subject,
        language=submission.language,
        status=verdict.status,
        seconds_to_verdict=(finished_at - submission.created_at).total_seconds(),
    )
    if submission.subject == Subject.CODING:
        metrics.sandbox_observe(
            language=submission.language,
            isolation=verdict.isolation,
            start_failed=(verdict.error or {}).get("kind") == "sandbox",
        )


LEARNER_GRADED_STATUSES = (SubmissionStatus.PASSED, SubmissionStatus.FAILED, SubmissionStatus.TIMEOUT)


def _attempt_verdict(submission: Submission, verdict: Verdict, now: Any, *, origin_id: uuid.UUID, graded: bool) -> AttemptVerdict:
    return AttemptVerdict(
        origin_id=origin_id,
        learner_id=submission.learner_id,
        problem_id=submission.problem_id,
        graded=graded,
        status=verdict.status,
        categories=verdict.failed_categories,
        at=now,
        submission_id=submission.id,
        exec_ms=verdict.exec_ms,
        peak_memory_kb=verdict.peak_memory_kb,
        visible_passed=verdict.visible_passed,
        visible_total=verdict.visible_total,
        hidden_passed=verdict.hidden_passed,
        hidden_total=verdict.hidden_total,
        visible_outcomes=tuple(str(detail.get("outcome", "")) for detail in verdict.visible_details if isinstance(detail, dict)),
    )


def _update_learner_model(submission: Submission, verdict: Verdict, now: Any, bundle: ProblemBundle | None) -> None:
    """Front-door bookkeeping and mastery / review queue, in the verdict's transaction. Runs are
    counted but not graded; an `error` verdict is our failure, not the learner's, and counts for nothing.
    A session hears of graded and run verdicts of database problems; another front door (a study
    task) hears of every final verdict, `error` included, since its record waits for one.
    The grading bundle, when it is the submission's database problem, supplies the facts mastery weighs."""
    if verdict.status not in (*LEARNER_GRADED_STATUSES, SubmissionStatus.ERROR):
        return
    graded = submission.kind == SubmissionKind.SUBMIT and verdict.status in LEARNER_GRADED_STATUSES
    context = AttemptContext()
    if submission.origin and submission.origin_id is not None:
        context = origin_get(submission.origin).record_verdict(
            _attempt_verdict(submission, verdict, now, origin_id=submission.origin_id, graded=graded)
        )
    if submission.problem_id is None:
        return
    if submission.session_id is not None and verdict.status != SubmissionStatus.ERROR:
        context = origin_get(SESSION_ORIGIN).record_verdict(
            _attempt_verdict(submission, verdict, now, origin_id=submission.session_id, graded=graded)
        )
    if not graded:
        return
    facts = None
    if bundle is not None and bundle.source == "database" and bundle.id == str(submission.problem_id):
        facts = ProblemFacts.of(bundle)
    attempt_record(
        attempt=GradedAttempt(
            learner_id=submission.learner_id,
            problem_id=submission.problem_id,
            passed=verdict.status == SubmissionStatus.PASSED,
            tests_passed=verdict.visible_passed + verdict.hidden_passed,
            tests_total=verdict.visible_total + verdict.hidden_total,
            max_hint_level=context.max_hint_level,
            seconds_taken=context.seconds_taken,
            at=now,
        ),
        problem=facts,
    )


def submission_evaluate(*, submission_id: uuid.UUID | str) -> str:
    """Grade a submission at most once. Returns what happened: graded, skipped, or gave-up."""
    claimed = _claim(submission_id=uuid.UUID(str(submission_id)))
    if claimed is None:
        return "skipped"
    return _evaluate_claimed(*claimed)


def _evaluate_claimed(submission: Submission, token: uuid.UUID) -> str:
    """Grade a submission this evaluation holds the claim of, and record the verdict."""
    if submission.attempts > settings.CO_SUBMISSION_MAX_ATTEMPTS:
        submission_finish(submission, token, error_verdict("pipeline", "Evaluation failed repeatedly; please submit again."))
        return "gave-up"
    bundle = None
    try:
        # Read once per evaluation: grading and the learner model both use it.
        bundle = problem_bundle_for_grading(problem_id=submission.problem_id, reference=submission.problem_ref)
        verdict = _grade(submission, bundle)
    except SoftTimeLimitExceeded:
        verdict = error_verdict("pipeline", "Evaluation took too long and was stopped.")
    except Exception as exc:
        # A bug or an outage of something we depend on: the submission still gets a verdict.
        logger.exception("evaluation of %s failed", submission.id)
        message = getattr(exc, "message", None) or "Evaluation failed unexpectedly; please submit again."
        verdict = error_verdict("pipeline", str(message))
    submission_finish(submission, token, verdict, bundle)
    return "graded"
