"""The cached answer of `GET /v1/study-paths/active` (Redis through Django's cache).

One cache entry per learner holds the answers per `?track=` value, so one delete forgets them
all. `task_events_append` forgets it on every task write and the path services on every path
write; the delete happens at once and again after the commit, so a reader between the two
cannot keep an answer older than the write."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any

from django.core.cache import cache
from django.db import transaction

TIMEOUT_SECONDS = 300


def _key(learner_id: str) -> str:
    return "study-paths:active:" + hashlib.sha256(learner_id.encode()).hexdigest()


def active_path_answer(*, learner_id: str, track: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    key = _key(learner_id)
    answers = cache.get(key) or {}
    if track in answers:
        return answers[track]
    answer = compute()
    cache.set(key, {**answers, track: answer}, TIMEOUT_SECONDS)
    return answer


def active_path_forget(learner_ids: Iterable[str]) -> None:
    keys = sorted({_key(learner_id) for learner_id in learner_ids if learner_id})
    if not keys:
        return
    cache.delete_many(keys)
    transaction.on_commit(lambda: cache.delete_many(keys))
