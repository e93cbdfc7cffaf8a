"""promtool (Debian package `prometheus`, `make ci-system-packages`) for the tests of the
Prometheus rules: without it those tests skip, except under CI=true, where they fail."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is missing: `make ci-system-packages` (Debian package prometheus)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def run_promtool(*arguments: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *map(str, arguments)], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
