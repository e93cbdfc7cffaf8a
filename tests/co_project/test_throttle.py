"""Per-learner rate limit: CO_RATE_LIMIT per window, counted atomically in the cache."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from co_project.throttles import LearnerRateThrottle, parse_rate

pytestmark = pytest.mark.django_db

WINDOW_START = 1_800_000_000.0  # a multiple of 60: the start of a minute window


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """A controllable clock (no sleeping, no straddling a real minute boundary)."""
    now = [WINDOW_START + 5]
    monkeypatch.setattr(LearnerRateThrottle, "timer", staticmethod(lambda: now[0]))
    return now


def test_61st_request_in_a_minute_is_throttled_and_others_are_unaffected(learner_client) -> None:
    alice, bob = learner_client("alice"), learner_client("bob")
    statuses = [alice.get("/v1/tracks").status_code for _ in range(60)]
    assert statuses == [200] * 60
    throttled = alice.get("/v1/tracks")
    assert throttled.status_code == 429
    body = throttled.json()
    assert body["error"]["code"] == "throttled"
    assert body["request_id"] == throttled["X-Request-ID"]
    assert throttled["Retry-After"] == "55"
    assert bob.get("/v1/tracks").status_code == 200


def test_next_window_allows_requests_again(learner_client, settings, clock: list[float]) -> None:
    settings.CO_RATE_LIMIT = "2/min"
    alice = learner_client("alice")
    assert [alice.get("/v1/tracks").status_code for _ in range(3)] == [200, 200, 429]
    clock[0] = WINDOW_START + 59.5
    refused = alice.get("/v1/tracks")
    assert refused.status_code == 429 and refused["Retry-After"] == "1"
    clock[0] = WINDOW_START + 60
    assert [alice.get("/v1/tracks").status_code for _ in range(3)] == [200, 200, 429]


def test_rate_comes_from_settings(learner_client, settings) -> None:
    settings.CO_RATE_LIMIT = "3/min"
    alice = learner_client("alice")
    assert [alice.get("/v1/tracks").status_code for _ in range(4)] == [200, 200, 200, 429]


def test_throttled_requests_count_for_the_learner_not_the_token(learner_client, settings) -> None:
    settings.CO_RATE_LIMIT = "2/min"
    assert learner_client("carol").get("/v1/tracks").status_code == 200
    assert learner_client("carol").get("/v1/tracks").status_code == 200
    assert learner_client("carol").get("/v1/tracks").status_code == 429


def test_unauthenticated_health_is_not_throttled(settings, client) -> None:
    settings.CO_RATE_LIMIT = "1/min"
    assert [client.get("/health").status_code for _ in range(3)] == [200, 200, 200]


@pytest.mark.parametrize(
    ("rate", "parsed"), [("60/min", (60, 60)), ("5/s", (5, 1)), ("100/hour", (100, 3600)), ("1/day", (1, 86400))]
)
def test_parse_rate(rate: str, parsed: tuple[int, int]) -> None:
    assert parse_rate(rate) == parsed


@pytest.mark.parametrize("rate", ["60", "x/min", "10/fortnight", "0/min"])
def test_parse_rate_rejects_nonsense(rate: str) -> None:
    with pytest.raises(ImproperlyConfigured):
        parse_rate(rate)


def test_an_unreachable_redis_lets_requests_through(learner_client, settings) -> None:
    """Redis down must not take the API down: the production cache (django-redis, ignoring its
    connection errors) answers "nothing counted" and the throttle lets the learner in."""
    from django.core.cache import caches

    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2, "IGNORE_EXCEPTIONS": True},
        }
    }
    settings.CO_RATE_LIMIT = "1/min"
    try:
        alice = learner_client("alice")
        assert [alice.get("/v1/tracks").status_code for _ in range(3)] == [200, 200, 200]
    finally:
        caches["default"].close()
