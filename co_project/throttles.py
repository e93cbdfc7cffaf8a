"""Per-learner request rate, counted atomically in the cache (Redis when configured).

DRF's SimpleRateThrottle reads and rewrites a history list, which loses counts under
concurrency. A fixed-window counter with `add` + `incr` is atomic in Redis (INCR) and in the
local-memory cache (locked), so the 61st request in a window is refused whatever the load and
however many web processes share the Redis. Windows are aligned to the clock (a minute window
starts at :00); Retry-After says when the current one ends.
"""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'60/min' → (60, 60). Raises ImproperlyConfigured on nonsense."""
    try:
        count_text, period_text = rate.split("/", 1)
        count = int(count_text)
        period = _PERIODS[period_text.strip().lower()]
    except (ValueError, KeyError) as exc:
        raise ImproperlyConfigured(f"Rate {rate!r} must look like '60/min' (units: s, min, hour, day).") from exc
    if count <= 0:
        raise ImproperlyConfigured(f"Rate {rate!r} must allow at least one request.")
    return count, period


class LearnerRateThrottle(BaseThrottle):
    """`CO_RATE_LIMIT` requests per window per learner (`sub`); anonymous calls are not counted here."""

    scope = "learner"
    # The clock, as an attribute so tests control time instead of sleeping.
    timer = staticmethod(time.time)

    def rate(self) -> str:
        return settings.CO_RATE_LIMIT

    def allow_request(self, request: Request, view: object) -> bool:
        learner_id = getattr(request.user, "id", None)
        if not getattr(request.user, "is_authenticated", False) or learner_id is None:
            return True
        limit, period = parse_rate(self.rate())
        now = self.timer()
        window = int(now // period)
        # Learner ids are arbitrary strings up to 255 chars: hash them into a bounded, safe key.
        learner_key = hashlib.sha256(str(learner_id).encode()).hexdigest()[:32]
        key = f"throttle:{self.scope}:{learner_key}:{period}:{window}"
        cache.add(key, 0, timeout=period + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # evicted between add and incr: start the window again
            cache.add(key, 1, timeout=period + 1)
            count = 1
        self._wait = (window + 1) * period - now
        return count is None or count <= limit  # None: the cache is unreachable, so nothing is counted

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)
