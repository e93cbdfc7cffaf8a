"""Fixtures for the tracks tests: a real fake remote problem bank."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import FakeProblemBank


@pytest.fixture
def problem_bank_server() -> Iterator[FakeProblemBank]:
    """A running FakeProblemBank (no bundles yet); stopped after the test."""
    with FakeProblemBank() as server:
        yield server
