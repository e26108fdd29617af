"""Forward secrecy end to end (issue 14's acceptance test) and invariant 1 for v2.

After bob's device has received and opened messages 1-10, everything an attacker could
take then (a copy of the server's SQLite database, bob's password and so his unsealed
account keys, and bob's device's whole local state, unsealed) opens none of them: every
32-byte value found in that material is tried as a prekey, ratchet, root, chain and
content key. The same attack on bob's state from before he read them opens all ten, so
the attack is not one that could never succeed. The server's database and log never
hold a plaintext or a device's private key, in any encoding."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

from securechat.client.core.v2.wire import session_set_from_wire
from securechat.client.v2.device import account_seed
from securechat.client.v2.sealed import local_state_key, open_record
from securechat.protocol.errors import ProtocolError
from securechat.protocol.identifiers import Username
from securechat.protocol.v2.envelope import EnvelopeV2, open_body, open_key_slot
from securechat.protocol.v2.primitives import x25519_public
from securechat.protocol.v2.ratchet import RatchetMessage, SessionState, ratchet_decrypt
from securechat.protocol.v2.setup import Party, accept_session

from ..conftest import LiveServer
from .conftest import MakeClient

NOW_LATER = 2**41  # any time: ratchet_decrypt only uses it for skipped keys' age
MESSAGES = [f"forward secret message number {n:02d}" for n in range(1, 11)]


def copy_db(path: Path, to: Path) -> Path:
    """A consistent copy of a live SQLite database (WAL included), as a thief takes it."""
    source = sqlite3.connect(path)
    target = sqlite3.connect(to)
    source.backup(target)
    source.close()
    target.close()
    return to


def b64_values(text: str) -> set[bytes]:
    found = set()
    for token in re.findall(r"[A-Za-z0-9+/]{40,}={0,2}", text):
        try:
            found.add(base64.b64decode(token, validate=True))
        except ValueError:
            continue
    return found


def material(home_db: Path, key: bytes, server_db: Path) -> tuple[set[bytes], set[bytes], list[SessionState]]:
    """Every 32-byte value in bob's unsealed local v2 state, every one in the server's
    database, and bob's session states."""
    values: set[bytes] = set()
    public: set[bytes] = set()
    states: list[SessionState] = []
    with sqlite3.connect(home_db) as db:
        for name, sealed in db.execute("SELECT name, sealed FROM v2_records"):
            values |= b64_values(open_record(key, name, bytes(sealed)).decode())
        for user, device, sealed in db.execute("SELECT username, device_id, sealed FROM v2_sessions"):
            sessions = session_set_from_wire(
                json.loads(open_record(key, f"session/{user}/{device}", bytes(sealed)))
            )
            for state in [s for s in (sessions.active, *sessions.previous) if s is not None]:
                states.append(state)
                values |= {state.root_key, state.dhs_private, state.cks, state.ckr, state.dhr, state.ad_hash}
                values |= {skipped.message_key for skipped in state.skipped}
    with sqlite3.connect(server_db) as db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            for row in db.execute(f'SELECT * FROM "{table}"'):
                for cell in row:
                    if isinstance(cell, bytes):
                        public.add(cell)
                    elif isinstance(cell, str):
                        public |= b64_values(cell)
    return {v for v in values if len(v) == 32}, {v for v in public if len(v) == 32}, states


def opens(envelope: EnvelopeV2, slot: RatchetMessage, plaintext: bytes) -> bool:
    try:
        return plaintext in open_body(envelope, open_key_slot(envelope, plaintext))
    except ProtocolError:
        return False


def attack(
    entries: list[dict[str, Any]],
    local: set[bytes],
    public: set[bytes],
    states: list[SessionState],
    me: Party,
    sender: Party,
    signed_public: bytes,
) -> set[int]:
    """The messages (1-based) any of the material opens. Every value is tried as a
    content key and as a receiving chain key; the local ones (the only secrets) also
    as root key with every local private key, and as the one-time prekey of a setup
    together with the device and signed prekey private keys (recognised by their
    public halves, as an attacker would)."""
    opened: set[int] = set()
    every = local | public
    ad_hashes = {s.ad_hash for s in states} or {bytes(32)}
    device_privates = [v for v in local if x25519_public(v) == me.device.dh_key]
    signed_privates = [v for v in local if x25519_public(v) == signed_public]
    for number, entry in enumerate(entries, start=1):
        envelope = EnvelopeV2.from_wire(entry["envelope"])
        (slot,) = envelope.slots
        message, binding = slot.message, envelope.binding
        tries: list[bytes] = []
        for candidate in every:
            try:
                open_body(envelope, candidate)
                opened.add(number)
            except ProtocolError:
                pass
        for state in states:  # the current states themselves
            with contextlib.suppress(ProtocolError):
                tries.append(ratchet_decrypt(state, message, binding, NOW_LATER)[0])
        for ad_hash in ad_hashes:
            for candidate in every:
                as_chain = SessionState(b"", ad_hash, b"", b"", message.dh, b"", candidate, 0, 0, 0, b"")
                with contextlib.suppress(ProtocolError):
                    tries.append(ratchet_decrypt(as_chain, message, binding, NOW_LATER)[0])
            for candidate in local:
                for private in local:
                    as_root = SessionState(b"", ad_hash, candidate, private, b"", b"", b"", 0, 0, 0, b"")
                    with contextlib.suppress(ProtocolError):
                        tries.append(ratchet_decrypt(as_root, message, binding, NOW_LATER)[0])
        setup = message.setup
        if setup is not None:
            for device_private in device_privates or list(local):
                for signed in signed_privates or list(local):
                    for one_time_private in local:
                        one_time = (
                            {}
                            if setup.one_time_prekey_id is None
                            else {setup.one_time_prekey_id: one_time_private}
                        )
                        try:
                            accepted = accept_session(
                                me,
                                device_private,
                                sender,
                                message,
                                {setup.signed_prekey_id: signed},
                                one_time,
                                binding,
                                0,
                            )
                            tries.append(accepted.plaintext)
                        except ProtocolError:
                            pass
        for plaintext in tries:
            try:
                open_body(envelope, open_key_slot(envelope, plaintext))
                opened.add(number)
            except ProtocolError:
                pass
    return opened


async def test_messages_read_before_a_full_compromise_stay_secret(
    make_client: MakeClient, live_server: LiveServer, tmp_path: Path
) -> None:
    alice, bob = await make_client("alice"), await make_client("bob")
    await alice.enable_v2()
    bob_device = await bob.enable_v2()
    for text in MESSAGES:
        await alice.send_text("bob", text)
    # What the server holds for bob's device (also what a recording of the traffic holds).
    entries = (await bob.v2.api.inbox(bob_device, 0, 100))["entries"]
    assert len(entries) == 10
    home = tmp_path / "home-bob" / "state.db"
    before = copy_db(home, tmp_path / "bob-before.db")

    items = await bob.sync_inbox()
    assert [i.text for i in items if i.kind == "message" and i.verified] == MESSAGES

    # The compromise: the server's database now, bob's password (so his account keys,
    # unsealed from the bundle the server keeps), and bob's device's state now.
    server_copy = copy_db(live_server.data_dir / "securechat.db", tmp_path / "server-copy.db")
    after = copy_db(home, tmp_path / "bob-after.db")
    identity = bob.identity
    assert identity is not None
    key = local_state_key(account_seed(identity))
    own_list = bob.v2.directory.accepted("bob")
    alice_list = bob.v2.directory.accepted("alice")
    assert own_list is not None and alice_list is not None
    me_device = own_list.device(bob_device)
    (alice_device,) = alice_list.devices
    me = Party(Username("bob"), own_list.account_key, me_device)
    sender = Party(Username("alice"), alice_list.account_key, alice_device)

    # Each of the ten carries the setup (bob never answered), with a one-time prekey.
    first = EnvelopeV2.from_wire(entries[0]["envelope"]).slots[0].message
    assert first.setup is not None and first.setup.one_time_prekey_id is not None
    (bundle,) = (await alice.v2.api.claim_bundles("bob", [bob_device]))["bundles"]
    signed_key = base64.b64decode(bundle["signed_prekey"]["public_key"])
    local, public, states = material(after, key, server_copy)
    assert len(local) > 100 and states  # the device keys, prekeys, ratchet keys are in there
    assert attack(entries, local, public, states, me, sender, signed_key) == set()

    # Control: the same attack with bob's state from before he read them opens all ten.
    local_before, _, states_before = material(before, key, server_copy)
    assert attack(entries, local_before, public, states_before, me, sender, signed_key) == set(range(1, 11))


def secrets_of(home: Path, key: bytes) -> set[bytes]:
    """A device's private keys (device keys, prekeys) and its ratchet secrets."""
    values: set[bytes] = set()
    with sqlite3.connect(home / "state.db") as db:
        for name, sealed in db.execute("SELECT name, sealed FROM v2_records"):
            values |= {v for v in b64_values(open_record(key, name, bytes(sealed)).decode()) if len(v) == 32}
    return values


def encodings(value: bytes) -> list[bytes]:
    return [
        value,
        base64.b64encode(value),
        base64.urlsafe_b64encode(value).rstrip(b"="),
        value.hex().encode(),
    ]


async def test_the_server_never_holds_a_plaintext_or_a_device_private_key(
    make_client: MakeClient, live_server: LiveServer, tmp_path: Path
) -> None:
    alice, bob = await make_client("alice"), await make_client("bob")
    await alice.enable_v2()
    await bob.enable_v2()
    for text in MESSAGES[:3]:
        await alice.send_text("bob", text)
    await bob.send_text("alice", "a reply that must stay secret too")
    # Scan while the entries are still stored (before the devices read and acknowledge).
    server = (live_server.data_dir / "securechat.db").read_bytes()
    for extra in ("securechat.db-wal", "securechat.db-shm"):
        if (live_server.data_dir / extra).exists():
            server += (live_server.data_dir / extra).read_bytes()
    assert await bob.sync_inbox() and await alice.sync_inbox()
    log = live_server.log_path.read_bytes()
    plaintexts = [t.encode() for t in [*MESSAGES[:3], "a reply that must stay secret too"]]
    private: set[bytes] = set()
    for client, name in ((alice, "alice"), (bob, "bob")):
        assert client.identity is not None
        private |= secrets_of(tmp_path / f"home-{name}", local_state_key(account_seed(client.identity)))
    assert len(private) > 200  # both devices' keys and their 100 one-time prekeys each
    for haystack in (server, log):
        for secret in plaintexts:
            assert secret not in haystack
        for value in private:
            for encoded in encodings(value):
                assert encoded not in haystack
