"""Start a SecureChat server process for a benchmark: loopback, a fresh data dir, the
source tree of this checkout, and limits raised where a benchmark needs them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path, log_path: Path, **settings: str) -> tuple[subprocess.Popen[bytes], str]:
    """``settings`` become ``SECURECHAT_<NAME>`` variables; returns the process and its URL."""
    port = free_port()
    env = {
        **os.environ,
        "SECURECHAT_DATA_DIR": str(data_dir),
        "SECURECHAT_REGISTER_PER_MINUTE": "100000",
        "SECURECHAT_MESSAGES_PER_MINUTE": "100000",
        "PYTHONPATH": str(REPO / "src"),
        **{f"SECURECHAT_{name.upper()}": value for name, value in settings.items()},
    }
    log = open(log_path, "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(
        [sys.executable, "-m", "securechat", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start; see {log_path}")
