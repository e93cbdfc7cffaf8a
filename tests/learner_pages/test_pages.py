"""The learner pages' server side: shells with a script policy, the development sign-in (refused
outside development), and the statement's Markdown rendered without any way to run script."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from django.test import Client

from tracks.statement import statement_html

pytestmark = pytest.mark.django_db

PAGES = [
    "/learn/",
    "/learn/sign-in",
    "/learn/signed-in",
    "/learn/tracks/coding-interview-meta",
    "/learn/problems/two-sum",
    "/learn/study-path",
    "/learn/progress",
    "/learn/reviews",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_served_with_a_script_policy_without_inline_script(path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
    html = response.content.decode()
    assert "<script>" not in html and "<script " in html  # scripts only by src


def test_the_api_gets_no_page_policy(learner_client) -> None:
    response = learner_client("alice").get("/v1/tracks")
    assert response.status_code == 200
    assert "Content-Security-Policy" not in response


def test_development_sign_in_is_refused_outside_development(settings) -> None:
    assert settings.CO_ENV == "test"
    page = Client().get("/learn/sign-in")
    assert page.status_code == 200
    assert b'name="learner"' not in page.content
    refused = Client().post("/learn/sign-in", {"learner": "alice"})
    assert refused.status_code == 403
    assert b"Development sign-in is off here" in refused.content
    assert "Location" not in refused


def test_development_sign_in_hands_a_token_over_in_the_fragment(settings, jwt_keys) -> None:
    settings.CO_ENV = "development"
    response = Client().post("/learn/sign-in", {"learner": "alice", "next": "/learn/problems/two-sum"})
    assert response.status_code == 303
    location = urlsplit(response["Location"])
    assert (location.path, location.query) == ("/learn/signed-in", "")
    fragment = parse_qs(location.fragment)
    assert fragment["next"] == ["/learn/problems/two-sum"]
    claims = jwt.decode(fragment["token"][0], jwt_keys[1], algorithms=["RS256"], issuer=settings.CO_JWT_ISSUER)
    assert claims["sub"] == "alice"
    assert claims["exp"] - claims["iat"] == 24 * 3600
    assert not response.cookies.get("co_token")


@pytest.mark.parametrize("next_path", ["https://evil.example/", "//evil.example/learn/", "/admin/", "/learn/\\\\evil"])
def test_development_sign_in_never_sends_a_learner_off_the_learner_pages(settings, next_path: str) -> None:
    settings.CO_ENV = "development"
    response = Client().post("/learn/sign-in", {"learner": "alice", "next": next_path})
    assert parse_qs(urlsplit(response["Location"]).fragment)["next"] == ["/learn/"]


@pytest.mark.parametrize("learner", ["", "   ", "x" * 256])
def test_development_sign_in_asks_again_for_a_bad_name(settings, learner: str) -> None:
    settings.CO_ENV = "development"
    response = Client().post("/learn/sign-in", {"learner": learner})
    assert response.status_code == 400
    assert b"Enter a learner name of 1 to 255 characters." in response.content


def test_development_sign_in_without_a_signing_key_says_so(settings) -> None:
    settings.CO_ENV = "development"
    settings.CO_JWT_PRIVATE_KEY = None
    response = Client().post("/learn/sign-in", {"learner": "alice"})
    assert response.status_code == 409
    assert b"No development signing key" in response.content


def test_a_statement_keeps_its_markdown_and_loses_any_script() -> None:
    text = (
        "Find **two** `i < j`.\n\n<script>alert(1)</script>\n\n"
        '<img src=x onerror="alert(2)"> [home](javascript:alert(3)) [docs](https://example.com)\n\n'
        "```\ncode <b>\n```\n"
    )
    assert statement_html(text) == (
        "<p>Find <strong>two</strong> <code>i &lt; j</code>.</p>\n\n\n"
        '<p> <a rel="noopener noreferrer nofollow">home</a> '
        '<a href="https://example.com" rel="noopener noreferrer nofollow">docs</a></p>\n'
        "<pre><code>code &lt;b&gt;\n</code></pre>"
    )
