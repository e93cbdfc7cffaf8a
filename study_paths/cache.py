"""The cached read models of study paths (Redis through Django's cache): the answer of
`GET /v1/study-paths/active`, and a learner's progress and dashboard answers.

One cache entry per learner holds the active-path answers per `?track=` value, so one delete
forgets them all. Progress and dashboard answers are keyed by a per-learner version token:
dropping the token forgets every one of them at once, whatever their names.
`task_events_append` forgets both on every task write (every verdict, start, skip, expiry,
replanning) and the path services on every path write; the delete happens at once and again
after the commit, so a reader between the two cannot keep an answer older than the write. A
reader takes the version token *before* it reads the database, so an answer computed from rows
older than a write is always stored under a token the write's after-commit delete drops.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from django.core.cache import cache
from django.db import transaction

TIMEOUT_SECONDS = 300


def _learner_hash(learner_id: str) -> str:
    return hashlib.sha256(learner_id.encode()).hexdigest()


def _key(learner_id: str) -> str:
    return "study-paths:active:" + _learner_hash(learner_id)


def _version_key(learner_id: str) -> str:
    return "study-paths:read-version:" + _learner_hash(learner_id)


def active_path_answer(*, learner_id: str, track: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    key = _key(learner_id)
    answers = cache.get(key) or {}
    if track in answers:
        return answers[track]
    answer = compute()
    cache.set(key, {**answers, track: answer}, TIMEOUT_SECONDS)
    return answer


def _read_model_version(learner_id: str) -> str:
    key = _version_key(learner_id)
    version = cache.get(key)
    if version is None:
        version = secrets.token_hex(8)
        if not cache.add(key, version, TIMEOUT_SECONDS * 2):  # a concurrent reader set it first
            version = cache.get(key) or version
    return version


def read_model_answer(*, learner_id: str, name: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The learner's cached answer `name` (e.g. `progress:<path id>:<date>`), computed on a miss."""
    version = _read_model_version(learner_id)  # before the reads of `compute` (module docstring)
    key = f"study-paths:read:{_learner_hash(learner_id)}:{version}:{name}"
    answer = cache.get(key)
    if answer is None:
        answer = compute()
        cache.set(key, answer, TIMEOUT_SECONDS)
    return answer


def active_path_forget(learner_ids: Iterable[str]) -> None:
    """Forget the learners' active-path, progress and dashboard answers (now and after the commit)."""
    ids = {learner_id for learner_id in learner_ids if learner_id}
    keys = sorted({_key(learner_id) for learner_id in ids} | {_version_key(learner_id) for learner_id in ids})
    if not keys:
        return
    cache.delete_many(keys)
    transaction.on_commit(lambda: cache.delete_many(keys))
