"""Tutor streams under load: does holding many open SSE streams slow the rest of the API?

Starts a real uvicorn server (one process, embedded defaults: SQLite, eager Celery, in-process
stream slots) on a fresh database seeded with the shipped course packs, with a long heartbeat and
a slow built-in tutor so every stream stays open for the whole measurement. Then:

1. measures `GET /v1/tracks` latency from a second client with no stream open;
2. opens `--streams` concurrent tutor streams (`--learners` learners, CO_SSE_MAX_STREAMS each),
   timing each one's first event (`start`), and holds them open while they keep receiving tokens;
3. measures `GET /v1/tracks` again with all of them open;

and prints time to first event (p50 / p95), the tracks p50 / p99 without and with the streams,
and the p99 ratio (target: ≤ 1.20). Usage:

    .venv/bin/python bench/sse.py [--streams 200] [--learners 100] [--requests 1000] [--chunk-delay 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from support import UvicornServer, bench_env, manage, percentile

ISSUER = "https://api.scimigo.com"


class Server(UvicornServer):
    def __init__(self, workdir: Path, *, streams_per_learner: int, chunk_delay: float) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_key = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.env = bench_env(
            workdir,
            CO_JWT_PUBLIC_KEY=public.decode(),
            CO_TUTOR_HINT_RATE="1000000/min",
            CO_SSE_MAX_STREAMS=str(streams_per_learner),
            CO_TUTOR_HEARTBEAT_SECONDS="30",
            CO_TUTOR_BUILTIN_CHUNK_DELAY_SECONDS=str(chunk_delay),
            CO_TUTOR_STREAM_TOKEN_SECONDS="600",
        )
        manage(self.env, "migrate", "--no-input")
        manage(self.env, "seed")
        super().__init__(self.env, "--limit-concurrency", "2000")

    def token(self, learner: str) -> str:
        now = int(time.time())
        claims = {"sub": learner, "iss": ISSUER, "iat": now, "exp": now + 7200}
        return jwt.encode(claims, self.private_key, algorithm="RS256")

    def threads(self) -> int:
        """Threads of the server process right now (idle per-request threads included)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
        return -1


def stream_tokens(server: Server, learners: int, per_learner: int, prefix: str = "bench-learner") -> list[str]:
    """Sessions and hint turns through the API: `learners × per_learner` stream URLs."""

    def for_learner(index: int) -> list[str]:
        headers = {"Authorization": f"Bearer {server.token(f'{prefix}-{index}')}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            session = client.post("/v1/sessions", json={"subject": "coding", "mode": "practice", "problem_id": "two-sum"})
            session.raise_for_status()
            urls = []
            for turn in range(per_learner):
                body = {"session_id": session.json()["id"], "problem_id": "two-sum", "hint_level": 1 + turn % 3}
                started = client.post("/v1/tutor/messages", json=body)
                started.raise_for_status()
                urls.append(f"{server.url}/v1/tutor/stream?token={started.json()['token']}")
            return urls

    with ThreadPoolExecutor(max_workers=8) as pool:
        return [url for urls in pool.map(for_learner, range(learners)) for url in urls]


def tracks_latency(server: Server, requests: int) -> list[float]:
    headers = {"Authorization": f"Bearer {server.token('bench-reader')}"}
    samples = []
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        for _ in range(100):  # warm-up
            client.get("/v1/tracks").raise_for_status()
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get("/v1/tracks")
            samples.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return samples


def first_event_ms(url: str) -> float:
    started = time.perf_counter()
    with httpx.stream("GET", url, timeout=60) as response:
        for line in response.iter_lines():
            if line == "event: start":
                return (time.perf_counter() - started) * 1000
    raise SystemExit(f"no start event: HTTP {response.status_code}")


class HeldStreams:
    """`len(urls)` streams opened at once from an event loop in a background thread and held
    (reading their events) until `close()`."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.first_event_ms: list[float] = []
        self.failed: list[str] = []
        self.finished_early = 0
        self.events = 0
        self.all_open = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),), daemon=True)

    def open(self, timeout: float = 120) -> None:
        self._thread.start()
        if not self.all_open.wait(timeout):
            raise SystemExit(f"only {len(self.first_event_ms)} of {len(self.urls)} streams opened within {timeout:g} s")

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=60)

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        limits = httpx.Limits(max_connections=len(self.urls) + 10, max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60, read=None)) as client:
            tasks = [asyncio.create_task(self._hold(client, url)) for url in self.urls]
            await self._stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _hold(self, client: httpx.AsyncClient, url: str) -> None:
        started = time.perf_counter()
        try:
            async with client.stream("GET", url) as response:
                if response.status_code != 200:
                    self.failed.append(f"HTTP {response.status_code}")
                    self._count_open()
                    return
                async for line in response.aiter_lines():
                    if line.startswith("event:"):
                        self.events += 1
                        if line == "event: start":
                            self.first_event_ms.append((time.perf_counter() - started) * 1000)
                            self._count_open()
                        elif line == "event: done" and not self._stop.is_set():
                            self.finished_early += 1
        except httpx.HTTPError as exc:
            self.failed.append(type(exc).__name__)
            self._count_open()

    def _count_open(self) -> None:
        if len(self.first_event_ms) + len(self.failed) >= len(self.urls):
            self.all_open.set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=200, help="concurrent open streams")
    parser.add_argument(
        "--learners", type=int, default=100, help="learners holding them (CO_SSE_MAX_STREAMS = streams / learners)"
    )
    parser.add_argument("--requests", type=int, default=1000, help="GET /v1/tracks requests per measurement")
    parser.add_argument("--chunk-delay", type=float, default=2.0, help="seconds between the built-in tutor's chunks")
    parser.add_argument("--probes", type=int, default=20, help="single streams opened one by one while the others are held")
    args = parser.parse_args()
    per_learner = -(-args.streams // args.learners)

    with tempfile.TemporaryDirectory(prefix="co-bench-sse-") as workdir:
        server = Server(Path(workdir), streams_per_learner=per_learner, chunk_delay=args.chunk_delay)
        try:
            urls = stream_tokens(server, args.learners, per_learner)[: args.streams]
            probes = stream_tokens(server, args.probes, 1, prefix="bench-probe")
            threads_idle = server.threads()
            without = tracks_latency(server, args.requests)
            held = HeldStreams(urls)
            held.open()
            threads_streaming = server.threads()
            with_streams = tracks_latency(server, args.requests)
            probe_ms = [first_event_ms(url) for url in probes]
            finished_during = held.finished_early
            events_during = held.events
            held.close()
            time.sleep(3)  # let the server finish recording the closed streams' turns
            without_after = tracks_latency(server, args.requests)
        finally:
            server.stop()

    p99_before, p99_after, p99_with = (percentile(s, 0.99) for s in (without, without_after, with_streams))
    print(f"machine: {os.cpu_count()} cores; one uvicorn process; SQLite; in-process stream slots")
    print(
        f"streams: {len(held.first_event_ms)} of {len(urls)} open ({args.learners} learners × {per_learner}); "
        f"refused/failed: {len(held.failed)}; finished before the measurement ended: {finished_during}; "
        f"events received while held: {events_during}"
    )
    print(
        f"time to first event          p50 {statistics.median(held.first_event_ms):7.1f} ms  "
        f"p95 {percentile(held.first_event_ms, 0.95):7.1f} ms  (all {len(urls)} opened at once)"
    )
    print(
        f"time to first event, 1 more  p50 {statistics.median(probe_ms):7.1f} ms  "
        f"p95 {percentile(probe_ms, 0.95):7.1f} ms  ({len(probe_ms)} opened one by one while the {len(urls)} are held)"
    )
    for label, samples in (("before", without), ("after", without_after)):
        print(
            f"GET /v1/tracks, no streams   p50 {statistics.median(samples):7.1f} ms  "
            f"p99 {percentile(samples, 0.99):7.1f} ms  ({label} the streams)"
        )
    print(
        f"GET /v1/tracks, {len(held.first_event_ms)} streams  "
        f"p50 {statistics.median(with_streams):7.1f} ms  p99 {p99_with:7.1f} ms"
    )
    print(
        f"p99 ratio with / without streams: {p99_with / p99_before:4.2f}x against before, "
        f"{p99_with / p99_after:4.2f}x against after  (target ≤ 1.20x)"
    )
    print(f"server threads: {threads_idle} idle, {threads_streaming} with the streams open")


if __name__ == "__main__":
    main()
