"""OpenAPI at /v1/schema and Swagger UI at /docs; every operation documents its errors."""

from __future__ import annotations

import pytest
import yaml

pytestmark = pytest.mark.django_db


def _schema(client) -> dict:
    response = client.get("/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json() if "json" in response["Content-Type"] else yaml.safe_load(response.content)


def test_schema_is_public_and_lists_the_endpoints(client) -> None:
    schema = _schema(client)
    assert schema["openapi"].startswith("3.")
    assert {"/v1/tracks", "/v1/tracks/{reference}", "/v1/problems/{reference}", "/health"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["learnerJWT"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "RS256 JWT issued by the platform's main API; `sub` is the learner id.",
    }


def test_every_v1_operation_documents_errors_and_examples(client) -> None:
    schema = _schema(client)
    envelope = schema["components"]["schemas"]["ErrorEnvelope"]
    assert set(envelope["properties"]) == {"error", "request_id"}
    for path, operations in schema["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"401", "429"} <= set(responses), (method, path)
            assert {"200", "201", "202"} & set(responses), (method, path)
            for status in ("401", "429"):
                content = responses[status]["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/ErrorEnvelope"}
                assert content["examples"], (method, path, status)
            assert operation.get("summary"), (method, path)
            assert operation["security"] == [{"learnerJWT": []}]


def test_docs_page_renders_with_self_hosted_assets(client) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
    assert client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js").status_code == 200


def test_schema_generates_without_warnings(tmp_path) -> None:
    from django.core.management import call_command

    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert "/v1/tracks" in target.read_text()


def test_static_files_are_served_on_the_async_path_too() -> None:
    """The ASGI stack (what uvicorn runs) serves static files through the async-capable WhiteNoise."""
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    client = AsyncClient()
    response = async_to_sync(client.get)("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert response.status_code == 200
    assert "javascript" in response["Content-Type"]
    missing = async_to_sync(client.get)("/static/no-such-file.js")
    assert missing.status_code == 404


def test_request_schemas_say_what_each_subject_and_mode_takes(client) -> None:
    """One request shape per submission subject (told apart by `subject`) and per session mode,
    so that a body the schema allows is one the API accepts (schemathesis checks the rest)."""
    schema = _schema(client)
    components = schema["components"]["schemas"]
    submission = components["SubmissionCreateRequest"]
    assert submission["discriminator"]["propertyName"] == "subject"
    assert set(submission["discriminator"]["mapping"]) == {"coding", "math", "systems"}
    math = components["SubmissionMathCreateRequest"]["properties"]
    assert components[math["payload"]["$ref"].rsplit("/", 1)[1]]["required"] == ["expression"]
    assert components["SubmitOnlyKindEnum"]["enum"] == ["submit"]  # only code can be run
    session = components["SessionCreateRequest"]
    assert [ref["$ref"].rsplit("/", 1)[1] for ref in session["oneOf"]] == [
        "SessionPracticeCreateRequest",
        "SessionTrackCreateRequest",
        "SessionMockCreateRequest",
    ]
    assert components["SessionTrackCreateRequest"]["required"] == ["mode", "subject", "track_id"]
    assert "duration_minutes" not in components["SessionPracticeCreateRequest"]["properties"]
    assert components["SessionActionRequest"]["required"] == ["action"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                assert operation["requestBody"]["required"] is True, (method, path)


def test_lists_document_their_page_parameters_and_the_400(client) -> None:
    schema = _schema(client)
    for path in ("/v1/tracks", "/v1/review-queue"):
        operation = schema["paths"][path]["get"]
        parameters = {parameter["name"]: parameter["schema"] for parameter in operation["parameters"]}
        assert parameters["limit"] == {"type": "integer", "minimum": 1, "maximum": 100}
        assert parameters["cursor"] == {"type": "string"}
        assert "400" in operation["responses"]
        page = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        assert schema["components"]["schemas"][page]["required"] == ["items", "next"]


def test_optional_parts_of_a_problem_are_nullable(client) -> None:
    problem = _schema(client)["components"]["schemas"]["PublicProblem"]["properties"]
    for name in ("module", "math", "rubric", "track", "float_tolerance"):
        assert problem[name]["nullable"] is True, name
