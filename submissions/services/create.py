"""Store a submission and queue its evaluation once the row is committed: every front door
(`POST /v1/submissions`, sessions, study tasks) comes through `submission_create`."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from co_project.errors import ApplicationError, InvalidInput, PayloadTooLarge
from co_project.prepared import Param, PreparedRead
from submissions.errors import CodeTooLarge, CustomInputUnavailable, IdempotencyKeyReused, TooManyEvaluations
from submissions.models import Submission, SubmissionKind, SubmissionStatus
from submissions.origins import SESSION_ORIGIN, origin_get
from tracks.choices import Subject
from tracks.problem_bank import ProblemBundle, problem_bundle_require

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
    if len(_evaluations_busy.rows(cap, learner_id=learner_id, since=since)) >= cap:
        raise TooManyEvaluations()


# The learner's submissions waiting for or under evaluation, at most `cap` (the shape) of them.
_evaluations_busy = PreparedRead(
    Submission,
    lambda cap: (
        Submission.objects.filter(
            learner_id=Param("learner_id", Submission._meta.get_field("learner_id")),
            created_at__gte=Param("since", Submission._meta.get_field("created_at")),
            status__in=(SubmissionStatus.PENDING, SubmissionStatus.RUNNING),
        )
        .order_by()
        .values_list("id")[:cap]
    ),
)


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
