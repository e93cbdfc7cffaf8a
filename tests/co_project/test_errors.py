"""The error envelope everywhere, X-Request-ID on every response, CORS."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def _assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert body["request_id"] == response["X-Request-ID"]
    return body


def test_unknown_route_is_404_envelope(api) -> None:
    _assert_envelope(api.get("/v1/nope"), 404, "not_found")
    _assert_envelope(api.get("/definitely/not/here"), 404, "not_found")


def test_wrong_method_is_405_envelope(api) -> None:
    _assert_envelope(api.post("/v1/tracks", {}, format="json"), 405, "method_not_allowed")
    _assert_envelope(api.delete("/health"), 405, "method_not_allowed")


def test_validation_error_names_the_field(api) -> None:
    body = _assert_envelope(api.get("/v1/tracks?subject=chemistry"), 400, "validation_error")
    assert body["error"]["fields"] == {"subject": ['"chemistry" is not a valid choice.']}
    assert body["error"]["message"] == 'subject: "chemistry" is not a valid choice.'


@pytest.mark.parametrize("path", ["/v1/tracks", "/v1/sessions", "/v1/submissions", "/v1/mastery", "/v1/tutor/messages"])
def test_options_describes_the_route(api, path: str) -> None:
    """OPTIONS answers 200 on every route, including those whose views validate each action with
    its own serializer (it was a 500 there); the schema at /v1/schema describes the fields."""
    response = api.options(path)
    assert response.status_code == 200, response.content
    assert set(response.json()) == {"name", "description", "renders", "parses"}


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/tracks?subject=", "subject"),
        ("/v1/mastery?key_type=", "key_type"),
        ("/v1/mastery?key_type=module", "key_type"),
        ("/v1/recommendations/next?subject=", "subject"),
        ("/v1/recommendations/next?track=", "track"),
        ("/v1/review-queue?limit=0", "limit"),
        ("/v1/review-queue?cursor=bz14", "cursor"),  # base64 of "o=x": not an offset
    ],
)
def test_a_filter_or_page_parameter_outside_its_documented_values_is_400(api, path: str, field: str) -> None:
    """An empty or unknown filter value is refused like any other invalid input, not read as
    "no filter"."""
    body = _assert_envelope(api.get(path), 400, "validation_error")
    assert list(body["error"]["fields"]) == [field]


def test_unexpected_exception_is_500_without_internals(api, monkeypatch) -> None:
    from tracks import selectors

    def explode(**kwargs):
        raise RuntimeError("secret internal detail /etc/passwd")

    monkeypatch.setattr(selectors, "track_list", explode)
    response = api.get("/v1/tracks")
    body = _assert_envelope(response, 500, "internal_error")
    assert "secret internal detail" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert body["error"]["fields"] == {}


def test_request_id_is_echoed(api) -> None:
    response = api.get("/v1/tracks", HTTP_X_REQUEST_ID="client-req-123")
    assert response["X-Request-ID"] == "client-req-123"


def test_request_id_is_generated_when_absent_or_malformed(api) -> None:
    generated = api.get("/v1/tracks")["X-Request-ID"]
    assert len(generated) == 32 and int(generated, 16) >= 0
    malformed = api.get("/v1/tracks", HTTP_X_REQUEST_ID="bad id\nwith newline")["X-Request-ID"]
    assert malformed != "bad id\nwith newline" and len(malformed) == 32


def test_request_id_on_errors_and_unauthenticated_routes(client) -> None:
    assert client.get("/health", HTTP_X_REQUEST_ID="h-1")["X-Request-ID"] == "h-1"
    assert client.get("/v1/tracks", HTTP_X_REQUEST_ID="u-1")["X-Request-ID"] == "u-1"
    assert client.get("/nowhere", HTTP_X_REQUEST_ID="n-1")["X-Request-ID"] == "n-1"


def test_malformed_json_body_is_400_envelope(api) -> None:
    response = api.generic("POST", "/v1/tracks", "{not json", content_type="application/json")
    assert response.status_code in {400, 405}


def test_cors_allows_configured_origins_only(api, settings) -> None:
    allowed = api.get("/v1/tracks", HTTP_ORIGIN="https://coding.scimigo.com")
    assert allowed["Access-Control-Allow-Origin"] == "https://coding.scimigo.com"
    assert "X-Request-ID" in allowed["Access-Control-Expose-Headers"]
    denied = api.get("/v1/tracks", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in denied


def test_cors_preflight_allows_authorization_and_idempotency_key(client) -> None:
    response = client.options(
        "/v1/tracks",
        HTTP_ORIGIN="https://app.scimigo.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,idempotency-key",
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://app.scimigo.com"
    allowed = response["Access-Control-Allow-Headers"]
    assert "authorization" in allowed and "idempotency-key" in allowed
