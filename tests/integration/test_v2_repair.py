"""Session repair in the v2 client (PROTOCOL.md 15.9, 15.9.1): when the server alters a
slot, the receiver refuses it (ratchet_failed, shown as unverifiable) and its next
message to that device starts a new session from a fresh bundle; the other side shows
the repair as a notice and both carry on."""

from __future__ import annotations

import base64
import json

from securechat.client.messenger import InboxItem

from ..conftest import LiveServer, server_database
from .conftest import MakeClient


def shown(items: list[InboxItem]) -> list[tuple[str, bool, str | None]]:
    # Receipts (PROTOCOL.md 15.17) come and go with every sync: not what these tests follow.
    return [(i.kind, i.verified, i.text if i.verified else i.reason) for i in items if i.kind != "receipt"]


async def test_an_altered_slot_is_refused_and_the_session_repaired(
    make_client: MakeClient, live_server: LiveServer
) -> None:
    alice, bob = await make_client("alice"), await make_client("bob")
    await alice.enable_v2()
    bob_device = await bob.enable_v2()
    await alice.send_text("bob", "one")
    assert shown(await bob.sync_inbox()) == [("message", True, "one")]
    await bob.send_text("alice", "two")
    assert shown(await alice.sync_inbox()) == [("message", True, "two")]

    await alice.send_text("bob", "three, altered on the way")
    db = server_database(live_server)
    try:
        (seq, slot_text) = db.execute(
            # The newest: alice's delivered receipt for "two" may be waiting before it.
            "SELECT seq, slot FROM device_inbox WHERE device_id = ? ORDER BY seq DESC LIMIT 1",
            (bob_device,),
        ).fetchone()
        slot = json.loads(slot_text)
        ciphertext = bytearray(base64.b64decode(slot["message"]["ciphertext"]))
        ciphertext[0] ^= 1
        slot["message"]["ciphertext"] = base64.b64encode(bytes(ciphertext)).decode()
        db.execute(
            "UPDATE device_inbox SET slot = ? WHERE device_id = ? AND seq = ?",
            (json.dumps(slot), bob_device, seq),
        )
    finally:
        db.close()
    assert shown(await bob.sync_inbox()) == [("message", False, "ratchet_failed")]

    # bob's next message to alice's device starts a new session (a fresh bundle).
    await bob.send_text("alice", "four, on a new session")
    assert shown(await alice.sync_inbox()) == [
        ("message", True, "four, on a new session"),
        ("notice", True, "a new secure session was started with a device of bob"),
    ]
    await alice.send_text("bob", "five")
    await bob.send_text("alice", "six")
    assert shown(await bob.sync_inbox()) == [("message", True, "five")]
    assert shown(await alice.sync_inbox()) == [("message", True, "six")]
