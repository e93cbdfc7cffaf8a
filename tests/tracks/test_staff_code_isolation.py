"""Staff-authored code is untrusted too (DESIGN §5): generators and reference solutions run only in
the learner sandbox, at validation, in the admin's "validate again" and at publish; staff math is
read only by the learners' whitelist parser.

The attacks here are what a hostile pack would try from inside a generator or a reference: read
the server's environment (its own, `/proc/<parent>/environ`, `/proc/1/environ`, the server
process's), open the project's `.env` and a canary file in the project dir, connect to
PostgreSQL, Redis and a listener of the test's on loopback, start a double-forked daemon that
would write a marker later, and raise an exception carrying everything it found. What staff see
must carry none of the planted secrets, no connection may arrive, and nothing may survive.
"""

from __future__ import annotations

import ast
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from tests.grading.sandbox.conftest import isolated  # noqa: F401 - the fixture: real isolation, or fail in CI
from tests.grading.sandbox.helpers import SANDBOX_ENV
from tests.tracks import factories
from tracks.models import CoursePack, CoursePackSource, CoursePackStatus, Problem
from tracks.services import CoursePackInvalid, coursepack_dry_run, coursepack_publish, coursepack_upload

pytestmark = pytest.mark.django_db

DAEMON_DELAY_SECONDS = 2
PATIENCE_SECONDS = 5.0
PORTS = (5432, 6379)
# What a sandboxed program may see of an environment: the sandbox's own (PWD where a shell sets it).
SANDBOX_ENTRIES = {f"{name}={value}" for name, value in {**SANDBOX_ENV, "PWD": "/tmp"}.items()}


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


class Listener:
    """A loopback TCP listener that counts who connects (staff code must not reach it)."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.1)
        self.port = self.socket.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.socket.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.socket.close()


@dataclass
class Canaries:
    secrets: list[str]  # nothing staff see may contain any of these
    paths: list[str]  # files the attack reads
    ports: list[int]  # where the attack connects
    listener: Listener
    marker: Path  # what the daemon writes later, if it survived
    token: str  # in the daemon's command line

    @property
    def daemon_script(self) -> str:
        # `sleep` sums its arguments: the token (a tiny number of seconds) names the daemon's
        # processes; after the marker it lingers, so a survivor is still there to be seen.
        return f"sleep {DAEMON_DELAY_SECONDS} {self.token}; echo escaped > {self.marker}; sleep 60 {self.token}"

    def survivors(self) -> list[str]:
        """Command lines of every process on the machine (any uid) that carries the token."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    command = handle.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if self.token in command:
                found.append(f"{entry}: {command}")
        return found

    def assert_nothing_leaked(self, *shown: str) -> None:
        for text in shown:
            for secret in self.secrets:
                assert secret not in text, f"a planted secret reached what staff see: {text[:2000]}"

    def assert_nothing_survived(self) -> None:
        deadline = time.monotonic() + PATIENCE_SECONDS
        while (left := self.survivors()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert left == [], f"processes the staff code started are still running: {left}"
        time.sleep(DAEMON_DELAY_SECONDS + 1)
        assert not self.marker.exists(), "a daemon the staff code started wrote its marker afterwards"
        assert self.listener.accepted == 0, "staff code connected to a loopback listener"


@pytest.fixture
def canaries(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Canaries]:
    """Secrets planted in this (the server's) process environment and in the project directory."""
    planted = {
        "CO_SECRET_KEY": f"canary-co-secret-key-{secrets.token_hex(8)}",
        "DJANGO_SECRET_KEY": f"canary-django-secret-key-{secrets.token_hex(8)}",
        "CO_CANARY_TOKEN": f"canary-env-{secrets.token_hex(8)}",
    }
    for name, value in planted.items():
        monkeypatch.setenv(name, value)
    project = Path(django_settings.BASE_DIR)
    canary_file = project / f"canary-{secrets.token_hex(4)}.env"
    file_secret = f"canary-file-{secrets.token_hex(8)}"
    canary_file.write_text(f"CO_SECRET_KEY={file_secret}\n")
    # The server's environment as the kernel shows it (/proc/<pid>/environ: what it started with).
    with open(f"/proc/{os.getpid()}/environ", "rb") as handle:
        started_with = handle.read().decode(errors="replace").split("\0")
    forbidden = [*planted.values(), file_secret, django_settings.SECRET_KEY]
    forbidden += [entry for entry in started_with if "=" in entry and entry not in SANDBOX_ENTRIES and len(entry) >= 12]
    dotenv = project / ".env"
    if dotenv.exists():  # a developer's real .env: its values must not leak either
        forbidden += [line.split("=", 1)[1].strip() for line in dotenv.read_text().splitlines() if "=" in line]
    listener = Listener()
    try:
        yield Canaries(
            secrets=[value for value in forbidden if len(value) >= 8],
            paths=[str(dotenv), str(canary_file), "/proc/1/environ", f"/proc/{os.getpid()}/environ"],
            ports=[*PORTS, listener.port],
            listener=listener,
            marker=tmp_path / "escaped",
            token=f"0.000{secrets.randbelow(10**12):012d}",
        )
    finally:
        listener.close()
        canary_file.unlink()


PYTHON_PROBE = """\
import ast
import json
import os
import re
import socket


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read(1 << 16).decode("latin-1")
    except Exception:
        return ""


def _port(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return "open"
    except Exception as exc:
        return type(exc).__name__


def _daemon():
    child = os.fork()
    if child == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                null = os.open("/dev/null", os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.execv("/bin/sh", ["/bin/sh", "-c", DAEMON])
        finally:
            os._exit(0)
    os.waitpid(child, 0)


def probe():
    texts = ["\\n".join("%s=%s" % item for item in os.environ.items())]
    texts += [_read(path) for path in PATHS + ["/proc/%d/environ" % os.getppid()]]
    found = sorted({part for text in texts for part in re.split("[\\x00\\n]", text) if "=" in part})
    ports = " ".join("%d=%s" % (port, _port(port)) for port in PORTS)
    _daemon()
    raise RuntimeError("ports: %s; found: %s" % (ports, found))
"""

JAVASCRIPT_PROBE = """\
const load = typeof require === "function" ? require : process.mainModule.require;
const fs = load("fs");
const childProcess = load("child_process");

function read(path) {
  try {
    return fs.readFileSync(path, "latin1");
  } catch (err) {
    return "";
  }
}

function port(number) {
  const script = `const s = require("net").connect(${number}, "127.0.0.1");
    s.on("connect", () => { process.stdout.write("open"); process.exit(0); });
    s.on("error", (e) => { process.stdout.write(e.code || "error"); process.exit(0); });
    setTimeout(() => process.exit(0), 1000);`;
  const options = { encoding: "utf8", timeout: 5000 };
  const child = childProcess.spawnSync(process.execPath, ["--max-old-space-size=32", "-e", script], options);
  return child.stdout || (child.error ? child.error.code : `status ${child.status}`);
}

function probe() {
  const environment = Object.entries(process.env).map(([name, value]) => `${name}=${value}`).join("\\n");
  const texts = [environment, ...PATHS.map(read), read(`/proc/${process.ppid}/environ`)];
  const found = [...new Set(texts.flatMap((text) => text.split(/[\\0\\n]/)).filter((part) => part.includes("=")))].sort();
  const ports = PORTS.map((number) => `${number}=${port(number)}`).join(" ");
  childProcess.spawnSync("/bin/sh", ["-c", `( ${DAEMON} ) </dev/null >/dev/null 2>&1 &`]);
  throw new Error(`ports: ${ports}; found: ${JSON.stringify(found)}`);
}
"""


def probe_source(language: str, canaries: Canaries, tail: str) -> str:
    """The attack with the places it looks, then `tail` (the function the pack names)."""
    constants = {"PATHS": canaries.paths, "PORTS": canaries.ports, "DAEMON": canaries.daemon_script}
    if language == "python":
        header = "".join(f"{name} = {value!r}\n" for name, value in constants.items())
        return header + PYTHON_PROBE + "\n\n" + tail
    header = "".join(f"const {name} = {json.dumps(value)};\n" for name, value in constants.items())
    return header + JAVASCRIPT_PROBE + "\n" + tail


def attacking_generator_pack(canaries: Canaries) -> dict[str, Any]:
    shout = factories.shout_problem()
    shout["hidden_generators"][0]["source"] = probe_source("python", canaries, "def generate(rng, index):\n    probe()\n")
    return factories.pack_document(problems=[shout])


def attacking_reference_pack(language: str, canaries: Canaries) -> dict[str, Any]:
    # Limits generous enough for the attack (it starts processes): it fails by its own exception.
    shout = factories.shout_problem(hidden_generators=[], limits={"time_ms": 5000, "memory_mb": 256})
    tail = "def shout(text):\n    probe()\n" if language == "python" else "function shout(text) {\n  probe();\n}\n"
    shout["languages"][language]["reference"] = probe_source(language, canaries, tail)
    return factories.pack_document(problems=[shout])


def assert_attack_contained(message: str, canaries: Canaries) -> None:
    """The attack's own report (its exception's message): no port reached, nothing found beyond
    the sandbox's own environment."""
    assert "ports: " in message and "; found: [" in message, message
    ports, _, found = message.split("ports: ", 1)[1].partition("; found: ")
    assert dict(item.split("=", 1) for item in ports.split()).keys() == {str(port) for port in canaries.ports}, message
    assert "=open" not in ports, message
    entries = ast.literal_eval(found[: found.rindex("]") + 1])
    assert set(entries) <= SANDBOX_ENTRIES, message


def test_a_generator_runs_isolated_at_validation_in_the_admin_and_at_publish(
    isolated: str,  # noqa: F811
    canaries: Canaries,
    client,
    django_user_model,
) -> None:
    content = factories.pack_bytes(attacking_generator_pack(canaries))
    pack = coursepack_upload(content=content, filename="attack.yaml", source=CoursePackSource.ADMIN)
    staff = django_user_model.objects.create_superuser("staff", "staff@example.com", "pw-123456789")
    client.force_login(staff)

    # The admin's "validate again", then the report page staff read.
    response = client.post(f"/admin/tracks/coursepack/{pack.pk}/validate/", follow=True)
    page = client.get(f"/admin/tracks/coursepack/{pack.pk}/change/").content.decode()
    # Publishing validates again.
    with pytest.raises(CoursePackInvalid) as refused:
        coursepack_publish(pack=pack)

    pack.refresh_from_db()
    errors = pack.validation_report["errors"]
    canaries.assert_nothing_leaked(json.dumps(pack.validation_report), page, response.content.decode(), str(refused.value.fields))
    for error in errors:
        assert_attack_contained(error["message"], canaries)
    canaries.assert_nothing_survived()
    assert [error["path"] for error in errors] == ["problems[shout].hidden_generators[0]"]
    assert errors[0]["message"].startswith("generator failed: RuntimeError: ports: ")
    assert "generator failed: RuntimeError: ports: " in page
    assert refused.value.fields == {"errors": errors}
    assert pack.status == CoursePackStatus.INVALID
    assert not Problem.objects.exists()


@pytest.mark.parametrize("language", ["python", "javascript"])
def test_a_reference_solution_runs_isolated_at_validation(
    isolated: str,  # noqa: F811
    canaries: Canaries,
    language: str,
) -> None:
    report = coursepack_dry_run(content=factories.pack_bytes(attacking_reference_pack(language, canaries))).report()

    canaries.assert_nothing_leaked(json.dumps(report))
    for error in report["errors"]:
        assert_attack_contained(error["message"], canaries)
    canaries.assert_nothing_survived()
    # The same exception on every test: said once, at the reference.
    assert [error["path"] for error in report["errors"]] == [f"problems[shout].languages.{language}"]
    assert report["errors"][0]["message"].startswith(f"{language} reference failed on every test: runtime_error ")
    assert report["ok"] is False


def test_production_without_isolation_refuses_to_run_staff_code(settings, tmp_path: Path) -> None:
    """Fail closed: with no namespace isolation in production, no generator or reference runs
    (each would write a marker), and the report says why."""
    settings.CO_SANDBOX_ISOLATION = "none"
    settings.IS_PRODUCTION = True
    marker = tmp_path / "ran"
    touch = f"open({str(marker)!r}, 'a').close()"
    shout = factories.shout_problem()
    shout["hidden_generators"][0]["source"] = f"def generate(rng, index):\n    {touch}\n    return {{'text': 'a'}}\n"
    add = factories.add_problem()
    add["languages"]["python"]["reference"] = f"{touch}\n\ndef add(a, b):\n    return a + b\n"
    add["languages"]["javascript"]["reference"] = (
        "(typeof require === 'function' ? require : process.mainModule.require)('fs')"
        f".writeFileSync({json.dumps(str(marker))}, '');\nfunction add(a, b) {{\n  return a + b;\n}}\n"
    )
    content = factories.pack_bytes(factories.pack_document(problems=[shout, add]))

    report = coursepack_dry_run(content=content).report()
    pack = coursepack_upload(content=content, filename="pack.yaml", source=CoursePackSource.COMMAND)
    with pytest.raises(CoursePackInvalid):
        coursepack_publish(pack=pack)

    assert not marker.exists(), "staff code ran without isolation"
    refusal = "no namespace isolation (install bubblewrap, or run the worker as root for the unshare fallback)"
    assert sorted((error["path"], error["message"]) for error in report["errors"]) == [
        ("problems[add-numbers].languages.javascript", f"could not be checked: {refusal}"),
        ("problems[add-numbers].languages.python", f"could not be checked: {refusal}"),
        ("problems[shout].hidden_generators[0]", f"generator could not be run: {refusal}"),
    ]
    assert CoursePack.objects.get().status == CoursePackStatus.INVALID
    assert not Problem.objects.exists()


@pytest.mark.parametrize(
    "attack",
    [
        "__import__('os').system('touch {marker}')",
        "(lambda: __import__('os').system('touch {marker}'))()",
        "x.__class__.__new__.__globals__['__builtins__']['__import__']('os').system('touch {marker}')",
    ],
    ids=["import", "lambda", "attribute"],
)
@pytest.mark.parametrize("field", ["answer", "steps[0]"])
def test_math_in_a_pack_is_read_by_the_whitelist_parser_only(tmp_path: Path, attack: str, field: str) -> None:
    marker = tmp_path / "pwned"
    problem = factories.math_problem()
    text = attack.format(marker=marker)
    if field == "answer":
        problem["math"]["answer"] = text
    else:
        problem["math"]["steps"][0] = text
    document = factories.pack_document(subject="math", modules=[{"slug": "algebra", "title": "Algebra"}], problems=[problem])

    report = coursepack_dry_run(content=factories.pack_bytes(document)).report()

    assert not marker.exists(), "validating the pack executed its math"
    assert [error["path"] for error in report["errors"]] == [f"problems[expand-square].math.{field}"]
    assert report["errors"][0]["message"].startswith("is not a valid expression: ")
    assert report["ok"] is False
