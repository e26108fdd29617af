"""The browser client's JSDoc types, checked by TypeScript (``tsc --checkJs``, strict).

tsconfig.json at the repository root names the files (src/securechat/web/**/*.js) and
the strictness; nothing is emitted. TypeScript is the version pinned in
package-lock.json, installed into node_modules by ``npm ci`` (scripts/test does it).
Without it this test fails rather than skips, so a machine that cannot check the browser
code does not report it as checked.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TSC = REPO / "node_modules" / ".bin" / "tsc"
TSC_TIMEOUT_SECONDS = 300


def test_the_browser_modules_type_check() -> None:
    """``tsc -p .`` reports no errors in the browser modules."""
    if not TSC.exists():
        pytest.fail(
            f"{TSC.relative_to(REPO)} is missing: run `npm ci` (or scripts/test) to install TypeScript."
        )
    completed = subprocess.run(
        [str(TSC), "-p", ".", "--pretty", "false"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TSC_TIMEOUT_SECONDS,
        check=False,
    )
    output = completed.stdout + completed.stderr
    errors = sum(1 for line in output.splitlines() if ": error TS" in line)
    assert completed.returncode == 0, f"tsc found {errors} error(s) (exit {completed.returncode}):\n{output}"
