"""The project directory is never visible inside a sandbox, wherever it is installed (issue 13,
point 5): canaries in the project dir and in var/ — of this checkout, and of a project "installed"
under /usr/local/lib (which the sandbox's read-only /usr would otherwise show) — cannot be read,
listed or found in the mount table by learner code, at every isolation level this machine has."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grading.sandbox import SandboxRun, run_in_sandbox
from tests.grading.sandbox.conftest import prime_warm_pool

pytestmark = pytest.mark.usefixtures("isolated")

CANARY = f"co-canary-{secrets.token_hex(8)}"

PY_PROBE = """
import os
def solve(paths):
    found = {}
    for path in paths:
        try:
            with open(path) as handle:
                found[path] = 'read:' + handle.read()
        except OSError as exc:
            found[path] = type(exc).__name__
        try:
            found[path + ' ls'] = sorted(os.listdir(os.path.dirname(path)))
        except OSError as exc:
            found[path + ' ls'] = type(exc).__name__
    with open('/proc/self/mountinfo') as handle:
        found['mounts'] = [line.split()[4] + ' ' + line.split(' - ')[1].split()[0] for line in handle]
    return found
"""

JS_PROBE = """
const fs = require('fs');
const path = require('path');
function solve(paths) {
  const found = {};
  for (const p of paths) {
    try { found[p] = 'read:' + fs.readFileSync(p, 'utf8'); } catch (err) { found[p] = err.code; }
    try { found[p + ' ls'] = fs.readdirSync(path.dirname(p)).sort(); } catch (err) { found[p + ' ls'] = err.code; }
  }
  found.mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\\n')
    .map((line) => line.split(' ')[4] + ' ' + line.split(' - ')[1].split(' ')[0]);
  return found;
}
"""


def _plant(directory: Path) -> list[str]:
    """A canary in `directory` and in its var/; their paths."""
    (directory / "var").mkdir(parents=True, exist_ok=True)
    paths = []
    for where in (directory, directory / "var"):
        canary = where / "co-canary.txt"  # its contents are the secret
        canary.write_text(CANARY)
        canary.chmod(0o644)  # readable by anyone: only the sandbox's view of the file system hides it
        paths.append(str(canary))
    return paths


@pytest.fixture
def checkout_canaries(settings: Any) -> Iterator[list[str]]:
    """Canaries in this checkout's project dir and var/ (settings.BASE_DIR, settings.VAR_DIR)."""
    paths = _plant(Path(settings.BASE_DIR))
    try:
        yield paths
    finally:
        for path in paths:
            Path(path).unlink(missing_ok=True)


@pytest.fixture
def usr_install(settings: Any) -> Iterator[tuple[str, list[str]]]:
    """A project "installed" under /usr/local/lib: a copy of the sandbox's code there, with a
    canary in it and in its var/, and the settings pointing at it as the project dir."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root: the /usr install must be tested there")
        pytest.skip("placing a project under /usr/local needs root")
    root = Path("/usr/local/lib") / f"co-canary-test-{secrets.token_hex(4)}"
    shutil.copytree(Path(settings.BASE_DIR) / "grading" / "sandbox", root / "grading" / "sandbox")
    try:
        paths = _plant(root)
        root.chmod(0o755)
        settings.BASE_DIR = root
        settings.VAR_DIR = root / "var"
        settings.MEDIA_ROOT = root / "var" / "media"
        settings.STATIC_ROOT = root / "var" / "static"
        yield str(root), paths
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _probe(language: str, paths: list[str]) -> dict[str, Any]:
    code = PY_PROBE if language == "python" else JS_PROBE
    result = run_in_sandbox(SandboxRun(language, code, "solve", ["paths"], [{"paths": paths}], 3000, 128))
    assert result.status == "completed" and result.tests[0].outcome == "ok", result
    return result.tests[0].value


def _assert_hidden(found: dict[str, Any], paths: list[str]) -> None:
    assert CANARY not in repr(found), found
    for path in paths:
        assert not str(found[path]).startswith("read:"), found
        listing = found[f"{path} ls"]
        assert not isinstance(listing, list) or "co-canary.txt" not in listing, found


def test_the_project_dir_of_this_checkout_is_not_visible(
    pinned: tuple[str, str], start: str, checkout_canaries: list[str]
) -> None:
    language, _ = pinned
    if start == "warm":
        prime_warm_pool(language)
    _assert_hidden(_probe(language, checkout_canaries), checkout_canaries)


def test_a_project_installed_under_usr_is_not_visible(
    pinned: tuple[str, str], start: str, usr_install: tuple[str, list[str]]
) -> None:
    """/usr is bound read-only into every sandbox: a project under /usr/local/lib must be covered."""
    language, _ = pinned
    root, paths = usr_install
    if start == "warm":
        prime_warm_pool(language)
    found = _probe(language, paths)
    _assert_hidden(found, paths)
    # Not merely unreadable (permissions): the directory is empty in the sandbox's mount table.
    assert f"{root} tmpfs" in found["mounts"], found["mounts"]
    assert found[f"{paths[0]} ls"] in ([], "ENOENT", "FileNotFoundError"), found
