"""Calls to services we do not run (problem bank, eval service, LLM): bounded retries with
exponential backoff on transient failures, so every client behaves the same way."""

from __future__ import annotations

import time
from typing import Any

import httpx


class ServiceUnreachable(Exception):
    """No usable answer after the bounded retries (connection errors, timeouts, 5xx, 429)."""

    def __init__(self, attempts: int, last_error: str) -> None:
        self.attempts = attempts
        self.last_error = last_error
        super().__init__(f"unreachable after {attempts} attempts ({last_error})")


def request_with_retries(
    method: str,
    url: str,
    *,
    retries: int,
    backoff_seconds: float,
    timeout: float,
    max_backoff_seconds: float = 10.0,
    **kwargs: Any,
) -> httpx.Response:
    """The first response that is not a transient failure (it may still be a 4xx for the caller
    to interpret); ServiceUnreachable after `retries + 1` transient failures."""
    attempts = retries + 1
    last_error = "no attempt made"
    for attempt in range(attempts):
        if attempt:
            time.sleep(min(backoff_seconds * 2 ** (attempt - 1), max_backoff_seconds))
        try:
            response = httpx.request(method, url, timeout=timeout, **kwargs)
        except httpx.HTTPError as exc:
            last_error = type(exc).__name__
            continue
        if response.status_code >= 500 or response.status_code == 429:
            last_error = f"HTTP {response.status_code}"
            continue
        return response
    raise ServiceUnreachable(attempts, last_error)
