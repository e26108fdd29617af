"""SECURECHAT_LOG_JSON: every line the server logs is one JSON object, and none of them
holds a password, auth key, token or message text."""

from __future__ import annotations

import json
from pathlib import Path

from ..conftest import start_server
from .conftest import PASSWORDS

WRONG_KEY = "A" * 43 + "="


async def test_json_logs_are_one_object_per_line_and_hold_no_secrets(tmp_path: Path) -> None:
    import httpx

    from securechat.client.messenger import Messenger

    server = start_server(tmp_path / "data", tmp_path / "log", extra_env={"SECURECHAT_LOG_JSON": "true"})
    alice = Messenger(tmp_path / "alice", server.url)
    bob = Messenger(tmp_path / "bob", server.url)
    try:
        await alice.register("alice", PASSWORDS["alice"])
        await bob.register("bob", PASSWORDS["bob"])
        await alice.send_text("bob", "log-scan plaintext 4711")
        await bob.sync_inbox()
        # Five failures block the address: the block is logged.
        for _ in range(6):
            httpx.post(f"{server.url}/api/v1/auth/login", json={"username": "bob", "auth_key": WRONG_KEY})
    finally:
        await alice.close()
        await bob.close()
        server.stop()
    lines = [line for line in server.log().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line parses
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any("blocked 127.0.0.1" in r["message"] for r in records), records
    text = server.log()
    secrets = [PASSWORDS["alice"], PASSWORDS["bob"], "log-scan plaintext 4711", WRONG_KEY]
    secrets += [str(c.api.access_token) for c in (alice, bob) if c.api.access_token]
    for secret in secrets:
        assert secret not in text
