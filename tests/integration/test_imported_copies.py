"""A restored or linked row never stands in for a message the home checks itself
(PROTOCOL.md 15.10.1): an archive's row is only as trustworthy as whoever held the
recovery key (or the own device that handed it over), so when the home later accepts the
genuine message with that id (a v1 message synced from the inbox), the imported copy
goes and only the genuine one is kept and shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from securechat.client.history_backup import HistoryBackups
from securechat.client.messenger import Messenger
from securechat.protocol.v2.backup import parse_recovery_key

from .conftest import PASSWORDS
from .test_history_backup_rows import row, upload_crafted, verified


async def test_a_synced_message_replaces_a_restored_copy_of_its_id(
    live_server: Any, make_client: Any, tmp_path: Path
) -> None:
    alice = await make_client("alice")
    bob = await make_client("bob")
    await alice.send_text("bob", "alice to bob")
    await bob.sync_inbox()
    backups = HistoryBackups(alice.state, alice.api, alice.session)
    shown, _ = await backups.enable()
    # Sent to alice, not yet synced by her home: its id is known to the server (and to
    # anyone who reads the server's data), its text is not.
    genuine = await bob.send_text("alice", "what bob really said")
    forged = row("bob", "bob never said this", message_id=genuine["message_id"], sent_at=1)
    forger = Messenger(tmp_path / "home-former-device", live_server.url)
    try:
        await forger.login("alice", PASSWORDS["alice"])
        await upload_crafted(forger, parse_recovery_key(shown), 2, (forged,))
    finally:
        await forger.close()

    restored = await backups.restore(shown)
    assert restored.added == 1  # nothing here has its id yet
    await alice.sync_inbox()

    copies = [m for m in verified(alice) if m["message_id"] == genuine["message_id"]]
    assert [m["text"] for m in copies] == ["what bob really said"]
    assert "bob never said this" not in {m["text"] for m in alice.stored_messages()}
