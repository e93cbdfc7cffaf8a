"""The one evaluation pipeline: persist → commit → enqueue (on commit) → grade → persist → emit.

Every front door (`POST /v1/submissions`, session submissions, study-task submissions) calls
`submission_create`; the Celery task calls `submission_evaluate`; the beat task calls
`submission_sweep`. Exactly one verdict per submission is guaranteed by the database, not by
the queue: an evaluation first *claims* the row (`pending → running` with a fresh claim token,
a conditional UPDATE) and may only *finish* it while it still holds
that claim. Without a broker the queue is Celery's eager mode: the same task runs in the process
that commits the row, through the same claim. A redelivered task finds nothing to claim; a task
whose worker died leaves a `running` row that only becomes claimable again once it is stale, and
the sweeper (beat, or the serving process itself without a broker: co_project/beat.py) re-queues it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
import uuid
from datetime import timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from co_project import metrics
from co_project.errors import ApplicationError, InvalidInput, PayloadTooLarge
from co_project.prepared import Param, PreparedUpdate
from co_project.telemetry import telemetry_emit
from grading.verdicts import Verdict, error_verdict
from personalization.services import GradedAttempt, ProblemFacts, attempt_record
from submissions.errors import CodeTooLarge, CustomInputUnavailable, IdempotencyKeyReused, TooManyEvaluations
from submissions.models import RubricScore, Submission, SubmissionKind, SubmissionStatus
from submissions.origins import SESSION_ORIGIN, AttemptContext, AttemptVerdict, origin_get
from submissions.waiting import Announcement, verdict_announce, verdict_await
from tracks.choices import Subject
from tracks.problem_bank import ProblemBundle, problem_bundle_for_grading, problem_bundle_require
from tracks.selectors import problem_rubric_id

logger = logging.getLogger("co.submissions")

MAX_CODE_BYTES = 64 * 1024
MAX_MATH_CHARS = 2000
MAX_CUSTOM_TESTS_CHARS = 16 * 1024
MAX_MATH_STEPS = 50
MAX_SYSTEMS_CHARS = 20000


# --- create --------------------------------------------------------------------------------------


def _payload_digest(
    *,
    problem_ref: str,
    subject: str,
    kind: str,
    session_id: uuid.UUID | None,
    payload: dict,
    origin: str,
    origin_id: uuid.UUID | None,
) -> str:
    request = {"problem": problem_ref, "subject": subject, "kind": kind, "session": str(session_id or ""), "payload": payload}
    if origin:  # only then: a session submission's digest stays what it always was
        request["origin"] = f"{origin}:{origin_id}"
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_custom_tests(*, bundle: ProblemBundle, kind: str, tests: list[dict[str, Any]]) -> None:
    """A learner's own tests ride along on a run only, call the function with exactly its
    parameters, and stay small (they are stored with the submission and shown back)."""
    if kind != SubmissionKind.RUN:
        raise InvalidInput("Custom tests go with a run, not a submit.", fields={"payload": {"custom_tests": ["Use kind 'run'."]}})
    parameters = set(bundle.parameters)
    for index, test in enumerate(tests):
        if set(test["input"]) != parameters:
            raise InvalidInput(
                f"Custom test {index + 1} must give exactly the parameters {', '.join(bundle.parameters)}.",
                fields={"payload": {"custom_tests": {str(index): {"input": [f"Keys: {', '.join(bundle.parameters)}."]}}}},
            )
    if len(json.dumps(tests)) > MAX_CUSTOM_TESTS_CHARS:
        raise PayloadTooLarge(f"Custom tests may be at most {MAX_CUSTOM_TESTS_CHARS} characters of JSON in all.")


def _check_payload(*, bundle: ProblemBundle, subject: str, kind: str, payload: dict[str, Any]) -> str:
    """Validate the payload for the problem's subject; returns the language ('' outside coding)."""
    if subject != bundle.subject:
        raise InvalidInput(
            f"Problem '{bundle.slug}' is a {bundle.subject} problem, not {subject}.",
            fields={"subject": [f"Must be '{bundle.subject}' for this problem."]},
        )
    if kind == SubmissionKind.RUN and subject != Subject.CODING:
        raise InvalidInput("Only code can be run against the visible tests.", fields={"kind": ["Use 'submit'."]})
    if subject == Subject.CODING:
        language, code = payload["language"], payload["code"]
        if language not in bundle.languages:
            offered = ", ".join(sorted(bundle.languages)) or "none"
            raise InvalidInput(
                f"This problem is not offered in {language} (offered: {offered}).",
                fields={"payload": {"language": [f"Must be one of: {offered}."]}},
            )
        if len(code.encode()) > MAX_CODE_BYTES:
            raise CodeTooLarge(f"Code is {len(code.encode())} bytes; the limit is {MAX_CODE_BYTES} bytes (64 KiB).")
        if "inputs" in payload and "custom_tests" in payload:
            raise InvalidInput(
                "Send either inputs (the reference answers them) or custom_tests (you give the expected outputs), not both.",
                fields={"payload": {"inputs": ["Not together with custom_tests."]}},
            )
        if "inputs" in payload:
            _check_custom_inputs(bundle=bundle, kind=kind, inputs=payload["inputs"])
        if "custom_tests" in payload:
            _check_custom_tests(bundle=bundle, kind=kind, tests=payload["custom_tests"])
        return language
    if subject == Subject.MATH:
        steps = payload.get("steps", [])
        if len(steps) > MAX_MATH_STEPS or sum(map(len, steps)) + len(payload["expression"]) > MAX_MATH_CHARS:
            raise PayloadTooLarge(f"A math answer may have at most {MAX_MATH_STEPS} steps and {MAX_MATH_CHARS} characters.")
        return ""
    if len(payload["text"]) > MAX_SYSTEMS_CHARS:
        raise PayloadTooLarge(f"A design answer may be at most {MAX_SYSTEMS_CHARS} characters.")
    return ""


def _check_custom_inputs(*, bundle: ProblemBundle, kind: str, inputs: list[dict[str, Any]]) -> None:
    """Custom inputs belong to a run, on the embedded sandbox, and must fit the problem's parameters."""
    from grading.evaluators.custom_input import custom_input_errors

    if kind != SubmissionKind.RUN:
        raise InvalidInput(
            "Custom inputs can only be run, not submitted.", fields={"kind": ["Use 'run' to try your own inputs."]}
        )
    if settings.CO_EVAL_BASE:
        raise CustomInputUnavailable()
    errors = custom_input_errors(inputs=inputs, problem=bundle)
    if errors:
        raise InvalidInput(
            f"These inputs do not fit the problem's parameters ({', '.join(bundle.parameters)}).",
            fields={"payload": {"inputs": errors}},
        )


def submission_create(
    *,
    learner_id: str,
    problem_ref: str,
    subject: str,
    payload: dict[str, Any],
    kind: str = SubmissionKind.SUBMIT,
    session_id: uuid.UUID | None = None,
    origin: str = "",
    origin_id: uuid.UUID | None = None,
    idempotency_key: str = "",
) -> tuple[Submission, bool]:
    """Store a submission and queue its evaluation once the row is committed.

    Returns (submission, created). The same Idempotency-Key returns the first submission; the
    same key with a different request is a 409. A front door other than a session names itself
    (`origin`, `origin_id`): its `check_submission` runs before the insert (inside the caller's
    transaction, when there is one) and its `record_verdict` gets every final verdict.
    """
    digest = _payload_digest(
        problem_ref=problem_ref,
        subject=subject,
        kind=kind,
        session_id=session_id,
        payload=payload,
        origin=origin,
        origin_id=origin_id,
    )
    try:
        submission = _submission_insert(
            learner_id=learner_id,
            problem_ref=problem_ref,
            subject=subject,
            payload=payload,
            kind=kind,
            session_id=session_id,
            origin=origin,
            origin_id=origin_id,
            idempotency_key=idempotency_key,
            digest=digest,
        )
    except (ApplicationError, IntegrityError):
        # A key's first use is the common case, so a replay is not looked for before every insert:
        # it is found when the insert meets the key's unique index (a retry, or two requests
        # racing), or when a check fails that passed the first time (the session ended since).
        existing = _by_idempotency_key(learner_id=learner_id, idempotency_key=idempotency_key) if idempotency_key else None
        if existing is None:
            raise
        if existing.payload_sha256 != digest:
            raise IdempotencyKeyReused() from None
        return existing, False
    return submission, True


def _submission_insert(
    *,
    learner_id: str,
    problem_ref: str,
    subject: str,
    payload: dict[str, Any],
    kind: str,
    session_id: uuid.UUID | None,
    origin: str,
    origin_id: uuid.UUID | None,
    idempotency_key: str,
    digest: str,
) -> Submission:
    """Check the request, insert the row and queue its evaluation once the row is committed."""
    bundle = problem_bundle_require(reference=problem_ref)
    problem_id = uuid.UUID(bundle.id) if bundle.source == "database" else None
    if session_id is not None:
        origin_get(SESSION_ORIGIN).check_submission(learner_id=learner_id, origin_id=session_id, problem_id=problem_id)
    elif origin:
        if origin_id is None:
            raise ValueError("a front door names the record the submission belongs to")
        origin_get(origin).check_submission(learner_id=learner_id, origin_id=origin_id, problem_id=problem_id)
    language = _check_payload(bundle=bundle, subject=subject, kind=kind, payload=payload)
    submission = Submission(
        learner_id=learner_id,
        session_id=session_id,
        origin=origin if session_id is None else "",
        origin_id=origin_id if session_id is None and origin else None,
        problem_id=problem_id,
        problem_ref=problem_ref,
        problem_content_hash=bundle.content_hash,
        subject=subject,
        kind=kind,
        language=language,
        payload=payload,
        payload_sha256=digest,
        idempotency_key=idempotency_key,
        enqueued_at=timezone.now(),  # queued by the commit below; a lost enqueue is the sweeper's
    )
    with transaction.atomic():
        _evaluations_within_cap(learner_id=learner_id)
        submission.save(force_insert=True)
        transaction.on_commit(
            lambda: submission_enqueue(submission_id=submission.id, subject=submission.subject, language=submission.language)
        )
    return submission


def _evaluations_within_cap(*, learner_id: str) -> None:
    """TooManyEvaluations when the learner already has `CO_MAX_CONCURRENT_EVALUATIONS_PER_LEARNER`
    submissions waiting for or under evaluation: one learner cannot fill the grading workers (or
    the sandbox uid slots) that every learner shares.

    Call inside the insert's transaction: the count and the insert are one step per learner —
    PostgreSQL holds a per-learner advisory lock until the commit, SQLite's IMMEDIATE transactions
    already run one writer at a time. Rows older than the submission deadline do not count (the
    sweeper ends them as `error`)."""
    cap = int(getattr(settings, "CO_MAX_CONCURRENT_EVALUATIONS_PER_LEARNER", 2))
    if cap <= 0:
        return  # no cap
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"co-evaluations:{learner_id}"])
    since = timezone.now() - timedelta(seconds=settings.CO_SUBMISSION_DEADLINE_SECONDS)
    busy = Submission.objects.filter(
        learner_id=learner_id, created_at__gte=since, status__in=(SubmissionStatus.PENDING, SubmissionStatus.RUNNING)
    )
    if busy.order_by()[:cap].count() >= cap:
        raise TooManyEvaluations()


def _by_idempotency_key(*, learner_id: str, idempotency_key: str) -> Submission | None:
    # Naming the partial unique index's condition lets SQLite use that index (else it walks all of
    # the learner's submissions); the whole row is read only for a replay.
    rows = Submission.objects.filter(~Q(idempotency_key=""), learner_id=learner_id, idempotency_key=idempotency_key)
    submission_id = rows.order_by().values_list("id", flat=True).first()
    return None if submission_id is None else Submission.objects.get(id=submission_id)


def submission_queue(*, subject: str, language: str) -> str:
    """The grading queue of a submission: one per language for code, one per subject otherwise,
    so each kind of grading gets a worker pool sized and placed for it. The task carries only the
    id, so the caller, who has the row, names its subject and language."""
    return settings.CO_GRADING_QUEUES[language if subject == Subject.CODING else subject]


def submission_enqueue(*, submission_id: uuid.UUID, subject: str, language: str) -> None:
    """Queue the evaluation on its grading queue. A failure is logged, not raised: the sweeper
    re-queues the row. Without a broker the queue is Celery's eager mode, so the evaluation runs
    right here."""
    from submissions.tasks import evaluate_submission

    try:
        evaluate_submission.apply_async((str(submission_id),), queue=submission_queue(subject=subject, language=language))
    except Exception:  # a broker error, or an eager evaluation that failed: the sweeper is the safety net
        logger.exception("could not evaluate submission %s now; the sweeper will retry", submission_id)


# --- evaluate -------------------------------------------------------------------------------------


def _claim(*, submission_id: uuid.UUID) -> tuple[Submission, uuid.UUID] | None:
    """Take the submission for evaluation: (the claimed row, the claim token), or None when it is
    final or someone else holds it. The conditional UPDATE is the claim; the row is read after it."""
    token = uuid.uuid4()
    now = timezone.now()
    stale = now - timedelta(seconds=settings.CO_SUBMISSION_STALE_SECONDS)
    claimable = Q(status=SubmissionStatus.PENDING) | Q(status=SubmissionStatus.RUNNING, started_at__lt=stale)
    claimed = Submission.objects.filter(claimable, id=submission_id).update(
        status=SubmissionStatus.RUNNING,
        claim_token=token,
        started_at=now,
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return None
    submission = Submission.objects.get(id=submission_id)
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
# (co_project/prepared.py). The shape is the names of the fields `_finish` records.
_record_verdict = PreparedUpdate(
    Submission,
    lambda names: (
        Submission.objects.filter(
            id=Param("submission_id", Submission._meta.pk),
            status=SubmissionStatus.RUNNING,
            claim_token=Param("claim_token", Submission._meta.get_field("claim_token")),
        ),
        {name: Param(name, Submission._meta.get_field(name)) for name in names},
    ),
)


def _finish(submission: Submission, token: uuid.UUID, verdict: Verdict, bundle: ProblemBundle | None = None) -> bool:
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
        _finish(submission, token, error_verdict("pipeline", "Evaluation failed repeatedly; please submit again."))
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
    _finish(submission, token, verdict, bundle)
    return "graded"


# --- sweep ---------------------------------------------------------------------------------------


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
                _finish(fresh, token, error_verdict("pipeline", "Evaluation did not finish in time; please submit again."))
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


# --- waiting for a verdict in a request ------------------------------------------------------------


WAIT_SLICE_SECONDS = 0.2


def submission_wait(*, submission: Submission, timeout: float) -> Submission:
    """Wait up to `timeout` seconds for the verdict, waking when it commits (waiting.py) rather
    than polling. The wake-up carries the verdict's final fields; a slice that ends without one
    reads the row again, so a lost wake-up costs one slice. The caller's row was just written or
    read, so the first read follows the first wait."""
    deadline = time.monotonic() + timeout
    while not submission.is_final and (remaining := deadline - time.monotonic()) > 0:
        announced = verdict_await(submission_id=submission.id, timeout=min(WAIT_SLICE_SECONDS, remaining))
        if announced is None:
            submission.refresh_from_db()
        else:
            submission.status, submission.result = announced["status"], announced["result"]
    return submission
