"""Learning efficacy: simulated learners practise a track until the learner model says every topic
of it is mastered, and we count the graded attempts it takes.

Each learner has a latent skill per topic. An attempt on a problem passes with probability
σ(SLOPE × (mean skill over the problem's topics − difficulty + OFFSET)); every attempt then grows
the skill of the problem's topics (more after a pass). The draws come from a seeded RNG, so a run
is deterministic. The learner submits real code through the HTTP API of a real uvicorn server
(SQLite): the pack's reference solution when the draw says "pass", a wrong one otherwise, so every
verdict comes from real grading. On each problem presented the learner tries at most twice.

Three ways to study the same track:

(a) study paths: `POST /v1/study-paths`, then `GET /v1/study-tasks/next` and
    `POST /v1/study-tasks/{id}/submit` — only where the tree has those endpoints;
(b) track sessions: `POST /v1/sessions` (mode `track`), the recommender picks each next problem,
    `advance` moves on;
(c) the pack's fixed order: one practice session per problem, the problems in pack order, again
    from the top until done.

"Mastered" is the learner model's own verdict (`GET /v1/mastery`: `mastered` per topic). Printed per
learner profile (the mean over `--learners` learners with their own seeds): attempts until every
topic of the track is mastered, the largest difficulty jump from one problem to the next, topics
practised, `409 nothing_to_practise` answers. Targets: (a)
and (b) ≤ 70 % of (c)'s attempts, no jump above +1, every topic practised. Usage:

    .venv/bin/python bench/learning_efficacy.py [--track coding-interview-meta] [--cap 400]
        [--profiles strong,average,weak,weak-on-a-few] [--seed 15] [--learners 3]
        [--ways abc] [--weights weakness=0.35,...] [--trace]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import yaml
from support import REPO, UvicornServer, bench_env, manage

SLOPE = 1.6
OFFSET = 0.5
GROWTH_PASS = 0.25
GROWTH_MISS = 0.12
SKILL_MAX = 6.0
TRIES_PER_PROBLEM = 2
FALLBACK_THRESHOLD = 80  # trees whose /v1/mastery has no `mastered` field (before the fix)


def profiles(topics: list[str]) -> dict[str, dict[str, float]]:
    """Starting skill per topic; `weak-on-a-few` is average except on three topics."""
    few = set(sorted(topics)[::5][:3])
    return {
        "strong": dict.fromkeys(topics, 4.0),
        "average": dict.fromkeys(topics, 2.5),
        "weak": dict.fromkeys(topics, 1.2),
        "weak-on-a-few": {t: (0.5 if t in few else 3.0) for t in topics},
    }


@dataclass
class Problem:
    slug: str
    difficulty: int
    topics: tuple[str, ...]
    position: int


@dataclass
class Outcome:
    attempts: int = 0
    mastered: bool = False
    max_jump: int = 0
    practised: set[str] = field(default_factory=set)
    conflicts: int = 0  # 409 nothing_to_practise
    stalls: int = 0  # track sessions that completed although the track was not mastered
    served: list[str] = field(default_factory=list)
    last_difficulty: int | None = None
    note: str = ""


class Learner:
    """The latent learner: a skill per topic, the pass/fail draw, growth with practice."""

    def __init__(self, skill: dict[str, float], rng: random.Random, trace: bool = False) -> None:
        self.skill = dict(skill)
        self.rng = rng
        self.trace = trace

    def attempt(self, problem: Problem) -> bool:
        level = sum(self.skill[t] for t in problem.topics) / len(problem.topics)
        passed = self.rng.random() < 1 / (1 + math.exp(-SLOPE * (level - problem.difficulty + OFFSET)))
        for topic in problem.topics:
            self.skill[topic] = min(SKILL_MAX, self.skill[topic] + (GROWTH_PASS if passed else GROWTH_MISS))
        return passed


class Api:
    """One learner's client: submits real code and reads the learner model."""

    def __init__(self, server: UvicornServer, token: str, solutions: dict[str, tuple[str, str]], topics: list[str]) -> None:
        self.client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
        self.solutions = solutions
        self.topics = topics

    def code(self, slug: str, right: bool) -> str:
        entrypoint, reference = self.solutions[slug]
        return reference if right else f"def {entrypoint}(*args):\n    return None\n"

    def submit(self, session_id: str, slug: str, right: bool) -> bool:
        body = {"session_id": session_id, "problem_id": slug, "subject": "coding",
                "payload": {"language": "python", "code": self.code(slug, right)}}  # fmt: skip
        response = self.client.post("/v1/submissions", json=body)
        if response.status_code != 200:
            raise SystemExit(f"submission failed: {response.status_code} {response.text}")
        status = response.json()["status"]
        if status != ("passed" if right else "failed"):
            raise SystemExit(f"{slug}: expected {'a pass' if right else 'a failure'}, got {status}")
        return status == "passed"

    def mastered(self) -> bool:
        items = self.client.get("/v1/mastery", params={"key_type": "topic"}).json()["items"]
        done = {i["key_id"] for i in items if i.get("mastered", i["score"] >= FALLBACK_THRESHOLD)}
        return set(self.topics) <= done


def attempt_on(api: Api, learner: Learner, outcome: Outcome, problem: Problem, submit: Callable[[bool], bool]) -> bool:
    """Up to TRIES_PER_PROBLEM graded attempts on one presented problem; True once mastered."""
    if outcome.last_difficulty is not None:
        outcome.max_jump = max(outcome.max_jump, problem.difficulty - outcome.last_difficulty)
    outcome.served.append(problem.slug)
    outcome.last_difficulty = problem.difficulty
    for _ in range(TRIES_PER_PROBLEM):
        right = learner.attempt(problem)
        submit(right)
        outcome.attempts += 1
        if learner.trace:
            verdict = "pass" if right else "FAIL"
            print(f"    {outcome.attempts:>4} {problem.slug:<26} d{problem.difficulty} {verdict}", file=sys.stderr)
        outcome.practised.update(problem.topics)
        if api.mastered():
            outcome.mastered = True
            return True
        if right:
            break
    return False


def run_fixed_order(api: Api, learner: Learner, problems: list[Problem], cap: int) -> Outcome:
    """(c): the pack's order, one practice session per problem, from the top again until done."""
    outcome = Outcome()
    while outcome.attempts < cap:
        for problem in problems:
            response = api.client.post("/v1/sessions", json={"subject": "coding", "mode": "practice", "problem_id": problem.slug})
            session_id = response.json()["id"]
            slug = problem.slug
            done = attempt_on(api, learner, outcome, problem, lambda right, s=session_id, p=slug: api.submit(s, p, right))
            api.client.patch(f"/v1/sessions/{session_id}", json={"action": "advance"})
            if done or outcome.attempts >= cap:
                return outcome
    return outcome


def run_track_sessions(api: Api, learner: Learner, by_slug: dict[str, Problem], track: str, cap: int) -> Outcome:
    """(b): track sessions; the recommender chooses, the learner advances after each problem."""
    outcome = Outcome()
    session: dict[str, Any] | None = None
    while outcome.attempts < cap:
        if session is None or session["status"] != "active":
            response = api.client.post("/v1/sessions", json={"subject": "coding", "mode": "track", "track_id": track})
            if response.status_code == 409:
                if response.json()["error"]["code"] == "nothing_to_practise":
                    outcome.conflicts += 1
                outcome.note = response.json()["error"]["message"]
                return outcome
            session = response.json()
        problem = by_slug[session["current_problem"]["slug"]]
        session_id = session["id"]
        submit = partial(api.submit, session_id, problem.slug)
        if attempt_on(api, learner, outcome, problem, submit):
            return outcome
        session = api.client.patch(f"/v1/sessions/{session_id}", json={"action": "advance"}).json()
        if session["status"] != "active":
            outcome.stalls += 1
    return outcome


def study_paths_available(server: UvicornServer) -> bool:
    """The three endpoints (a) needs, by the server's own OpenAPI schema (any name of the task id)."""
    paths = httpx.get(f"{server.url}/v1/schema", params={"format": "json"}, timeout=30).json()["paths"]
    submit = any(re.fullmatch(r"/v1/study-tasks/\{[^}/]+\}/submit", path) for path in paths)
    return submit and {"/v1/study-paths", "/v1/study-tasks/next"} <= set(paths)


def run_study_path(api: Api, learner: Learner, by_slug: dict[str, Problem], track: str, cap: int) -> Outcome:
    """(a): a study path; the planner chooses, each task is submitted through the task."""
    outcome = Outcome()
    response = api.client.post("/v1/study-paths", json={"track": track})
    if response.status_code != 201:
        outcome.note = f"POST /v1/study-paths: {response.status_code} {response.text[:200]}"
        return outcome
    while outcome.attempts < cap:
        task = api.client.get("/v1/study-tasks/next").json().get("task")
        if not task:
            outcome.note = "the path has no next task"
            return outcome
        problem = by_slug[task["problem"]["slug"]]

        def submit(right: bool, task_id: str = task["id"], slug: str = problem.slug) -> bool:
            result = api.client.post(
                f"/v1/study-tasks/{task_id}/submit", json={"language": "python", "code": api.code(slug, right)}
            )
            body = result.json()
            while result.status_code == 202 or body.get("status") in ("queued", "running"):
                time.sleep(0.05)
                result = api.client.get(f"/v1/submissions/{body['id']}")
                body = result.json()
            return body.get("status") == "passed"

        if attempt_on(api, learner, outcome, problem, submit):
            return outcome
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--track", default="coding-interview-meta")
    parser.add_argument("--cap", type=int, default=400, help="attempts per learner and way of study before giving up")
    parser.add_argument("--profiles", default="strong,average,weak,weak-on-a-few")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--learners", type=int, default=3, help="learners per profile (seeds seed, seed+1, ...)")
    parser.add_argument("--weights", default="", help="CO_RECOMMENDATION_WEIGHTS for the server (default: the settings')")
    parser.add_argument("--ways", default="abc", help="which ways of study to run (letters)")
    parser.add_argument("--trace", action="store_true", help="print every attempt (problem, difficulty, verdict)")
    args = parser.parse_args()

    pack = yaml.safe_load((REPO / "coursepacks" / f"{args.track}.yaml").read_text())
    solutions = {
        p["slug"]: (p["languages"]["python"]["entrypoint"], p["languages"]["python"]["reference"]) for p in pack["problems"]
    }
    with tempfile.TemporaryDirectory(prefix="co-efficacy-") as workdir:
        # The sandbox's uid base is the one setting of the caller's shell kept (shared machines).
        env = bench_env(Path(workdir), **{k: os.environ[k] for k in ("CO_SANDBOX_UID",) if k in os.environ})
        if args.weights:
            env["CO_RECOMMENDATION_WEIGHTS"] = args.weights
        manage(env, "migrate", "--no-input")
        manage(env, "create_dev_keys")
        manage(env, "seed")
        server = UvicornServer(env)
        try:
            track = httpx.get(
                f"{server.url}/v1/tracks/{args.track}",
                headers={"Authorization": f"Bearer {manage(env, 'issue_token', '--sub', 'reader', '--ttl', '7200')}"},
                timeout=30,
            ).json()
            problems = [
                Problem(p["slug"], p["difficulty"], tuple(p["topics"]), n)
                for n, p in enumerate(p for module in track["modules"] for p in module["problems"])
            ]
            by_slug = {p.slug: p for p in problems}
            topics = sorted({t for p in problems for t in p.topics})
            ways: dict[str, Callable[[Api, Learner], Outcome]] = {
                "(b) track sessions": lambda api, learner: run_track_sessions(api, learner, by_slug, args.track, args.cap),
                "(c) fixed pack order": lambda api, learner: run_fixed_order(api, learner, problems, args.cap),
            }
            if study_paths_available(server):
                ways = {
                    "(a) study paths": lambda api, learner: run_study_path(api, learner, by_slug, args.track, args.cap),
                    **ways,
                }
            else:
                print("(a) study paths: not available in this tree")
            ways = {way: run for way, run in ways.items() if way[1] in args.ways}
            print(f"track {args.track}: {len(problems)} problems, {len(topics)} topics; cap {args.cap} attempts\n")
            results: dict[tuple[str, str], Outcome] = {}
            starting = profiles(topics)
            for name in args.profiles.split(","):
                for way, run in ways.items():
                    outcomes = []
                    for seed in range(args.seed, args.seed + args.learners):
                        token = manage(env, "issue_token", "--sub", f"{name}-{way[1]}-{seed}", "--ttl", "86400")
                        api = Api(server, token, solutions, topics)
                        rng = random.Random(f"{seed}:{name}")  # the same draws for every way of study
                        started = time.monotonic()
                        outcomes.append(run(api, Learner(starting[name], rng, args.trace)))
                        api.client.close()
                        print(f"  {name:<14} {way:<22} seed {seed} done in {time.monotonic() - started:.0f} s", file=sys.stderr)
                    results[name, way] = combined(outcomes)
            report(results, ways, args.profiles.split(","), len(topics), args.cap)
        finally:
            server.stop()


def combined(outcomes: list[Outcome]) -> Outcome:
    """A profile's learners together: mean attempts (each one's in `note`), the worst of the rest."""
    total = Outcome(
        attempts=round(sum(o.attempts for o in outcomes) / len(outcomes)),
        mastered=all(o.mastered for o in outcomes),
        max_jump=max(o.max_jump for o in outcomes),
        practised=set.intersection(*(o.practised for o in outcomes)),
        conflicts=sum(o.conflicts for o in outcomes),
        stalls=sum(o.stalls for o in outcomes),
        served=outcomes[0].served,
    )
    notes = sorted({o.note for o in outcomes if o.note})
    each = "/".join(str(o.attempts) for o in outcomes)
    total.note = f"attempts per learner {each}" + "".join(f"; {note}" for note in notes)
    return total


def report(results: dict[tuple[str, str], Outcome], ways: dict, names: list[str], topic_count: int, cap: int) -> None:
    header = (
        f"{'learner':<14} {'way of study':<22} {'attempts to mastery':>20} {'vs (c)':>7} {'max jump':>9} "
        f"{'topics practised':>17} {'409s':>5}  first problems served"
    )
    print(header)
    print("-" * len(header))
    ok = True
    for name in names:
        fixed = results.get((name, "(c) fixed pack order"), Outcome())
        for way in ways:
            o = results[name, way]
            attempts = str(o.attempts) if o.mastered else f"> {o.attempts} (not mastered)"
            ratio = f"{o.attempts / fixed.attempts:.0%}" if o.mastered and fixed.mastered else "—"
            print(
                f"{name:<14} {way:<22} {attempts:>20} {ratio:>7} {'+' + str(o.max_jump):>9} "
                f"{len(o.practised):>3} of {topic_count:<11} {o.conflicts:>5}  {' '.join(o.served[:10])}"
            )
            if o.note:
                print(f"{'':<14} {'':<22} note: {o.note}")
            if way != "(c) fixed pack order":
                meets = (
                    o.mastered and fixed.mastered and o.attempts <= 0.7 * fixed.attempts
                    and o.max_jump <= 1 and len(o.practised) == topic_count and not o.conflicts
                )  # fmt: skip
                ok = ok and meets
    firsts = {tuple(results[name, "(b) track sessions"].served[:10]) for name in names if (name, "(b) track sessions") in results}
    print("\nattempts: the mean over the profile's learners; max jump, topics, 409s: the worst of them.")
    print(f"distinct first-ten sequences of (b) across {len(names)} profiles: {len(firsts)}")
    print("targets (≤ 70 % of (c), jumps ≤ +1, every topic practised, no 409):", "met" if ok else "NOT met")


if __name__ == "__main__":
    main()
