"""The tutor stream against real uvicorn processes started by the test (a migrated SQLite file
with a published course pack; Redis counts the slots in the PostgreSQL + Redis run, since the
servers inherit CO_REDIS_URL). Everything goes through HTTP with httpx."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import jwt
import pytest

from tests.co_project.test_health import running_server
from tests.conftest import ISSUER
from tests.servers import FakeChatCompletions
from tests.tracks.factories import pack_bytes
from tests.tutoring.conftest import SECRET_MARKERS, answer_text, coding_pack, parse_sse

REPO_ROOT = Path(__file__).parents[2]
HEARTBEAT_SECONDS = 0.5
POLL_DEADLINE_SECONDS = 20 * HEARTBEAT_SECONDS


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, jwt_keys: tuple[str, str]) -> Iterator[dict]:
    """One migrated database with the pack published; a fast server, a slow one (streams that stay
    open for many heartbeats) and one with the LLM tutor pointed at a fake model."""
    workdir = tmp_path_factory.mktemp("tutor-server")
    database = workdir / "tutor.sqlite3"
    base_env = {
        **{k: v for k, v in os.environ.items() if k != "CO_DB_URL"},
        "CO_ENV": "test",
        "CO_DB_URL": f"sqlite:///{database}",
        "CO_JWT_PUBLIC_KEY": jwt_keys[1],
        "CO_MEDIA_ROOT": str(workdir / "media"),
        "CO_TUTOR_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
        "CO_TUTOR_BUILTIN_CHUNK_DELAY_SECONDS": "0.01",
        "CO_LOG_LEVEL": "DEBUG",
    }
    pack = workdir / "pack.yaml"
    pack.write_bytes(pack_bytes(coding_pack()))
    for command in (["migrate", "--no-input"], ["import_coursepack", str(pack), "--publish"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *command], cwd=REPO_ROOT, env=base_env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout + done.stderr
    model = FakeChatCompletions(deltas=["Think about ", "what upper case ", "means."]).start()
    with ExitStack() as stack:
        fast = stack.enter_context(running_server(base_env, workdir))
        slow = stack.enter_context(running_server({**base_env, "CO_TUTOR_BUILTIN_CHUNK_DELAY_SECONDS": "1.0"}, workdir))
        llm = stack.enter_context(
            running_server({**base_env, "CO_TUTOR_BASE": model.url, "CO_TUTOR_READ_TIMEOUT_SECONDS": "1"}, workdir)
        )
        yield {"fast": fast, "slow": slow, "llm": llm, "model": model, "database": database, "env": base_env, "dir": workdir}
    model.stop()


@pytest.fixture
def learner(jwt_keys: tuple[str, str]) -> Callable[[], dict[str, str]]:
    """A fresh learner each call (so tests never share stream slots): their Authorization header."""

    def make() -> dict[str, str]:
        now = int(time.time())
        claims = {"sub": f"learner-{uuid.uuid4()}", "iss": ISSUER, "iat": now, "exp": now + 3600}
        return {"Authorization": f"Bearer {jwt.encode(claims, jwt_keys[0], algorithm='RS256')}"}

    return make


def _session(base: str, auth: dict[str, str]) -> str:
    response = httpx.post(
        f"{base}/v1/sessions", json={"subject": "coding", "mode": "practice", "problem_id": "shout"}, headers=auth, timeout=30
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _hint(base: str, auth: dict[str, str], session_id: str, level: int = 1) -> dict:
    response = httpx.post(
        f"{base}/v1/tutor/messages",
        json={"session_id": session_id, "problem_id": "shout", "hint_level": level},
        headers=auth,
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return response.json()


def _stream_url(base: str, started: dict) -> str:
    """The returned URL names the host the client used; point it at the server under test."""
    return f"{base}/v1/tutor/stream?token={started['token']}"


@contextmanager
def open_stream(url: str) -> Iterator[httpx.Response]:
    """A stream held open after its first event (`start`) arrived."""
    with httpx.Client(timeout=httpx.Timeout(30, read=30)) as client, client.stream("GET", url) as response:
        if response.status_code == 200:
            lines = response.iter_lines()
            assert next(lines) == "event: start"
        yield response


def _turn_outcome(database: Path, turn_id: str) -> str:
    with sqlite3.connect(database) as connection:
        row = connection.execute("SELECT outcome FROM tutoring_tutorturn WHERE id = ?", (uuid.UUID(turn_id).hex,)).fetchone()
    return row[0] if row else ""


def _until(predicate: Callable[[], bool]) -> bool:
    end = time.monotonic() + POLL_DEADLINE_SECONDS
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_a_stream_is_read_end_to_end(deployment, learner) -> None:
    base, auth = deployment["fast"], learner()
    started = _hint(base, auth, _session(base, auth), level=2)

    with httpx.stream("GET", _stream_url(base, started), timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        raw = b"".join(response.iter_bytes())

    events = parse_sse(raw)
    assert events[0][0] == "start"
    assert events[-1] == ("done", {"turn_id": started["turn_id"], "hint_level": 2, "tutor": "builtin", "outcome": "ok"})
    assert sum(1 for name, _ in events if name == "token") > 5
    assert answer_text(events).startswith("Hint 2 of 3 (an approach): Look for a case conversion method.")
    assert _turn_outcome(deployment["database"], started["turn_id"]) == "ok"


def test_a_reused_token_is_401_and_another_learners_is_404(deployment, learner) -> None:
    base, alice, bob = deployment["fast"], learner(), learner()
    alice_session = _session(base, alice)
    started = _hint(base, alice, alice_session)

    as_bob = httpx.get(_stream_url(base, started), headers=bob, timeout=30)
    with httpx.stream("GET", _stream_url(base, started), timeout=30) as first:
        assert first.status_code == 200
        first.read()
    reused = httpx.get(_stream_url(base, started), timeout=30)
    bobs_hint = httpx.post(
        f"{base}/v1/tutor/messages",
        json={"session_id": alice_session, "problem_id": "shout", "hint_level": 1},
        headers=bob,
        timeout=30,
    )

    assert as_bob.status_code == 404 and as_bob.json()["error"]["code"] == "not_found"
    assert reused.status_code == 401 and reused.json()["error"]["code"] == "stream_token_invalid"
    assert reused.json()["request_id"] == reused.headers["X-Request-ID"]
    assert bobs_hint.status_code == 404


def test_a_third_concurrent_stream_is_429(deployment, learner) -> None:
    base, auth = deployment["slow"], learner()
    session_id = _session(base, auth)
    tokens = [_hint(base, auth, session_id) for _ in range(3)]

    with open_stream(_stream_url(base, tokens[0])) as first, open_stream(_stream_url(base, tokens[1])) as second:
        assert first.status_code == second.status_code == 200
        third = httpx.get(_stream_url(base, tokens[2]), timeout=30)

    assert third.status_code == 429
    assert third.json()["error"]["code"] == "too_many_streams"
    assert third.headers["Retry-After"] == "1"
    # Both streams were closed: the refused token was not spent and now opens.
    assert _until(lambda: httpx.get(_stream_url(base, tokens[2]), timeout=30).status_code == 200)


CLIENT_SCRIPT = """
import sys, httpx
with httpx.stream("GET", sys.argv[1], timeout=60) as response:
    for line in response.iter_lines():
        if line == "event: start":
            print("open", flush=True)
"""


def test_a_killed_client_frees_its_slot_within_a_heartbeat(deployment, learner) -> None:
    base, auth = deployment["slow"], learner()
    session_id = _session(base, auth)
    killed, kept, waiting = (_hint(base, auth, session_id) for _ in range(3))
    client = subprocess.Popen([sys.executable, "-c", CLIENT_SCRIPT, _stream_url(base, killed)], stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout.readline().strip() == "open"
        with open_stream(_stream_url(base, kept)) as held:
            assert held.status_code == 200
            assert httpx.get(_stream_url(base, waiting), timeout=30).status_code == 429

            client.send_signal(signal.SIGKILL)
            client.wait(timeout=10)

            # The server notices the closed connection, records the turn and frees the slot.
            assert _until(lambda: _turn_outcome(deployment["database"], killed["turn_id"]) == "cancelled")
            with open_stream(_stream_url(base, waiting)) as replacement:
                assert replacement.status_code == 200
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(timeout=10)


def test_the_llm_tutor_streams_through_the_server_and_falls_back(deployment, learner) -> None:
    base, auth, model = deployment["llm"], learner(), deployment["model"]
    session_id = _session(base, auth)

    model.status = 200
    ok = parse_sse(httpx.get(_stream_url(base, _hint(base, auth, session_id)), timeout=30).content)
    model.status = 503
    try:
        fallen = parse_sse(httpx.get(_stream_url(base, _hint(base, auth, session_id, level=3)), timeout=30).content)
    finally:
        model.status = 200

    assert answer_text(ok) == "Think about what upper case means."
    assert ok[-1][1]["tutor"] == "llm" and ok[-1][1]["outcome"] == "ok"
    assert "fallback" in [name for name, _ in fallen]
    assert fallen[-1][1]["outcome"] == "fallback" and fallen[-1][1]["tutor"] == "builtin"
    assert answer_text(fallen).startswith("Hint 3 of 3 (nearly the solution): Call the upper-casing method on text.")
    sent = str(model.bodies)
    for marker in SECRET_MARKERS:
        assert marker not in sent


def _log_of(base: str, log_dir: Path) -> Path:
    """The captured output of a server started by `running_server`."""
    return log_dir / f"uvicorn-{base.rsplit(':', 1)[1]}.log"


@contextmanager
def running_gunicorn(env: dict[str, str], log_dir: Path) -> Iterator[tuple[str, Path]]:
    """The production web server (gunicorn.conf.py: gunicorn with one uvicorn worker): (base URL,
    its captured output, access log included)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log_path = log_dir / f"gunicorn-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
            cwd=REPO_ROOT,
            env={**env, "CO_WEB_BIND": f"127.0.0.1:{port}", "CO_WEB_WORKERS": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            assert _until(lambda: process.poll() is None and _answers(base)), log_path.read_text()
            yield base, log_path
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def test_the_access_log_never_shows_a_stream_token(deployment, learner) -> None:
    base, auth = deployment["fast"], learner()
    started = _hint(base, auth, _session(base, auth))
    with httpx.stream("GET", _stream_url(base, started), timeout=30) as response:
        assert response.status_code == 200
        response.read()
    assert httpx.get(_stream_url(base, started), timeout=30).status_code == 401  # spent: logged again
    log = _log_of(base, deployment["dir"])

    # uvicorn writes the access line once the response is sent: wait for both lines.
    assert _until(lambda: all(f'"GET /v1/tutor/stream?[redacted] HTTP/1.1" {status}' in log.read_text() for status in (200, 401)))
    text = log.read_text()
    assert started["token"] not in text
    assert "stream?token=" not in text  # nor any other test's stream on this server


def test_the_production_servers_access_log_never_shows_a_stream_token(deployment, learner) -> None:
    auth = learner()
    started = _hint(deployment["fast"], auth, _session(deployment["fast"], auth))  # same database
    with running_gunicorn(deployment["env"], deployment["dir"]) as (base, log):
        with httpx.stream("GET", _stream_url(base, started), timeout=30) as response:
            assert response.status_code == 200
            response.read()
        unknown = httpx.get(f"{base}/v1/tutor/stream?token=zqx-unknown-stream-token-5e1a&x=1", timeout=30)
        assert unknown.status_code == 401

        assert _until(lambda: log.read_text().count('"GET /v1/tutor/stream?[redacted] HTTP/1.1"') == 2)
        text = log.read_text()
    assert started["token"] not in text
    assert "zqx-unknown-stream-token-5e1a" not in text
    assert "token=" not in text


@contextmanager
def crashable_server(env: dict[str, str], log_dir: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """A uvicorn process the test may SIGKILL: (base URL, process)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (log_dir / f"crashable-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "co_project.asgi:application", "--port", str(port), "--lifespan", "off"],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        assert _until(lambda: _answers(base)), "the server did not start"
        yield base, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        log.close()


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=2).status_code in (200, 503)
    except httpx.TransportError:
        return False


@pytest.mark.requires_services
def test_slots_are_shared_across_processes_and_a_crashed_process_frees_them(deployment, learner) -> None:
    """Redis counts for every process: two streams on one server make the third on another a 429;
    SIGKILL the server holding them and its leases lapse within a heartbeat interval."""
    auth = learner()
    env = {**deployment["env"], "CO_TUTOR_BUILTIN_CHUNK_DELAY_SECONDS": "1.0"}
    session_id = _session(deployment["fast"], auth)
    on_doomed = [_hint(deployment["fast"], auth, session_id) for _ in range(2)]
    elsewhere = _hint(deployment["fast"], auth, session_id)
    with crashable_server(env, deployment["dir"]) as (doomed, process), httpx.Client(timeout=30) as client:
        responses = [client.send(client.build_request("GET", _stream_url(doomed, started)), stream=True) for started in on_doomed]
        assert [r.status_code for r in responses] == [200, 200]
        # Keep the line iterators alive: a dropped one closes its connection.
        lines = [response.iter_lines() for response in responses]
        assert [next(stream_lines) for stream_lines in lines] == ["event: start", "event: start"]

        assert httpx.get(_stream_url(deployment["slow"], elsewhere), timeout=30).status_code == 429

        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert _until(lambda: httpx.get(_stream_url(deployment["slow"], elsewhere), timeout=30).status_code == 200)
        for response in responses:
            with contextlib.suppress(httpx.HTTPError):
                response.close()


def _threads(process: subprocess.Popen) -> int:
    return len(os.listdir(f"/proc/{process.pid}/task"))


def test_open_streams_hold_no_threads(deployment, learner) -> None:
    """Each open stream waits on the event loop: eight open streams add no thread per stream to
    the server process (Django's per-request sync thread is not kept for a stream's life)."""
    env = {**deployment["env"], "CO_TUTOR_BUILTIN_CHUNK_DELAY_SECONDS": "1.0"}
    with crashable_server(env, deployment["dir"]) as (base, process), ExitStack() as streams:
        learners = [learner() for _ in range(4)]
        starts = []
        for auth in learners:
            session_id = _session(base, auth)
            starts += [_hint(base, auth, session_id) for _ in range(2)]
        httpx.get(f"{base}/v1/tracks", headers=learners[0], timeout=30)  # warm: database, caches
        idle = _threads(process)
        opened = [streams.enter_context(open_stream(_stream_url(base, started))) for started in starts]
        assert [response.status_code for response in opened] == [200] * 8
        held = _threads(process)
        assert held - idle <= 2, f"{idle} threads idle, {held} with 8 streams open"
