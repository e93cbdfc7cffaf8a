"""The learner's journeys of issue 17 in a real browser, through the pages and the public API only.
What a page shows is checked against the public API's own answer, fetched by the test with its
own token for the same learner."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import httpx
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


# A new path on the pilot track opens with the first module's easiest problems (difficulty 1);
# solved here so that a study task can fail first and then pass.
FIRST_TASK_SOLUTIONS = {
    "squares-of-sorted": "def sorted_squares(nums):\n    return sorted(x * x for x in nums)\n",
    "clean-palindrome": (
        "def is_clean_palindrome(s):\n"
        "    kept = [c.lower() for c in s if c.isascii() and c.isalnum()]\n"
        "    return kept == kept[::-1]\n"
    ),
}
STATUS_WORDS = {"solved": "solved", "attempted": "attempted", "not_started": "not started"}


def _api_get(base_url: str, token: str, path: str) -> Any:
    """The public API's answer, fetched by the test itself (not through the page)."""
    response = httpx.get(base_url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def _percent(share: float | None) -> str:
    """A share as the page writes it (JavaScript's Math.round, halves up)."""
    return "–" if share is None else f"{math.floor(share * 100 + 0.5)}%"


def _assert_progress_page_matches_the_api(page: Any, base_url: str, token: str) -> dict:
    """The progress page (loaded) shows the real endpoints' figures: mastery per topic, accuracy
    per module with completed/total, overall accuracy and current difficulty. Returns the
    path's progress as the endpoint answered it."""
    expect(page.locator("body[data-loaded=true]")).to_have_count(1)
    path = _api_get(base_url, token, "/v1/study-paths/active")["path"]
    progress = _api_get(base_url, token, f"/v1/study-paths/{path['id']}/progress")
    mastery = _api_get(base_url, token, "/v1/mastery?key_type=topic")["items"]

    accuracy = [[slug, f"{_percent(m['accuracy'])} ({m['completed']}/{m['total']})"] for slug, m in progress["modules"].items()]
    expect(page.locator("#chart-accuracy svg text.value")).to_have_text([text for _, text in accuracy])
    expect(page.locator("#chart-accuracy svg rect.bar")).to_have_count(len(accuracy))
    shown = page.locator("#chart-accuracy table tbody tr").evaluate_all(
        "rows => rows.map((row) => [...row.cells].map((cell) => cell.textContent))"
    )
    assert shown == accuracy
    summary = [f"Overall accuracy {_percent(progress['overall_accuracy'])}"] if progress["overall_accuracy"] is not None else []
    if progress["current_difficulty"] is not None:
        summary.append(f"current difficulty {progress['current_difficulty']}/5")
    expect(page.locator("#progress-summary")).to_have_text(" · ".join(summary))

    scores = [f"{row['score']}{' ✓' if row['mastered'] else ''}" for row in mastery]
    expect(page.locator("#chart-mastery svg text.value")).to_have_text(scores)
    return progress


def _replace_code(page: Any, code: str) -> None:
    editor = page.locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(code)


def test_two_sum_from_sign_in_to_a_passing_submit_with_a_streamed_hint(open_browser, make_token: Callable[..., str]) -> None:
    learner = open_browser()
    page = learner.page
    learner.sign_in("alice", check=True)
    expect(page.get_by_text("Signed in as alice")).to_be_visible()
    expect(page.locator("#tracks .card")).to_have_count(3)
    learner.check_page("home")

    page.get_by_role("link", name="Meta Coding Interview Prep (Pilot)").click()
    expect(page.get_by_role("heading", name="Meta Coding Interview Prep (Pilot)")).to_be_visible()
    expect(page.locator(".module").first).to_be_visible()
    expect(page.locator("ul.problems .status-tag").first).to_have_text("not started")

    page.get_by_role("link", name="Two Sum").click()
    expect(page.get_by_role("heading", name="Two Sum", level=1)).to_be_visible()
    expect(page.locator("#statement strong").first).to_have_text("different positions")  # Markdown, rendered
    expect(page.locator("#examples tbody tr")).to_have_count(3)
    expect(page.locator(".cm-content")).to_contain_text("def two_sum(nums, t):")

    _replace_code(page, "def two_sum(nums, t):\n    return [0, 1\n")
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#results-body .error-box")).to_have_text(
        "syntax error: SyntaxError: '[' was never closed (line 2, column 12)"
    )

    _replace_code(page, WRONG_TWO_SUM)
    page.get_by_text("Your own tests for Run").click()
    page.get_by_label("One test per line").fill('{"input": {"nums": [5, 5], "t": 10}, "expected": [0, 1]}')
    with page.expect_response(lambda response: response.url.endswith("/v1/submissions")) as posted:
        page.keyboard.press("Control+Enter")  # Run
    assert posted.value.status == 202  # pending: the page polls GET /v1/submissions/{id}
    expect(page.locator("#results-status")).to_have_text(re.compile(r"^Run: failed"))
    rows = page.locator("#results-body table.tests tbody tr")
    expect(rows).to_have_count(4)  # three visible tests and the learner's own
    expect(rows.nth(0).locator(".outcome")).to_have_text("Passed")
    expect(rows.nth(2).locator(".outcome")).to_have_text("Wrong answer")
    expect(rows.nth(3).locator("td").first).to_have_text("yours 1")
    expect(rows.nth(3).locator(".outcome")).to_have_text("Passed")
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
    # The track page's status per problem comes from the API (/v1/tracks/{id}/my-results): two-sum
    # is solved after one failed and one passing submit (runs do not count); the rest not started.
    page.goto(learner.base_url + "/learn/tracks/coding-interview-meta")
    results = _api_get(learner.base_url, make_token("alice"), "/v1/tracks/coding-interview-meta/my-results")
    expect(page.locator("ul.problems .status-tag")).to_have_text([STATUS_WORDS[row["status"]] for row in results["problems"]])
    two_sum = next(row for row in results["problems"] if row["slug"] == "two-sum")
    assert (two_sum["status"], two_sum["attempts"], two_sum["last_verdict"]) == ("solved", 2, "passed")
    assert results["totals"]["solved"] == 1 and results["totals"]["attempted"] == 0
    two_sum_row = page.locator("li", has=page.get_by_role("link", name="Two Sum"))
    expect(two_sum_row.locator(".status-tag")).to_have_text("solved")
    expect(two_sum_row.locator(".attempts")).to_have_text("· 2 attempts")
    expect(page.locator("#modules")).to_contain_text(re.compile(r"Outcomes: hash-map \(mastery \d+/100\)"))
    learner.check_page("track")
    expect(page.get_by_role("heading", name="1. Arrays & Strings")).to_be_visible()


def test_a_math_answer_with_steps_and_a_live_preview(open_browser) -> None:
    learner = open_browser()
    page = learner.page
    learner.sign_in("maria", "/learn/problems/expand-binomial-square")
    expect(page.get_by_role("heading", name="Expand a Binomial Square", level=1)).to_be_visible()
    expect(page.locator("#math-form")).to_have_text("Variables: x · required form: expanded")
    page.get_by_label("Steps (one per line)").fill("(x + 3)*(x + 3)\nx*x + 3*x + 3*x + 9")
    page.get_by_label("Final expression").fill("x^2 + 6x + 9")
    expect(page.locator("#math-preview sup")).to_have_text("2")  # the live preview
    learner.check_page("problem-math")

    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#results-status")).to_have_text(re.compile(r"^Submission: passed"))
    expect(page.locator("#results-body")).to_contain_text("Your answer is equivalent")
    expect(page.locator("#results-body ol.steps li")).to_have_count(2)
    learner.check_page("problem-math-passed")


def test_a_systems_answer_shows_its_rubric_dimensions(open_browser) -> None:
    learner = open_browser()
    page = learner.page
    learner.sign_in("sam", "/learn/")
    page.get_by_label("Subject").select_option("systems")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#tracks .card")).to_have_count(1)
    page.locator("#tracks .card a").click()
    page.locator("ul.problems a").first.click()
    expect(page.locator("#rubric li").first).to_be_visible()
    page.get_by_label("Your design").fill("A cache in front of the database, sharded by key, with replicas and TTLs.")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#results-body")).to_contain_text(re.compile(r"Rubric: \d+ / \d+"))
    learner.check_page("problem-systems")


def test_a_study_path_task_updates_the_progress_charts_and_stays_private(open_browser, make_token: Callable[..., str]) -> None:
    learner = open_browser()
    page = learner.page
    token = make_token("paula")
    learner.sign_in("paula", "/learn/progress")
    expect(page.locator("#chart-mastery")).to_contain_text("No graded attempts yet")
    expect(page.locator("#chart-accuracy")).to_contain_text("Start a study path")
    expect(page.locator("#chart-reviews svg rect.bar")).to_have_count(7)

    page.get_by_role("link", name="Study path").click()
    page.get_by_label("Track").select_option("coding-interview-meta")
    page.get_by_role("button", name="Start a study path").click()
    expect(page.get_by_role("heading", name="Your path on Meta Coding Interview Prep (Pilot)")).to_be_visible()
    expect(page.locator("#path-create")).to_be_hidden()
    plan = page.locator("#plan tbody tr")
    expect(plan.first).to_be_visible()
    learner.check_page("study-path")

    page.locator("#next-task-line a").click()
    page.wait_for_url(re.compile(r"/learn/problems/[^?]+\?task="))
    task_url = page.url
    slug = re.search(r"/learn/problems/([^?]+)\?", task_url).group(1)
    assert slug in FIRST_TASK_SOLUTIONS, f"the path opened with {slug}: add its solution to FIRST_TASK_SOLUTIONS"
    expect(page.locator("#task-banner")).to_contain_text("Study task #1")
    page.get_by_role("button", name="Submit").click()  # the starter code: graded, and it fails
    expect(page.locator("#results-status")).to_have_text(re.compile(r"^Submission: failed"))

    # A study task's submits count on the track page too (the same pipeline).
    page.goto(learner.base_url + "/learn/tracks/coding-interview-meta")
    task_problem = page.locator("li", has=page.locator(f'a[href="/learn/problems/{slug}"]'))
    expect(task_problem.locator(".status-tag")).to_have_text("attempted")
    expect(task_problem.locator(".attempts")).to_have_text("· 1 attempt, last failed")
    learner.check_page("track-attempted")

    # One failed attempt: the task is still open (a second attempt is allowed), its module has a
    # graded attempt and no pass.
    page.get_by_role("link", name="Progress").click()
    expect(page.locator("#chart-mastery svg rect.bar")).not_to_have_count(0)  # a bar per topic attempted
    expect(page.locator("#chart-difficulty svg circle.point")).not_to_have_count(0)
    progress = _assert_progress_page_matches_the_api(page, learner.base_url, token)
    module = next(slug for slug, figures in progress["modules"].items() if figures["accuracy"] is not None)
    assert (progress["modules"][module]["accuracy"], progress["modules"][module]["completed"]) == (0, 0)
    learner.check_page("progress")

    page.goto(task_url)
    expect(page.locator("#task-banner")).to_contain_text("Study task #1")
    _replace_code(page, FIRST_TASK_SOLUTIONS[slug])
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#results-status")).to_have_text(re.compile(r"^Submission: passed"))

    # The charts follow: one pass in two graded attempts, one task completed in that module.
    page.get_by_role("link", name="Progress").click()
    progress = _assert_progress_page_matches_the_api(page, learner.base_url, token)
    assert (progress["modules"][module]["accuracy"], progress["modules"][module]["completed"]) == (0.5, 1)
    assert progress["overall_accuracy"] == 0.5
    bar = page.locator("#chart-accuracy svg text.value").nth(list(progress["modules"]).index(module))
    expect(bar).to_have_text(f"50% (1/{progress['modules'][module]['total']})")
    learner.check_page("progress-with-module-accuracy")

    page.goto(learner.base_url + "/learn/tracks/coding-interview-meta")
    expect(task_problem.locator(".status-tag")).to_have_text("solved")
    expect(task_problem.locator(".attempts")).to_have_text("· 2 attempts")

    page.get_by_role("link", name="Reviews").click()
    expect(page.locator("#reviews tbody tr").first).to_be_visible()
    learner.check_page("reviews")

    other = open_browser()
    other.sign_in("oscar", "/learn/study-path")
    expect(other.page.locator("#path-status")).to_have_text(re.compile("."))
    expect(other.page.locator("#path")).to_be_hidden()
    other.page.goto(task_url)
    expect(other.page.locator("#task-banner")).to_have_class(re.compile("error"))
    expect(other.page.locator("#task-banner")).to_contain_text("No such")


def test_the_problem_page_is_usable_at_360_pixels(open_browser) -> None:
    learner = open_browser(width=360, height=780)
    page = learner.page
    learner.sign_in("nina", "/learn/problems/two-sum")
    expect(page.locator(".cm-content")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    learner.check_page("problem-360px")


def test_the_pages_send_a_script_policy_without_unsafe_inline(learner_site) -> None:
    import httpx

    for path in ("/learn/", "/learn/sign-in", "/learn/problems/two-sum", "/learn/progress"):
        policy = httpx.get(learner_site + path, timeout=30).headers["content-security-policy"]
        assert "script-src 'self';" in policy, path
        assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";", 1)[0]
