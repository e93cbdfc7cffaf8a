"""Submission-specific API errors."""

from rest_framework import status

from co_project.errors import ApplicationError, Conflict, PayloadTooLarge


class CodeTooLarge(PayloadTooLarge):
    code = "code_too_large"
    default_message = "Code is larger than 64 KiB."


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"
    default_message = "This Idempotency-Key was already used for a different request."


class TooManyEvaluations(ApplicationError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    code = "too_many_evaluations"
    default_message = "You have too many submissions being graded; send this one once one of them has its verdict."


class CustomInputUnavailable(Conflict):
    code = "custom_input_unavailable"
    default_message = (
        "Running on custom inputs needs the server's own sandbox; this server grades code on a remote "
        "evaluation service. Run against the visible tests instead."
    )
