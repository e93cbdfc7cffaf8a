"""The embedded default (no broker, no beat) keeps the never-lost guarantee: a server killed in
the middle of an evaluation leaves its submission `running`; the next server's in-process beat
(co_project/beat.py) runs the sweeper at start-up, which re-queues the stale row through the same
claim, and the submission gets exactly one verdict. Real uvicorn processes on a SQLite file."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.tracks.factories import pack_bytes, pack_document, shout_problem
from tests.tutoring.test_stream_server import crashable_server

REPO_ROOT = Path(__file__).parents[2]
SLOW_SHOUT = "import time\n\ndef shout(text):\n    time.sleep(0.4)\n    return text.upper()\n"


def _until(predicate, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def _post_expecting_no_answer(url: str, body: dict, headers: dict) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.post(url, json=body, headers=headers, timeout=30)


def _row(database: Path) -> tuple[str, int] | None:
    with sqlite3.connect(database, timeout=5) as db:
        return db.execute("SELECT status, attempts FROM submissions_submission").fetchone()


def test_a_submission_whose_server_died_mid_evaluation_is_graded_by_the_next_server(tmp_path, jwt_keys, make_token) -> None:
    database = tmp_path / "embedded.sqlite3"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("CO_DB_URL", "CO_REDIS_URL", "CO_CELERY_BROKER_URL")},
        "CO_ENV": "test",
        "CO_DB_URL": f"sqlite:///{database}",
        "CO_JWT_PUBLIC_KEY": jwt_keys[1],
        "CO_MEDIA_ROOT": str(tmp_path / "media"),
        "CO_IN_PROCESS_BEAT": "true",  # what `make run` has (the test settings turn it off)
        "CO_SUBMISSION_STALE_SECONDS": "1",
        "CO_SUBMISSION_SWEEP_SECONDS": "0.5",
    }
    pack = tmp_path / "pack.yaml"
    problem = shout_problem(limits={"time_ms": 3000, "memory_mb": 128})
    pack.write_bytes(pack_bytes(pack_document(track_slug="sweep-track", problems=[problem])))
    for command in (["migrate", "--no-input"], ["import_coursepack", str(pack), "--publish"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *command], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout + done.stderr
    auth = {"Authorization": f"Bearer {make_token(sub='sweep-learner')}"}
    submission = {"problem_id": "shout", "subject": "coding", "payload": {"language": "python", "code": SLOW_SHOUT}}
    key = {"Idempotency-Key": "killed-mid-evaluation"}

    with crashable_server(env, tmp_path) as (base, process):
        session = httpx.post(
            f"{base}/v1/sessions", json={"subject": "coding", "mode": "practice", "problem_id": "shout"}, headers=auth
        )
        assert session.status_code == 201, session.text
        submission["session_id"] = session.json()["id"]
        # The request blocks while its evaluation runs in the server; the server dies under it.
        request = threading.Thread(target=_post_expecting_no_answer, args=(f"{base}/v1/submissions", submission, {**auth, **key}))
        request.start()
        assert _until(lambda: (_row(database) or ("", 0))[0] == "running"), _row(database)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        request.join(timeout=30)
    assert _row(database) == ("running", 1)

    with crashable_server(env, tmp_path) as (base, _):
        # The replay of the key names the stored submission; the new server's start-up sweep grades it.
        replay = httpx.post(f"{base}/v1/submissions", json=submission, headers={**auth, **key}, timeout=30)
        assert replay.status_code in (200, 202), replay.text
        submission_id = replay.json()["id"]
        assert _until(lambda: _row(database)[0] == "passed"), _row(database)
        result = httpx.get(f"{base}/v1/submissions/{submission_id}", headers=auth, timeout=10).json()
    assert result["status"] == "passed"
    assert result["hidden"]["passed"] == result["hidden"]["total"] > 0
    assert _row(database) == ("passed", 2)  # claimed twice, graded once
    with sqlite3.connect(database) as db:
        events = db.execute("SELECT COUNT(*) FROM co_project_telemetryevent WHERE event = 'attempt_submit'").fetchone()[0]
    assert events == 1
