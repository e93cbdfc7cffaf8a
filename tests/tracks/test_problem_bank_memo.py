"""The process-local memo of database problem bundles: read once per catalogue version, seen
changed at once after publishing or retiring, private to each caller, never in the shared cache.
(Admin edits: tests/tracks/test_admin.py.)"""

from __future__ import annotations

import json
import marshal
import time
from types import SimpleNamespace

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

import tracks.selectors
from tests.tracks.factories import HIDDEN_MARKERS, add_problem, pack_document, publish, shout_problem
from tracks import problem_bank, services
from tracks.models import Problem
from tracks.problem_bank import problem_bundle_for_grading, problem_bundle_require

pytestmark = pytest.mark.django_db(transaction=True)


def _get(api, reference: str = "shout") -> tuple[int, dict, int]:
    """(status, body, SQL queries) of the learner's problem view."""
    with CaptureQueriesContext(connection) as queries:
        response = api.get(f"/v1/problems/{reference}")
    return response.status_code, response.json(), len(queries)


def _shared_cache_contents() -> bytes:
    """Every value in the shared cache, raw (LocMem in the SQLite run, Redis in the PostgreSQL run)."""
    if isinstance(getattr(cache, "_cache", None), dict):
        return b"".join(cache._cache.values())
    from django_redis import get_redis_connection

    client = get_redis_connection("default")
    return b"".join(client.dump(key) or b"" for key in client.keys("*"))


def test_a_problem_is_read_from_the_database_once_per_catalogue_version(api) -> None:
    publish(pack_document())
    assert _get(api)[0::2] == (200, 3)
    status, body, queries = _get(api)
    assert (status, queries) == (200, 0)
    assert body["title"] == "Shout"

    publish(pack_document(version="1.1.0", problems=[shout_problem(title="Shout louder"), add_problem()]))

    status, body, queries = _get(api)
    assert (status, body["title"], queries) == (200, "Shout louder", 3)


def test_a_retired_problem_is_gone_at_once(api, fake_grader) -> None:
    publish(pack_document())
    assert _get(api)[0] == 200
    assert api.post("/v1/submissions", _shout(), format="json").status_code == 200

    services.problem_retire(problem=Problem.objects.get(slug="shout"))

    assert _get(api)[0] == 404
    response = api.post("/v1/submissions", _shout(), format="json")
    assert response.status_code == 409, response.json()


def test_a_new_version_is_graded_against_its_new_hidden_tests(api, fake_grader) -> None:
    publish(pack_document())
    assert api.post("/v1/submissions", _shout(), format="json").status_code == 200
    changed = shout_problem()
    del changed["hidden_generators"]
    changed["hidden_tests"] = [{"category": "mixed-case", "input": {"text": "qRs"}, "expected": "QRS"}]
    changed["limits"] = {"time_ms": 700, "memory_mb": 128}

    publish(pack_document(version="1.1.0", problems=[changed, add_problem()]))

    assert api.post("/v1/submissions", _shout(), format="json").status_code == 200
    first, second = (body["hidden_spec"] for body in fake_grader.bodies)
    assert [t["input"] for t in first["tests"]][:2] == [{"text": "zqx-hidden-input-7f3a"}, {"text": "aBc"}]
    assert (first["time_limit_ms"], second["time_limit_ms"]) == (500, 700)
    assert second["tests"] == [{"category": "mixed-case", "input": {"text": "qRs"}, "expected": "QRS"}]


def test_a_caller_changing_its_bundle_changes_nobody_elses() -> None:
    publish(pack_document())
    problem = Problem.objects.get(slug="shout")
    pristine = problem_bundle_for_grading(problem_id=problem.id, reference="shout")
    for _ in range(2):  # the first call filled the memo; both later ones are served from it
        bundle = problem_bundle_for_grading(problem_id=problem.id, reference="shout")
        assert bundle == pristine
        bundle.hidden_tests.clear()
        bundle.visible_tests[0]["input"]["text"] = "changed"
        bundle.languages["python"]["entrypoint"] = "changed"
        bundle.remediation.clear()
        bundle.topics.append("changed")
    public = problem_bundle_require(reference="shout")
    public.visible_tests.clear()
    assert problem_bundle_require(reference="shout") == problem_bundle_require(reference=str(problem.id))
    assert problem_bundle_for_grading(problem_id=problem.id, reference="shout") == pristine


def test_hidden_tests_never_reach_the_shared_cache(api, fake_grader) -> None:
    publish(pack_document())
    assert api.post("/v1/submissions", _shout(), format="json").status_code == 200
    assert api.post("/v1/submissions", _shout(), format="json").status_code == 200
    assert _get(api)[0] == 200

    contents = _shared_cache_contents()
    assert contents  # the catalogue version, throttle counters: the cache is in use
    for marker in HIDDEN_MARKERS:
        assert marker.encode() not in contents


def test_without_a_catalogue_version_the_database_is_read_every_time(api, monkeypatch) -> None:
    publish(pack_document())

    def unavailable() -> int:
        raise ConnectionError("cache down")

    monkeypatch.setattr(tracks.selectors, "catalogue_version", unavailable)
    assert _get(api)[0::2] == (200, 3)
    assert _get(api)[0::2] == (200, 3)


def test_a_change_made_behind_the_services_back_is_seen_within_the_memo_lifetime(api, monkeypatch) -> None:
    """Direct database edits do not bump the catalogue version; entries still expire."""
    publish(pack_document())
    assert _get(api)[1]["title"] == "Shout"
    Problem.objects.filter(slug="shout").update(title="Edited in the database")
    assert _get(api)[1]["title"] == "Shout"

    later = time.monotonic() + problem_bank._bundle_memo.seconds + 1
    monkeypatch.setattr(problem_bank, "time", SimpleNamespace(monotonic=lambda: later))

    assert _get(api)[1]["title"] == "Edited in the database"


def _shout() -> dict:
    return {
        "problem_id": "shout",
        "subject": "coding",
        "payload": {"language": "python", "code": "def shout(text):\n    return text.upper()\n"},
    }


def test_a_bundle_keeps_staff_only_content_out_of_its_repr_and_carries_its_encoded_hidden_inputs() -> None:
    """Nothing staff-only reaches a log line through a bundle's repr; the sandbox gets the hidden
    inputs as encoded once with the bundle."""
    publish(pack_document())
    bundle = problem_bundle_require(reference="shout", include_hidden=True)

    assert bundle.hidden_tests
    inputs = [case.input for case in bundle.hidden_tests]
    assert json.loads(bundle.hidden_inputs.json) == marshal.loads(bundle.hidden_inputs.marshal) == inputs  # noqa: S302
    assert bundle.hidden_inputs.count == len(inputs)
    assert not [marker for marker in HIDDEN_MARKERS if marker in repr(bundle.hidden_tests)]
    text = repr(bundle)
    assert text == f"ProblemBundle(id={bundle.id!r}, slug='shout', subject='coding', source='database')"
    assert not [marker for marker in HIDDEN_MARKERS if marker in text]
    assert problem_bundle_require(reference="shout").hidden_inputs is None


def test_a_track_outline_is_read_once_per_catalogue_version(django_assert_num_queries) -> None:
    """Path creation and every verdict on a path plan against the track's outline: from the memo
    while the catalogue is unchanged, read again after a publish (which bumps the version)."""
    publish(pack_document())
    with django_assert_num_queries(2):
        first = tracks.selectors.track_outline(reference="test-track")
    with django_assert_num_queries(0):
        assert tracks.selectors.track_outline(reference="test-track") is first

    publish(
        pack_document(version="1.0.1", modules=[{"slug": "basics", "title": "Renamed by a new version", "outcomes": ["strings"]}])
    )

    with django_assert_num_queries(2):
        again = tracks.selectors.track_outline(reference="test-track")
    assert again.modules[0].title == "Renamed by a new version"


def test_without_a_catalogue_version_the_outline_is_read_every_time(django_assert_num_queries, monkeypatch) -> None:
    publish(pack_document())

    def unavailable() -> int:
        raise ConnectionError("cache down")

    monkeypatch.setattr(tracks.selectors, "catalogue_version", unavailable)
    for _ in range(2):
        with django_assert_num_queries(2):
            tracks.selectors.track_outline(reference="test-track")
