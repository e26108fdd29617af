#!/usr/bin/env python3
"""Generate tests/data/decisions_v2_vectors.json, the v2 client-decision vectors (PROTOCOL.md 10, 14, 15).

Usage:
    python scripts/make_v2_decision_vectors.py            # (re)write the vector file
    python scripts/make_v2_decision_vectors.py --check    # exit 1 if the file is not what this script makes

A small simulation of devices (each with its accepted device lists, session sets, seen
records and prekeys) sends and receives v2 envelopes; each delivery worth showing becomes
a case: the receiver's inputs exactly as the core takes them, in the JSON forms of
``securechat.client.core.v2.wire`` (bytes in base64, session states as their 15.7.6
bytes), and the decision. Keys and randomness come from ``make_v2_vectors.secret`` and
the devices of ``make_v2_vectors`` (imported, not copied), so everything is deterministic.

The outcome, reason, notices and ``repair_needed`` of each case are written here by hand;
the script runs the Python core (from the JSON inputs, as a second implementation would)
and stops if the code disagrees. The rest of the expected decision (state bytes, seen
record, payload) is what the code returns.
"""

from __future__ import annotations

import copy
import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import vector_file
from make_v2_vectors import DEVICES, T0, VDevice, secret
from v2_transition_cases import signing_cases, transition_cases

from securechat.client.core.messages import SeenRecord
from securechat.client.core.v2 import (
    EMPTY,
    SessionSet,
    accept_bundle,
    accept_device_list,
    decide_receipt_v2,
    receive_direct_v2,
    start_session,
    with_active,
)
from securechat.client.core.v2.receipts import receipt_decision_to_wire
from securechat.client.core.v2.wire import (
    bundle_decision_to_wire,
    device_lists_from_wire,
    list_decision_to_wire,
    me_from_wire,
    receive_decision_to_wire,
    seen_from_wire,
    session_set_to_wire,
    sessions_from_wire,
)
from securechat.protocol.encoding import b64decode, b64encode
from securechat.protocol.envelope import encode_payload, pad
from securechat.protocol.identifiers import MessageId, Username, direct_conversation_id
from securechat.protocol.primitives import aes_gcm_encrypt
from securechat.protocol.v2.devices import Device, DeviceList, sign_device_list
from securechat.protocol.v2.envelope import (
    EnvelopeV2,
    HeaderV2,
    Slot,
    Target,
    body_binding,
    envelope_signature_input,
    key_slot_plaintext,
    seal_envelope,
)
from securechat.protocol.v2.prekeys import DAY_MS, make_signed_prekey
from securechat.protocol.v2.primitives import ed25519_sign_raw
from securechat.protocol.v2.ratchet import SessionState, SetupMessage, ratchet_encrypt
from securechat.protocol.v2.setup import initiate_session

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "tests" / "data" / "decisions_v2_vectors.json"


def b64(data: bytes) -> str:
    return b64encode(data)


def message_id(label: str) -> MessageId:
    h = secret("decisions", "message-id", label).hex()
    return MessageId(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}")


# ---------------------------------------------------------------------------
# Accounts and their lists.
# ---------------------------------------------------------------------------

LAPTOP, PHONE, BOB, MALLORY = (
    DEVICES["alice_laptop"],
    DEVICES["alice_phone"],
    DEVICES["bob_phone"],
    DEVICES["mallory_laptop"],
)


def signed_list(owner: VDevice, version: int, devices: list[VDevice]) -> DeviceList:
    return sign_device_list(
        owner.account_seed, owner.username, version, T0 + version, [d.device for d in devices]
    )


ALICE_V1 = signed_list(LAPTOP, 1, [LAPTOP])
ALICE_V2 = signed_list(LAPTOP, 2, [LAPTOP, PHONE])
ALICE_V3 = signed_list(LAPTOP, 3, [LAPTOP])  # the phone revoked
BOB_V1 = signed_list(BOB, 1, [BOB])
MALLORY_V1 = signed_list(MALLORY, 1, [MALLORY])


# ---------------------------------------------------------------------------
# The simulation: one Node per device, a server that hands each one-time prekey out once.
# ---------------------------------------------------------------------------


@dataclass
class Node:
    vd: VDevice
    lists: dict[str, DeviceList]
    sessions: dict[tuple[str, str], SessionSet] = field(default_factory=dict)
    seen: dict[str, SeenRecord] = field(default_factory=dict)
    signed: dict[int, bytes] = field(default_factory=dict)
    one_time: dict[int, bytes] = field(default_factory=dict)
    repair: set[tuple[str, str]] = field(default_factory=set)
    inbox: int = 0
    draws: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.vd.username, self.vd.device.device_id)

    def random(self, n: int) -> bytes:
        self.draws += 1
        return secret("decisions", self.vd.name, self.vd.username, "random", str(self.draws))[:n]

    def me_wire(self) -> dict[str, Any]:
        return {
            "username": self.vd.username,
            "account_key": b64(self.vd.account_key),
            "device": self.vd.device.to_wire(),
            "dh_private": b64(self.vd.dh_private),
            "signed_prekeys": {str(k): b64(v) for k, v in sorted(self.signed.items())},
            "one_time_prekeys": {str(k): b64(v) for k, v in sorted(self.one_time.items())},
        }


class Sim:
    def __init__(self, lists: dict[str, DeviceList], devices: list[VDevice]) -> None:
        self.nodes = {
            (d.username, d.device.device_id): Node(
                d, dict(lists), signed={7: d.spk_private}, one_time=dict(d.opk_privates)
            )
            for d in devices
        }
        self.pool = {key: sorted(node.one_time) for key, node in self.nodes.items()}
        self.clock = T0 + 100_000

    def node(self, d: VDevice) -> Node:
        return self.nodes[(d.username, d.device.device_id)]

    def tick(self) -> int:
        self.clock += 1000
        return self.clock

    def _session_for(self, sender: Node, key: tuple[str, str], one_time: bool) -> SessionSet:
        current = sender.sessions.get(key, EMPTY)
        if current.active is not None and key not in sender.repair:
            return current
        target = self.nodes[key]
        opk_id = self.pool[key].pop(0) if one_time and self.pool[key] else None
        state = initiate_session(
            sender.vd.party,
            sender.vd.dh_private,
            target.vd.party,
            target.vd.spk,
            None if opk_id is None else target.vd.opks[opk_id],
            sender.random(32),
        )
        sender.repair.discard(key)
        return start_session(current, state)

    def header(self, sender: Node, peer: str, label: str, sent_at: int) -> HeaderV2:
        me = sender.vd
        targets = []
        for user in sorted({me.username, peer}):
            accepted = sender.lists[user]
            ids = tuple(sorted(d.device_id for d in accepted.devices if d.device_id != me.device.device_id))
            targets.append(Target(Username(user), accepted.version, ids))
        return HeaderV2(
            message_id(label),
            direct_conversation_id(me.username, Username(peer)),
            me.username,
            me.device.device_id,
            sent_at,
            tuple(targets),
        )

    def send(
        self,
        sender: Node,
        peer: str,
        label: str,
        text: str,
        *,
        one_time: bool = True,
        payload: bytes | None = None,
        header: HeaderV2 | None = None,
    ) -> dict[str, Any]:
        """Seal one message to every target device (setting sessions up as needed)."""
        header = header or self.header(sender, peer, label, self.tick())
        keys = sorted(set(header.target_devices()))
        sets = {key: self._session_for(sender, key, one_time) for key in keys}
        active: dict[tuple[str, str], SessionState] = {}
        for key, value in sets.items():
            assert value.active is not None
            active[key] = value.active
        envelope, states = seal_envelope(
            header,
            encode_payload({"type": "text", "text": text}) if payload is None else payload,
            sender.random(32),
            sender.random(12),
            active,
            sender.vd.signing_seed,
            sender.random,
        )
        for key, state in states.items():
            sender.sessions[key] = with_active(sets[key], state)
        return envelope.to_wire()


def entry_for(wire: dict[str, Any], d: VDevice) -> dict[str, Any]:
    """The server gives each target device its own inbox entry with only its slot."""
    out = copy.deepcopy(wire)
    out["slots"] = [
        s for s in out["slots"] if (s["username"], s["device_id"]) == (d.username, d.device.device_id)
    ]
    return out


# ---------------------------------------------------------------------------
# Receive cases.
# ---------------------------------------------------------------------------


def run_receive(inputs: dict[str, Any]) -> dict[str, Any]:
    """The core, from the JSON inputs alone (as a second implementation would)."""
    decision = receive_direct_v2(
        inputs["entry"],
        me=me_from_wire(inputs["me"]),
        delivered_in=inputs["delivered_in"],
        device_lists=device_lists_from_wire(inputs["device_lists"]),
        seen=seen_from_wire(inputs["seen"]),
        inbox_seq=inputs["inbox_seq"],
        sessions=sessions_from_wire(inputs["sessions"]),
        now=inputs["now"],
    )
    return receive_decision_to_wire(decision)


class Cases:
    def __init__(self) -> None:
        self.out: list[dict[str, Any]] = []
        self.names: set[str] = set()

    def receive(
        self,
        sim: Sim,
        receiver: VDevice,
        entry: object,
        name: str,
        note: str,
        expected: dict[str, Any],
        *,
        delivered_in: str | None = None,
        inbox_seq: int | str | None = "next",
        sessions: dict[tuple[str, str], SessionSet] | None = None,
        apply: bool = True,
        record: bool = True,
    ) -> dict[str, Any]:
        """Deliver ``entry`` to ``receiver``; check the hand-written ``expected`` members;
        store the state change (``apply``) and the case (``record``)."""
        node = sim.node(receiver)
        if inbox_seq == "next":
            node.inbox += 1
            inbox_seq = node.inbox
        sender_key = _sender_key(entry)
        held = node.sessions if sessions is None else sessions
        now = sim.tick()
        inputs = {
            "entry": entry,
            "me": node.me_wire(),
            "delivered_in": delivered_in,
            "device_lists": {u: lst.to_wire() for u, lst in sorted(node.lists.items())},
            "seen": {k: v.to_wire() for k, v in sorted(node.seen.items()) if sender_key and k == _id(entry)},
            "inbox_seq": inbox_seq,
            "sessions": [
                {"username": u, "device_id": d, "sessions": session_set_to_wire(s)}
                for (u, d), s in sorted(held.items())
                if (u, d) == sender_key
            ],
            "now": now,
        }
        got = run_receive(inputs)
        for member, value in expected.items():
            if got.get(member) != value:
                raise SystemExit(f"{name}: expected {member}={value!r}, the code gives {got.get(member)!r}")
        if apply:
            _apply(node, sender_key, got)
        if record:
            if name in self.names:
                raise SystemExit(f"two cases named {name}")
            self.names.add(name)
            self.out.append(
                {"name": name, "note": note, "receiver": receiver.name, "input": inputs, "expected": got}
            )
        return got


def _id(entry: object) -> object:
    return entry.get("message_id") if isinstance(entry, dict) else None


def _sender_key(entry: object) -> tuple[str, str] | None:
    if isinstance(entry, dict) and isinstance(entry.get("sender"), str):
        return (entry["sender"], entry.get("sender_device"))  # type: ignore[return-value]
    return None


def _apply(node: Node, sender_key: tuple[str, str] | None, got: dict[str, Any]) -> None:
    if got["outcome"] == "accepted":
        assert sender_key is not None
        node.sessions[sender_key] = sessions_from_wire(
            [{"username": sender_key[0], "device_id": sender_key[1], "sessions": got["sessions"]}]
        )[sender_key]
        node.seen[got["message_id"]] = SeenRecord(got["seen"]["signature"], got["seen"]["seq"])
        if got["one_time_prekey_used"] is not None:
            del node.one_time[got["one_time_prekey_used"]]
    elif got["outcome"] == "duplicate":
        pass
    elif got["repair_needed"]:
        assert sender_key is not None
        node.repair.add(sender_key)


ACCEPTED: dict[str, Any] = {"outcome": "accepted", "notices": []}


def refused(reason: str, repair: bool = False) -> dict[str, Any]:
    return {"outcome": "refused", "reason": reason, "repair_needed": repair}


def active_id(node: Node, d: VDevice) -> bytes | None:
    return node.sessions.get((d.username, d.device.device_id), EMPTY).active_id


def main_conversation(cases: Cases) -> None:
    """alice's laptop and bob's phone: setup with and without a one-time prekey,
    follow-ups, order, duplicates, replays and every refusal on the way."""
    sim = Sim({"alice": ALICE_V1, "bob": BOB_V1, "mallory": MALLORY_V1}, [LAPTOP, BOB, MALLORY])
    alice, bob = sim.node(LAPTOP), sim.node(BOB)

    m1 = sim.send(alice, "bob", "m1", "Hello, Bob!")
    cases.receive(
        sim,
        BOB,
        entry_for(m1, BOB),
        "first_message_with_one_time_prekey",
        "alice's laptop sets up a session from bob's bundle with one-time prekey 1001; bob deletes it",
        {**ACCEPTED, "one_time_prekey_used": 1001},
    )
    m2 = sim.send(alice, "bob", "m2", "Still there?")
    cases.receive(
        sim,
        BOB,
        entry_for(m2, BOB),
        "follow_up_with_setup",
        "alice has had no answer, so the setup travels again: it names the session bob has, which opens it",
        {**ACCEPTED, "one_time_prekey_used": None},
    )
    cases.receive(
        sim,
        BOB,
        entry_for(m2, BOB),
        "duplicate_transport_repeat",
        "the same entry at the same inbox position again (14.2): nothing new",
        {"outcome": "duplicate"},
        inbox_seq=bob.inbox,
    )
    cases.receive(
        sim,
        BOB,
        entry_for(m2, BOB),
        "duplicate_from_history",
        "the same envelope on a page of history (inbox_seq null) after the inbox showed it",
        {"outcome": "duplicate"},
        inbox_seq=None,
    )
    cases.receive(
        sim,
        BOB,
        entry_for(m2, BOB),
        "replayed_at_another_position",
        "the server puts an accepted envelope into the inbox again at a new position",
        refused("replayed"),
    )

    reply = sim.send(bob, "alice", "r1", "Hi Alice")
    cases.receive(
        sim,
        LAPTOP,
        entry_for(reply, LAPTOP),
        "reply_establishes_the_session",
        "bob answers on the session alice started: her pending setup is cleared",
        {**ACCEPTED},
    )
    m3 = sim.send(alice, "bob", "m3", "three")
    m4 = sim.send(alice, "bob", "m4", "four")
    m5 = sim.send(alice, "bob", "m5", "five")
    cases.receive(
        sim,
        BOB,
        entry_for(m4, BOB),
        "out_of_order_later_first",
        "m4 before m3: m3's key is kept",
        {**ACCEPTED},
    )
    cases.receive(
        sim,
        BOB,
        entry_for(m3, BOB),
        "out_of_order_earlier_second",
        "m3 opens with its skipped key",
        {**ACCEPTED},
    )

    # Refusals that change nothing, each from bob's current state.
    flipped_slot = entry_for(m5, BOB)
    ciphertext = bytearray(b64decode(flipped_slot["slots"][0]["message"]["ciphertext"]))
    ciphertext[0] ^= 1
    flipped_slot["slots"][0]["message"]["ciphertext"] = b64(bytes(ciphertext))
    cases.receive(
        sim,
        BOB,
        flipped_slot,
        "ratchet_failed_slot_altered",
        "the server flips a bit of bob's slot (not covered by the signature, bound by AES-GCM): a repair is due",
        refused("ratchet_failed", repair=True),
        apply=False,
    )
    flipped_body = entry_for(m5, BOB)
    body = bytearray(b64decode(flipped_body["body"]))
    body[0] ^= 1
    flipped_body["body"] = b64(bytes(body))
    cases.receive(
        sim, BOB, flipped_body, "bad_signature", "a bit of the body flipped", refused("bad_signature")
    )
    cases.receive(
        sim,
        BOB,
        entry_for(m5, BOB),
        "wrong_conversation_delivered_in",
        "delivered into another conversation than its header names",
        refused("wrong_conversation"),
        delivered_in=direct_conversation_id(BOB.username, MALLORY.username),
        apply=False,
    )
    cases.receive(
        sim,
        BOB,
        entry_for(m5, BOB),
        "session_unknown",
        "bob has lost his sessions with alice's laptop, and the message carries no setup: a repair is due",
        refused("session_unknown", repair=True),
        sessions={},
        apply=False,
    )
    no_list = sim.node(BOB)
    saved = no_list.lists.pop("alice")
    cases.receive(
        sim,
        BOB,
        entry_for(m5, BOB),
        "sender_without_accepted_list",
        "bob has accepted no device list for alice: her device is not listed",
        refused("device_not_listed"),
        apply=False,
    )
    no_list.lists["alice"] = saved
    cases.receive(
        sim,
        BOB,
        {**entry_for(m5, BOB), "v": 3},
        "unsupported_version",
        "v is 3",
        {"outcome": "refused", "reason": "unsupported_version"},
        apply=False,
    )
    cases.receive(
        sim,
        BOB,
        {"v": 2},
        "malformed",
        "members missing",
        {"outcome": "refused", "reason": "malformed"},
        apply=False,
    )
    cases.receive(
        sim, BOB, entry_for(m5, BOB), "after_refusals_m5_opens", "the refusals changed nothing", {**ACCEPTED}
    )

    # A sender whose state was restored from an old copy reuses a position: the key is gone.
    old = copy.deepcopy(alice.sessions)
    m6 = sim.send(alice, "bob", "m6", "six")
    cases.receive(sim, BOB, entry_for(m6, BOB), "", "", {**ACCEPTED}, record=False)
    alice.sessions = old
    m6_again = sim.send(alice, "bob", "m6-restored", "six, from a restored state")
    cases.receive(
        sim,
        BOB,
        entry_for(m6_again, BOB),
        "ratchet_duplicate_reused_position",
        "alice's laptop sealed with an old copy of its state: position already opened at bob (m6 lost)",
        refused("ratchet_duplicate"),
        apply=False,
    )

    # A jump of more than 25,000 positions.
    key = BOB.username, BOB.device.device_id
    current = alice.sessions[key]
    assert current.active is not None
    alice.sessions[key] = with_active(current, replace(current.active, ns=current.active.ns + 25_001))
    far = sim.send(alice, "bob", "m-far", "far")
    alice.sessions[key] = current
    cases.receive(
        sim,
        BOB,
        entry_for(far, BOB),
        "ratchet_too_far",
        "the slot's position is 25,001 past bob's next one",
        refused("ratchet_too_far"),
        apply=False,
    )

    malicious_sender_cases(sim, cases)
    prekey_cases(sim, cases)
    file_payload_cases(sim, cases)


def file_payload_cases(sim: Sim, cases: Cases) -> None:
    """15.18: a file payload travels in the v2 body and its descriptor is checked as 12.3."""
    alice = sim.node(LAPTOP)
    descriptor = {
        "id": "6f1d2c3b-4a59-4e87-9c6d-5b4a39281706",
        "key": "AAAA",  # 3 bytes: 12.3 wants exactly 32
        "name": "report.pdf",
        "media_type": "application/pdf",
        "size": 10,
        "sha256": "0" * 64,
    }
    payload = json.dumps({"type": "file", "file": descriptor}, separators=(",", ":")).encode()
    bad_file = sim.send(alice, "bob", "m-bad-file", "", payload=payload)
    cases.receive(
        sim,
        BOB,
        entry_for(bad_file, BOB),
        "bad_payload_file_descriptor",
        "validly signed and sealed, a file payload whose descriptor breaks 12.3 (a 3-byte key)",
        refused("bad_payload"),
        apply=False,
    )


def seal_with_slot_key(sim: Sim, sender: Node, peer: str, label: str, slot_key: bytes) -> dict[str, Any]:
    """A sender that puts another content key in the slot than the body's (validly signed)."""
    header = sim.header(sender, peer, label, sim.tick())
    header_bytes = header.to_bytes()
    iv = sender.random(12)
    body = aes_gcm_encrypt(
        sender.random(32), iv, pad(encode_payload({"type": "text", "text": "x"})), header_bytes
    )
    binding = body_binding(header_bytes, iv, body)
    slots = []
    for key in sorted(header.target_devices()):
        current = sender.sessions[key]
        assert current.active is not None
        message, state = ratchet_encrypt(
            current.active, key_slot_plaintext(slot_key, binding), binding, sender.random
        )
        sender.sessions[key] = with_active(current, state)
        slots.append(Slot(Username(key[0]), key[1], message))
    signature = ed25519_sign_raw(sender.vd.signing_seed, envelope_signature_input(header_bytes, binding))
    return EnvelopeV2(header, iv, body, tuple(slots), signature).to_wire()


def malicious_sender_cases(sim: Sim, cases: Cases) -> None:
    alice = sim.node(LAPTOP)
    wrong_key = seal_with_slot_key(sim, alice, "bob", "m-undecryptable", bytes(32))
    cases.receive(
        sim,
        BOB,
        entry_for(wrong_key, BOB),
        "undecryptable",
        "validly signed, the slot opens, but its content key does not open the body (no repair: the session is fine)",
        refused("undecryptable"),
        apply=False,
    )
    not_json = sim.send(alice, "bob", "m-bad-payload", "", payload=b"\xff not json")
    cases.receive(
        sim,
        BOB,
        entry_for(not_json, BOB),
        "bad_payload",
        "validly signed and sealed, the payload is not 7.2's JSON",
        refused("bad_payload"),
        apply=False,
    )
    # Targets naming mallory's account in a conversation of alice and bob.
    mallory_key = (MALLORY.username, MALLORY.device.device_id)
    base = sim.header(alice, "bob", "m-members", sim.tick())
    three = replace(
        base,
        targets=(*base.targets, Target(MALLORY.username, MALLORY_V1.version, (MALLORY.device.device_id,))),
    )
    extra = sim.send(alice, "bob", "m-members", "hi all", header=three)
    cases.receive(
        sim,
        BOB,
        entry_for(extra, BOB),
        "wrong_members",
        "the targets name a third account in a direct conversation",
        refused("wrong_members"),
        apply=False,
    )
    del alice.sessions[mallory_key]
    # A target device that is not in bob's list of the named version (mallory's device
    # named as bob's): sealed by alice's laptop to a device it was told is bob's.
    base = sim.header(alice, "bob", "m-fake-device", sim.tick())
    bob_target = base.targets[1]
    fake = replace(
        base,
        targets=(
            base.targets[0],
            replace(bob_target, devices=tuple(sorted((*bob_target.devices, MALLORY.device.device_id)))),
        ),
    )
    fake_key = (BOB.username, MALLORY.device.device_id)
    alice.sessions[fake_key] = start_session(
        EMPTY,
        initiate_session(
            LAPTOP.party,
            LAPTOP.dh_private,
            replace(MALLORY.party, username=BOB.username),
            MALLORY.spk,
            None,
            alice.random(32),
        ),
    )
    unlisted = sim.send(alice, "bob", "m-fake-device", "to a device bob does not have", header=fake)
    del alice.sessions[fake_key]
    cases.receive(
        sim,
        BOB,
        entry_for(unlisted, BOB),
        "target_device_not_listed",
        "a target device that bob's accepted list of that version does not have",
        refused("device_not_listed"),
        apply=False,
    )


def prekey_cases(sim: Sim, cases: Cases) -> None:
    """mallory's laptop (any third account) starts sessions with bob's phone."""
    mallory, bob = sim.node(MALLORY), sim.node(BOB)
    spent = sim.send(mallory, "bob", "p-spent", "hello", one_time=False)
    # The server hands out bob's one-time prekey 1001 a second time (alice's setup used it).
    entry = entry_for(spent, BOB)
    mallory_sessions = mallory.sessions[(BOB.username, BOB.device.device_id)]
    assert mallory_sessions.active is not None
    forged = copy.deepcopy(entry)
    forged["slots"][0]["message"]["setup"]["one_time_prekey_id"] = 1001
    cases.receive(
        sim,
        BOB,
        forged,
        "prekey_unknown_one_time",
        "a setup naming one-time prekey 1001, which bob deleted when alice's setup used it",
        refused("prekey_unknown"),
        apply=False,
    )
    held = dict(bob.signed)
    bob.signed = {}
    cases.receive(
        sim,
        BOB,
        entry,
        "prekey_unknown_signed",
        "a setup naming signed prekey 7, whose private half bob no longer holds (past its grace)",
        refused("prekey_unknown"),
        apply=False,
    )
    bob.signed = held
    cases.receive(
        sim,
        BOB,
        entry,
        "first_message_without_one_time_prekey",
        "mallory's laptop sets up a session from a bundle without a one-time prekey",
        {**ACCEPTED, "one_time_prekey_used": None},
    )


def repair_and_eviction(cases: Cases) -> None:
    """alice's laptop starts new sessions with bob's phone after failures; bob keeps the
    old ones for messages in flight, evicts the oldest beyond five and remembers its id."""
    sim = Sim({"alice": ALICE_V1, "bob": BOB_V1}, [LAPTOP, BOB])
    alice, bob = sim.node(LAPTOP), sim.node(BOB)
    bob_key = (BOB.username, BOB.device.device_id)
    first = sim.send(alice, "bob", "e1", "first session")
    cases.receive(sim, BOB, entry_for(first, BOB), "", "", {**ACCEPTED}, record=False)
    cases.receive(
        sim,
        LAPTOP,
        entry_for(sim.send(bob, "alice", "e1r", "ok"), LAPTOP),
        "",
        "",
        {**ACCEPTED},
        record=False,
    )
    pending_copy = copy.deepcopy(alice.sessions)  # the first session, established

    in_flight = sim.send(alice, "bob", "e-in-flight", "sent on the first session, delivered late")
    alice.repair.add(bob_key)
    repaired = sim.send(alice, "bob", "e2", "a new session")
    cases.receive(
        sim,
        BOB,
        entry_for(repaired, BOB),
        "repair_replaces_established_session",
        "a new setup from alice's laptop while bob's session with it is established: it becomes active, with a notice",
        {**ACCEPTED, "notices": ["session_repaired"], "one_time_prekey_used": None},
    )
    cases.receive(
        sim,
        BOB,
        entry_for(in_flight, BOB),
        "late_message_on_previous_session",
        "a message sent on the replaced session opens with it; the new session stays active",
        {**ACCEPTED},
    )
    for i in range(3, 8):
        alice.repair.add(bob_key)
        cases.receive(
            sim,
            BOB,
            entry_for(sim.send(alice, "bob", f"e{i}", f"session {i}"), BOB),
            "",
            "",
            {**ACCEPTED, "notices": ["session_repaired"]},
            record=False,
        )
    assert len(bob.sessions[(LAPTOP.username, LAPTOP.device.device_id)].evicted) == 1
    # alice's laptop restored to a copy of the first session, its setup attached again.
    restored = copy.deepcopy(pending_copy)
    first_state = restored[bob_key].active
    assert first_state is not None
    alice.sessions = {
        bob_key: with_active(restored[bob_key], replace(first_state, pending_setup=_first_setup(sim, first)))
    }
    old_setup = sim.send(alice, "bob", "e-evicted", "from an old session")
    cases.receive(
        sim,
        BOB,
        entry_for(old_setup, BOB),
        "evicted_session_id",
        "a new envelope whose setup names bob's first session with alice's laptop, evicted from previous: its id is remembered",
        refused("ratchet_duplicate"),
        apply=False,
    )


def _first_setup(sim: Sim, wire: dict[str, Any]) -> bytes:
    setup = wire["slots"][0]["message"]["setup"]
    return SetupMessage.from_wire(setup).to_bytes()


def simultaneous_initiation(cases: Cases) -> None:
    """alice's phone and bob's phone start sessions with each other at once; both keep
    the session with the lower id. Then a setup crossed and delivered late."""
    lists = {"alice": ALICE_V2, "bob": BOB_V1}
    sim = Sim(lists, [LAPTOP, PHONE, BOB])
    phone, bob = sim.node(PHONE), sim.node(BOB)
    # Only the phone and bob's phone take part: the laptop is a target but never reads.
    from_phone = sim.send(phone, "bob", "s-phone", "hello from alice's phone", one_time=False)
    from_bob = sim.send(bob, "alice", "s-bob", "hello from bob", one_time=False)
    phone_sid = phone.sessions[(BOB.username, BOB.device.device_id)].active_id
    bob_sid = bob.sessions[(PHONE.username, PHONE.device.device_id)].active_id
    assert phone_sid is not None and bob_sid is not None
    lower = min(phone_sid, bob_sid)
    cases.receive(
        sim,
        BOB,
        entry_for(from_phone, BOB),
        "simultaneous_initiation_bob_side",
        "bob's own setup is still pending when alice's phone's arrives: the lower session id is active",
        {**ACCEPTED},
    )
    cases.receive(
        sim,
        PHONE,
        entry_for(from_bob, PHONE),
        "simultaneous_initiation_phone_side",
        "the same at alice's phone: it keeps the same session as bob",
        {**ACCEPTED},
    )
    assert active_id(bob, PHONE) == lower == active_id(phone, BOB)
    follow = sim.send(phone, "bob", "s-follow", "on the kept session")
    cases.receive(
        sim,
        BOB,
        entry_for(follow, BOB),
        "simultaneous_initiation_converged",
        "alice's phone sends on the kept session; bob opens it with his active one",
        {**ACCEPTED},
    )
    assert active_id(bob, PHONE) == lower == active_id(phone, BOB)

    # Crossed setups, one delivered late: laptop and bob both start; bob's arrives first
    # at the laptop, the laptop answers on the session it kept, and only then does the
    # laptop's own setup reach bob. Whichever id is lower, the late setup is older than
    # what the laptop sent since, so bob keeps what the laptop uses.
    laptop = sim.node(LAPTOP)
    late = sim.send(laptop, "bob", "x-laptop", "crossed, delivered late", one_time=False)
    bob_first = sim.send(bob, "alice", "x-bob", "crossed, delivered first", one_time=False)
    cases.receive(sim, LAPTOP, entry_for(bob_first, LAPTOP), "", "", {**ACCEPTED}, record=False)
    answer = sim.send(laptop, "bob", "x-answer", "the laptop's answer")
    cases.receive(sim, BOB, entry_for(answer, BOB), "", "", {**ACCEPTED}, record=False)
    cases.receive(
        sim,
        BOB,
        entry_for(late, BOB),
        "crossed_setup_delivered_late",
        "a setup sent before a message bob has already accepted from that device: readable, kept as previous, never active",
        {**ACCEPTED},
    )
    assert active_id(bob, LAPTOP) == active_id(laptop, BOB)


def repair_crossing_a_pending_setup(cases: Cases) -> None:
    """bob's phone repairs the session alice's laptop started before she has heard back on
    it: to her, his new setup meets her pending one (a tie); when hers has the lower id
    she keeps it and sends on it with its setup again, and bob, whose repair is now the
    pending one, takes hers back from previous: both keep the lower id."""
    for burn in range(64):
        sim = Sim({"alice": ALICE_V1, "bob": BOB_V1}, [LAPTOP, BOB])
        alice, bob = sim.node(LAPTOP), sim.node(BOB)
        first = sim.send(alice, "bob", "c1", "first")
        cases.receive(sim, BOB, entry_for(first, BOB), "", "", {**ACCEPTED}, record=False)
        for _ in range(burn):
            bob.random(32)
        bob.repair.add((LAPTOP.username, LAPTOP.device.device_id))
        repair = sim.send(bob, "alice", "c2", "a new session from bob")
        if active_id(bob, LAPTOP) > active_id(alice, BOB):  # type: ignore[operator]
            break
    else:
        raise SystemExit("no repair with a higher session id in 64 tries")
    cases.receive(
        sim,
        LAPTOP,
        entry_for(repair, LAPTOP),
        "repair_meets_pending_setup",
        "bob's repair reaches alice while her own session is pending, and hers has the lower id: she keeps it",
        {**ACCEPTED},
    )
    again = sim.send(alice, "bob", "c3", "on my session, with its setup")
    cases.receive(
        sim,
        BOB,
        entry_for(again, BOB),
        "pending_repair_yields_to_lower_previous",
        "alice still offers her session's setup and bob's repair is pending: her previous session, lower, becomes active again",
        {**ACCEPTED},
    )
    assert active_id(bob, LAPTOP) == active_id(alice, BOB)


def converging_on_the_lower_session(cases: Cases) -> None:
    """bob's phone offers a session; alice's laptop takes it, answers, then repairs it with
    a session of her own whose id is higher. bob takes her repair; she then opens bob's
    older message on his session, which, lower and not stale, is active again for her.
    When her next message reaches bob on that session, he moves to it too."""
    for burn in range(64):
        sim = Sim({"alice": ALICE_V1, "bob": BOB_V1}, [LAPTOP, BOB])
        alice, bob = sim.node(LAPTOP), sim.node(BOB)
        b1 = sim.send(bob, "alice", "l1", "bob's offer")
        b2 = sim.send(bob, "alice", "l2", "bob's offer again")
        cases.receive(sim, LAPTOP, entry_for(b1, LAPTOP), "", "", {**ACCEPTED}, record=False)
        a1 = sim.send(alice, "bob", "l3", "alice answers on bob's session")
        for _ in range(burn):
            alice.random(32)
        alice.repair.add((BOB.username, BOB.device.device_id))
        a2 = sim.send(alice, "bob", "l4", "alice's repair")
        if active_id(alice, BOB) > active_id(bob, LAPTOP):  # type: ignore[operator]
            break
    else:
        raise SystemExit("no repair with a higher session id in 64 tries")
    cases.receive(sim, BOB, entry_for(a1, BOB), "", "", {**ACCEPTED}, record=False)
    cases.receive(
        sim,
        BOB,
        entry_for(a2, BOB),
        "repair_after_answering",
        "alice's laptop answered on bob's session, then started its own: it replaces bob's established one",
        {**ACCEPTED, "notices": ["session_repaired"]},
    )
    cases.receive(
        sim,
        LAPTOP,
        entry_for(b2, LAPTOP),
        "lower_previous_session_offered_again",
        "bob's second message still offers his session (lower id, not stale): alice makes it active again",
        {**ACCEPTED},
    )
    back = sim.send(alice, "bob", "l5", "on bob's session")
    cases.receive(
        sim,
        BOB,
        entry_for(back, BOB),
        "lower_previous_session_becomes_active",
        "alice's newest message opens with bob's previous session, whose id is lower than the active one's: it is active again",
        {**ACCEPTED, "notices": ["session_repaired"]},
    )
    assert active_id(bob, LAPTOP) == active_id(alice, BOB)


def older_setup_delivered_late(cases: Cases) -> None:
    """alice's laptop starts two sessions in a row; bob gets the newer first."""
    sim = Sim({"alice": ALICE_V1, "bob": BOB_V1}, [LAPTOP, BOB])
    alice, bob = sim.node(LAPTOP), sim.node(BOB)
    bob_key = (BOB.username, BOB.device.device_id)
    cases.receive(
        sim, BOB, entry_for(sim.send(alice, "bob", "o1", "one"), BOB), "", "", {**ACCEPTED}, record=False
    )
    cases.receive(
        sim,
        LAPTOP,
        entry_for(sim.send(bob, "alice", "o1r", "ok"), LAPTOP),
        "",
        "",
        {**ACCEPTED},
        record=False,
    )
    alice.repair.add(bob_key)
    older = sim.send(alice, "bob", "o2", "a new session")
    alice.repair.add(bob_key)
    newer = sim.send(alice, "bob", "o3", "and another")
    cases.receive(
        sim,
        BOB,
        entry_for(newer, BOB),
        "newer_repair_first",
        "the second of two new sessions arrives first: it replaces the established one",
        {**ACCEPTED, "notices": ["session_repaired"]},
    )
    cases.receive(
        sim,
        BOB,
        entry_for(older, BOB),
        "older_setup_delivered_late",
        "the first arrives late: sent before a message bob has accepted from that device, so it opens but never becomes active",
        {**ACCEPTED},
    )
    assert active_id(bob, LAPTOP) == active_id(alice, BOB)


def revoked_device(cases: Cases) -> None:
    sim = Sim({"alice": ALICE_V2, "bob": BOB_V1}, [LAPTOP, PHONE, BOB])
    phone, bob = sim.node(PHONE), sim.node(BOB)
    before = sim.send(phone, "bob", "v-before", "from the phone")
    cases.receive(sim, BOB, entry_for(before, BOB), "", "", {**ACCEPTED}, record=False)
    got = cases.receive(
        sim,
        LAPTOP,
        entry_for(before, LAPTOP),
        "from_own_other_device",
        "alice's laptop gets the copy her phone sent to bob: the peer is bob, derived from the targets",
        {**ACCEPTED, "peer": "bob", "sender": "alice"},
    )
    assert got["sender_device"] == PHONE.device.device_id
    # Not for this device: the slot of alice's laptop, delivered to bob's phone.
    cases.receive(
        sim,
        BOB,
        entry_for(before, LAPTOP),
        "not_for_me",
        "an entry whose only slot is alice's laptop's, delivered to bob's phone",
        refused("not_for_me"),
        apply=False,
    )
    bob.lists["alice"] = ALICE_V3
    after = sim.send(phone, "bob", "v-after", "from the phone after its revocation")
    cases.receive(
        sim,
        BOB,
        entry_for(after, BOB),
        "revoked_device",
        "bob has accepted alice's list version 3 without her phone: the phone's message is refused",
        refused("device_not_listed"),
        apply=False,
    )


# ---------------------------------------------------------------------------
# Device lists and bundles.
# ---------------------------------------------------------------------------


def list_cases() -> list[dict[str, Any]]:
    no_certificate = sign_device_list(
        LAPTOP.account_seed,
        LAPTOP.username,
        2,
        T0 + 2,
        [LAPTOP.device, replace(PHONE.device, certificate=b"")],
    ).to_wire()
    resigned = sign_device_list(LAPTOP.account_seed, LAPTOP.username, 2, T0 + 99, [LAPTOP.device])
    forged = ALICE_V2.to_wire()
    forged["signature"] = b64(ed25519_sign_raw(MALLORY.account_seed, ALICE_V2.signed_bytes))
    other = BOB_V1.to_wire()
    # A certificate made by mallory's account for the phone, in alice's list signed by alice.
    mallory_cert = Device(
        PHONE.device.device_id,
        PHONE.device.signing_key,
        PHONE.device.dh_key,
        PHONE.device.created_at,
        ed25519_sign_raw(MALLORY.account_seed, b"not the certificate bytes"),
    )
    bad_cert_list = sign_device_list(
        LAPTOP.account_seed, LAPTOP.username, 2, T0 + 2, [LAPTOP.device, mallory_cert]
    )
    table: list[tuple[str, str, object, DeviceList | None, dict[str, Any]]] = [
        (
            "first_list",
            "alice's first list: accepted; nothing to compare, so no notices",
            ALICE_V1.to_wire(),
            None,
            {"outcome": "accepted", "added": [], "removed": [], "drop_sessions": []},
        ),
        (
            "device_added",
            "version 2 adds the phone: 'alice added a new device'",
            ALICE_V2.to_wire(),
            ALICE_V1,
            {"outcome": "accepted", "added": [PHONE.device.device_id], "removed": [], "drop_sessions": []},
        ),
        (
            "device_removed",
            "version 3 revokes the phone: its sessions are dropped",
            ALICE_V3.to_wire(),
            ALICE_V2,
            {
                "outcome": "accepted",
                "added": [],
                "removed": [PHONE.device.device_id],
                "drop_sessions": [PHONE.device.device_id],
            },
        ),
        ("unchanged", "the accepted list again", ALICE_V2.to_wire(), ALICE_V2, {"outcome": "unchanged"}),
        (
            "rollback_older_version",
            "version 2 after version 3",
            ALICE_V2.to_wire(),
            ALICE_V3,
            {"outcome": "refused", "reason": "device_list_rollback"},
        ),
        (
            "rollback_same_version_other_contents",
            "another version 2, validly signed",
            resigned.to_wire(),
            ALICE_V2,
            {"outcome": "refused", "reason": "device_list_rollback"},
        ),
        (
            "signed_by_another_key",
            "alice's list signed by mallory's account key",
            forged,
            None,
            {"outcome": "refused", "reason": "device_list_invalid"},
        ),
        (
            "another_account",
            "bob's list offered as alice's",
            other,
            None,
            {"outcome": "refused", "reason": "device_list_invalid"},
        ),
        (
            "missing_certificate",
            "a device without a certificate",
            no_certificate,
            None,
            {"outcome": "refused", "reason": "device_certificate_invalid"},
        ),
        (
            "certificate_invalid",
            "a certificate that does not verify with alice's account key",
            bad_cert_list.to_wire(),
            None,
            {"outcome": "refused", "reason": "device_certificate_invalid"},
        ),
        ("malformed", "no devices member", {"v": 2}, None, {"outcome": "refused", "reason": "malformed"}),
        (
            "unsupported_version",
            "v is 3",
            {**ALICE_V1.to_wire(), "v": 3},
            None,
            {"outcome": "refused", "reason": "unsupported_version"},
        ),
    ]
    out = []
    for name, note, document, accepted, expected in table:
        decision = list_decision_to_wire(
            accept_device_list(document, LAPTOP.username, LAPTOP.account_key, accepted)
        )
        for member, value in expected.items():
            if decision.get(member) != value:
                raise SystemExit(
                    f"lists/{name}: expected {member}={value!r}, the code gives {decision.get(member)!r}"
                )
        out.append(
            {
                "name": name,
                "note": note,
                "input": {
                    "document": document,
                    "username": LAPTOP.username,
                    "pinned_account_key": b64(LAPTOP.account_key),
                    "accepted": None if accepted is None else accepted.to_wire(),
                },
                "expected": decision,
            }
        )
    return out


def bundle_cases() -> list[dict[str, Any]]:
    now = T0 + 10 * DAY_MS
    stale = make_signed_prekey(
        BOB.signing_seed, BOB.username, BOB.device.device_id, 6, secret("bob", "stale"), T0 - 21 * DAY_MS
    )
    forged = {**BOB.spk.to_wire(), "signature": b64(bytes(64))}
    good = {
        "device_id": BOB.device.device_id,
        "signed_prekey": BOB.spk.to_wire(),
        "one_time_prekey": BOB.opks[1001].to_wire(),
    }
    table: list[tuple[str, str, object, dict[str, Any]]] = [
        (
            "with_one_time_prekey",
            "bob's phone's bundle",
            good,
            {"outcome": "accepted", "one_time_prekey_id": 1001},
        ),
        (
            "without_one_time_prekey",
            "the server has no one-time prekey left",
            {**good, "one_time_prekey": None},
            {"outcome": "accepted", "one_time_prekey_id": None},
        ),
        (
            "stale_signed_prekey",
            "a signed prekey made 31 days before now",
            {**good, "signed_prekey": stale.to_wire()},
            {"outcome": "refused", "reason": "prekey_stale"},
        ),
        (
            "forged_signed_prekey",
            "a signed prekey whose signature is not bob's phone's",
            {**good, "signed_prekey": forged},
            {"outcome": "refused", "reason": "prekey_invalid"},
        ),
        (
            "forged_one_time_prekey",
            "a one-time prekey signed by mallory's device",
            {
                **good,
                "one_time_prekey": {
                    **BOB.opks[1001].to_wire(),
                    "signature": MALLORY.opks[1001].to_wire()["signature"],
                },
            },
            {"outcome": "refused", "reason": "prekey_invalid"},
        ),
        (
            "device_not_listed",
            "a bundle for mallory's device offered as bob's",
            {**good, "device_id": MALLORY.device.device_id},
            {"outcome": "refused", "reason": "device_not_listed"},
        ),
        (
            "malformed",
            "no one_time_prekey member",
            {"device_id": BOB.device.device_id, "signed_prekey": BOB.spk.to_wire()},
            {"outcome": "refused", "reason": "malformed"},
        ),
    ]
    out = []
    for name, note, bundle, expected in table:
        decision = bundle_decision_to_wire(accept_bundle(bundle, BOB_V1, now))
        for member, value in expected.items():
            if decision.get(member) != value:
                raise SystemExit(
                    f"bundles/{name}: expected {member}={value!r}, the code gives {decision.get(member)!r}"
                )
        out.append(
            {
                "name": name,
                "note": note,
                "input": {"bundle": bundle, "device_list": BOB_V1.to_wire(), "now": now},
                "expected": decision,
            }
        )
    return out


# ---------------------------------------------------------------------------
# Receipts (15.17): the payload of a message receive_direct_v2 accepted.
# ---------------------------------------------------------------------------


def run_receipt(inputs: dict[str, Any]) -> dict[str, Any]:
    """The receipt core, from the JSON inputs alone (as a second implementation would)."""
    message = inputs["message"]
    decision = decide_receipt_v2(
        sender=message["sender"],
        conversation_id=message["conversation_id"],
        payload=message["payload"],
        me=inputs["me"],
        sent=inputs["sent"],
        received=inputs["received"],
    )
    return receipt_decision_to_wire(decision)


def receipt_cases() -> list[dict[str, Any]]:
    """alice sent bob m1 and m2 (and carol c1); bob sent alice r1 and r2. Each case is a
    receipt payload as one of alice's devices opens it."""
    dm = direct_conversation_id(Username("alice"), Username("bob"))
    other = direct_conversation_id(Username("alice"), Username("carol"))
    m1, m2, c1, r1, r2 = (message_id(f"receipt-{label}") for label in ("m1", "m2", "c1", "r1", "r2"))
    stranger = message_id("receipt-stranger")
    sent = {dm: {m1: ["alice", "bob"], m2: ["alice", "bob"]}, other: {c1: ["alice", "carol"]}}
    received = {dm: [r1, r2]}
    many = sorted([m1, *(message_id(f"receipt-many-{n}") for n in range(99))])
    too_many = sorted([*many, message_id("receipt-many-99")])

    def ids(*values: str) -> list[str]:
        return sorted(values)

    def accepted(
        status: str, covered: list[str], *, reader: str = "bob", own: bool = False
    ) -> dict[str, Any]:
        return {
            "outcome": "accepted",
            "conversation_id": dm,
            "reader": reader,
            "status": status,
            "message_ids": sorted(covered),
            "own": own,
        }

    def receipt(status: object, message_ids: object, **extra: object) -> dict[str, Any]:
        return {"type": "receipt", "status": status, "message_ids": message_ids, **extra}

    table: list[tuple[str, str, str, object, dict[str, Any], str]] = [
        (
            "delivered_from_the_peer",
            "bob",
            dm,
            receipt("delivered", ids(m1, m2)),
            accepted("delivered", [m1, m2]),
            "bob's device says it has both of alice's messages",
        ),
        (
            "read_from_the_peer",
            "bob",
            dm,
            receipt("read", ids(m2)),
            accepted("read", [m2]),
            "bob has read m2",
        ),
        (
            "only_my_messages_move",
            "bob",
            dm,
            receipt("read", ids(m1, r1, stranger)),
            accepted("read", [m1]),
            "ids of bob's own messages and unknown ids are passed over",
        ),
        (
            "a_hundred_ids",
            "bob",
            dm,
            receipt("delivered", many),
            accepted("delivered", [m1]),
            "100 ids is the limit, and allowed",
        ),
        (
            "names_no_message_of_mine",
            "bob",
            dm,
            receipt("read", ids(r1, stranger)),
            {"outcome": "refused", "reason": "not_for_me"},
            "bob names his own message and an unknown one: nothing of alice's",
        ),
        (
            "names_a_message_of_another_conversation",
            "bob",
            dm,
            receipt("read", ids(c1)),
            {"outcome": "refused", "reason": "not_for_me"},
            "c1 was sent in alice's conversation with carol: a receipt in the one with bob cannot move it",
        ),
        (
            "reader_not_a_recipient",
            "carol",
            other,
            receipt("read", ids(c1)),
            {
                "outcome": "accepted",
                "conversation_id": other,
                "reader": "carol",
                "status": "read",
                "message_ids": [c1],
                "own": False,
            },
            "carol, who c1 was sealed for, in her conversation with alice",
        ),
        (
            "sender_not_among_the_recipients",
            "bob",
            other,
            receipt("read", ids(c1)),
            {"outcome": "refused", "reason": "wrong_members"},
            "a receipt from bob (as if in alice's conversation with carol) for c1, sealed for alice and carol only",
        ),
        (
            "own_device_read",
            "alice",
            dm,
            receipt("read", ids(r1, r2)),
            accepted("read", [r1, r2], reader="alice", own=True),
            "alice's other device has shown bob's messages: this device counts them as read",
        ),
        (
            "own_device_delivered",
            "alice",
            dm,
            receipt("delivered", ids(r1)),
            accepted("delivered", [r1], reader="alice", own=True),
            "alice's other device got r1 (this device changes nothing for it, 15.17)",
        ),
        (
            "own_device_names_nothing_received",
            "alice",
            dm,
            receipt("read", ids(m1, stranger)),
            {"outcome": "refused", "reason": "not_for_me"},
            "alice's own messages and unknown ids are not messages this device received",
        ),
        (
            "malformed_extra_member",
            "bob",
            dm,
            receipt("read", ids(m1), conversation_id=dm),
            {"outcome": "refused", "reason": "malformed"},
            "exactly type, status and message_ids",
        ),
        (
            "malformed_missing_status",
            "bob",
            dm,
            {"type": "receipt", "message_ids": ids(m1)},
            {"outcome": "refused", "reason": "malformed"},
            "no status",
        ),
        (
            "malformed_status",
            "bob",
            dm,
            receipt("seen", ids(m1)),
            {"outcome": "refused", "reason": "malformed"},
            "delivered or read only",
        ),
        (
            "malformed_no_ids",
            "bob",
            dm,
            receipt("read", []),
            {"outcome": "refused", "reason": "malformed"},
            "at least one id",
        ),
        (
            "malformed_too_many_ids",
            "bob",
            dm,
            receipt("read", too_many),
            {"outcome": "refused", "reason": "malformed"},
            "at most 100 ids",
        ),
        (
            "malformed_not_ascending",
            "bob",
            dm,
            receipt("read", sorted([m1, m2], reverse=True)),
            {"outcome": "refused", "reason": "malformed"},
            "ids strictly ascending",
        ),
        (
            "malformed_duplicate_ids",
            "bob",
            dm,
            receipt("read", [m1, m1]),
            {"outcome": "refused", "reason": "malformed"},
            "no id twice",
        ),
        (
            "malformed_bad_id",
            "bob",
            dm,
            receipt("read", [m1.upper()]),
            {"outcome": "refused", "reason": "malformed"},
            "ids are lower-case UUIDv4 (3.2)",
        ),
        (
            "malformed_ids_not_a_list",
            "bob",
            dm,
            receipt("read", m1),
            {"outcome": "refused", "reason": "malformed"},
            "message_ids is a list",
        ),
        (
            "malformed_other_type",
            "bob",
            dm,
            {"type": "text", "status": "read", "message_ids": ids(m1)},
            {"outcome": "refused", "reason": "malformed"},
            "not a receipt payload at all",
        ),
        (
            "malformed_not_an_object",
            "bob",
            dm,
            ["receipt", "read", m1],
            {"outcome": "refused", "reason": "malformed"},
            "a payload is an object",
        ),
    ]
    out = []
    for name, sender, conversation, payload, expected, note in table:
        inputs = {
            "message": {"sender": sender, "conversation_id": conversation, "payload": payload},
            "me": "alice",
            "sent": sent,
            "received": received,
        }
        got = run_receipt(inputs)
        if got != expected:
            raise SystemExit(f"receipt case {name}: the core says {got}, the case {expected}")
        out.append({"name": name, "note": note, "input": inputs, "expected": expected})
    return out


def build() -> dict[str, Any]:
    cases = Cases()
    main_conversation(cases)
    repair_and_eviction(cases)
    simultaneous_initiation(cases)
    older_setup_delivered_late(cases)
    repair_crossing_a_pending_setup(cases)
    converging_on_the_lower_session(cases)
    revoked_device(cases)
    return {
        "note": "Client decisions of protocol v2 (PROTOCOL.md 10, 14, 15.3, 15.4, 15.8, 15.9.1, 15.17). "
        "Made by scripts/make_v2_decision_vectors.py.",
        "device_lists": list_cases(),
        "bundles": bundle_cases(),
        "receive": cases.out,
        "identity_transitions": transition_cases(),
        "identity_transition_signing": signing_cases(),
        "receipts": receipt_cases(),
    }


def main() -> int:
    return vector_file.main(__doc__, OUTPUT, __file__, build)


if __name__ == "__main__":
    sys.exit(main())
