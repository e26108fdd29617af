"""A restored or linked row never stands in for a message the home checks itself
(PROTOCOL.md 15.10.1): an archive's row is only as trustworthy as whoever held the
recovery key (or the own device that handed it over), so when the home later accepts the
genuine message with that id (a v1 message synced from the inbox), the imported copy
goes and only the genuine one is kept and shown.

Only the genuine one: a verified message replaces an imported copy only when it has the
copy's id, conversation and sender. Anyone else's message with a reused id (a contact
who learnt the id of one of the user's own restored v2 messages, say: v1 and v2 ids are
kept apart by the server) is kept beside it and erases nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from securechat.client.history_backup import HistoryBackups
from securechat.client.messenger import Messenger
from securechat.client.state import StateStore
from securechat.protocol.envelope import seal_message
from securechat.protocol.identifiers import ConversationId, MessageId, Username, direct_conversation_id
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


async def test_a_contact_reusing_the_id_of_a_restored_own_message_erases_nothing(
    live_server: Any, make_client: Any, tmp_path: Path
) -> None:
    alice = await make_client("alice")
    bob = await make_client("bob")
    await alice.enable_v2()
    await bob.enable_v2()
    # Alice's own words, over v2 (so the v1 table has no message with this id).
    own_id = (await alice.send_text("bob", "my own words"))["message_id"]
    await bob.sync_inbox()
    shown, _ = await HistoryBackups(alice.state, alice.api, alice.session).enable()

    new_home = Messenger(tmp_path / "home-alice-new", live_server.url)
    try:
        await new_home.login("alice", PASSWORDS["alice"])
        restored = await HistoryBackups(new_home.state, new_home.api, new_home.session).restore(shown)
        assert restored.added == 1
        # Bob, who knows the id, signs a v1 message of his own under it: a genuine message
        # of his, which the new home accepts, but not the copy of alice's message.
        assert bob.identity is not None
        recipients = {
            Username("alice"): await bob.trusted_identity("alice"),
            Username("bob"): bob.identity.public,
        }
        envelope = seal_message(
            bob.identity,
            direct_conversation_id("alice", "bob"),
            recipients,
            {"type": "text", "text": "bob's words under alice's id"},
            message_id=MessageId(own_id),
        )
        await bob.post_envelope(envelope)
        items = await new_home.sync_inbox()
        assert [(i.sender, i.text, i.verified) for i in items if i.kind == "message"] == [
            ("bob", "bob's words under alice's id", True)
        ]
        copies = sorted(
            (m["sender"], m["text"]) for m in new_home.stored_messages() if m["message_id"] == own_id
        )
        assert copies == [("alice", "my own words"), ("bob", "bob's words under alice's id")]
    finally:
        await new_home.close()


WITH_BOB = direct_conversation_id("alice", "bob")
GROUP = ConversationId("grp-" + "7" * 32)


@pytest.mark.parametrize(
    ("conversation_id", "sender", "replaced"),
    [
        (WITH_BOB, "bob", True),  # the genuine message
        (WITH_BOB, "alice", False),  # someone else in the conversation
        (GROUP, "bob", False),  # the sender, in another conversation
        (GROUP, "carol", False),
    ],
)
def test_an_imported_copy_is_replaced_only_by_its_own_message(
    tmp_path: Path, conversation_id: str, sender: str, replaced: bool
) -> None:
    state = StateStore(tmp_path / "home")
    message_id = "6f1d2c6e-0000-4000-8000-000000000001"
    copy = {
        "message_id": message_id,
        "conversation_id": WITH_BOB,
        "sender": "bob",
        "peer": "bob",
        "verified": 1,
    }
    state.add_message(**copy, text="restored", imported="backup")
    state.add_message(
        message_id=message_id,
        conversation_id=conversation_id,
        sender=sender,
        peer=sender if conversation_id == WITH_BOB else conversation_id,
        text="accepted here",
        verified=1,
    )
    # An unverifiable item with the id (a reason, no text) replaces nothing either.
    state.add_message(message_id=message_id, conversation_id=WITH_BOB, sender="bob", peer="bob", verified=0)
    kept = [(m["text"], m["imported"]) for m in state.messages() if m["verified"]]
    expected = [("accepted here", None)] if replaced else [("restored", "backup"), ("accepted here", None)]
    assert kept == expected
