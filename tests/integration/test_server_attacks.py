"""A malicious or compromised server: tampered envelopes, re-routing, swapped keys,
replays and substituted public keys. Every such message must reach the user marked
unverifiable (never dropped, never shown as valid); substituted keys block sending."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from securechat.client.errors import KeyChanged
from securechat.protocol.identifiers import Username, direct_conversation_id
from securechat.protocol.keys import PrivateIdentity

from .test_two_clients import run_cli

PASSWORD_ALICE = "correct horse battery staple"


def db(live_server) -> sqlite3.Connection:  # type: ignore[no-untyped-def]
    connection = sqlite3.connect(live_server.data_dir / "securechat.db", timeout=30, isolation_level=None)
    connection.execute("PRAGMA busy_timeout=30000")
    return connection


def flip(b64: str, index: int = 0) -> str:
    data = bytearray(base64.b64decode(b64))
    data[index] ^= 0x01
    return base64.b64encode(bytes(data)).decode()


def tamper_iv(env: dict[str, Any]) -> None:
    env["iv"] = flip(env["iv"])


def tamper_ciphertext(env: dict[str, Any]) -> None:
    env["ciphertext"] = flip(env["ciphertext"], 5)


def tamper_signature(env: dict[str, Any]) -> None:
    env["signature"] = flip(env["signature"], 10)


def tamper_sent_at(env: dict[str, Any]) -> None:
    env["sent_at"] += 1


def tamper_message_id(env: dict[str, Any]) -> None:
    env["message_id"] = str(uuid.uuid4())


def tamper_sender(env: dict[str, Any]) -> None:
    env["sender"] = "bob"


def tamper_wrapped_key(env: dict[str, Any]) -> None:
    for key in env["keys"]:
        if key["recipient"] == "bob":
            key["wrapped_key"] = flip(key["wrapped_key"], 100)


def swap_wrapped_keys(env: dict[str, Any]) -> None:
    first, second = env["keys"]
    first["wrapped_key"], second["wrapped_key"] = second["wrapped_key"], first["wrapped_key"]


def reroute(env: dict[str, Any]) -> None:
    env["conversation_id"] = direct_conversation_id(Username("bob"), Username("carol"))


def future_version(env: dict[str, Any]) -> None:
    env["v"] = 2


TAMPERINGS: dict[str, Callable[[dict[str, Any]], None]] = {
    "iv bit": tamper_iv,
    "ciphertext bit": tamper_ciphertext,
    "signature bit": tamper_signature,
    "header sent_at": tamper_sent_at,
    "header message_id": tamper_message_id,
    "header sender": tamper_sender,
    "wrapped key bit": tamper_wrapped_key,
    "wrapped keys swapped": swap_wrapped_keys,
    "re-routed conversation": reroute,
    "unknown version": future_version,
}


async def test_tampered_rerouted_and_replayed_envelopes_show_as_unverifiable(live_server, make_client):
    alice = await make_client("alice")
    bob = await make_client("bob")
    await make_client("carol")
    texts = {name: f"secret for case {name}" for name in TAMPERINGS}
    sent = {name: await alice.send_text("bob", text) for name, text in texts.items()}
    control = await alice.send_text("bob", "untouched control message")

    connection = db(live_server)
    for name, tamper in TAMPERINGS.items():
        (text,) = connection.execute(
            "SELECT envelope FROM messages WHERE message_id = ?", (sent[name]["message_id"],)
        ).fetchone()
        envelope = json.loads(text)
        tamper(envelope)
        connection.execute(
            "UPDATE messages SET envelope = ? WHERE message_id = ?",
            (json.dumps(envelope, separators=(",", ":")), sent[name]["message_id"]),
        )

    items = await bob.sync_inbox()
    messages = [item for item in items if item.kind == "message"]
    assert len(messages) == len(TAMPERINGS) + 1, "no message may be dropped"
    by_text_case = dict(zip(TAMPERINGS, messages[: len(TAMPERINGS)], strict=True))
    for name, item in by_text_case.items():
        assert not item.verified, f"{name}: shown as valid"
        assert item.text is None, f"{name}: plaintext shown"
        assert item.reason, f"{name}: no reason given"
    assert messages[-1].verified and messages[-1].text == "untouched control message"

    # Replay: the server re-delivers the control message under a new sequence number.
    (bob_id, head) = connection.execute(
        "SELECT u.id, (SELECT coalesce(max(seq), 0) FROM inbox_entries WHERE user_id = u.id)"
        " FROM users u WHERE u.username = 'bob'"
    ).fetchone()
    (message_pk,) = connection.execute(
        "SELECT id FROM messages WHERE message_id = ?", (control["message_id"],)
    ).fetchone()
    connection.execute(
        "INSERT INTO inbox_entries (user_id, seq, kind, message_pk, created_at) VALUES (?, ?, 'message', ?, 0)",
        (bob_id, head + 1, message_pk),
    )
    replayed = [item for item in await bob.sync_inbox() if item.kind == "message"]
    assert len(replayed) == 1
    assert not replayed[0].verified and replayed[0].reason == "replayed"

    # The terminal client shows the same: one verified message, the rest unverifiable.
    result = run_cli(bob.state.home, live_server.url, "inbox", "--json", password="tr0ub4dor&3-but-longer")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == len(TAMPERINGS) + 2
    assert [r["verified"] for r in records].count(True) == 1
    assert all(r["text"] is None for r in records if not r["verified"])


def substitute_keys(live_server, username: str) -> PrivateIdentity:  # type: ignore[no-untyped-def]
    """What a compromised server can do: publish fresh keys (validly bound) for a user."""
    fake = PrivateIdentity.generate(Username(username))
    connection = db(live_server)
    connection.execute(
        "UPDATE users SET signing_key = ?, encryption_key = ?, encryption_key_signature = ? WHERE username = ?",
        (fake.public.signing_key, fake.public.encryption_key, fake.public.encryption_key_signature, username),
    )
    return fake


async def test_substituted_public_key_blocks_sending_until_accepted(live_server, make_client):
    alice = await make_client("alice")
    bob = await make_client("bob")
    await alice.send_text("bob", "before the substitution")  # pins bob's keys

    substitute_keys(live_server, "bob")
    with pytest.raises(KeyChanged) as caught:
        await alice.send_text("bob", "must not be sent")
    assert caught.value.username == "bob"
    assert caught.value.pinned != caught.value.current
    assert alice.state.get_contact("bob").pending_identity == caught.value.current  # type: ignore[union-attr]

    # Nothing was sent: bob's inbox holds only the first message.
    bob_items = [item for item in await bob.sync_inbox() if item.kind == "message"]
    assert [item.text for item in bob_items] == ["before the substitution"]

    # The terminal client refuses too, says why, and exits with status 3.
    result = run_cli(
        alice.state.home, live_server.url, "send", "bob", "still refused", password=PASSWORD_ALICE
    )
    assert result.returncode == 3
    assert "keys of bob have changed" in result.stderr

    # The change is shown in the contact list.
    listing = subprocess.run(
        [sys.executable, "-m", "securechat", "contacts"],
        capture_output=True,
        text=True,
        check=True,
        env={**run_env(alice.state.home, live_server.url)},
    )
    assert "KEYS CHANGED" in listing.stdout

    # Once the user accepts, sending proceeds (now to the new keys).
    assert alice.accept_key_change("bob")
    result = await alice.send_text("bob", "after accepting")
    assert result["seq"] > 0


def run_env(home: Path, server: str) -> dict[str, str]:
    import os

    return {**os.environ, "SECURECHAT_HOME": str(home), "SECURECHAT_SERVER": server}


async def test_message_from_substituted_sender_key_is_unverifiable(live_server, make_client):
    alice = await make_client("alice")
    bob = await make_client("bob")
    await alice.send_text("bob", "pin me")
    assert [i.verified for i in await bob.sync_inbox() if i.kind == "message"] == [True]

    # The server swaps alice's keys and forges a message "from alice" with them.
    fake = substitute_keys(live_server, "alice")
    from securechat.protocol.envelope import seal_message

    bob_public = await alice.fetch_identity("bob")
    conversation = direct_conversation_id(Username("alice"), Username("bob"))
    forged = seal_message(
        fake,
        conversation,
        {Username("alice"): fake.public, Username("bob"): bob_public},
        {"type": "text", "text": "forged"},
    )
    connection = db(live_server)
    (alice_id,) = connection.execute("SELECT id FROM users WHERE username = 'alice'").fetchone()
    (bob_id, head) = connection.execute(
        "SELECT u.id, (SELECT coalesce(max(seq), 0) FROM inbox_entries WHERE user_id = u.id)"
        " FROM users u WHERE u.username = 'bob'"
    ).fetchone()
    cursor = connection.execute(
        "INSERT INTO messages (message_id, conversation_id, sender_id, client_ts, server_ts, size,"
        " envelope_sha256, envelope) VALUES (?, ?, ?, 0, 0, 0, ?, ?)",
        (forged.header.message_id, conversation, alice_id, b"\0" * 32, json.dumps(forged.to_wire())),
    )
    connection.execute(
        "INSERT INTO inbox_entries (user_id, seq, kind, message_pk, created_at) VALUES (?, ?, 'message', ?, 0)",
        (bob_id, head + 1, cursor.lastrowid),
    )
    items = [i for i in await bob.sync_inbox() if i.kind == "message"]
    assert len(items) == 1
    assert not items[0].verified and items[0].text is None
