"""The installed package (a wheel, not the source tree) carries its data files."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def clean_copy(destination: Path) -> Path:
    """The files git would check out, and nothing left over from a local build (an
    egg-info directory would otherwise supply the file list and hide omissions)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file():
            target = destination / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def test_wheel_contains_the_files_the_code_reads_at_run_time(tmp_path: Path) -> None:
    source = clean_copy(tmp_path / "source")
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(wheels),
            str(source),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("securechat-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "securechat/client/data/common-passwords.txt",
        "securechat/server/migrations/env.py",
        "securechat/server/migrations/script.py.mako",
        "securechat/server/migrations/versions/0001_initial_schema.py",
        "securechat/server/migrations/versions/0002_undelivered_index.py",
        "securechat/web/protocol/envelope.js",
        "securechat/web/protocol/index.js",
    }
    assert expected <= names, sorted(expected - names)
