"""The rubric grader: built-in keyword scoring on the shipped systems pack, and LLM grading
against a real OpenAI-compatible chat-completions server started by the tests."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Self

import pytest
import yaml
from django.conf import settings as django_settings

from grading.evaluators.rubric import RubricDimensionScore, RubricVerdict, grade_rubric, stem
from tests.servers import LocalServer

PACK = yaml.safe_load((Path(django_settings.BASE_DIR) / "coursepacks" / "systems-design.yaml").read_text())
RUBRIC = PACK["rubrics"][0]
EXPECTATIONS = {problem["slug"]: problem["systems"]["expectations"] for problem in PACK["problems"]}
DIMENSION_IDS = ["requirements", "api-and-data-model", "high-level-design", "scaling", "trade-offs"]
TOO_SHORT = "The answer is too short to grade ({count} words); write at least 20 words covering every part of the rubric."
FALLBACK_NOTE = "The tutor model could not grade this answer, so the built-in grader did."

STRONG_URL_SHORTENER = """
Requirements. Users create a short link for a long URL, optionally with a custom alias and an
expiration date, and anyone opening the short link gets redirected. The system is very read-heavy:
the read/write ratio is about 100:1. Estimates: 100 million links per month is roughly 40 writes
per second and 4,000 redirects, i.e. requests per second, on average with peaks of maybe 10x.
The storage estimate for five years is about 6 billion rows of ~500 bytes, so around 3 TB.
Redirect latency should stay under 50 ms at p99 and the redirect path needs high availability.

API and data model. A POST endpoint /api/links takes the long URL, an optional alias and expiry
and returns the short code. GET /{code} answers with a redirect to the long URL, or HTTP 404 when
the code is unknown or expired. The mapping table uses the short code as the primary key and
stores the long url, the owner, created_at and an expiry timestamp. A key-value store such as
DynamoDB or Cassandra fits because every lookup is a single-key read.

High-level design. Clients hit a load balancer in front of stateless application servers. The
write flow asks an ID generator for a unique number, base62-encodes it into a 7 character code,
and writes the mapping to the database. The redirect flow checks a Redis cache first and falls
back to the database on a miss, then returns the redirect.

Scaling. We keep caching popular links in Redis with LRU eviction and put a CDN in front for the
hottest codes. The mapping is partitioned by sharding on the code with consistent hashing, with
replication across three zones. Each application server reserves ID ranges from a coordinator so
ID generation is never a bottleneck. Rate limiting on the create endpoint stops abuse, and click
events go to a queue that feeds an analytics pipeline off the redirect path.

Trade-offs. 301 vs 302: a 301 is cached by browsers and cuts load but hides clicks from analytics,
so we use 302. Hashing the URL risks hash collisions, while a counter produces predictable URLs;
counter vs random codes is a choice between simplicity and guessability. SQL vs NoSQL: a relational
database would work at first, but a key-value store scales more simply. We accept eventual
consistency for replicas and weigh the cost of cache memory against latency.
"""

WEAK_URL_SHORTENER = """
I would build a web server with a database table that maps short codes to long URLs. When a user
opens a short code the server looks it up in the table and sends them to the long URL. New links
get a random code. It should be fast and not go down.
"""

# Solid on four parts, silent on trade-offs: enough points overall, but a part is missing.
RATE_LIMITER_WITHOUT_TRADE_OFFS = """
Limits apply per API key, for example 1,000 requests per minute, with stricter per endpoint limits
for expensive calls and a small burst allowance. The check must add under a millisecond of latency
overhead and survive a peak QPS of 500k.

Every request goes through middleware in the API gateway that asks the limiter to allow or deny
the call for the api key and endpoint. A rejected call gets HTTP 429 with a Retry-After header and
the usual rate limit headers. Per key we store a counter (or the tokens left) with a TTL equal to
the window; the rules configuration lives in a small rules service.

The algorithm is a sliding window counter kept in Redis, a shared counter store that every gateway node
talks to; the request flow is gateway -> limiter check -> upstream service.

Counters are sharded by key across a Redis cluster with replication. Updates use an atomic
increment inside a Lua script so two servers never race. Hot keys are absorbed by a local cache
that batches increments, and if Redis is unreachable we fail open so the API stays up.
"""


def grade(text: str, slug: str = "design-url-shortener", **options: Any) -> RubricVerdict:
    return grade_rubric(text=text, rubric=RUBRIC, expectations=EXPECTATIONS[slug], **options)


def _explained(text: str) -> str:
    """`text` inside a sentence that explains something, and enough of an answer to be graded."""
    return f"In the design I would propose, {text}, which is what the system needs for the load that we expect it to see."


# --- the built-in grader ----------------------------------------------------------------------


def test_a_strong_answer_scores_full_marks_and_passes() -> None:
    verdict = grade(STRONG_URL_SHORTENER, use_llm=False)

    assert (verdict.status, verdict.grader, verdict.total, verdict.max_total) == ("passed", "builtin", 15, 15)
    assert verdict.scores == dict.fromkeys(DIMENSION_IDS, 3)
    assert verdict.categories == []
    assert verdict.message == "Scored 15 of 15: every part of the rubric is addressed."
    # The learner's own words ("read heavy", "read write ratio"), not the answer key's spelling.
    assert verdict.feedback["requirements"] == (
        'Strong: you explain "read heavy", "read write ratio", "redirect latency", "high availability", "custom alias" '
        "and 3 more."
    )
    assert verdict.dimensions[0].why == (
        "3 of 3: your sentences explain 8 of the points this part looks for, and a full score needs 5 "
        '("read heavy", "read write ratio", "redirect latency", "high availability", "custom alias" and 3 more).'
    )
    assert [d.missing for d in verdict.dimensions] == [[]] * 5


def test_a_weak_answer_fails_with_the_weak_dimensions_as_categories() -> None:
    verdict = grade(WEAK_URL_SHORTENER, use_llm=False)

    assert (verdict.status, verdict.total, verdict.max_total) == ("failed", 2, 15)
    assert verdict.scores == {"requirements": 0, "api-and-data-model": 1, "high-level-design": 1, "scaling": 0, "trade-offs": 0}
    assert verdict.categories == DIMENSION_IDS
    assert verdict.message == (
        "Scored 2 of 15; passing needs at least 9 with every part of the rubric addressed. Work on: Requirements, "
        "API & Data Model, High-Level Design, Scaling & Reliability and Trade-offs."
    )
    api = verdict.dimensions[1]
    assert api == RubricDimensionScore(
        id="api-and-data-model",
        name="API & Data Model",
        score=1,
        max_score=3,
        feedback=(
            'Partly covered (you explain "short codes" and "long urls"). What a strong answer covers: Specifies a '
            "create endpoint and a redirect endpoint with responses and errors, and a mapping keyed by short code with "
            "the long URL and metadata, stored in a key-value or wide-column store chosen for single-key lookups."
        ),
        why=(
            "1 of 3: your sentences explain 2 of the points this part looks for, and a full score needs 5 "
            '("short codes" and "long urls").'
        ),
        matched=["short code", "long url"],
        missing=["post endpoint", "get redirect", "key-value store", "primary key", "expiry timestamp", "http 404"],
    )


def test_feedback_gives_the_authored_guidance_never_the_keyword_answer_key() -> None:
    verdict = grade(WEAK_URL_SHORTENER, use_llm=False)

    assert verdict.feedback["scaling"] == (
        "Not covered yet. What a strong answer covers: Caches hot links, shards the mapping by code, replicates for "
        "availability, avoids a single ID-generation bottleneck with pre-allocated ranges, and moves click analytics "
        "off the redirect path asynchronously."
    )
    for keyword in ("consistent hashing", "analytics pipeline", "cdn", "id ranges"):
        assert keyword not in verdict.feedback["scaling"].lower()


def test_a_dimension_left_out_fails_the_answer_even_with_enough_points() -> None:
    verdict = grade(RATE_LIMITER_WITHOUT_TRADE_OFFS, "design-rate-limiter", use_llm=False)

    assert verdict.scores == {"requirements": 3, "api-and-data-model": 3, "high-level-design": 3, "scaling": 3, "trade-offs": 0}
    assert (verdict.status, verdict.total, verdict.categories) == ("failed", 12, ["trade-offs"])
    assert verdict.message == (
        "Scored 12 of 15; passing needs at least 9 with every part of the rubric addressed. Work on: Trade-offs."
    )


@pytest.mark.parametrize(
    ("keyword", "text"),
    [
        ("sharding", "we shard the table"),
        ("sharding", "the shards live on separate hosts"),
        ("sharding", "data is sharded by user"),
        ("caching popular links", "we cache the most popular links"),
        ("read-heavy", "the workload is read heavy"),
        ("read-heavy", "a READ-HEAVY system"),
        ("read/write ratio", "the ratio of reads to writes is 100:1"),
        ("fan-out on write", "fanout on write for normal users"),
        ("websocket gateway", "clients keep web socket connections to a gateway"),
        ("requests per second", "about 4000 QPS at peak"),
        ("replication", "each partition is replicated three times"),
        ("expiry timestamp", "an expiry time stamp per row"),
        ("message queue", "posts are queued on a message bus with several queues"),
        ("301 vs 302", "a 302 rather than a 301 keeps analytics"),
    ],
)
def test_keywords_match_across_inflections_spelling_and_word_order(keyword: str, text: str) -> None:
    expectations = {dimension: {"keywords": [keyword], "guidance": "Cover it."} for dimension in DIMENSION_IDS}

    verdict = grade_rubric(text=_explained(text), rubric=RUBRIC, expectations=expectations, use_llm=False)

    assert verdict.dimensions[0].matched == [keyword]


@pytest.mark.parametrize(
    ("keyword", "text"),
    [
        (
            "consistent hashing",
            "hashing is used for ids; much later, after a long discussion of many other unrelated topics, consistent",
        ),
        ("read-heavy", "we read the docs, then write a short summary of what we learned and lift heavy boxes"),
        ("cdn", "a content delivery approach"),
    ],
)
def test_keywords_do_not_match_words_far_apart_or_absent(keyword: str, text: str) -> None:
    expectations = {dimension: {"keywords": [keyword], "guidance": "Cover it."} for dimension in DIMENSION_IDS}

    verdict = grade_rubric(text=_explained(text), rubric=RUBRIC, expectations=expectations, use_llm=False)

    assert verdict.dimensions[0].matched == []


def test_stemming_brings_word_forms_together() -> None:
    assert {stem(word) for word in ("shard", "shards", "sharding", "sharded")} == {"shard"}
    assert {stem(word) for word in ("cache", "caches", "caching", "cached")} == {"cach"}
    assert {stem(word) for word in ("replicate", "replicated", "replication")} == {"replic"}
    assert {stem(word) for word in ("latency", "latencies")} == {"latenc"}
    assert {stem(word) for word in ("queue", "queues", "queuing", "queueing")} == {"queu"}
    assert stem("stateless") == "stateless"
    assert stem("key") == stem("keys") == "key"


def test_scores_follow_the_sixty_percent_rule() -> None:
    # 5 keywords -> need 3: 0 -> 0, 1 -> round(1.0) = 1, 2 -> round(2.0) = 2, 3+ -> 3.
    keywords = ["alpha", "bravo", "charlie", "delta", "echo"]
    expectations = {dimension: {"keywords": keywords, "guidance": "Cover it."} for dimension in DIMENSION_IDS}
    reasons = ["it is cheap", "the team knows it", "it is fast enough for us", "nobody else has it", "it is simple"]
    texts = {
        count: " ".join(
            f"We pick {keyword} for this part because {reason}."
            for keyword, reason in zip(keywords[:count], reasons, strict=False)
        )
        + " The rest of the design is the usual one that every team would build here anyway."
        for count in range(6)
    }

    scores = {
        count: grade_rubric(text=text, rubric=RUBRIC, expectations=expectations, use_llm=False).scores["requirements"]
        for count, text in texts.items()
    }

    assert scores == {0: 0, 1: 1, 2: 2, 3: 3, 4: 3, 5: 3}


def test_a_too_short_answer_fails_with_a_clear_message() -> None:
    verdict = grade("Use a cache and shard it.")

    assert (verdict.status, verdict.grader, verdict.total, verdict.max_total) == ("failed", "builtin", 0, 15)
    assert verdict.scores == dict.fromkeys(DIMENSION_IDS, 0)
    assert verdict.categories == DIMENSION_IDS
    assert (
        verdict.message
        == "The answer is too short to grade (6 words); write at least 20 words covering every part of the rubric."
    )


def test_an_empty_answer_fails() -> None:
    verdict = grade("   ")

    assert (verdict.status, verdict.total) == ("failed", 0)
    assert (
        verdict.message
        == "The answer is too short to grade (0 words); write at least 20 words covering every part of the rubric."
    )


def test_an_answer_over_twenty_thousand_characters_is_an_error() -> None:
    verdict = grade("word " * 4001)

    assert (verdict.status, verdict.scores, verdict.dimensions) == ("error", {}, [])
    assert verdict.message == "The answer is longer than 20,000 characters; shorten it and submit again."


@pytest.mark.parametrize(
    ("rubric", "expectations"),
    [
        ({"slug": "empty", "dimensions": []}, {}),
        (RUBRIC, {**EXPECTATIONS["design-url-shortener"], "scaling": {"keywords": [], "guidance": "x"}}),
        (RUBRIC, {key: value for key, value in EXPECTATIONS["design-url-shortener"].items() if key != "trade-offs"}),
        ({"dimensions": [{"id": "requirements", "name": "R", "scale": 0, "desc": "d"}]}, EXPECTATIONS["design-url-shortener"]),
    ],
)
def test_an_incomplete_rubric_is_an_error(rubric: dict[str, Any], expectations: dict[str, Any]) -> None:
    verdict = grade_rubric(text=STRONG_URL_SHORTENER, rubric=rubric, expectations=expectations, use_llm=False)

    assert (verdict.status, verdict.scores) == ("error", {})
    assert verdict.message == "This problem's rubric is incomplete, so the answer cannot be graded."


# --- the LLM grader against a real chat-completions server ------------------------------------


@dataclass
class FakeGraderModel(LocalServer):
    """A real OpenAI-compatible `POST /v1/chat/completions` on 127.0.0.1:<free port> that
    answers one JSON object (the grader's reply), not a stream."""

    reply: Any = None  # the JSON object the "model" answers with (as the message content)
    status: int = 200
    raw_body: bytes | None = None  # answer with these bytes instead of a chat completion
    raw_content: str | None = None  # a chat completion whose content is this string
    delay_seconds: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._init_server()

    def recorded(self) -> list[dict[str, Any]]:
        return self.requests

    def start(self) -> Self:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                fake.requests.append(
                    {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "json": json.loads(body)}
                )
                if fake.delay_seconds and fake._stopping.wait(fake.delay_seconds):
                    return
                if fake.raw_body is not None:
                    payload = fake.raw_body
                else:
                    content = fake.raw_content if fake.raw_content is not None else json.dumps(fake.reply)
                    completion = {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "model": "tutor-test-model",
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                    }
                    payload = json.dumps(completion if fake.status == 200 else {"error": {"message": "boom"}}).encode()
                try:
                    self.send_response(fake.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return self._serve(Handler)


@pytest.fixture
def tutor(settings) -> Iterator[FakeGraderModel]:
    server = FakeGraderModel().start()
    settings.CO_TUTOR_BASE = server.url
    settings.CO_TUTOR_MODEL = "tutor-test-model"
    settings.CO_TUTOR_API_KEY = "test-tutor-key"
    yield server
    server.stop()


def builtin_scores(text: str) -> dict[str, int]:
    return grade(text, use_llm=False).scores


def test_the_llm_grade_is_used_with_its_feedback_as_the_why(tutor: FakeGraderModel) -> None:
    tutor.reply = {
        "scores": {
            "requirements": 2,
            "api-and-data-model": 3.0,
            "high-level-design": 3,
            "scaling": 0,
            "trade-offs": 0,
            "bogus": 9,
        },
        "feedback": {"requirements": "Good numbers,  but state a latency target.", "bogus": "ignored"},
    }

    verdict = grade(WEAK_URL_SHORTENER)

    assert verdict.scores == {"requirements": 2, "api-and-data-model": 3, "high-level-design": 3, "scaling": 0, "trade-offs": 0}
    assert (verdict.grader, verdict.status, verdict.total, verdict.categories) == ("llm", "failed", 8, ["scaling", "trade-offs"])
    assert verdict.feedback["requirements"] == "Good numbers, but state a latency target."
    assert verdict.dimensions[0].why == (
        "2 of 3, scored by the tutor model against the rubric: Good numbers, but state a latency target."
    )
    assert verdict.feedback["high-level-design"] == "Strong: this part of the rubric is well covered."
    assert verdict.dimensions[2].why == "3 of 3, scored by the tutor model against the rubric."
    assert verdict.feedback["scaling"].startswith("Not covered yet. What a strong answer covers: Caches hot links")
    assert verdict.message.startswith("Graded by the tutor model against the rubric. Scored 8 of 15;")


@pytest.mark.parametrize(
    ("scores", "reason"),
    [
        ({"requirements": 2, "api-and-data-model": 3, "high-level-design": 3, "scaling": 1}, "no score for 'trade-offs'"),
        (
            {**dict.fromkeys(DIMENSION_IDS, 1), "api-and-data-model": 9},
            "the score for 'api-and-data-model' is not an integer from 0 to 3",
        ),
        ({**dict.fromkeys(DIMENSION_IDS, 1), "scaling": -1}, "the score for 'scaling' is not an integer from 0 to 3"),
        ({**dict.fromkeys(DIMENSION_IDS, 1), "scaling": 1.5}, "the score for 'scaling' is not an integer from 0 to 3"),
        (
            {**dict.fromkeys(DIMENSION_IDS, 1), "requirements": "three"},
            "the score for 'requirements' is not an integer from 0 to 3",
        ),
        ({**dict.fromkeys(DIMENSION_IDS, 1), "requirements": True}, "the score for 'requirements' is not an integer from 0 to 3"),
        ({"bogus": 3}, "no score for 'requirements'"),
    ],
)
def test_an_llm_grade_off_the_rubric_falls_back_to_the_builtin_grade_and_says_why(
    tutor: FakeGraderModel, scores: dict[str, Any], reason: str
) -> None:
    tutor.reply = {"scores": scores, "feedback": {}}

    verdict = grade(STRONG_URL_SHORTENER)

    assert (verdict.grader, verdict.status, verdict.scores) == ("builtin", "passed", builtin_scores(STRONG_URL_SHORTENER))
    assert verdict.message == (
        f"The tutor model's grade did not fit the rubric ({reason}), so the built-in grader did. "
        "Scored 15 of 15: every part of the rubric is addressed."
    )


def test_the_request_carries_the_rubric_the_answer_as_user_data_the_model_and_the_key(tutor: FakeGraderModel) -> None:
    tutor.reply = {"scores": dict.fromkeys(DIMENSION_IDS, 3), "feedback": {}}

    verdict = grade(STRONG_URL_SHORTENER)

    assert verdict.grader == "llm"
    [request] = tutor.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == "Bearer test-tutor-key"
    body = request["json"]
    assert (body["model"], body["stream"], body["response_format"]) == ("tutor-test-model", False, {"type": "json_object"})
    system, user = body["messages"]
    assert (system["role"], user["role"]) == ("system", "user")
    for dimension in RUBRIC["dimensions"]:
        assert f'"id": "{dimension["id"]}"' in system["content"]
        assert f'"name": "{dimension["name"]}"' in system["content"]
        assert f'"scale": {dimension["scale"]}' in system["content"]
    assert " ".join(EXPECTATIONS["design-url-shortener"]["scaling"]["guidance"].split()) in system["content"]
    assert "never instructions" in system["content"]
    assert STRONG_URL_SHORTENER in user["content"]
    assert "Cassandra" not in system["content"]
    marker = user["content"].splitlines()[1]
    assert marker.startswith("=====ANSWER-") and user["content"].endswith(f"\n{marker}")


def test_no_authorization_header_without_a_key(tutor: FakeGraderModel, settings) -> None:
    settings.CO_TUTOR_API_KEY = None
    tutor.reply = {"scores": dict.fromkeys(DIMENSION_IDS, 2)}

    verdict = grade(STRONG_URL_SHORTENER)

    assert verdict.scores == dict.fromkeys(DIMENSION_IDS, 2)
    assert "authorization" not in tutor.requests[0]["headers"]


@pytest.mark.parametrize(
    "misbehaviour",
    [
        {"status": 500},
        {"status": 401},
        {"raw_body": b"<html>bad gateway</html>"},
        {"raw_content": "Sure! Here are the scores: requirements 3"},
        {"raw_content": json.dumps(["not", "an", "object"])},
        {"reply": {"feedback": {}}},
    ],
)
def test_a_failing_or_misbehaving_model_falls_back_to_the_builtin_grade(
    tutor: FakeGraderModel, misbehaviour: dict[str, Any]
) -> None:
    for name, value in misbehaviour.items():
        setattr(tutor, name, value)

    verdict = grade(STRONG_URL_SHORTENER)

    assert len(tutor.requests) == 1
    assert (verdict.grader, verdict.status, verdict.scores) == ("builtin", "passed", builtin_scores(STRONG_URL_SHORTENER))
    assert verdict.message == f"{FALLBACK_NOTE} Scored 15 of 15: every part of the rubric is addressed."


def test_a_model_slower_than_the_timeout_falls_back_to_the_builtin_grade(tutor: FakeGraderModel, settings) -> None:
    settings.CO_TUTOR_GRADING_TIMEOUT_SECONDS = 0.5
    tutor.delay_seconds = 10
    tutor.reply = {"scores": dict.fromkeys(DIMENSION_IDS, 3)}

    verdict = grade(WEAK_URL_SHORTENER)

    assert (verdict.grader, verdict.scores) == ("builtin", builtin_scores(WEAK_URL_SHORTENER))
    assert verdict.message.startswith(FALLBACK_NOTE)


def test_the_model_is_used_only_when_configured(tutor: FakeGraderModel, settings) -> None:
    tutor.reply = {"scores": dict.fromkeys(DIMENSION_IDS, 1)}

    assert grade(STRONG_URL_SHORTENER).grader == "llm"
    assert grade(STRONG_URL_SHORTENER, use_llm=False).grader == "builtin"
    settings.CO_TUTOR_BASE = None
    assert grade(STRONG_URL_SHORTENER).grader == "builtin"
    forced = grade(STRONG_URL_SHORTENER, use_llm=True)
    assert (forced.grader, forced.message) == (
        "builtin",
        f"{FALLBACK_NOTE} Scored 15 of 15: every part of the rubric is addressed.",
    )
    assert len(tutor.requests) == 1


def test_a_too_short_answer_is_not_sent_to_the_model(tutor: FakeGraderModel) -> None:
    verdict = grade("just use redis")

    assert (verdict.status, verdict.grader, tutor.requests) == ("failed", "builtin", [])


# --- keyword stuffing, off-topic and empty answers on every pilot design problem -------------------


def _stuffed_answers(slug: str) -> dict[str, str]:
    """Answers made of the problem's own answer key (what a learner who saw it might send)."""
    keywords = [keyword for expected in EXPECTATIONS[slug].values() for keyword in expected["keywords"]]
    return {
        "comma-separated list": ", ".join(keywords),
        "keywords repeated": " ".join(keywords * 5),
        "bulleted list": "\n".join(f"- {keyword}" for keyword in keywords),
        "one per line": "\n".join(keywords),
        "one long sentence": "We use " + ", ".join(keywords) + " in the system.",
        "list inside prose": (
            "Here is my answer to the design question, which I wrote for the interview today. "
            + ", ".join(keywords)
            + ". That is all there is to say about it, and I think it is enough."
        ),
        "one template sentence per keyword": " ".join(f"We also use {keyword} in the design." for keyword in keywords),
        "keywords in pairs": " ".join(
            f"The system has {first} and it has {second} for the users."
            for first, second in zip(keywords[::2], keywords[1::2], strict=False)
        ),
    }


SLUGS = sorted(EXPECTATIONS)
STUFFED = [(slug, name, text) for slug in SLUGS for name, text in _stuffed_answers(slug).items()]


@pytest.mark.parametrize(("slug", "name", "text"), STUFFED, ids=[f"{slug}:{name}" for slug, name, _ in STUFFED])
def test_keyword_stuffing_scores_low_on_every_dimension(slug: str, name: str, text: str) -> None:
    verdict = grade(text, slug, use_llm=False)

    assert verdict.status == "failed"
    assert max(verdict.scores.values()) <= 1, verdict.scores
    assert verdict.total <= 2


def test_a_bare_list_names_what_it_lists_in_the_why_and_scores_nothing() -> None:
    text = "read-heavy, redirect latency, high availability, custom alias, expiration, storage estimate, sharding, cdn"

    verdict = grade(text + ", " + text, use_llm=False)

    assert verdict.scores == dict.fromkeys(DIMENSION_IDS, 0)
    assert verdict.dimensions[0].why == (
        '0 of 3: no sentence of your answer explains this part of the rubric. You name "read heavy", "redirect '
        'latency", "high availability", "custom alias", "expiration" and 1 more only in a list, a fragment or a run of '
        "keywords; a point counts when a full sentence explains it."
    )


OFF_TOPIC = """
Bread needs only flour, water, salt and yeast. Knead the dough for ten minutes until it is smooth and
elastic, then let it rise in a warm place for about an hour. Shape the loaf, let it rise again, and bake
it in a very hot oven until the crust is deep brown and the bottom sounds hollow when you tap it.
"""


@pytest.mark.parametrize("slug", SLUGS)
def test_an_off_topic_answer_scores_nothing(slug: str) -> None:
    verdict = grade(OFF_TOPIC, slug, use_llm=False)

    assert (verdict.status, verdict.total, verdict.categories) == ("failed", 0, DIMENSION_IDS)
    assert all(
        d.why == f"0 of {d.max_score}: no sentence of your answer explains this part of the rubric." for d in verdict.dimensions
    )


@pytest.mark.parametrize("slug", SLUGS)
def test_an_empty_answer_scores_nothing(slug: str) -> None:
    verdict = grade("", slug, use_llm=False)

    assert (verdict.status, verdict.total) == ("failed", 0)
    assert all(d.why == "0 of 3: the answer is too short to grade." for d in verdict.dimensions)


NEWS_FEED = """
Requirements: the feed is read-heavy, since each of the 200 million daily active users opens it many times a
day, which comes to roughly 100k feed reads per second at peak. Freshness matters, so a new post should show
up within a few seconds, and the feed supports pagination. Celebrity accounts with millions of followers make
the fan-out volume uneven, and we have to plan for them.

The API has a POST endpoint to create a post and a GET feed endpoint that takes a cursor, because cursor
pagination stays stable while new posts arrive. The follow graph is stored by user id, the posts table holds
each post, and each user's feed list keeps only post ids that we hydrate when the page is read.

On the write path the post service stores the post and puts an event on a message queue; a fan-out service
reads it and appends the post id to every follower's feed cache. The feed service reads the cached list on
the read path, and hydration fills in authors and text from the post service before returning the page.

For scaling we use fan-out on write for normal users but fan-out on read for celebrities, a hybrid that
solves the celebrity problem. The feed cache lives in Redis, sharding by user keeps each feed on one node, and
inactive users are skipped so their lists fall out of the cache by eviction.

The main trade-off is push vs pull: pushing gives low read latency but causes write amplification for large
accounts, while pulling costs latency on every read. We accept eventual consistency and some staleness in the
feed, and we weigh the storage cost of the cached lists against how fast the page loads.
"""


def test_a_good_news_feed_answer_passes_with_every_part_explained() -> None:
    verdict = grade(NEWS_FEED, "design-news-feed", use_llm=False)

    assert (verdict.status, verdict.categories) == ("passed", [])
    assert min(verdict.scores.values()) >= 2, verdict.scores


_QUOTED = re.compile(r'"([^"]+)"')


@pytest.mark.parametrize(
    ("slug", "text"),
    [
        ("design-url-shortener", STRONG_URL_SHORTENER),
        ("design-url-shortener", WEAK_URL_SHORTENER),
        ("design-rate-limiter", RATE_LIMITER_WITHOUT_TRADE_OFFS),
        ("design-news-feed", NEWS_FEED),
        *[(slug, text) for slug, _, text in STUFFED],
    ],
)
def test_feedback_quotes_only_what_the_learner_wrote(slug: str, text: str) -> None:
    """Every quoted phrase is the learner's own words in their order; nothing else of the answer key."""
    written = " " + " ".join(re.findall(r"[a-z0-9]+", text.lower())) + " "
    verdict = grade(text, slug, use_llm=False)

    for dimension in verdict.dimensions:
        for quote in _QUOTED.findall(dimension.feedback + " " + dimension.why):
            assert f" {quote.removesuffix('…').strip()}" in written, quote
        unsaid = [k for k in dimension.missing if " " + " ".join(re.findall(r"[a-z0-9]+", k.lower())) + " " not in written]
        for keyword in unsaid:
            assert keyword.lower() not in dimension.why.lower()
