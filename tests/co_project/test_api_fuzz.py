"""Schemathesis against the real server: every operation of `/v1/schema`, called with a valid
learner token, never answers 5xx, answers only documented statuses and content types with bodies
that conform to the schema, rejects schema-violating requests with a 4xx and accepts valid ones.

A uvicorn process with the embedded defaults (what `make run` serves) on a fresh SQLite file with
the shipped course packs; the `st` CLI runs every phase (examples, coverage, fuzzing, stateful)
with the values of `schemathesis.toml` next to this file. The seed is fixed so that CI is
reproducible; `CO_FUZZ_SEED=random` (or a number) and `CO_FUZZ_MAX_EXAMPLES` explore further.
Nothing here skips: without schemathesis or a server that starts, the test fails."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import jwt
import pytest

from tests.co_project.test_health import REPO_ROOT, running_server
from tests.conftest import ISSUER

CONFIG = Path(__file__).with_name("schemathesis.toml")
FIXED_SEED = 20261205
MAX_EXAMPLES = int(os.environ.get("CO_FUZZ_MAX_EXAMPLES", "100"))
RUN_DEADLINE_SECONDS = 900


def _seed() -> int:
    chosen = os.environ.get("CO_FUZZ_SEED", "")
    if chosen == "random":
        return secrets.randbelow(2**32)
    return int(chosen) if chosen else FIXED_SEED


def _manage(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}"


def _cursor(client: httpx.Client, path: str) -> str:
    """The cursor of a list's second page (the first page asked with limit=1)."""
    page = client.get(path, params={"limit": 1})
    assert page.status_code == 200, page.text
    assert page.json()["next"], f"{path} has a single item: no second page to take a cursor from"
    return parse_qs(urlparse(page.json()["next"]).query)["cursor"][0]


def _failed_submission(client: httpx.Client, session: dict) -> str:
    """A wrong answer to the session's current problem: a submission to read and a review item."""
    slug = session["current_problem"]["slug"]
    entrypoint = client.get(f"/v1/problems/{slug}").json()["languages"]["python"]["entrypoint"]
    response = client.post(
        "/v1/submissions",
        json={
            "session_id": session["id"],
            "problem_id": slug,
            "subject": "coding",
            "payload": {"language": "python", "code": f"def {entrypoint}(*args):\n    return None\n"},
        },
        timeout=60,
    )
    assert response.status_code in {200, 202}, response.text
    return response.json()["id"]


def _learner_data(base_url: str, token: str) -> dict[str, str]:
    """What `schemathesis.toml` names: sessions, a submission, study paths and second-page cursors."""
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        practice = client.post("/v1/sessions", json={"subject": "coding", "mode": "practice", "problem_id": "two-sum"})
        track = client.post("/v1/sessions", json={"subject": "coding", "mode": "track", "track_id": "coding-interview-meta"})
        assert practice.status_code == track.status_code == 201, practice.text + track.text
        submission = _failed_submission(client, practice.json())
        _failed_submission(client, track.json())
        paths = [client.post("/v1/study-paths", json={"track": slug}) for slug in ("math-foundations", "systems-design")]
        assert [p.status_code for p in paths] == [201, 201], [p.text for p in paths]
        return {
            "CO_FUZZ_PRACTICE_SESSION": practice.json()["id"],
            "CO_FUZZ_TRACK_SESSION": track.json()["id"],
            "CO_FUZZ_SUBMISSION": submission,
            "CO_FUZZ_TRACKS_CURSOR": _cursor(client, "/v1/tracks"),
            "CO_FUZZ_REVIEW_CURSOR": _cursor(client, "/v1/review-queue"),
            "CO_FUZZ_STUDY_PATH": paths[0].json()["id"],
            "CO_FUZZ_STUDY_TASK": paths[0].json()["upcoming_tasks"][0]["id"],
            "CO_FUZZ_STUDY_DESIGN_TASK": paths[1].json()["upcoming_tasks"][0]["id"],
            "CO_FUZZ_STUDY_PATHS_CURSOR": _cursor(client, "/v1/study-paths"),
            "CO_FUZZ_STUDY_TASKS_CURSOR": _cursor(client, "/v1/study-tasks"),
        }


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, jwt_keys: tuple[str, str]) -> Iterator[tuple[str, str]]:
    """(base URL, learner token) of a seeded server. No limit gets in the fuzzer's way (rates are
    tested elsewhere); one sandbox uid of its own, so that runs never wait for the uid slots
    other processes on the machine hold."""
    workdir = tmp_path_factory.mktemp("api-fuzz")
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("CO_")},
        "CO_ENV": "development",
        "CO_DB_URL": f"sqlite:///{workdir / 'fuzz.sqlite3'}",
        "CO_MEDIA_ROOT": str(workdir / "media"),
        "CO_JWT_PUBLIC_KEY": jwt_keys[1],
        "CO_JWT_ISSUER": ISSUER,
        "CO_RATE_LIMIT": "1000000/min",
        "CO_TUTOR_HINT_RATE": "1000000/min",
        "CO_SANDBOX_UID_POOL": "1",
        "CO_SANDBOX_UID": "260000",
        "CO_SANDBOX_GID": "260000",
        "CO_LOG_LEVEL": "WARNING",
    }
    _manage(env, "migrate", "--no-input")
    _manage(env, "seed")
    now = int(time.time())
    claims = {"sub": "fuzz-learner", "iss": ISSUER, "iat": now, "exp": now + RUN_DEADLINE_SECONDS + 600}
    with running_server(env, workdir) as base_url:
        yield base_url, jwt.encode(claims, jwt_keys[0], algorithm="RS256")


def _summary(output: str) -> str:
    """The figures of a run: operations tested, test cases generated, failures."""
    tested = re.search(r"Tested:\s+(\d+)", output)
    cases = re.search(r"Test cases:\s*\n\s*(.+)", output)
    return f"operations tested: {tested.group(1) if tested else '?'}; test cases: {cases.group(1).strip() if cases else '?'}"


def test_every_operation_conforms_to_the_schema(served: tuple[str, str], tmp_path: Path) -> None:
    base_url, token = served
    env = {**os.environ, **_learner_data(base_url, token)}
    st = Path(sys.executable).with_name("st")
    assert st.exists(), f"schemathesis is not installed next to {sys.executable} (requirements-dev.txt)"
    seed = _seed()
    started = time.monotonic()
    done = subprocess.run(
        [
            str(st),
            "--config-file",
            str(CONFIG),
            "run",
            f"{base_url}/v1/schema",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "all",
            "--mode",
            "all",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            str(seed),
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--no-color",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_DEADLINE_SECONDS,
    )
    elapsed = time.monotonic() - started
    print(f"schemathesis (seed {seed}, {MAX_EXAMPLES} examples): {_summary(done.stdout)} in {elapsed:.0f} s")
    assert done.returncode == 0, (
        f"schemathesis found problems (seed {seed}; rerun with CO_FUZZ_SEED={seed}):\n{done.stdout}\n{done.stderr}"
    )
    selected, tested = re.search(r"Selected: \d+/(\d+)", done.stdout), re.search(r"Tested: (\d+)", done.stdout)
    assert selected and tested and tested.group(1) == selected.group(1), f"not every operation was tested:\n{done.stdout}"
