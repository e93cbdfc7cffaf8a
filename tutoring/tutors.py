"""The tutors: the built-in hint ladder (the default) and an OpenAI-compatible LLM.

Both stream text in chunks. Both see only the allow-listed context (tutoring/context.py). Their
output passes through a `SolutionRedactor` built from the problem's reference solutions (and math
answers), which withholds any line of them, so even an authored near-solution hint that quotes the
reference, or a model that happens to write it, never shows the solution.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from tracks.problem_bank import ProblemBundle
from tutoring.context import LEVEL_NAMES, context_render

logger = logging.getLogger("co.tutoring")

WITHHELD = "[withheld: that is part of the solution]"
# Lines shorter than this (`pass`, `}`, `return x`) are too common to withhold.
MIN_SECRET_LINE_CHARS = 10
WORDS_PER_CHUNK = 3


# --- never show the solution -------------------------------------------------------------------------


def solution_lines(bundle: ProblemBundle) -> list[str]:
    """Lines of the reference solutions and math answers that must never be shown, minus what is
    public anyway (starter code, the statement)."""
    public = bundle.statement + "\n" + "\n".join(spec.get("starter", "") for spec in bundle.languages.values())
    public_lines = {line.strip() for line in public.splitlines()}
    candidates: list[str] = []
    for spec in bundle.languages.values():
        candidates += spec.get("reference", "").splitlines()
    if bundle.math:
        candidates.append(str(bundle.math.get("answer", "")))
        candidates += [str(step) for step in bundle.math.get("steps") or []]
    lines = {line.strip() for line in candidates}
    return sorted(
        (line for line in lines if len(line) >= MIN_SECRET_LINE_CHARS and line not in public_lines), key=len, reverse=True
    )


class SolutionRedactor:
    """Withholds solution lines from streamed text. Keeps back the last (longest line − 1)
    characters until more text (or the end) shows they do not start a solution line."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = [s for s in secrets if s]
        self.keep = max((len(s) for s in self.secrets), default=1) - 1
        self.buffer = ""
        self.redactions = 0

    def _redact(self) -> None:
        for secret in self.secrets:
            if secret in self.buffer:
                self.redactions += self.buffer.count(secret)
                self.buffer = self.buffer.replace(secret, WITHHELD)

    def feed(self, text: str) -> str:
        self.buffer += text
        self._redact()
        if not self.secrets:
            ready, self.buffer = self.buffer, ""
            return ready
        cut = max(0, len(self.buffer) - self.keep)
        # Release whole words only, so chunks still end where the tutor's did.
        cut = max(self.buffer.rfind(" ", 0, cut), self.buffer.rfind("\n", 0, cut)) + 1
        ready, self.buffer = self.buffer[:cut], self.buffer[cut:]
        return ready

    def flush(self) -> str:
        self._redact()
        ready, self.buffer = self.buffer, ""
        return ready


# --- the built-in tutor --------------------------------------------------------------------------------

_LEVEL_INTROS = {
    1: "Hint 1 of 3 (a nudge): {hint}",
    2: "Hint 2 of 3 (an approach): {hint}\nIt builds on the nudge: {previous}",
    3: "Hint 3 of 3 (nearly the solution): {hint}\nThe approach was: {previous}",
}
_LEVEL_OUTROS = {
    1: "Think it through and try again before asking for more.",
    2: "Sketch those steps, then turn them into code.",
    3: "Write the code yourself from these steps; the tutor never shows the solution code.",
}


def _describe_result(result: dict[str, Any]) -> str:
    status = result.get("status") or "unknown"
    kind = {"submit": "submission", "run": "run against the visible tests", "reported": "result"}.get(
        result.get("kind", ""), "result"
    )
    parts = [f"Your last {kind} {'passed' if status == 'passed' else f'ended as {status}'}."]
    visible = result.get("visible") or {}
    if visible.get("total"):
        parts.append(f"Visible tests: {visible.get('passed', 0)} of {visible['total']} passed.")
    failing = visible.get("failing") or []
    if failing:
        first = failing[0]
        shown = f"input {json.dumps(first.get('input'), default=str)}"
        if "expected" in first:
            shown += f", expected {json.dumps(first['expected'], default=str)}"
        if "actual" in first:
            shown += f", got {json.dumps(first['actual'], default=str)}"
        if first.get("error"):
            shown += f" ({first['error']})"
        parts.append(f"The first failing visible test ({first.get('outcome', 'failed')}): {shown}.")
    hidden = result.get("hidden") or {}
    if hidden.get("total"):
        parts.append(f"Hidden tests: {hidden.get('passed', 0)} of {hidden['total']} passed.")
    if hidden.get("failed_categories"):
        parts.append(f"Hidden tests failed in: {', '.join(hidden['failed_categories'])}.")
    if result.get("error"):
        parts.append(f"Error: {result['error']}")
    return " ".join(parts)


def builtin_answer(context: dict[str, Any]) -> str:
    """The hint at the requested level from the authored ladder, what the last result shows and
    the remediation of the categories the learner last failed."""
    level = context["hint_level"]
    hints = context["problem"]["hints"]
    hint = hints[level - 1] if len(hints) >= level else "Re-read the statement and the visible examples."
    previous = hints[level - 2] if level > 1 and len(hints) >= level - 1 else ""
    paragraphs = [_LEVEL_INTROS[level].format(hint=hint, previous=previous)]
    learner = context["learner"]
    if learner["code_is_starter"]:
        paragraphs.append("Your code is still the starter code: start by writing the main idea down.")
    if context["last_result"]:
        paragraphs.append(_describe_result(context["last_result"]))
    if context["remediation"]:
        paragraphs.append(
            "What to study for what failed:\n"
            + "\n".join(f"- {category}: {text}" for category, text in context["remediation"].items())
        )
    if learner["message"]:
        paragraphs.append("You asked a question; the built-in tutor answers from the problem's hint ladder.")
    paragraphs.append(_LEVEL_OUTROS[level])
    return "\n\n".join(paragraphs)


def chunk_text(text: str, words: int = WORDS_PER_CHUNK) -> list[str]:
    """A few words (with their trailing whitespace) per chunk, so the text streams like a model's."""
    tokens = re.findall(r"\S+\s*|\s+", text)
    return ["".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]


async def builtin_stream(context: dict[str, Any], *, delay_seconds: float) -> AsyncIterator[str]:
    for index, chunk in enumerate(chunk_text(builtin_answer(context))):
        if index and delay_seconds > 0:
            await asyncio.sleep(delay_seconds)
        yield chunk


# --- the LLM tutor -------------------------------------------------------------------------------------

_LEVEL_RULES = {
    1: "Give a NUDGE: one or two sentences that point the learner at what to look at. Do not describe an algorithm.",
    2: "Describe an APPROACH: the idea and the main steps in words, in at most five sentences. No code.",
    3: (
        "Give a NEAR-SOLUTION: the steps precisely enough to code directly, including edge cases, in words "
        "or as a numbered list. Never write code, pseudo-code that is code, or the final answer."
    ),
}


def system_prompt(hint_level: int) -> str:
    return (
        "You are a patient tutor on a coding, math and systems-design practice platform. You give hints, "
        f"never solutions. This is a hint of level {hint_level} of 3 ({LEVEL_NAMES[hint_level]}). "
        f"{_LEVEL_RULES[hint_level]} Never write code in any language, and never state the final answer. "
        "Build on the authored hint ladder you are given, use the learner's last result and the remediation "
        "for what they failed, and address their question if they asked one. Answer in plain text."
    )


class TutorUnavailable(Exception):
    """The LLM gave no usable answer (unreachable, HTTP error, timeout, garbage)."""


@dataclass(frozen=True)
class LlmSettings:
    base_url: str
    model: str
    api_key: str | None
    connect_timeout: float
    read_timeout: float
    total_timeout: float
    max_tokens: int


def llm_request_body(context: dict[str, Any], model: str, max_tokens: int) -> dict[str, Any]:
    return {
        "model": model,
        "stream": True,
        "temperature": 0.2,
        "max_tokens": max_tokens,
        "messages": [
            {"role": "system", "content": system_prompt(context["hint_level"])},
            {"role": "user", "content": context_render(context)},
        ],
    }


def _delta_text(line: str) -> str | None:
    """The text of one `data: {...}` line of a chat-completions stream; None at `[DONE]`."""
    payload = line[len("data:") :].strip()
    if payload == "[DONE]":
        return None
    try:
        event = json.loads(payload)
        choices = event.get("choices") or []
        return (choices[0].get("delta") or {}).get("content") or "" if choices else ""
    except (ValueError, AttributeError, IndexError, TypeError) as exc:
        raise TutorUnavailable("the tutor model sent a malformed stream event") from exc


async def llm_stream(context: dict[str, Any], llm: LlmSettings) -> AsyncIterator[str]:
    """Relay the model's streamed deltas; TutorUnavailable on any failure or per-read timeout.
    The whole answer's bound (`total_timeout`) is enforced by the caller around the iteration."""
    headers = {"Accept": "text/event-stream"}
    if llm.api_key:
        headers["Authorization"] = f"Bearer {llm.api_key}"
    timeout = httpx.Timeout(
        connect=llm.connect_timeout, read=llm.read_timeout, write=llm.connect_timeout, pool=llm.connect_timeout
    )
    url = f"{llm.base_url.rstrip('/')}/v1/chat/completions"
    body = llm_request_body(context, llm.model, llm.max_tokens)
    try:
        async with (
            httpx.AsyncClient(timeout=timeout) as client,
            client.stream("POST", url, json=body, headers=headers) as response,
        ):
            if response.status_code != 200:
                raise TutorUnavailable(f"the tutor model answered HTTP {response.status_code}")
            finished = False
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue  # blank separators, comments, other fields
                text = _delta_text(line)
                if text is None:
                    finished = True
                    break
                if text:
                    yield text
            if not finished:
                raise TutorUnavailable("the tutor model's stream ended without [DONE]")
    except httpx.TimeoutException as exc:
        raise TutorUnavailable(f"the tutor model timed out ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise TutorUnavailable(f"the tutor model is unreachable ({type(exc).__name__})") from exc
