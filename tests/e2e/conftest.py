"""The learner pages in a real browser: Playwright drives Debian's chromium (never a downloaded
one) against a real uvicorn process started here, on its own migrated and seeded SQLite file, in
development mode (the development sign-in page is part of what is tested). Without chromium or
Playwright these tests skip on a workstation and fail under CI=true (`.ci/run` installs chromium
through `make ci-system-packages`).

Every page is checked with axe-core (vendored in tests/e2e/vendor, never served) for serious or
critical violations, and any Content-Security-Policy violation in the console fails the test.
Screenshots go to var/screenshots/.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.co_project.test_health import running_server

REPO_ROOT = Path(__file__).parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SCREENSHOTS = REPO_ROOT / "var" / "screenshots"
# A tutor stream sends its hint in pieces this far apart, so the page visibly fills in.
HINT_CHUNK_DELAY_SECONDS = "0.01"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the browser tests: `make ci-system-packages` installs chromium)")
    pytest.skip(reason)


# Module scope: Playwright's sync API runs an event loop in the main thread while it is started,
# which later tests' `async_to_sync` refuses; it must be stopped before the next module runs.
@pytest.fixture(scope="module")
def playwright_browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (requirements-dev.txt)")
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright.sync_api import expect

    # Grading (a cold SymPy, a sandbox run) on a loaded two-core CI machine can take seconds.
    expect.set_options(timeout=30_000)
    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()


@pytest.fixture(scope="module")
def learner_site(tmp_path_factory: pytest.TempPathFactory, jwt_keys: tuple[str, str]) -> Iterator[str]:
    """A development server with the pilot content (`manage.py seed`); eager grading in-process."""
    workdir = tmp_path_factory.mktemp("learner-site")
    dropped = {"CO_DB_URL", "CO_REDIS_URL", "CO_CELERY_BROKER_URL", "CO_TUTOR_BASE"}
    env = {
        **{key: value for key, value in os.environ.items() if key not in dropped},
        "CO_ENV": "development",
        "CO_DB_URL": f"sqlite:///{workdir / 'site.sqlite3'}",
        "CO_JWT_PRIVATE_KEY": jwt_keys[0],
        "CO_JWT_PUBLIC_KEY": jwt_keys[1],
        "CO_MEDIA_ROOT": str(workdir / "media"),
        "CO_IN_PROCESS_BEAT": "false",
        "CO_TUTOR_BUILTIN_CHUNK_DELAY_SECONDS": HINT_CHUNK_DELAY_SECONDS,
        "CO_RATE_LIMIT": "10000/min",
        # Every submission answers 202 at once, so the pages always take the pending → polling path.
        "CO_SUBMISSION_WAIT_SECONDS": "0",
    }
    for command in (["migrate", "--no-input"], ["seed"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *command], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout + done.stderr
    with running_server(env, workdir) as base_url:
        yield base_url


class LearnerBrowser:
    """One learner's browser tab, with the checks every page gets."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.csp_violations: list[str] = []
        page.on("console", self._console)
        page.set_default_timeout(30_000)

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.csp_violations.append(message.text)

    def goto(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def sign_in(self, learner: str, next_path: str = "/learn/", *, check: bool = False) -> None:
        self.goto(next_path)
        self.page.wait_for_url("**/learn/sign-in**")
        if check:
            self.check_page("sign-in")
        self.page.get_by_label("Learner name").fill(learner)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(self.base_url + next_path)
        assert "#" not in self.page.url  # the token left the address bar

    def check_page(self, name: str) -> None:
        """axe-core finds no serious or critical violation; no CSP violation so far; a screenshot."""
        violations = self.page.evaluate(
            """async () => {
                const result = await axe.run(document, {resultTypes: ["violations"]});
                return result.violations
                    .filter((v) => v.impact === "serious" || v.impact === "critical")
                    .map((v) => v.id + ": " + v.help + " — " + v.nodes.map((n) => n.target.join(" ")).join(", "));
            }"""
        )
        assert violations == [], f"{name}: accessibility violations"
        assert self.csp_violations == [], f"{name}: CSP violations"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def open_browser(playwright_browser: Any, learner_site: str) -> Iterator[Any]:
    """open_browser(width=1280) → a LearnerBrowser in a fresh context (its own sessionStorage)."""
    contexts: list[Any] = []

    def open_one(width: int = 1280, height: int = 900) -> LearnerBrowser:
        context = playwright_browser.new_context(viewport={"width": width, "height": height})
        # Injected by the browser itself, not through the page, so the page's CSP stays as served.
        context.add_init_script(path=str(AXE))
        contexts.append(context)
        return LearnerBrowser(context.new_page(), learner_site)

    yield open_one
    for context in contexts:
        context.close()
