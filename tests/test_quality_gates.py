"""The quality gates CI enforces: ruff's lint and format check, and mypy with the project's config.

They run as tests so that the README's one test command (and so CI) runs them; the
browser modules' type check is tests/js/test_typecheck.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON_TREES = ["src", "tests", "scripts", "benchmarks"]
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), cwd=REPO, capture_output=True, text=True, timeout=600, check=False)


def test_ruff_finds_nothing() -> None:
    completed = run(str(BIN / "ruff"), "check", "--no-cache", *PYTHON_TREES)
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-2000:]


def test_the_code_is_ruff_formatted() -> None:
    completed = run(str(BIN / "ruff"), "format", "--check", "--no-cache", *PYTHON_TREES)
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-2000:]


def test_mypy_is_clean_with_the_project_config() -> None:
    # The files and strictness come from pyproject.toml; the cache lives outside the tree.
    completed = run(sys.executable, "-m", "mypy", "--cache-dir", "/dev/null")
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-2000:]
    assert "Success: no issues found" in completed.stdout


def test_the_test_suite_writes_its_screenshots_where_git_ignores_them() -> None:
    from .browser.conftest import SCREENSHOTS

    probe = SCREENSHOTS / "probe.png"
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(probe)], cwd=REPO, check=False, capture_output=True
    )
    assert ignored.returncode == 0, f"{probe} is not ignored: the test command would dirty the tree"
