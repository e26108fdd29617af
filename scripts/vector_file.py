"""The command line the v2 vector scripts share: write the vector file, or ``--check`` it.

Imported by ``make_v2_vectors.py``, ``make_v2_decision_vectors.py`` and
``make_v2_backup_vectors.py`` (each is run as ``python scripts/<name>.py``, so this folder
is on ``sys.path``). One copy keeps the three files' JSON form and their check identical.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, ensure_ascii=True) + "\n"


def main(doc: str | None, output: Path, script: str, build: Callable[[], dict[str, Any]]) -> int:
    """Parse the command line, then write ``output`` or (with ``--check``) compare it."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is not current")
    args = parser.parse_args()
    text = render(build())
    if args.check:
        if not output.exists() or output.read_text() != text:
            print(f"{output} is not what {Path(script).name} makes; run it", file=sys.stderr)
            return 1
        return 0
    output.write_text(text)
    return 0
