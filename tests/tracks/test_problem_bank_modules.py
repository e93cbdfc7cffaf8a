"""`problems_by_module` and `problem_metadata` in every problem bank: the database (memoized per
catalogue version), the remote bank over HTTP (a real server started by the test: caching,
bounded retries, malformed answers) and the composite of both."""

from __future__ import annotations

import copy
import uuid

import pytest

from co_project.errors import ProblemRepositoryNotReady
from tests.personalization.factories import publish_ladder
from tests.servers import FakeProblemBank
from tests.tracks.test_problem_bank_http import REMOTE_BUNDLE
from tracks.problem_bank import (
    CompositeProblemBank,
    DatabaseProblemBank,
    HttpProblemBank,
    ProblemBankUnavailable,
    ProblemMetadata,
    problems_by_module,
)
from tracks.selectors import problem_slugs

pytestmark = pytest.mark.django_db

RETRIES = 2
LISTING = [
    {"id": "r-1", "slug": "r-1", "title": "Remote one", "subject": "coding", "difficulty": 1, "topics": ["arrays"]},
    {"id": "r-2", "slug": "r-2", "title": "Remote two", "subject": "coding", "difficulty": 3, "topics": ["graphs", "bfs"]},
    {"id": "b1", "slug": "b1", "title": "Also in the database", "difficulty": 2},
    {"id": 17, "difficulty": 2},
]


def _remote(server: FakeProblemBank) -> HttpProblemBank:
    return HttpProblemBank(server.url, timeout=0.5, retries=RETRIES, cache_seconds=300)


def _slugs(items: list[ProblemMetadata]) -> list[str]:
    return [item.slug for item in items]


@pytest.fixture
def remote(problem_bank_server: FakeProblemBank, settings) -> FakeProblemBank:
    problem_bank_server.modules["ladder/m2"] = copy.deepcopy(LISTING)
    problem_bank_server.bundles["remote-1"] = {**copy.deepcopy(REMOTE_BUNDLE), "module": "ladder/m2"}
    settings.CO_PROBLEM_BANK_BASE = problem_bank_server.url
    settings.CO_PROBLEM_BANK_TIMEOUT_SECONDS = 0.5
    settings.CO_PROBLEM_BANK_RETRIES = RETRIES
    settings.CO_PROBLEM_BANK_CACHE_SECONDS = 300
    settings.CO_PROBLEM_BANK_TOKEN = None
    return problem_bank_server


# --- database -----------------------------------------------------------------------------


def test_database_lists_a_module_in_authored_order_within_the_range(django_assert_num_queries) -> None:
    publish_ladder()
    bank = DatabaseProblemBank()

    with django_assert_num_queries(2):  # the whole track: problems, then their topics
        listed = bank.problems_by_module("ladder/m2", (1, 5), 10)
    with django_assert_num_queries(0):  # every module of the track from the memo
        assert _slugs(bank.problems_by_module("ladder/m2", (3, 3), 10)) == ["b2", "b3"]
        assert _slugs(bank.problems_by_module("ladder/m1", (1, 5), 3)) == ["a1", "a2", "a3"]
        assert bank.problems_by_module("ladder/nope", (1, 5), 10) == []
        assert bank.problems_by_module("ladder/m2", (1, 5), 0) == []

    ids = {slug: pid for pid, slug in problem_slugs(problem_ids=[uuid.UUID(item.id) for item in listed]).items()}
    assert listed == [
        ProblemMetadata(str(ids["b1"]), "b1", "Problem b1", "coding", 2, ("loops",), "ladder/m2", "database"),
        ProblemMetadata(str(ids["b2"]), "b2", "Problem b2", "coding", 3, ("arrays", "loops"), "ladder/m2", "database"),
        ProblemMetadata(str(ids["b3"]), "b3", "Problem b3", "coding", 3, ("hashing",), "ladder/m2", "database"),
        ProblemMetadata(str(ids["b4"]), "b4", "Problem b4", "coding", 4, ("graphs",), "ladder/m2", "database"),
    ]


def test_database_metadata_by_id_or_slug() -> None:
    publish_ladder()
    bank = DatabaseProblemBank()
    by_slug = bank.problem_metadata("c2")
    assert by_slug is not None
    assert (by_slug.slug, by_slug.difficulty, by_slug.topics, by_slug.module, by_slug.source) == (
        "c2",
        4,
        ("graphs", "search"),
        "ladder/m3",
        "database",
    )
    assert bank.problem_metadata(by_slug.id) == by_slug
    assert bank.problem_metadata("no-such-problem") is None


# --- remote -------------------------------------------------------------------------------


def test_remote_listing_asks_for_the_range_and_is_cached(remote: FakeProblemBank) -> None:
    bank = _remote(remote)

    listed = bank.problems_by_module("ladder/m2", (2, 3), 10)

    assert listed == [
        ProblemMetadata("r-2", "r-2", "Remote two", "coding", 3, ("graphs", "bfs"), "ladder/m2", "remote"),
        ProblemMetadata("b1", "b1", "Also in the database", "coding", 2, (), "ladder/m2", "remote"),
        ProblemMetadata("17", "17", "17", "coding", 2, (), "ladder/m2", "remote"),
    ]
    assert remote.requested_paths() == ["/internal/modules/ladder%2Fm2/problems?difficulty_min=2&difficulty_max=3&limit=10"]
    assert bank.problems_by_module("ladder/m2", (2, 3), 10) == listed
    assert remote.request_count() == 1  # served from the cache


def test_remote_listing_is_held_to_the_range_when_the_bank_ignores_it(remote: FakeProblemBank) -> None:
    remote.behaviour.ignore_listing_filters = True
    assert _slugs(_remote(remote).problems_by_module("ladder/m2", (3, 5), 10)) == ["r-2"]
    assert _slugs(_remote(remote).problems_by_module("ladder/m2", (1, 2), 2)) == ["r-1", "b1"]


def test_remote_listing_of_an_unknown_module_is_empty(remote: FakeProblemBank) -> None:
    assert _remote(remote).problems_by_module("ladder/unknown", (1, 5), 10) == []


def test_remote_listing_retries_transient_failures(remote: FakeProblemBank) -> None:
    remote.behaviour.fail_first = RETRIES
    assert _slugs(_remote(remote).problems_by_module("ladder/m2", (1, 1), 10)) == ["r-1"]
    assert remote.request_count() == RETRIES + 1


def test_remote_listing_gives_up_after_bounded_retries(remote: FakeProblemBank) -> None:
    remote.behaviour.always_status = 503
    with pytest.raises(ProblemBankUnavailable, match="HTTP 503"):
        _remote(remote).problems_by_module("ladder/m2", (1, 5), 10)
    assert remote.request_count() == RETRIES + 1


@pytest.mark.parametrize(
    ("listing", "where"),
    [
        ([{"id": "x", "difficulty": 9}], "items/0/difficulty"),
        ([{"slug": "no-id", "difficulty": 1}], "items/0"),
        ([{"id": "x", "difficulty": 1, "topics": "arrays"}], "items/0/topics"),
    ],
)
def test_remote_listing_that_is_malformed_is_unavailable_not_a_crash(remote: FakeProblemBank, listing, where: str) -> None:
    remote.modules["ladder/m2"] = listing
    remote.behaviour.ignore_listing_filters = True  # hand the listing over as it is
    with pytest.raises(ProblemBankUnavailable, match=f"malformed at {where}:"):
        _remote(remote).problems_by_module("ladder/m2", (1, 5), 10)


def test_remote_metadata_comes_from_the_cached_bundle_without_hidden_content(remote: FakeProblemBank) -> None:
    bank = _remote(remote)
    metadata = bank.problem_metadata("remote-1")
    assert metadata == ProblemMetadata(
        "remote-1", "remote-1", "Remote pair sum", "coding", 2, ("arrays", "hash-map"), "ladder/m2", "remote"
    )
    assert bank.problem_metadata("remote-1") == metadata
    assert remote.requested_paths() == ["/internal/problems/remote-1/bundle"]
    assert bank.problem_metadata("missing") is None


# --- composite and the service --------------------------------------------------------------


def test_composite_lists_the_database_first_then_what_only_the_remote_bank_has(remote: FakeProblemBank) -> None:
    publish_ladder()
    bank = CompositeProblemBank([DatabaseProblemBank(), _remote(remote)])

    listed = bank.problems_by_module("ladder/m2", (1, 3), 10)

    # b1 is in both: the database's row wins; the remote ones follow in the bank's order.
    assert [(item.slug, item.source) for item in listed] == [
        ("b1", "database"),
        ("b2", "database"),
        ("b3", "database"),
        ("r-1", "remote"),
        ("r-2", "remote"),
        ("17", "remote"),
    ]
    assert _slugs(bank.problems_by_module("ladder/m2", (1, 3), 4)) == ["b1", "b2", "b3", "r-1"]
    assert bank.problem_metadata("remote-1").source == "remote"
    assert bank.problem_metadata("b2").source == "database"


def test_composite_does_not_ask_the_remote_bank_when_the_database_fills_the_limit(remote: FakeProblemBank) -> None:
    publish_ladder()
    bank = CompositeProblemBank([DatabaseProblemBank(), _remote(remote)])
    assert _slugs(bank.problems_by_module("ladder/m2", (1, 5), 2)) == ["b1", "b2"]
    assert remote.request_count() == 0


def test_service_maps_an_unreachable_bank_to_repository_not_ready(remote: FakeProblemBank) -> None:
    remote.behaviour.always_status = 500
    with pytest.raises(ProblemRepositoryNotReady):
        problems_by_module(module="ladder/m2", difficulty_range=(1, 5), limit=10)
    assert remote.request_count() == RETRIES + 1
