"""Course pack uploads cannot exhaust the server: a file past `CO_COURSEPACK_MAX_BYTES` is
stopped while it arrives and nothing is stored (admin, service, `import_coursepack`), and a pack's
YAML cannot expand (aliases are refused) or grow past a node count or depth.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.http.multipartparser import MultiPartParser
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from co_project.uploads import BoundedUploadHandler
from tests.tracks import factories
from tracks.models import CoursePack, CoursePackSource, CoursePackStatus, Problem
from tracks.pack_loader import PackStructureRefused, load_pack_text
from tracks.services import CoursePackTooLarge, coursepack_dry_run, coursepack_upload

pytestmark = pytest.mark.django_db

LIMIT = 16 * 1024

# A kilobyte of nested aliases: fully expanded, `track.description` would be 9⁹ strings.
BILLION_LAUGHS = b"""format: 1
track:
  slug: laughs
  subject: coding
  title: Laughs
  version: "1"
  modules: [{slug: basics, title: Basics}]
  description: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
problems: []
"""
_LEVELS = "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n" for previous, name in zip("abcdefg", "bcdefgh", strict=True)
)
BILLION_LAUGHS = b'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + _LEVELS.encode() + BILLION_LAUGHS


@pytest.fixture(autouse=True)
def _limits(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CO_COURSEPACK_MAX_BYTES = LIMIT
    return settings.MEDIA_ROOT


@pytest.fixture
def staff(django_user_model: Any) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("curator", "curator@example.com", "pw-curator-1"))
    return client


def stored_files(media_root: Path) -> list[Path]:
    return [path for path in media_root.rglob("*") if path.is_file()] if media_root.exists() else []


def oversized_pack() -> bytes:
    """A valid pack padded with a YAML comment to twice the limit."""
    pack = factories.pack_bytes(factories.pack_document())
    return pack + b"#" + b"x" * (2 * LIMIT) + b"\n"


# --- size: refused while it arrives, nothing stored -----------------------------------------------


def test_admin_upload_past_the_limit_is_refused_with_a_clear_message_and_nothing_is_stored(staff: Client, _limits: Path) -> None:
    response = staff.post("/admin/tracks/coursepack/add/", {"file": SimpleUploadedFile("big.yaml", oversized_pack())})

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "file": [f"The file big.yaml is larger than {LIMIT} bytes, the most an upload may be; nothing was stored."]
    }
    assert f"The file big.yaml is larger than {LIMIT} bytes" in response.content.decode()
    assert CoursePack.objects.count() == 0
    assert stored_files(_limits) == []


def test_admin_upload_within_the_limit_is_stored_and_validated(staff: Client) -> None:
    content = factories.pack_bytes(factories.pack_document())
    assert len(content) <= LIMIT

    response = staff.post("/admin/tracks/coursepack/add/", {"file": SimpleUploadedFile("pack.yaml", content)})

    assert response.status_code == 302
    assert CoursePack.objects.get().status == CoursePackStatus.VALID


def test_the_upload_handler_stops_reading_the_body_past_the_limit() -> None:
    """The multipart parser reads the body through the handler: past the limit it stops, so the
    rest of the body is neither read nor stored (no file is built)."""
    body = encode_multipart(BOUNDARY, {"note": "first", "file": SimpleUploadedFile("big.yaml", b"x" * (64 * LIMIT))})
    stream = io.BytesIO(body)
    meta = {"CONTENT_TYPE": MULTIPART_CONTENT, "CONTENT_LENGTH": str(len(body))}
    handler = BoundedUploadHandler()

    post, files = MultiPartParser(meta, stream, [handler]).parse()

    assert (post.dict(), dict(files)) == ({"note": "first"}, {})
    # read at most the limit and the parser's read-ahead of two chunks, of a body 64 times the limit
    assert stream.tell() <= LIMIT + 2 * handler.chunk_size < len(body)


def test_the_service_refuses_a_pack_past_the_limit_before_storing_it(_limits: Path) -> None:
    with pytest.raises(CoursePackTooLarge) as refused:
        coursepack_upload(content=oversized_pack(), filename="big.yaml", source=CoursePackSource.COMMAND)

    assert refused.value.status_code == 413
    assert refused.value.message == f"big.yaml is larger than {LIMIT} bytes, the most a course pack may be; nothing was stored."
    assert CoursePack.objects.count() == 0
    assert stored_files(_limits) == []


@pytest.mark.parametrize("options", [[], ["--dry-run"], ["--publish"]])
def test_import_command_refuses_a_file_past_the_limit(tmp_path: Path, _limits: Path, options: list[str]) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(oversized_pack())

    with pytest.raises(CommandError) as refused:
        call_command("import_coursepack", str(path), *options, stdout=io.StringIO())

    assert str(refused.value) == f"{path} is larger than {LIMIT} bytes, the most a course pack may be; nothing was stored."
    assert (CoursePack.objects.count(), Problem.objects.count()) == (0, 0)
    assert stored_files(_limits) == []


# --- YAML: no aliases, bounded nodes and depth ---------------------------------------------------


def test_billion_laughs_is_refused_at_its_first_alias() -> None:
    assert len(BILLION_LAUGHS) <= 1024

    with pytest.raises(PackStructureRefused) as refused:
        load_pack_text(BILLION_LAUGHS.decode())

    assert refused.value.problem.startswith("uses the alias *a;")
    assert refused.value.nodes <= 20  # the values before the first alias, not 9⁹


def test_billion_laughs_upload_is_rejected_with_a_clear_message(staff: Client) -> None:
    response = staff.post("/admin/tracks/coursepack/add/", {"file": SimpleUploadedFile("laughs.yaml", BILLION_LAUGHS)})

    pack = CoursePack.objects.get()
    assert response.status_code == 302
    assert pack.status == CoursePackStatus.INVALID
    assert pack.validation_report["errors"] == [
        {
            "path": "(file)",
            "message": "uses the alias *a; anchors and aliases are not allowed in a course pack (write each value out) "
            "(line 2, column 8)",
        }
    ]
    assert Problem.objects.count() == 0


def test_a_legit_looking_pack_with_an_alias_is_rejected_with_a_clear_message(tmp_path: Path) -> None:
    """Sharing one hint list between two problems through an anchor is refused like any alias."""
    text = factories.pack_bytes(factories.pack_document()).decode()
    hints = (
        "  hints:\n  - Strings have methods.\n  - Look for a case conversion method.\n  - Call the upper-casing method on text.\n"
    )
    assert hints in text
    text = text.replace(hints, hints.replace("  hints:\n", "  hints: &shared-hints\n"), 1)
    text = text.replace(
        "  hints:\n  - Think about the plus sign.\n  - Add them.\n  - Return the sum of a and b.\n", "  hints: *shared-hints\n"
    )
    line = text.splitlines().index("  hints: *shared-hints") + 1
    path = tmp_path / "aliases.yaml"
    path.write_text(text)

    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_coursepack", str(path), "--dry-run", stdout=out)

    assert out.getvalue().splitlines() == [
        "ERROR   (file): uses the alias *shared-hints; anchors and aliases are not allowed in a course pack "
        f"(write each value out) (line {line}, column 10)",
        "invalid: 1 error(s); nothing was published",
    ]


def test_a_pack_past_the_node_limit_is_refused(settings: Any) -> None:
    settings.CO_COURSEPACK_MAX_YAML_NODES = 500
    document = factories.pack_document(
        problems=[
            factories.add_problem(
                hidden_tests=[{"category": "negatives", "input": {"a": list(range(600)), "b": 0}, "expected": 0}]
            )
        ]
    )

    check = coursepack_dry_run(content=factories.pack_bytes(document))

    assert [(e.path, e.message.split(" (line")[0]) for e in check.errors] == [
        (
            "(file)",
            "has more than 500 YAML values; split the track into smaller packs or produce large inputs with hidden_generators",
        )
    ]


def test_the_shipped_packs_stay_well_within_the_node_limit(settings: Any) -> None:
    for path in sorted((Path(settings.BASE_DIR) / "coursepacks").glob("*.yaml")):
        _document, nodes = load_pack_text(path.read_text())
        assert nodes * 20 < settings.CO_COURSEPACK_MAX_YAML_NODES, path.name


def test_deep_nesting_is_refused_with_a_clear_message() -> None:
    check = coursepack_dry_run(content=b"format: 1\ntrack: " + b"[" * 5000 + b"]" * 5000 + b"\n")

    assert [(e.path, e.message) for e in check.errors] == [("(file)", "nests deeper than 64 levels (line 2, column 71)")]
