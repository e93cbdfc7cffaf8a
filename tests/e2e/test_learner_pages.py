"""The learner's journeys of issue 17 in a real browser, through the pages and the public API only."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

WRONG_TWO_SUM = "def two_sum(nums, t):\n    return [0, 1]\n"
RIGHT_TWO_SUM = """from bisect import bisect_right


def two_sum(nums, t):
    positions = {}
    for index, value in enumerate(nums):
        positions.setdefault(value, []).append(index)
    for i, value in enumerate(nums):
        found = positions.get(t - value)
        if found:
            k = bisect_right(found, i)
            if k < len(found):
                return [i, found[k]]
    return [-1, -1]
"""


def _replace_code(page: Any, code: str) -> None:
    editor = page.locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(code)


def test_two_sum_from_sign_in_to_a_passing_submit_with_a_streamed_hint(open_browser) -> None:
    learner = open_browser()
    page = learner.page
    learner.sign_in("alice")
    expect(page.get_by_text("Signed in as alice")).to_be_visible()
    expect(page.locator("#tracks .card")).to_have_count(3)
    learner.check_page("home")

    page.get_by_role("link", name="Meta Coding Interview Prep (Pilot)").click()
    expect(page.get_by_role("heading", name="Meta Coding Interview Prep (Pilot)")).to_be_visible()
    expect(page.locator(".module").first).to_be_visible()
    learner.check_page("track")

    page.get_by_role("link", name="Two Sum").click()
    expect(page.get_by_role("heading", name="Two Sum", level=1)).to_be_visible()
    expect(page.locator("#statement strong").first).to_have_text("different positions")  # Markdown, rendered
    expect(page.locator("#examples tbody tr")).to_have_count(3)
    expect(page.locator(".cm-content")).to_contain_text("def two_sum(nums, t):")

    _replace_code(page, WRONG_TWO_SUM)
    page.keyboard.press("Control+Enter")  # Run
    expect(page.locator("#results-status")).to_have_text(re.compile(r"^Run: failed"))
    rows = page.locator("#results-body table.tests tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0).locator(".outcome")).to_have_text("Passed")
    expect(rows.nth(2).locator(".outcome")).to_have_text("Wrong answer")
    expect(page.locator("#results-body")).not_to_contain_text("Hidden tests")

    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#results-status")).to_have_text(re.compile(r"^Submission: failed"))
    expect(page.locator("#results-body")).to_contain_text(re.compile(r"Hidden tests: \d+ / \d+ passed"))
    expect(page.locator("#results-body .categories").first).to_contain_text("duplicates")
    expect(page.locator("#results-body .remediation")).to_contain_text("Arrays can hold the same value twice")
    learner.check_page("problem-failed")

    page.get_by_role("button", name=re.compile("^Hint 2")).click()
    hint = page.locator('.hint[data-level="2"]')
    expect(hint).to_have_attribute("data-done", "true", timeout=30_000)
    assert int(hint.get_attribute("data-pieces")) > 1  # streamed, arriving in pieces
    expect(hint.locator(".hint-text")).to_contain_text("hash map")

    _replace_code(page, RIGHT_TWO_SUM)
    page.keyboard.press("Shift+Control+Enter")  # Submit
    expect(page.locator("#results-status")).to_have_text(re.compile(r"^Submission: passed"))
    learner.check_page("problem-passed")

    page.reload()  # the code is kept per problem and language
    expect(page.locator(".cm-content")).to_contain_text("bisect_right")
    page.goto(learner.base_url + "/learn/tracks/coding-interview-meta")
    expect(page.locator("li", has=page.get_by_role("link", name="Two Sum")).locator(".status-tag")).to_have_text("passed")
