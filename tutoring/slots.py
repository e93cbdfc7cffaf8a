"""Stream slots: at most `CO_SSE_MAX_STREAMS` open tutor streams per learner.

A slot is a lease, not a counter: each open stream holds one for `CO_TUTOR_HEARTBEAT_SECONDS`
and renews it every half interval while it lives, and releases it when it ends (done, error or
client gone). A process that dies without releasing (SIGKILL, OOM, lost host) stops renewing, so
its slots lapse within one heartbeat interval — no sweeper, no stuck learner.

With Redis (`CO_REDIS_URL`) the leases of a learner are one sorted set (member = stream id,
score = expiry on Redis's own clock), changed only by Lua scripts, so acquiring is atomic across
processes and hosts. Without Redis (the embedded single-process mode) the same leases live in
this process's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
import weakref
from typing import Any, Protocol

from django.conf import settings
from redis.asyncio import Redis
from redis.exceptions import RedisError

# Every script computes "now" from Redis's clock, so web hosts with skewed clocks agree.
_NOW = "local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)"
_ACQUIRE = f"""
{_NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""
_RENEW = f"""
{_NOW}
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""
_COUNT = f"""
{_NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""


class StreamSlotsUnavailable(Exception):
    """The shared counter (Redis) could not be reached: streams are refused rather than uncounted."""


class StreamSlots(Protocol):
    async def acquire(self, learner_id: str, stream_id: str) -> bool: ...
    async def renew(self, learner_id: str, stream_id: str) -> bool: ...
    async def release(self, learner_id: str, stream_id: str) -> None: ...
    async def held(self, learner_id: str) -> int: ...


def _learner_key(learner_id: str) -> str:
    return hashlib.sha256(learner_id.encode()).hexdigest()[:32]


class RedisStreamSlots:
    def __init__(self, url: str, *, limit: int, lease_seconds: float) -> None:
        self.url = url
        self.limit = limit
        self.lease_ms = max(1, int(lease_seconds * 1000))

    # One client per event loop: asyncio connections belong to the loop that opened them.
    _clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Redis]] = weakref.WeakKeyDictionary()

    def _client(self) -> Redis:
        per_loop = self._clients.setdefault(asyncio.get_running_loop(), {})
        if self.url not in per_loop:
            per_loop[self.url] = Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
        return per_loop[self.url]

    @staticmethod
    def key(learner_id: str) -> str:
        return f"co:tutor:streams:{_learner_key(learner_id)}"

    async def _eval(self, script: str, learner_id: str, *args: Any) -> int:
        try:
            return int(await self._client().eval(script, 1, self.key(learner_id), *args))
        except (RedisError, OSError) as exc:
            raise StreamSlotsUnavailable(type(exc).__name__) from exc

    async def acquire(self, learner_id: str, stream_id: str) -> bool:
        return bool(await self._eval(_ACQUIRE, learner_id, stream_id, self.lease_ms, self.limit))

    async def renew(self, learner_id: str, stream_id: str) -> bool:
        return bool(await self._eval(_RENEW, learner_id, stream_id, self.lease_ms))

    async def release(self, learner_id: str, stream_id: str) -> None:
        # On failure the lease lapses on its own within one heartbeat interval.
        with contextlib.suppress(RedisError, OSError):
            await self._client().zrem(self.key(learner_id), stream_id)

    async def held(self, learner_id: str) -> int:
        return await self._eval(_COUNT, learner_id)


class InProcessStreamSlots:
    """The same leases in this process's memory (no Redis: one process serves everything)."""

    _leases: dict[str, dict[str, float]] = {}
    _lock = threading.Lock()

    def __init__(self, *, limit: int, lease_seconds: float) -> None:
        self.limit = limit
        self.lease_seconds = lease_seconds

    def _live(self, learner_id: str, now: float) -> dict[str, float]:
        leases = self._leases.setdefault(_learner_key(learner_id), {})
        for stream_id in [s for s, expiry in leases.items() if expiry <= now]:
            del leases[stream_id]
        return leases

    async def acquire(self, learner_id: str, stream_id: str) -> bool:
        now = time.monotonic()
        with self._lock:
            leases = self._live(learner_id, now)
            if stream_id not in leases and len(leases) >= self.limit:
                return False
            leases[stream_id] = now + self.lease_seconds
            return True

    async def renew(self, learner_id: str, stream_id: str) -> bool:
        now = time.monotonic()
        with self._lock:
            leases = self._live(learner_id, now)
            if stream_id not in leases:
                return False
            leases[stream_id] = now + self.lease_seconds
            return True

    async def release(self, learner_id: str, stream_id: str) -> None:
        with self._lock:
            self._leases.get(_learner_key(learner_id), {}).pop(stream_id, None)

    async def held(self, learner_id: str) -> int:
        with self._lock:
            return len(self._live(learner_id, time.monotonic()))


def stream_slots() -> StreamSlots:
    lease = settings.CO_TUTOR_HEARTBEAT_SECONDS
    if settings.REDIS_URL:
        return RedisStreamSlots(settings.REDIS_URL, limit=settings.CO_SSE_MAX_STREAMS, lease_seconds=lease)
    return InProcessStreamSlots(limit=settings.CO_SSE_MAX_STREAMS, lease_seconds=lease)
