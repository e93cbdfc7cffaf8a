"""One harness contract for learner code and reference solutions: a JavaScript program may export
its function (`module.exports = …`), and is graded as a reference exporting it is validated
(tests/tracks/test_reference_check.py)."""

from __future__ import annotations

import pytest

from tests.tracks.factories import pack_document, publish, shout_problem

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    "code",
    [
        "function shout(text) {\n  return text.toUpperCase();\n}\nmodule.exports = shout;\n",
        "module.exports = (text) => text.toUpperCase();\n",
        "module.exports = { shout: (text) => text.toUpperCase() };\n",
        "exports.shout = function (text) {\n  return text.toUpperCase();\n};\n",
    ],
    ids=["exports-the-function", "arrow", "object", "exports-alias"],
)
def test_learner_code_that_exports_its_function_is_graded(api, code: str) -> None:
    shout = shout_problem()
    shout["languages"]["javascript"]["reference"] = code  # the same program validates as a reference
    publish(pack_document(problems=[shout]))

    response = api.post(
        "/v1/submissions",
        {"problem_id": "shout", "subject": "coding", "payload": {"language": "javascript", "code": code}},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["error"]) == ("passed", None)
    assert body["hidden"]["passed"] == body["hidden"]["total"] > 0
