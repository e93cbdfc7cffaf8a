"""A ladder catalogue (three modules, difficulties 1–5, several topics) and a simulated learner
that works through it over the HTTP API, graded by a real fake eval service."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from sessions_app.services import session_record_hint
from tests.servers import FakeEvalService
from tests.tracks.factories import add_problem, pack_document, publish

# slug: (module, difficulty, topics)
LADDER = {
    "a1": ("m1", 1, ["arrays"]),
    "a2": ("m1", 1, ["strings"]),
    "a3": ("m1", 2, ["arrays", "hashing"]),
    "a4": ("m1", 2, ["strings"]),
    "b1": ("m2", 2, ["loops"]),
    "b2": ("m2", 3, ["loops", "arrays"]),
    "b3": ("m2", 3, ["hashing"]),
    "b4": ("m2", 4, ["graphs"]),
    "c1": ("m3", 3, ["search"]),
    "c2": ("m3", 4, ["search", "graphs"]),
    "c3": ("m3", 5, ["dp"]),
}
MODULE_ORDER = {"m1": 0, "m2": 1, "m3": 2}

PASS = {
    "status": "passed",
    "visible": {"passed": 3, "total": 3, "details": []},
    "hidden": {"passed": 1, "total": 1, "categories": []},
    "exec_ms": 5,
}
FAIL = {
    "status": "failed",
    "visible": {"passed": 1, "total": 3, "details": []},
    "hidden": {"passed": 0, "total": 1, "categories": ["negatives"]},
    "exec_ms": 5,
}


def ladder_pack(track_slug: str = "ladder") -> dict[str, Any]:
    problems = [
        add_problem(slug=slug, module=module, difficulty=difficulty, topics=topics, title=f"Problem {slug}")
        for slug, (module, difficulty, topics) in LADDER.items()
    ]
    modules = [
        {"slug": "m1", "title": "Warm-up", "outcomes": ["basics"]},
        {"slug": "m2", "title": "Loops", "outcomes": ["iteration"]},
        {"slug": "m3", "title": "Search", "outcomes": ["searching"]},
    ]
    return pack_document(track_slug=track_slug, modules=modules, problems=problems)


def publish_ladder(track_slug: str = "ladder") -> None:
    publish(ladder_pack(track_slug))


class SimulatedLearner:
    """Drives one learner through sessions via the API; the eval service decides pass or fail."""

    def __init__(self, client: APIClient, eval_service: FakeEvalService, learner_id: str) -> None:
        self.client = client
        self.eval_service = eval_service
        self.learner_id = learner_id
        self.session: dict[str, Any] = {}

    def start(self, **body: Any) -> dict[str, Any]:
        response = self.client.post("/v1/sessions", {"subject": "coding", **body}, format="json")
        assert response.status_code == 201, response.json()
        self.session = response.json()
        return self.session

    @property
    def current(self) -> dict[str, Any]:
        return self.session["current_problem"]

    def submit(self, *, passed: bool, problem: str | None = None) -> dict[str, Any]:
        self.eval_service.answer = dict(PASS if passed else FAIL)
        body = {
            "session_id": self.session["id"],
            "problem_id": problem or self.current["slug"],
            "subject": "coding",
            "payload": {"language": "python", "code": "def add(a, b):\n    return a + b\n"},
        }
        response = self.client.post("/v1/submissions", body, format="json")
        assert response.status_code == 200, response.json()
        assert response.json()["status"] == ("passed" if passed else "failed")
        self.refresh()
        return response.json()

    def hint(self, level: int) -> None:
        session_record_hint(learner_id=self.learner_id, session_id=self.session["id"], problem_id=self.current["id"], level=level)

    def act(self, action: str) -> dict[str, Any]:
        response = self.client.patch(f"/v1/sessions/{self.session['id']}", {"action": action}, format="json")
        assert response.status_code == 200, response.json()
        self.session = response.json()
        return self.session

    def refresh(self) -> dict[str, Any]:
        response = self.client.get(f"/v1/sessions/{self.session['id']}")
        assert response.status_code == 200
        self.session = response.json()
        return self.session
