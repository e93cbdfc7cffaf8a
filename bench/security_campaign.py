"""The security campaign's figures: every attack program the suite runs against the sandbox, the
authoring path and the admin, how many got anything out, and (optionally) the API fuzzing and
the fault injection on the production stack.

    .venv/bin/python bench/security_campaign.py [--fuzz] [--faults]

1. Attacks: the security tests (SECURITY_TESTS) run under pytest exactly as CI runs them (the
   embedded defaults, `CI=true`, so a test that cannot run fails instead of skipping); each test
   case is one attack program in one setting — language, fork helper or bubblewrap, a sandbox
   started for the run or pre-started — or one canary placed where learner or staff code must not
   reach (environment, /proc, the project dir, root-only files, the database). A failed case is
   an escape or a leak.
2. `--fuzz`: schemathesis against `/v1/schema` with a learner token on every endpoint
   (tests/co_project/test_api_fuzz.py).
3. `--faults`: deploy/faults.py — PostgreSQL restarted, Redis stopped, 20 pool processes killed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The suites whose every case is an attack on a boundary (or a canary behind one), by boundary.
SECURITY_TESTS = {
    "learner code in the sandbox": (
        "tests/grading/sandbox/test_attacks.py",
        "tests/grading/sandbox/test_figures.py",
        "tests/grading/sandbox/test_channels.py",
        "tests/grading/sandbox/test_bounds.py",
        "tests/grading/sandbox/test_project_hidden.py",
        "tests/grading/sandbox/test_isolation.py",
        "tests/grading/sandbox/test_warm.py",
        "tests/grading/sandbox/test_zygote.py",
    ),
    "staff code (generators, references, pack math)": ("tests/tracks/test_staff_code_isolation.py",),
    "admin and uploads": (
        "tests/tracks/test_admin_permissions.py",
        "tests/tracks/test_coursepack_limits.py",
        "tests/co_project/test_request_body_limit.py",
    ),
    "API": ("tests/submissions/test_evaluation_cap.py",),
}


def _existing(paths: tuple[str, ...]) -> list[str]:
    return [path for path in paths if (REPO / path).is_file()]


def _setting(case_id: str) -> str:
    """Where a sandbox case ran, from its test id: language, isolation level, start."""
    language = "JavaScript" if re.search(r"javascript|node|_js", case_id, re.I) else "Python"
    # Without a level in its id a case runs at the default: the fork helper for Python (as root),
    # bubblewrap for JavaScript.
    default = "bubblewrap" if language == "JavaScript" else "zygote"
    level = next((name for name in ("zygote", "bubblewrap", "unshare") if name in case_id), default)
    start = "pre-started" if re.search(r"\bwarm\b|-warm|warm-", case_id) else "started for the run"
    return f"{language}, {level.replace('zygote', 'fork helper')}, {start}"


def run_attacks() -> int:
    """Every security suite under pytest as CI runs it; prints the figures per boundary."""
    paths = {boundary: _existing(files) for boundary, files in SECURITY_TESTS.items()}
    boundary_of = {path: boundary for boundary, files in paths.items() for path in files}
    with tempfile.TemporaryDirectory() as directory:
        report = Path(directory) / "junit.xml"
        env = {key: value for key, value in os.environ.items() if key not in ("CO_DB_URL", "CO_REDIS_URL")}
        env.update({"CO_ENV": "test", "CI": "true"})
        started = time.monotonic()
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *boundary_of]
        subprocess.run(command, cwd=REPO, env=env, check=False)
        elapsed = time.monotonic() - started
        root = ElementTree.parse(report).getroot()  # noqa: S314 - pytest's own report, written just now
    per_boundary: Counter[str] = Counter()
    settings: Counter[str] = Counter()
    failed: list[str] = []
    for case in root.iter("testcase"):
        path = (case.get("classname") or "").replace(".", "/") + ".py"
        case_id = f"{path}::{case.get('name')}"
        per_boundary[boundary_of.get(path, "other")] += 1
        if path.startswith("tests/grading/sandbox/"):
            settings[_setting(case_id)] += 1
        if any(case.find(tag) is not None for tag in ("failure", "error", "skipped")):
            failed.append(case_id)
    total = sum(per_boundary.values())
    print(f"\nsecurity campaign: {total} attacks and canaries in {elapsed:.0f} s, {len(failed)} escapes, leaks or skips")
    for boundary, count in per_boundary.items():
        print(f"  {count:4d}  {boundary}")
    print("  learner code, by setting:")
    for setting, count in sorted(settings.items()):
        print(f"  {count:4d}    {setting}")
    for case_id in failed:
        print(f"  FAILED {case_id}")
    return 1 if failed else 0


def run_script(argv: list[str], title: str) -> int:
    print(f"\n{title}", flush=True)
    return subprocess.run(argv, cwd=REPO, check=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fuzz", action="store_true", help="also run schemathesis against the API")
    parser.add_argument("--faults", action="store_true", help="also run the fault injection on the production stack")
    args = parser.parse_args()
    status = run_attacks()
    if args.fuzz:
        fuzz = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-s", "tests/co_project/test_api_fuzz.py"]
        status |= run_script([sys.executable, *fuzz], "API fuzzing (schemathesis)")
    if args.faults:
        status |= run_script([sys.executable, "deploy/faults.py"], "fault injection (deploy/faults.py)")
    return status


if __name__ == "__main__":
    sys.exit(main())
