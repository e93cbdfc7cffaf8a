"""The tutor's Server-Sent Events stream: one turn's answer as events, with heartbeats.

Events (each `data` is one line of JSON):

- `start`    {"turn_id", "hint_level", "tutor"} — first, at once;
- `token`    {"text"} — the next piece of the answer; concatenate them;
- `fallback` {"reason", "message", "tutor": "builtin"} — the LLM failed: drop the text received so
  far, the built-in tutor's answer follows;
- `done`     {"turn_id", "hint_level", "tutor", "outcome"} — last; the stream then ends;
- `error`    {"code", "message"} — the turn failed; the stream then ends;
- `: heartbeat` comments every `CO_TUTOR_HEARTBEAT_SECONDS` while nothing else is sent.

The answer is produced by a separate task into a queue, so the stream can send heartbeats and
renew its slot lease while a slow model thinks. A client that goes away cancels the response
(Django's ASGI handler listens for the disconnect): the turn is then recorded as `cancelled` and
the slot released at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from co_project import metrics
from tutoring.models import TurnOutcome, TutorKind
from tutoring.services import llm_settings, tutor_turn_finish
from tutoring.slots import StreamSlots, StreamSlotsUnavailable
from tutoring.tutors import SolutionRedactor, TutorUnavailable, builtin_stream, llm_stream

logger = logging.getLogger("co.tutoring")

FALLBACK_MESSAGE = "The tutor model did not answer in time; here is the built-in hint instead."


def sse_event(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def sse_comment(text: str) -> bytes:
    """A comment line: keeps proxies and the connection alive; EventSource ignores it."""
    return f": {text}\n\n".encode()


async def _answer(*, turn_id: str, tutor: str, context: dict[str, Any], secrets: list[str], queue: asyncio.Queue) -> None:
    """Produce the answer into `queue` as (kind, payload) items, ending with `done` or `error`."""
    redactor = SolutionRedactor(secrets)
    outcome = TurnOutcome.OK
    try:
        if tutor == TutorKind.LLM:
            llm = llm_settings()
            try:
                async with asyncio.timeout(llm.total_timeout):
                    async for delta in llm_stream(context, llm):
                        if text := redactor.feed(delta):
                            queue.put_nowait(("token", text))
                if tail := redactor.flush():
                    queue.put_nowait(("token", tail))
                queue.put_nowait(("done", {"outcome": TurnOutcome.OK, "tutor": TutorKind.LLM}))
                return
            except (TutorUnavailable, TimeoutError) as exc:
                reason = str(exc) if isinstance(exc, TutorUnavailable) else "the tutor model took too long"
                logger.warning("tutor model failed; the built-in tutor answers", extra={"turn_id": turn_id, "reason": reason})
                queue.put_nowait(("fallback", {"reason": reason}))
                redactor = SolutionRedactor(secrets)
                outcome = TurnOutcome.FALLBACK
        async for chunk in builtin_stream(context, delay_seconds=settings.CO_TUTOR_BUILTIN_CHUNK_DELAY_SECONDS):
            if text := redactor.feed(chunk):
                queue.put_nowait(("token", text))
        if tail := redactor.flush():
            queue.put_nowait(("token", tail))
        queue.put_nowait(("done", {"outcome": outcome, "tutor": TutorKind.BUILTIN}))
    except Exception:
        logger.exception("tutor turn failed", extra={"turn_id": turn_id})
        queue.put_nowait(("error", {"reason": "internal"}))


async def turn_event_stream(
    *, turn_id: str, learner_id: str, hint_level: int, tutor: str, context: dict[str, Any], secrets: list[str],
    slots: StreamSlots, stream_id: str,
) -> AsyncIterator[bytes]:  # fmt: skip
    """The response body of GET /v1/tutor/stream: events, heartbeats, lease renewals; records the
    turn's outcome and frees the slot however it ends."""
    loop = asyncio.get_running_loop()
    heartbeat = settings.CO_TUTOR_HEARTBEAT_SECONDS
    queue: asyncio.Queue = asyncio.Queue()
    producer = asyncio.create_task(_answer(turn_id=turn_id, tutor=tutor, context=context, secrets=secrets, queue=queue))
    shown: list[str] = []
    ended = {"outcome": TurnOutcome.CANCELLED, "tutor": tutor, "reason": "the client went away"}
    next_renewal = loop.time() + heartbeat / 2
    last_write = loop.time()

    async def renew_if_due() -> None:
        nonlocal next_renewal
        if loop.time() >= next_renewal:
            next_renewal = loop.time() + heartbeat / 2
            try:
                if not await slots.renew(learner_id, stream_id):
                    # The lease lapsed (this process stalled for a whole interval): take it again.
                    await slots.acquire(learner_id, stream_id)
            except StreamSlotsUnavailable:
                logger.warning("stream slot renewal failed", extra={"turn_id": turn_id})

    started, first_token = loop.time(), True
    metrics.TUTOR_OPEN_STREAMS.inc()
    try:
        yield sse_event("start", {"turn_id": turn_id, "hint_level": hint_level, "tutor": tutor})
        while True:
            wait = min(next_renewal, last_write + heartbeat) - loop.time()
            try:
                kind, payload = await asyncio.wait_for(queue.get(), timeout=max(0.0, wait))
            except TimeoutError:
                await renew_if_due()
                if loop.time() >= last_write + heartbeat:
                    last_write = loop.time()
                    yield sse_comment("heartbeat")
                continue
            if kind == "token":
                if first_token:
                    metrics.TUTOR_TIME_TO_FIRST_TOKEN.observe(loop.time() - started)
                    first_token = False
                shown.append(payload)
                yield sse_event("token", {"text": payload})
            elif kind == "fallback":
                shown.clear()
                ended.update(tutor=TutorKind.BUILTIN, reason=payload["reason"])
                yield sse_event(
                    "fallback", {"reason": "tutor_unavailable", "message": FALLBACK_MESSAGE, "tutor": TutorKind.BUILTIN}
                )
            elif kind == "done":
                ended.update(outcome=payload["outcome"], tutor=payload["tutor"])
                if payload["outcome"] == TurnOutcome.OK:
                    ended["reason"] = ""
                yield sse_event(
                    "done",
                    {"turn_id": turn_id, "hint_level": hint_level, "tutor": payload["tutor"], "outcome": payload["outcome"]},
                )
                break
            else:
                ended.update(outcome=TurnOutcome.ERROR, reason="internal error")
                yield sse_event("error", {"code": "tutor_failed", "message": "The tutor could not answer; try again."})
                break
            last_write = loop.time()
            await renew_if_due()
    finally:
        metrics.TUTOR_OPEN_STREAMS.dec()
        producer.cancel()
        await asyncio.gather(producer, return_exceptions=True)
        await slots.release(learner_id, stream_id)
        await sync_to_async(tutor_turn_finish)(
            turn_id=turn_id, outcome=ended["outcome"], tutor=ended["tutor"], content="".join(shown), error_reason=ended["reason"]
        )
