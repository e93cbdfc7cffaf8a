"""Submission-specific API errors."""

from co_project.errors import Conflict, PayloadTooLarge


class CodeTooLarge(PayloadTooLarge):
    code = "code_too_large"
    default_message = "Code is larger than 64 KiB."


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"
    default_message = "This Idempotency-Key was already used for a different request."
