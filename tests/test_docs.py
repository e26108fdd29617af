"""The documents a newcomer reads stay true to the tree: every server setting is in the
README's settings table, and every test the threat model cites as evidence exists."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

from securechat.server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"


def section(text: str, heading: str) -> str:
    """The body of the ``## heading`` section (up to the next heading of that level)."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_every_setting_is_in_the_readme_settings_table() -> None:
    table = section((ROOT / "README.md").read_text(), "Server configuration")
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    missing = sorted(name.upper() for name in Settings.model_fields if name.upper() not in documented)
    assert missing == []


@cache
def functions_by_file() -> dict[str, set[str]]:
    """Test function names by test file (relative to the repository)."""
    found: dict[str, set[str]] = {}
    for path in TESTS.rglob("test_*.py"):
        found[str(path.relative_to(ROOT))] = set(
            re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), re.M)
        )
    return found


def files_named(reference: str) -> list[str]:
    """Test files a citation names: a path from the root, or a file name or tail path under tests/."""
    return [path for path in functions_by_file() if path == reference or path.endswith("/" + reference)]


def citations() -> list[str]:
    text = (ROOT / "docs" / "SECURITY.md").read_text()
    return sorted({token for token in re.findall(r"`([^`\s]+)`", text) if "test_" in token})


@pytest.mark.parametrize("citation", citations())
def test_every_test_the_threat_model_cites_exists(citation: str) -> None:
    reference, _, name = citation.partition("::")
    if reference.endswith(".py") or "/" in reference:
        files = files_named(reference.rstrip("/"))
        if not files:
            # A directory of tests (e.g. ``tests/browser/``).
            assert (ROOT / reference).is_dir(), f"no test file or directory {reference}"
            return
        if name:
            assert any(name in functions_by_file()[path] for path in files), f"{name} is not in {reference}"
    else:
        # A bare test name, cited after its file in the same row.
        assert any(reference in names for names in functions_by_file().values()), f"no test named {reference}"
