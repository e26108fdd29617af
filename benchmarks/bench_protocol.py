"""Protocol benchmark: what a direct message costs in v1 and in v2, in the same run.

Run from the repository root::

    .venv/bin/python benchmarks/bench_protocol.py              # about 20 seconds
    .venv/bin/python benchmarks/bench_protocol.py --repeats 2000 --json

Protocol code (``securechat.protocol`` and ``securechat.protocol.v2``) and the clients'
pure decision cores (``securechat.client.core``): no server, no storage. Every key is
fresh from the operating system's randomness. A 100-byte text is sent from alice's device
to bob's; a v2 header names both accounts, as a client's does (15.8: alice's with her
other devices, none here). Times are medians over
``--repeats`` runs, in milliseconds, of one process on one core; v1 and v2 run in ten
alternating turns so that load from other processes falls on both alike. Both keep
their keys in memory between messages, as a running client does: v1 its loaded RSA and
Ed25519 keys, v2 its session states (with the loaded ratchet key) and the sender's
device (with its loaded signing key). Opening includes parsing, the signature and
decryption in both, from the same JSON-decoded dictionary a client receives:

- **v1 seal**: ``seal_message`` for the two members (two RSA-OAEP wraps, one signature).
- **v1 open**: ``Envelope.from_wire`` and ``open_message`` (signature, RSA-OAEP unwrap,
  AES-GCM, unpadding, payload); and the RSA-OAEP unwrap alone.
- **v2 seal**: ``seal_envelope`` for bob's one device over an established session, in
  the same sending chain (no DH turn) and with a DH turn (the first send after a reply).
- **v2 open**: ``EnvelopeV2.from_wire``, the sender device's signature, the ratchet
  (``ratchet_decrypt``), the slot's binding, AES-GCM and unpadding, and the payload; in
  the same chain, and when the message turns the DH ratchet.
- **v2 setup**: ``initiate_session`` (DH1-DH4, HKDF) and ``accept_session`` (the same,
  plus opening the first message), with a one-time prekey.
- **stored state**: ``SessionState.to_bytes()`` of an established session, of a pending
  initiator session, and per skipped key.
- **client decision**: the whole receiving decision with every check, from the same
  dictionary: v1's ``decide_message`` (pinned keys, signature, conversation and members,
  replay, unwrap, body, payload) beside v2's ``receive_direct_v2`` (the sender device in
  its accepted list, signature, conversation and members, listed targets, replay, the
  session set and ratchet, binding, body, payload), interleaved like the rest.
- **where an open's time goes**: each step of a v2 open with a DH turn and of a v1 open
  timed alone, then each primitive inside them (Ed25519, X25519, HKDF, HMAC, AES-GCM,
  SHA-256, RSA-OAEP, the payload's JSON) timed alone on the same inputs; the rest is the
  Python around them.
- **bytes on the wire**: the JSON envelope (compact, as the clients send it) for 1, 2
  and 5 recipient devices in v2, beside v1 with 1, 2 and 5 recipient accounts (v1 wraps
  per account, v2 per device).

Then the same seal, open and setup measurements with the browser client's own modules
(``src/securechat/web/protocol/`` and ``v2/``, Web Crypto only) through
``benchmarks/protocol_bench.mjs``: in headless Chromium (Debian's ``/usr/bin/chromium``
under Playwright, the page served from a loopback HTTP server of the repository, since
Web Crypto needs a secure context) and in Node. ``--no-js`` skips both.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from revision import git_revision  # benchmarks/revision.py, beside this script

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from securechat.client.core import Accepted, Pin, decide_message  # noqa: E402
from securechat.client.core.v2 import AcceptedV2, MeV2, SessionSet, receive_direct_v2, with_active  # noqa: E402
from securechat.protocol.encoding import canonical  # noqa: E402
from securechat.protocol.envelope import (  # noqa: E402
    Envelope,
    decode_payload,
    decrypt_padded_payload,
    encode_payload,
    open_message,
    seal_message,
    verify_signature,
    wrapped_key_label,
)
from securechat.protocol.identifiers import (  # noqa: E402
    ConversationId,
    MessageId,
    Username,
    direct_conversation_id,
)
from securechat.protocol.keys import PrivateIdentity  # noqa: E402
from securechat.protocol.primitives import (  # noqa: E402
    aes_gcm_decrypt,
    load_ed25519_public_key,
    rsa_oaep_decrypt,
)
from securechat.protocol.v2.devices import Device, certify_device, sign_device_list  # noqa: E402
from securechat.protocol.v2.envelope import (  # noqa: E402
    EnvelopeV2,
    HeaderV2,
    Target,
    envelope_signature_input,
    open_body,
    open_key_slot,
    seal_envelope,
    verify_envelope,
)
from securechat.protocol.v2.labels import BODY_BINDING  # noqa: E402
from securechat.protocol.v2.prekeys import (  # noqa: E402
    OneTimePrekey,
    SignedPrekey,
    make_one_time_prekey,
    make_signed_prekey,
)
from securechat.protocol.v2.primitives import X25519Key, ed25519_raw_public, x25519_public  # noqa: E402
from securechat.protocol.v2.ratchet import (  # noqa: E402
    SessionState,
    SkippedKey,
    kdf_ck,
    kdf_rk,
    message_key_material,
    ratchet_aad,
    ratchet_decrypt,
)
from securechat.protocol.v2.setup import Party, accept_session, initiate_session  # noqa: E402

TEXT = "x" * 100
NOW = int(time.time() * 1000)


@dataclass(frozen=True)
class Persona:
    """One device of one account, with fresh keys."""

    username: Username
    account_seed: bytes
    signing_seed: bytes
    dh_private: bytes
    device: Device
    signed_prekey_private: bytes
    signed_prekey: SignedPrekey

    @property
    def party(self) -> Party:
        return Party(self.username, ed25519_raw_public(self.account_seed), self.device)

    def one_time_prekey(self, prekey_id: int) -> tuple[bytes, OneTimePrekey]:
        private = os.urandom(32)
        return private, make_one_time_prekey(
            self.signing_seed, self.username, self.device.device_id, prekey_id, private
        )


def persona(user: str, account_seed: bytes | None = None) -> Persona:
    username = Username(user)
    account_seed = account_seed or os.urandom(32)
    signing_seed, dh_private, spk_private = os.urandom(32), os.urandom(32), os.urandom(32)
    device = certify_device(
        account_seed, username, ed25519_raw_public(signing_seed), x25519_public(dh_private), NOW
    )
    spk = make_signed_prekey(signing_seed, username, device.device_id, 1, spk_private, NOW)
    return Persona(username, account_seed, signing_seed, dh_private, device, spk_private, spk)


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 4)


# --- v1 ----------------------------------------------------------------------------------


class BenchV1:
    """alice's and bob's identities; each ``run`` adds samples for ``n`` more messages."""

    def __init__(self) -> None:
        self.alice = PrivateIdentity.generate(Username("alice"))
        self.bob = PrivateIdentity.generate(Username("bob"))
        self.seal: list[float] = []
        self.open: list[float] = []
        self.unwrap: list[float] = []

    def run(self, n: int) -> None:
        alice, bob = self.alice, self.bob
        conversation = ConversationId(direct_conversation_id(alice.username, bob.username))
        recipients = {alice.username: alice.public, bob.username: bob.public}
        payload = {"type": "text", "text": TEXT}
        for _ in range(n):
            start = time.perf_counter()
            envelope = seal_message(alice, conversation, recipients, payload)
            self.seal.append(time.perf_counter() - start)
            wire = json.loads(json.dumps(envelope.to_wire()))
            start = time.perf_counter()
            opened = open_message(
                Envelope.from_wire(wire),
                me=bob,
                sender_identity=alice.public,
                conversation_id=conversation,
                members={alice.username, bob.username},
            )
            self.open.append(time.perf_counter() - start)
            assert opened.payload["text"] == TEXT
            mine = next(key for key in envelope.keys if key.recipient == bob.username)
            label = wrapped_key_label(envelope.header.message_id, bob.username)
            start = time.perf_counter()
            rsa_oaep_decrypt(bob.encryption_private, mine.wrapped_key, label)
            self.unwrap.append(time.perf_counter() - start)

    def result(self) -> dict[str, Any]:
        return {
            "seal_ms": median_ms(self.seal),
            "open_ms": median_ms(self.open),
            "rsa_unwrap_ms": median_ms(self.unwrap),
        }


def v1_bytes(accounts: int) -> int:
    names = [Username(f"user{i}") for i in range(accounts)]
    identities = [PrivateIdentity.generate(name) for name in names]
    sender = identities[0]
    conversation = ConversationId(direct_conversation_id(names[0], names[-1]))
    envelope = seal_message(
        sender,
        conversation,
        {identity.username: identity.public for identity in identities},
        {"type": "text", "text": TEXT},
    )
    return len(json.dumps(envelope.to_wire(), separators=(",", ":")).encode())


# --- v2 ----------------------------------------------------------------------------------


@dataclass
class Conversation:
    """alice's device and bob's devices, with established sessions both ways."""

    alice: Persona
    bobs: list[Persona]
    # alice -> bob device: alice's state; bob device -> alice: that device's state.
    alice_states: dict[tuple[str, str], SessionState]
    bob_states: dict[str, SessionState]

    def header(self, sender: Persona, targets: list[Persona]) -> HeaderV2:
        # The sender's account is a target too, with its other devices (none here), as a
        # client makes every direct message's header (15.8); receivers check both accounts.
        by_user: dict[str, list[str]] = {sender.username: []}
        for device in targets:
            by_user.setdefault(device.username, []).append(device.device.device_id)
        return HeaderV2(
            MessageId(str(uuid.uuid4())),
            ConversationId(direct_conversation_id(Username("alice"), Username("bob"))),
            sender.username,
            sender.device.device_id,
            int(time.time() * 1000),
            tuple(Target(Username(user), 1, tuple(sorted(ids))) for user, ids in sorted(by_user.items())),
        )


def seal_text(
    conversation: Conversation,
    sender: Persona,
    targets: list[Persona],
    states: dict[tuple[str, str], SessionState],
) -> tuple[EnvelopeV2, dict[tuple[str, str], SessionState]]:
    """The 100-byte text sealed once for ``targets`` over ``states`` (by (username, device id))."""
    return seal_envelope(
        conversation.header(sender, targets),
        encode_payload({"type": "text", "text": TEXT}),
        os.urandom(32),
        os.urandom(12),
        states,
        sender.signing_seed,
        os.urandom,
    )


def open_as(me: Persona, sender: Persona, state: SessionState, wire: object) -> SessionState:
    """A receiving device's steps of 15.8 over an existing session; the new state."""
    envelope = EnvelopeV2.from_wire(wire)
    verify_envelope(envelope, sender.device)
    slot = envelope.slot_for(me.username, me.device.device_id)
    assert slot is not None
    plaintext, state = ratchet_decrypt(state, slot.message, envelope.binding, int(time.time() * 1000))
    payload = decode_payload(open_body(envelope, open_key_slot(envelope, plaintext)))
    assert payload["text"] == TEXT
    return state


@dataclass(frozen=True)
class FirstMessage:
    """A session set up by alice from one of bob's bundles and its first message opened."""

    initiate_seconds: float
    accept_seconds: float
    alice_state: SessionState
    bob_state: SessionState


def first_message(conversation: Conversation, alice: Persona, bob: Persona, prekey_id: int) -> FirstMessage:
    opk_private, opk = bob.one_time_prekey(prekey_id)
    ephemeral = os.urandom(32)
    start = time.perf_counter()
    state = initiate_session(alice.party, alice.dh_private, bob.party, bob.signed_prekey, opk, ephemeral)
    initiate_seconds = time.perf_counter() - start
    key = (bob.username, bob.device.device_id)
    envelope, states = seal_text(conversation, alice, [bob], {key: state})
    slot = envelope.slot_for(bob.username, bob.device.device_id)
    assert slot is not None
    start = time.perf_counter()
    accepted = accept_session(
        bob.party,
        bob.dh_private,
        alice.party,
        slot.message,
        {1: bob.signed_prekey_private},
        {prekey_id: opk_private},
        envelope.binding,
        NOW,
    )
    return FirstMessage(initiate_seconds, time.perf_counter() - start, states[key], accepted.state)


def establish(alice: Persona, bobs: list[Persona]) -> Conversation:
    """alice sets up a session with each of bob's devices; each answers once."""
    conversation = Conversation(alice, bobs, {}, {})
    alice_key = (alice.username, alice.device.device_id)
    for bob in bobs:
        first = first_message(conversation, alice, bob, 1000)
        # bob answers, so alice's session is no longer pending and both have turned once.
        reply, replies = seal_text(conversation, bob, [alice], {alice_key: first.bob_state})
        conversation.bob_states[bob.device.device_id] = replies[alice_key]
        conversation.alice_states[(bob.username, bob.device.device_id)] = open_as(
            alice, bob, first.alice_state, reply.to_wire()
        )
    return conversation


def send(conversation: Conversation, sender: Persona, receiver: Persona) -> tuple[float, float]:
    """One message between alice and one of bob's devices, either way: the seal and open
    times. Both sides' states move on."""
    bob = receiver if sender is conversation.alice else sender
    alice_key = (bob.username, bob.device.device_id)  # alice's session with that device
    sender_state, receiver_state = (
        (conversation.alice_states[alice_key], conversation.bob_states[bob.device.device_id])
        if sender is conversation.alice
        else (conversation.bob_states[bob.device.device_id], conversation.alice_states[alice_key])
    )
    start = time.perf_counter()
    envelope, states = seal_text(
        conversation, sender, [receiver], {(receiver.username, receiver.device.device_id): sender_state}
    )
    seal = time.perf_counter() - start
    wire = json.loads(json.dumps(envelope.to_wire()))
    start = time.perf_counter()
    receiver_state = open_as(receiver, sender, receiver_state, wire)
    opened = time.perf_counter() - start
    (sender_state,) = states.values()
    if sender is conversation.alice:
        conversation.alice_states[alice_key], conversation.bob_states[bob.device.device_id] = (
            sender_state,
            receiver_state,
        )
    else:
        conversation.bob_states[bob.device.device_id], conversation.alice_states[alice_key] = (
            sender_state,
            receiver_state,
        )
    return seal, opened


class BenchV2:
    """alice's device and bob's, with a session; each ``run`` adds samples for ``n`` more
    rounds of three messages."""

    def __init__(self) -> None:
        self.alice, self.bob = persona("alice"), persona("bob")
        self.conversation = establish(self.alice, [self.bob])
        self.chain_seal: list[float] = []
        self.chain_open: list[float] = []
        self.turn_seal: list[float] = []
        self.turn_open: list[float] = []

    def run(self, n: int) -> None:
        conversation, alice, bob = self.conversation, self.alice, self.bob
        for _ in range(n):
            # alice sends twice (the second in the same chain), then bob once (a DH turn for
            # both: bob's send turns his ratchet, and alice's next send turns hers).
            seal, opened = send(conversation, alice, bob)
            self.turn_seal.append(seal)
            self.turn_open.append(opened)
            seal, opened = send(conversation, alice, bob)
            self.chain_seal.append(seal)
            self.chain_open.append(opened)
            send(conversation, bob, alice)

    def result(self, repeats: int) -> dict[str, Any]:
        conversation, alice, bob = self.conversation, self.alice, self.bob
        chain_seal, chain_open, turn_seal, turn_open = (
            self.chain_seal,
            self.chain_open,
            self.turn_seal,
            self.turn_open,
        )
        setups = [
            first_message(conversation, alice, bob, 2000 + index) for index in range(max(20, repeats // 10))
        ]
        established = conversation.alice_states[(bob.username, bob.device.device_id)]
        pending = initiate_session(
            alice.party,
            alice.dh_private,
            bob.party,
            bob.signed_prekey,
            bob.one_time_prekey(3000)[1],
            os.urandom(32),
        )
        one_skipped = replace(established, skipped=(SkippedKey(os.urandom(32), 7, os.urandom(32), NOW),))
        return {
            "seal_same_chain_ms": median_ms(chain_seal),
            "seal_dh_turn_ms": median_ms(turn_seal),
            "open_same_chain_ms": median_ms(chain_open),
            "open_dh_turn_ms": median_ms(turn_open),
            "setup_initiate_ms": median_ms([setup.initiate_seconds for setup in setups]),
            "setup_accept_with_first_message_ms": median_ms([setup.accept_seconds for setup in setups]),
            "state_bytes_established": len(established.to_bytes()),
            "state_bytes_pending_setup": len(pending.to_bytes()),
            "state_bytes_per_skipped_key": len(one_skipped.to_bytes()) - len(established.to_bytes()),
        }


def v2_bytes(devices: int) -> int:
    account = os.urandom(32)
    alice = persona("alice")
    bobs = [persona("bob", account) for _ in range(devices)]
    conversation = establish(alice, bobs)
    envelope, _ = seal_text(conversation, alice, bobs, conversation.alice_states)
    return len(json.dumps(envelope.to_wire(), separators=(",", ":")).encode())


# --- the clients' decisions ---------------------------------------------------------------


class BenchDecisions:
    """The whole receiving decision of each client core (``client.core``, pure: no storage,
    no I/O) for the same kind of message: v1's ``decide_message`` (pins, signature,
    conversation and members, replay, unwrap, body, payload) and v2's ``receive_direct_v2``
    (parse, the sender device in its accepted list, signature, conversation and members,
    listed targets, replay, the session set and ratchet, binding, body, payload). Each
    ``run`` adds samples for ``n`` more v1 messages and v2 rounds as in :class:`BenchV2`."""

    def __init__(self) -> None:
        self.v1_alice = PrivateIdentity.generate(Username("alice"))
        self.v1_bob = PrivateIdentity.generate(Username("bob"))
        self.alice, self.bob = persona("alice"), persona("bob")
        self.conversation = establish(self.alice, [self.bob])
        self.lists = {
            p.username: sign_device_list(p.account_seed, p.username, 1, NOW, [p.device])
            for p in (self.alice, self.bob)
        }
        self.me = MeV2(
            self.bob.username, self.bob.party.account_key, self.bob.device, self.bob.dh_private, {}, {}
        )
        self.sessions = SessionSet(active=self.conversation.bob_states[self.bob.device.device_id])
        self.inbox_seq = 0
        self.v1: list[float] = []
        self.chain: list[float] = []
        self.turn: list[float] = []

    def _v1(self) -> float:
        alice, bob = self.v1_alice, self.v1_bob
        conversation = ConversationId(direct_conversation_id(alice.username, bob.username))
        envelope = seal_message(
            alice,
            conversation,
            {alice.username: alice.public, bob.username: bob.public},
            {"type": "text", "text": TEXT},
        )
        wire = json.loads(json.dumps(envelope.to_wire()))
        self.inbox_seq += 1
        start = time.perf_counter()
        decision = decide_message(
            wire,
            me=bob,
            delivered_in=None,
            pins={alice.username: Pin(alice.public)},
            groups={},
            seen={},
            inbox_seq=self.inbox_seq,
        )
        elapsed = time.perf_counter() - start
        assert isinstance(decision, Accepted)
        return elapsed

    def _v2(self) -> float:
        conversation, alice, bob = self.conversation, self.alice, self.bob
        key = (bob.username, bob.device.device_id)
        envelope, states = seal_text(conversation, alice, [bob], {key: conversation.alice_states[key]})
        conversation.alice_states[key] = states[key]
        wire = json.loads(json.dumps(envelope.to_wire()))
        self.inbox_seq += 1
        start = time.perf_counter()
        decision = receive_direct_v2(
            wire,
            me=self.me,
            delivered_in=None,
            device_lists=self.lists,
            seen={},
            inbox_seq=self.inbox_seq,
            sessions={(alice.username, alice.device.device_id): self.sessions},
            now=int(time.time() * 1000),
        )
        elapsed = time.perf_counter() - start
        assert isinstance(decision, AcceptedV2) and decision.payload["text"] == TEXT
        self.sessions = decision.sessions
        return elapsed

    def run(self, n: int) -> None:
        conversation, alice, bob = self.conversation, self.alice, self.bob
        alice_key = (alice.username, alice.device.device_id)
        for _ in range(n):
            self.v1.append(self._v1())
            self.turn.append(self._v2())
            self.chain.append(self._v2())
            # bob answers (untimed), so alice's next message turns the ratchet again.
            assert self.sessions.active is not None
            reply, states = seal_text(conversation, bob, [alice], {alice_key: self.sessions.active})
            self.sessions = with_active(self.sessions, states[alice_key])
            key = (bob.username, bob.device.device_id)
            conversation.alice_states[key] = open_as(
                alice, bob, conversation.alice_states[key], reply.to_wire()
            )

    def result(self) -> dict[str, Any]:
        v1, chain, turn = median_ms(self.v1), median_ms(self.chain), median_ms(self.turn)
        return {
            "v1_ms": v1,
            "v2_same_chain_ms": chain,
            "v2_dh_turn_ms": turn,
            "v2_over_v1": round(chain / v1, 3),
            "v2_dh_turn_over_v1": round(turn / v1, 3),
        }


# --- where an open's time goes -------------------------------------------------------------


def breakdown(n: int) -> dict[str, Any]:
    """Where one open's time goes, in microseconds (medians over ``n`` messages): the steps
    of a v2 open with a DH turn and of a v1 open, each timed alone, in order; then the
    primitives inside them, each timed alone on the same inputs. The difference is the
    Python around the primitives: parsing, canonical encodings, checks, the new state."""
    alice, bob = persona("alice"), persona("bob")
    conversation = establish(alice, [bob])
    v1_alice, v1_bob = PrivateIdentity.generate(Username("alice")), PrivateIdentity.generate(Username("bob"))
    v1_conversation = ConversationId(direct_conversation_id(v1_alice.username, v1_bob.username))
    v1_recipients = {v1_alice.username: v1_alice.public, v1_bob.username: v1_bob.public}
    v1_signing_key = load_ed25519_public_key(v1_alice.public.signing_key)
    samples: dict[str, dict[str, list[float]]] = {}

    def clock(group: str, name: str, function: Callable[..., Any], *args: Any) -> Any:
        start = time.perf_counter()
        result = function(*args)
        samples.setdefault(group, {}).setdefault(name, []).append(time.perf_counter() - start)
        return result

    bob_key = (bob.username, bob.device.device_id)
    for _ in range(n):
        send(conversation, bob, alice)  # bob answers: alice's next message turns the ratchet
        envelope, states = seal_text(
            conversation, alice, [bob], {bob_key: conversation.alice_states[bob_key]}
        )
        conversation.alice_states[bob_key] = states[bob_key]
        wire = json.loads(json.dumps(envelope.to_wire()))
        state = conversation.bob_states[bob.device.device_id]
        now = int(time.time() * 1000)
        parsed = clock("v2", "parse", EnvelopeV2.from_wire, wire)
        binding = clock("v2", "header bytes and binding", getattr, parsed, "binding")
        clock("v2", "signature", verify_envelope, parsed, alice.device)
        slot = parsed.slot_for(bob.username, bob.device.device_id)
        plaintext, new_state = clock("v2", "ratchet", ratchet_decrypt, state, slot.message, binding, now)
        content_key = clock("v2", "key slot", open_key_slot, parsed, plaintext)
        payload = clock("v2", "body", open_body, parsed, content_key)
        clock("v2", "payload", decode_payload, payload)
        conversation.bob_states[bob.device.device_id] = new_state

        message, header_bytes = slot.message, parsed.header.to_bytes()
        signed = envelope_signature_input(header_bytes, binding)
        clock(
            "v2 primitives", "Ed25519 verify", alice.device.verification_key.verify, parsed.signature, signed
        )
        ratchet_key = X25519Key(state.dhs_private)  # loaded, as the session keeps it
        shared = clock("v2 primitives", "X25519", ratchet_key.exchange, message.dh)
        _, chain_key = clock("v2 primitives", "HKDF (root)", kdf_rk, state.root_key, shared)
        message_key, _ = clock("v2 primitives", "HMAC x2 (chain)", kdf_ck, chain_key)
        slot_key, nonce = clock("v2 primitives", "HKDF (message key)", message_key_material, message_key)
        aad = ratchet_aad(state.ad_hash, message.header_bytes, binding)
        clock("v2 primitives", "AES-GCM (slot)", aes_gcm_decrypt, slot_key, nonce, message.ciphertext, aad)
        clock(
            "v2 primitives",
            "AES-GCM (body)",
            aes_gcm_decrypt,
            content_key,
            parsed.iv,
            parsed.body,
            header_bytes,
        )
        hashed = canonical(BODY_BINDING, [header_bytes, parsed.iv, parsed.body])
        clock("v2 primitives", "SHA-256 (binding)", hashlib.sha256, hashed)
        clock("v2 primitives", "JSON (payload)", json.loads, payload)

        v1_envelope = seal_message(v1_alice, v1_conversation, v1_recipients, {"type": "text", "text": TEXT})
        v1_wire = json.loads(json.dumps(v1_envelope.to_wire()))
        opened = clock("v1", "parse", Envelope.from_wire, v1_wire)
        clock("v1", "signature", verify_signature, opened, v1_alice.public)
        v1_payload = clock("v1", "unwrap and body", decrypt_padded_payload, opened, v1_bob)
        clock("v1", "payload", decode_payload, v1_payload)

        mine = next(key for key in opened.keys if key.recipient == v1_bob.username)
        label = wrapped_key_label(opened.header.message_id, v1_bob.username)
        clock(
            "v1 primitives", "Ed25519 verify", v1_signing_key.verify, opened.signature, opened.signed_bytes()
        )
        v1_key = clock(
            "v1 primitives",
            "RSA-OAEP unwrap",
            rsa_oaep_decrypt,
            v1_bob.encryption_private,
            mine.wrapped_key,
            label,
        )
        clock(
            "v1 primitives",
            "AES-GCM (body)",
            aes_gcm_decrypt,
            v1_key,
            opened.iv,
            opened.ciphertext,
            opened.header.canonical(),
        )
        clock("v1 primitives", "JSON (payload)", json.loads, v1_payload)

    result: dict[str, Any] = {}
    for version in ("v2", "v1"):
        steps = {name: round(statistics.median(values) * 1e6, 1) for name, values in samples[version].items()}
        primitives = {
            name: round(statistics.median(values) * 1e6, 1)
            for name, values in samples[f"{version} primitives"].items()
        }
        steps_total, primitives_total = round(sum(steps.values()), 1), round(sum(primitives.values()), 1)
        result[version] = {
            "steps_us": steps,
            "primitives_us": primitives,
            "steps_total_us": steps_total,
            "primitives_total_us": primitives_total,
            "python_around_us": round(steps_total - primitives_total, 1),
        }
    return result


def bench_python(repeats: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """v1, v2 and the clients' decisions in turns of a tenth of ``repeats``, so that load
    from other processes on the machine falls on all alike rather than on whichever ran
    while it lasted."""
    v1, v2, decisions = BenchV1(), BenchV2(), BenchDecisions()
    turns = 10
    for turn in range(turns):
        n = repeats // turns + (1 if turn < repeats % turns else 0)
        v1.run(n)
        v2.run(n)
        decisions.run(n)
    return v1.result(), v2.result(repeats), decisions.result()


class _RepositoryFiles(http.server.SimpleHTTPRequestHandler):
    """Serves the repository read-only, with module scripts as JavaScript."""

    def guess_type(self, path: str | os.PathLike[str]) -> str:
        if str(path).endswith((".js", ".mjs")):
            return "text/javascript"
        return super().guess_type(path)

    def end_headers(self) -> None:
        # Cross-origin isolation gives performance.now() 5 us resolution instead of 100 us.
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def bench_chromium(repeats: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_RepositoryFiles, directory=str(REPO))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page()
            port = server.server_address[1]
            page.goto(f"http://127.0.0.1:{port}/benchmarks/protocol_bench.html?repeats={repeats}")
            page.wait_for_function("window.benchResult !== undefined", timeout=900_000)
            result: dict[str, Any] = page.evaluate("window.benchResult")
            result["browser"] = f"Chromium {browser.version}"
            result["cross_origin_isolated"] = page.evaluate("window.crossOriginIsolated")
            browser.close()
    finally:
        server.shutdown()
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


def bench_node(repeats: int) -> dict[str, Any]:
    output = subprocess.run(
        ["node", str(REPO / "benchmarks" / "protocol_bench.mjs"), str(repeats)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output)
    version = subprocess.run(["node", "--version"], check=True, capture_output=True, text=True).stdout
    result["runtime"] = f"Node {version.strip()}"
    return result


def print_js(name: str, result: dict[str, Any]) -> None:
    v1, v2 = result["v1"], result["v2"]
    print(
        f"{name}: v1 seal {v1['seal_ms']}, open {v1['open_ms']} (RSA-OAEP unwrap alone {v1['rsa_unwrap_ms']})"
    )
    print(
        f"{' ' * len(name)}  v2 seal {v2['seal_same_chain_ms']} (with a DH turn {v2['seal_dh_turn_ms']}), "
        f"open {v2['open_same_chain_ms']} (with a DH turn {v2['open_dh_turn_ms']}); "
        f"setup {v2['setup_initiate_ms']} + {v2['setup_accept_with_first_message_ms']} ms; "
        f"open v2/v1 {round(v2['open_same_chain_ms'] / v1['open_ms'], 3)} "
        f"({round(v2['open_dh_turn_ms'] / v1['open_ms'], 3)} with a DH turn)"
    )


def print_breakdown(steps: dict[str, Any]) -> None:
    print("where an open's time goes, us (medians; each step, then each primitive in them, timed alone):")
    for version, title in (("v2", "v2 with a DH turn"), ("v1", "v1")):
        part = steps[version]
        print(
            f"  {title}: "
            + " + ".join(f"{name} {value}" for name, value in part["steps_us"].items())
            + f" = {part['steps_total_us']}"
        )
        print(
            "    primitives: "
            + ", ".join(f"{name} {value}" for name, value in part["primitives_us"].items())
            + f" = {part['primitives_total_us']}; Python around them {part['python_around_us']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=500, help="messages per measurement")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--no-js", action="store_true", help="skip the Chromium and Node runs")
    args = parser.parse_args()

    print(f"v1 and v2 ({args.repeats} messages and rounds, interleaved) ...", file=sys.stderr)
    v1, v2, decisions = bench_python(args.repeats)
    print(f"where an open's time goes ({args.repeats} messages) ...", file=sys.stderr)
    steps = breakdown(args.repeats)
    wire = {str(n): {"v1_bytes": v1_bytes(n), "v2_bytes": v2_bytes(n)} for n in (1, 2, 5)}
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_revision(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "repeats": args.repeats,
        "v1": v1,
        "v2": v2,
        "open_v2_over_v1": round(v2["open_same_chain_ms"] / v1["open_ms"], 3),
        "open_v2_dh_turn_over_v1": round(v2["open_dh_turn_ms"] / v1["open_ms"], 3),
        "decisions": decisions,
        "breakdown": steps,
        "wire": wire,
    }
    if not args.no_js:
        print(f"Chromium ({args.repeats} messages and rounds) ...", file=sys.stderr)
        result["chromium"] = bench_chromium(args.repeats)
        print(f"Node ({args.repeats} messages and rounds) ...", file=sys.stderr)
        result["node"] = bench_node(args.repeats)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"protocol benchmark, commit {result['commit']}, Python {result['python']}, {result['cpus']} CPUs")
    print(f"{'':34}{'v1':>10}{'v2':>10}")
    print(f"{'seal, ms (v2: same chain)':34}{v1['seal_ms']:>10}{v2['seal_same_chain_ms']:>10}")
    print(f"{'seal, ms (v2: with a DH turn)':34}{'':>10}{v2['seal_dh_turn_ms']:>10}")
    print(f"{'open, ms (v2: same chain)':34}{v1['open_ms']:>10}{v2['open_same_chain_ms']:>10}")
    print(f"{'open, ms (v2: with a DH turn)':34}{'':>10}{v2['open_dh_turn_ms']:>10}")
    print(f"{'  v1 RSA-OAEP unwrap alone, ms':34}{v1['rsa_unwrap_ms']:>10}")
    print(f"{'setup, initiator, ms':34}{'':>10}{v2['setup_initiate_ms']:>10}")
    print(f"{'setup, responder + 1st open, ms':34}{'':>10}{v2['setup_accept_with_first_message_ms']:>10}")
    print(
        f"state per session: {v2['state_bytes_established']} B established, "
        f"{v2['state_bytes_pending_setup']} B with a pending setup, "
        f"+{v2['state_bytes_per_skipped_key']} B per skipped key"
    )
    print(
        f"open, v2/v1: {result['open_v2_over_v1']} (same chain), "
        f"{result['open_v2_dh_turn_over_v1']} (with a DH turn)"
    )
    print(
        f"client decision (client.core, every check, no storage), ms: v1 {decisions['v1_ms']}, "
        f"v2 {decisions['v2_same_chain_ms']} (with a DH turn {decisions['v2_dh_turn_ms']}); "
        f"v2/v1 {decisions['v2_over_v1']} ({decisions['v2_dh_turn_over_v1']} with a DH turn)"
    )
    print_breakdown(steps)
    for n, sizes in wire.items():
        print(
            f"envelope bytes, {n} recipient(s): v1 {sizes['v1_bytes']} (accounts), v2 {sizes['v2_bytes']} (devices)"
        )
    if "chromium" in result:
        print("Web Crypto, ms (medians):")
        print_js(result["chromium"]["browser"], result["chromium"])
        print_js(result["node"]["runtime"], result["node"])


if __name__ == "__main__":
    main()
