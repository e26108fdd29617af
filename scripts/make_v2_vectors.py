#!/usr/bin/env python3
"""Generate tests/data/protocol_v2_vectors.json, the protocol v2 test vectors (PROTOCOL.md 10, 15).

Usage:
    python scripts/make_v2_vectors.py            # (re)write the vector file
    python scripts/make_v2_vectors.py --check    # exit 1 if the file is not what this script makes

Everything is deterministic: every private key (X25519 scalars, Ed25519 seeds), every
ephemeral and ratchet key and every ``now`` is derived here from fixed labels and
stored in the file, and Ed25519 signatures are deterministic, so a second implementation
(Web Crypto) reproduces every byte. Byte strings are lower-case hex in ``_hex`` members;
wire objects are exactly as they travel (base64 inside). ``expected`` is ``ok``, an
error kind of PROTOCOL.md 1.1 (``malformed``) or a reason code of 15.14.

Each expected outcome is written here by hand; the script runs the Python code on every
case and stops if the code disagrees, so the file never records what the code happens to do.
"""

from __future__ import annotations

import copy
import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import vector_file

from securechat.protocol.encoding import b64decode, b64encode
from securechat.protocol.envelope import encode_payload, pad
from securechat.protocol.errors import MalformedInput, ProtocolError, UnsupportedVersion, VerificationFailed
from securechat.protocol.identifiers import Username, direct_conversation_id, parse_message_id, parse_username
from securechat.protocol.v2 import PROTOCOL_VERSION, labels
from securechat.protocol.v2.device_auth import device_auth_bytes
from securechat.protocol.v2.devices import (
    Device,
    KnownList,
    certificate_bytes,
    certify_device,
    check_device_list,
    sign_device_list,
)
from securechat.protocol.v2.envelope import (
    EnvelopeV2,
    HeaderV2,
    Target,
    envelope_signature_input,
    key_slot_plaintext,
    open_body,
    open_key_slot,
    seal_envelope,
    verify_envelope,
)
from securechat.protocol.v2.errors import Refusal
from securechat.protocol.v2.prekeys import (
    DAY_MS,
    OneTimePrekey,
    SignedPrekey,
    check_one_time_prekey,
    check_signed_prekey,
    make_one_time_prekey,
    make_signed_prekey,
    one_time_prekey_bytes,
    signed_prekey_bytes,
)
from securechat.protocol.v2.primitives import ed25519_raw_public, ed25519_sign_raw, x25519, x25519_public
from securechat.protocol.v2.ratchet import (
    MAX_SKIP,
    SKIPPED_KEY_TTL_MS,
    RatchetMessage,
    SessionState,
    SetupMessage,
    kdf_ck,
    kdf_rk,
    message_key_material,
    ratchet_aad,
    ratchet_decrypt,
    ratchet_encrypt,
)
from securechat.protocol.v2.setup import (
    Party,
    accept_session,
    initiate_session,
    initiator_secrets,
    responder_secrets,
)

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "tests" / "data" / "protocol_v2_vectors.json"
T0 = 1_767_225_600_000
EXTRA_AD = bytes.fromhex("00112233445566778899aabbccddeeff")


def secret(*parts: str) -> bytes:
    """A fixed 32-byte value for a name: how every key in the file is chosen."""
    return hashlib.sha256("/".join(("securechat/v2/vectors", *parts)).encode()).digest()


def outcome(action: Callable[[], object]) -> str:
    try:
        action()
    except (Refusal, _Outcome) as exc:
        return exc.reason
    except UnsupportedVersion:
        return "unsupported_version"
    except MalformedInput:
        return "malformed"
    except ProtocolError:
        return "unverifiable"
    return "ok"


def expect(case: dict[str, Any], action: Callable[[], object]) -> dict[str, Any]:
    got = outcome(action)
    if got != case["expected"]:
        raise SystemExit(f"{case['name']}: expected {case['expected']}, the code gives {got}")
    return case


# ---------------------------------------------------------------------------
# Devices.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VDevice:
    name: str
    username: Username
    account_seed: bytes
    signing_seed: bytes
    dh_private: bytes
    device: Device
    spk_private: bytes
    spk: SignedPrekey
    opk_privates: dict[int, bytes]
    opks: dict[int, OneTimePrekey]

    @property
    def account_key(self) -> bytes:
        return ed25519_raw_public(self.account_seed)

    @property
    def party(self) -> Party:
        return Party(self.username, self.account_key, self.device)


def make_device(user: str, name: str, created_at: int) -> VDevice:
    username = parse_username(user)
    account_seed = secret(user, "account")
    signing_seed = secret(user, name, "signing")
    dh_private = secret(user, name, "dh")
    device = certify_device(
        account_seed, username, ed25519_raw_public(signing_seed), x25519_public(dh_private), created_at
    )
    spk_private = secret(user, name, "signed-prekey", "7")
    spk = make_signed_prekey(signing_seed, username, device.device_id, 7, spk_private, created_at)
    opk_privates = {1001: secret(user, name, "one-time-prekey", "1001")}
    opks = {
        pid: make_one_time_prekey(signing_seed, username, device.device_id, pid, private)
        for pid, private in opk_privates.items()
    }
    return VDevice(
        name, username, account_seed, signing_seed, dh_private, device, spk_private, spk, opk_privates, opks
    )


DEVICES = {
    "alice_laptop": make_device("alice", "laptop", T0),
    "alice_phone": make_device("alice", "phone", T0 + 1000),
    "bob_phone": make_device("bob", "phone", T0 + 2000),
    "mallory_laptop": make_device("mallory", "laptop", T0 + 3000),
}


def devices_section() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, d in DEVICES.items():
        dev = d.device
        out[key] = {
            "username": d.username,
            "account_seed_hex": d.account_seed.hex(),
            "account_key_hex": d.account_key.hex(),
            "signing_seed_hex": d.signing_seed.hex(),
            "signing_key_hex": dev.signing_key.hex(),
            "dh_private_hex": d.dh_private.hex(),
            "dh_key_hex": dev.dh_key.hex(),
            "device_id": dev.device_id,
            "created_at": dev.created_at,
            "certificate_bytes_hex": certificate_bytes(
                d.username, d.account_key, dev.device_id, dev.signing_key, dev.dh_key, dev.created_at
            ).hex(),
            "certificate_hex": dev.certificate.hex(),
            "signed_prekey": {
                "private_hex": d.spk_private.hex(),
                "signed_bytes_hex": signed_prekey_bytes(
                    d.username, dev.device_id, d.spk.prekey_id, d.spk.public_key, d.spk.created_at
                ).hex(),
                "wire": d.spk.to_wire(),
            },
            "one_time_prekeys": [
                {
                    "private_hex": d.opk_privates[pid].hex(),
                    "signed_bytes_hex": one_time_prekey_bytes(
                        d.username, dev.device_id, pid, opk.public_key
                    ).hex(),
                    "wire": opk.to_wire(),
                }
                for pid, opk in d.opks.items()
            ],
        }
    return out


def device_lists_section() -> list[dict[str, Any]]:
    laptop, phone, mallory = DEVICES["alice_laptop"], DEVICES["alice_phone"], DEVICES["mallory_laptop"]
    alice = laptop.username
    seed = laptop.account_seed
    v1 = sign_device_list(seed, alice, 1, T0, [laptop.device])
    v2 = sign_device_list(seed, alice, 2, T0 + 5000, [laptop.device, phone.device])
    v2_other = sign_device_list(seed, alice, 2, T0 + 6000, [phone.device])
    known_v2 = {"version": 2, "list_hash_hex": v2.list_hash.hex()}
    bad_signature = v2.to_wire()
    bad_signature["signature"] = b64encode(ed25519_sign_raw(mallory.account_seed, v2.signed_bytes))
    missing_cert = sign_device_list(
        seed, alice, 3, T0 + 7000, [laptop.device, replace(phone.device, certificate=b"")]
    )
    foreign_cert = sign_device_list(
        seed,
        alice,
        3,
        T0 + 7000,
        [laptop.device, replace(phone.device, certificate=mallory.device.certificate)],
    )
    mallory_device = sign_device_list(seed, alice, 3, T0 + 7000, [laptop.device, mallory.device])
    unsorted = v2.to_wire()
    unsorted["devices"] = list(reversed(unsorted["devices"]))
    version_three = v2.to_wire()
    version_three["v"] = 3
    cases = [
        ("valid_one_device", v1.to_wire(), None, "ok", "the first list of an account"),
        (
            "valid_two_devices",
            v2.to_wire(),
            {"version": 1, "list_hash_hex": v1.list_hash.hex()},
            "ok",
            "a device added",
        ),
        ("same_version_same_list", v2.to_wire(), known_v2, "ok", "the accepted list again: unchanged"),
        (
            "rollback_older_version",
            v1.to_wire(),
            known_v2,
            "device_list_rollback",
            "version 1 after version 2",
        ),
        (
            "rollback_same_version_other_list",
            v2_other.to_wire(),
            known_v2,
            "device_list_rollback",
            "a fork at version 2",
        ),
        ("bad_signature", bad_signature, None, "device_list_invalid", "signed by another account's key"),
        (
            "unsigned_for_other_account",
            mallory_device.to_wire() | {"username": "mallory"},
            None,
            "device_list_invalid",
            "the list names another username",
        ),
        (
            "missing_certificate",
            missing_cert.to_wire(),
            None,
            "device_certificate_invalid",
            "a listed device without a certificate, the list itself validly signed",
        ),
        (
            "certificate_of_another_device",
            foreign_cert.to_wire(),
            None,
            "device_certificate_invalid",
            "a certificate that is not this device's",
        ),
        (
            "certificate_by_another_account",
            mallory_device.to_wire(),
            None,
            "device_certificate_invalid",
            "mallory's device, certified by mallory's account key, in alice's list",
        ),
        ("unsorted_devices", unsorted, None, "malformed", "devices not in ascending id order"),
        ("other_version", version_three, None, "unsupported_version", "v = 3"),
    ]
    out = []
    for name, wire, known, expected, note in cases:
        case = {
            "name": name,
            "note": note,
            "username": "alice",
            "account_key_hex": laptop.account_key.hex(),
            "known": known,
            "wire": wire,
            "expected": expected,
        }
        known_list = (
            None if known is None else KnownList(known["version"], bytes.fromhex(known["list_hash_hex"]))
        )
        expect(
            case,
            lambda wire=wire, known_list=known_list: check_device_list(
                wire, alice, laptop.account_key, known_list
            ),
        )
        if expected == "ok":
            checked = check_device_list(wire, alice, laptop.account_key, known_list)
            case["list_bytes_hex"] = checked.signed_bytes.hex()
            case["list_hash_hex"] = checked.list_hash.hex()
        out.append(case)
    return out


def prekeys_section() -> list[dict[str, Any]]:
    bob, mallory = DEVICES["bob_phone"], DEVICES["mallory_laptop"]
    spk, opk = bob.spk.to_wire(), bob.opks[1001].to_wire()
    forged = make_signed_prekey(
        mallory.signing_seed, bob.username, bob.device.device_id, 7, secret("forged"), bob.spk.created_at
    )
    changed_id = dict(spk, prekey_id=8)
    changed_opk = dict(opk, prekey_id=1002)
    short_key = dict(spk, public_key=b64encode(bytes(31)))
    cases = [
        ("signed_valid", "signed", spk, bob.spk.created_at, "ok", "a fresh signed prekey"),
        ("signed_at_30_days", "signed", spk, bob.spk.created_at + 30 * DAY_MS, "ok", "exactly 30 days old"),
        (
            "signed_stale",
            "signed",
            spk,
            bob.spk.created_at + 30 * DAY_MS + 1,
            "prekey_stale",
            "one millisecond past 30 days",
        ),
        (
            "signed_forged",
            "signed",
            forged.to_wire(),
            bob.spk.created_at,
            "prekey_invalid",
            "signed by another device's key",
        ),
        (
            "signed_other_id",
            "signed",
            changed_id,
            bob.spk.created_at,
            "prekey_invalid",
            "the id changed after signing",
        ),
        ("signed_short_key", "signed", short_key, bob.spk.created_at, "malformed", "a 31-byte public key"),
        ("one_time_valid", "one_time", opk, None, "ok", "a one-time prekey"),
        (
            "one_time_other_id",
            "one_time",
            changed_opk,
            None,
            "prekey_invalid",
            "the id changed after signing",
        ),
    ]
    out = []
    for name, kind, wire, now, expected, note in cases:
        case = {
            "name": name,
            "note": note,
            "kind": kind,
            "device": "bob_phone",
            "wire": wire,
            "now": now,
            "expected": expected,
        }
        if kind == "signed":
            expect(case, lambda wire=wire, now=now: check_signed_prekey(wire, bob.username, bob.device, now))
        else:
            expect(case, lambda wire=wire: check_one_time_prekey(wire, bob.username, bob.device))
        out.append(case)
    return out


# ---------------------------------------------------------------------------
# Setup and ratchet.
# ---------------------------------------------------------------------------


def setups_section() -> list[dict[str, Any]]:
    alice, bob = DEVICES["alice_laptop"], DEVICES["bob_phone"]
    out = []
    for name, use_opk in (("with_one_time_prekey", True), ("without_one_time_prekey", False)):
        ephemeral = secret("alice", "laptop", "ephemeral", name)
        opk = bob.opks[1001] if use_opk else None
        got = initiator_secrets(alice.party, alice.dh_private, bob.party, bob.spk, opk, ephemeral)
        state = initiate_session(alice.party, alice.dh_private, bob.party, bob.spk, opk, ephemeral)
        setup = SetupMessage.from_bytes(got.setup_bytes)
        back = responder_secrets(
            bob.party,
            bob.dh_private,
            alice.party,
            setup,
            bob.spk_private,
            bob.opk_privates[1001] if use_opk else None,
        )
        assert back == got
        first, _ = ratchet_encrypt(
            state, b"first", EXTRA_AD, lambda n, name=name: secret("alice", "ratchet", name)[:n]
        )
        out.append(
            {
                "name": name,
                "initiator": "alice_laptop",
                "responder": "bob_phone",
                "one_time_prekey_id": 1001 if use_opk else None,
                "ephemeral_private_hex": ephemeral.hex(),
                "setup_wire": setup.to_wire(),
                "dh_hex": [value.hex() for value in got.dh],
                "parties_hex": got.parties.hex(),
                "setup_bytes_hex": got.setup_bytes.hex(),
                "info_hex": got.info.hex(),
                "shared_key_hex": got.shared_key.hex(),
                "ad_hash_hex": got.ad_hash.hex(),
                "session_id_hex": got.session_id.hex(),
                "initiator_state_hex": state.to_bytes().hex(),
                "first_message": {
                    "ratchet_private_hex": secret("alice", "ratchet", name).hex(),
                    "plaintext_hex": b"first".hex(),
                    "extra_ad_hex": EXTRA_AD.hex(),
                    "wire": first.to_wire(),
                },
            }
        )
    return out


def setup_refusals_section(setups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The responder's side of 15.5 on tampered or replayed setups."""
    alice, bob = DEVICES["alice_laptop"], DEVICES["bob_phone"]
    with_opk = setups[0]["first_message"]["wire"]
    without = setups[1]["first_message"]["wire"]
    stripped = copy.deepcopy(with_opk)
    stripped["setup"]["one_time_prekey_id"] = None
    swapped = copy.deepcopy(without)
    swapped["setup"]["ephemeral_key"] = b64encode(x25519_public(secret("mallory", "ephemeral")))
    other_spk = copy.deepcopy(without)
    other_spk["setup"]["signed_prekey_id"] = 6
    no_setup = {k: v for k, v in without.items() if k != "setup"}
    full = {7: bob.spk_private}
    cases = [
        (
            "accepted_with_one_time_prekey",
            with_opk,
            full,
            [1001],
            "ok",
            "opens; the caller then deletes one-time prekey 1001",
        ),
        ("accepted_without_one_time_prekey", without, full, [1001], "ok", "the fallback: DH1..DH3 only"),
        (
            "one_time_prekey_spent",
            with_opk,
            full,
            [],
            "prekey_unknown",
            "a replayed setup whose one-time prekey was deleted",
        ),
        (
            "signed_prekey_gone",
            other_spk,
            full,
            [1001],
            "prekey_unknown",
            "names a signed prekey past its grace",
        ),
        (
            "one_time_prekey_stripped",
            stripped,
            full,
            [1001],
            "ratchet_failed",
            "the server removed the one-time prekey id: the info differs",
        ),
        ("ephemeral_swapped", swapped, full, [1001], "ratchet_failed", "another ephemeral key"),
        ("no_setup", no_setup, full, [1001], "session_unknown", "no session and no setup"),
    ]
    out = []
    for name, wire, spks, opk_ids, expected, note in cases:
        case = {
            "name": name,
            "note": note,
            "responder": "bob_phone",
            "initiator": "alice_laptop",
            "signed_prekey_ids": sorted(spks),
            "one_time_prekey_ids": opk_ids,
            "extra_ad_hex": EXTRA_AD.hex(),
            "now": T0,
            "wire": wire,
            "expected": expected,
        }

        def run(wire: dict[str, Any] = wire, opk_ids: list[int] = opk_ids) -> object:
            return accept_session(
                bob.party,
                bob.dh_private,
                alice.party,
                RatchetMessage.from_wire(wire),
                {7: bob.spk_private},
                {pid: bob.opk_privates[pid] for pid in opk_ids},
                EXTRA_AD,
                T0,
            )

        expect(case, run)
        if expected == "ok":
            accepted = run()
            assert isinstance(accepted, object)
            case["plaintext_hex"] = accepted.plaintext.hex()  # type: ignore[attr-defined]
            case["state_after_hex"] = accepted.state.to_bytes().hex()  # type: ignore[attr-defined]
        out.append(case)
    return out


class Conversation:
    """Two device states and a script of sends and receives, recorded step by step."""

    def __init__(self) -> None:
        self.alice, self.bob = DEVICES["alice_laptop"], DEVICES["bob_phone"]
        self.states: dict[str, SessionState | None] = {
            "alice": initiate_session(
                self.alice.party,
                self.alice.dh_private,
                self.bob.party,
                self.bob.spk,
                self.bob.opks[1001],
                secret("ratchet-scenario", "ephemeral"),
            ),
            "bob": None,
        }
        self.messages: dict[str, RatchetMessage] = {}
        self.steps: list[dict[str, Any]] = []
        self.turns = 0

    def send(self, actor: str, label: str, text: str) -> None:
        state = self.states[actor]
        assert state is not None
        used: list[bytes] = []

        def random(n: int) -> bytes:
            self.turns += 1
            value = secret("ratchet-scenario", actor, "turn", str(self.turns))[:n]
            used.append(value)
            return value

        message, new_state = ratchet_encrypt(state, text.encode(), EXTRA_AD, random)
        # Recompute this message's key from the chain key before it, for the file.
        chain_before = state.cks
        if used:
            shared = x25519(used[0], state.dhr)
            assert shared is not None
            chain_before = kdf_rk(state.root_key, shared)[1]
        message_key, next_chain = kdf_ck(chain_before)
        assert next_chain == new_state.cks
        aes_key, nonce = message_key_material(message_key)
        self.messages[label] = message
        self.states[actor] = new_state
        self.steps.append(
            {
                "actor": actor,
                "action": "send",
                "label": label,
                "plaintext_hex": text.encode().hex(),
                "ratchet_private_hex": used[0].hex() if used else None,
                "header_bytes_hex": message.header_bytes.hex(),
                "aad_hex": ratchet_aad(state.ad_hash, message.header_bytes, EXTRA_AD).hex(),
                "message_key_hex": message_key.hex(),
                "aes_key_hex": aes_key.hex(),
                "nonce_hex": nonce.hex(),
                "wire": message.to_wire(),
                "state_after_hex": new_state.to_bytes().hex(),
            }
        )

    def receive(self, actor: str, label: str, expected: str, now: int, *, tamper: bool = False) -> None:
        message = self.messages[label]
        if tamper:
            message = replace(message, ciphertext=bytes([message.ciphertext[0] ^ 1]) + message.ciphertext[1:])
        state = self.states[actor]
        step: dict[str, Any] = {
            "actor": actor,
            "action": "receive",
            "label": label,
            "wire": message.to_wire(),
            "now": now,
            "expected": expected,
        }
        if state is None:
            bob = self.bob
            step["accept_setup"] = True

            def run() -> tuple[bytes, SessionState]:
                got = accept_session(
                    bob.party,
                    bob.dh_private,
                    self.alice.party,
                    message,
                    {7: bob.spk_private},
                    bob.opk_privates,
                    EXTRA_AD,
                    now,
                )
                return got.plaintext, got.state
        else:

            def run() -> tuple[bytes, SessionState]:
                return ratchet_decrypt(state, message, EXTRA_AD, now)

        step["name"] = f"{len(self.steps):02d}_{actor}_receives_{label}"
        expect(step, run)
        if expected == "ok":
            plaintext, new_state = run()
            self.states[actor] = new_state
            step["plaintext_hex"] = plaintext.hex()
        step["state_after_hex"] = (
            self.states[actor].to_bytes().hex() if self.states[actor] is not None else None  # type: ignore[union-attr]
        )
        self.steps.append(step)


def ratchet_section() -> dict[str, Any]:
    """A scripted conversation: out-of-order delivery, a duplicate, DH turns both ways,
    a tampered message that changes nothing, and a late message from an old chain."""
    c = Conversation()
    t = T0 + 60_000
    c.send("alice", "a1", "alice 1")
    c.send("alice", "a2", "alice 2")
    c.send("alice", "a3", "alice 3")
    c.receive("bob", "a2", "ok", t)  # the setup arrives with a2; a1 becomes a skipped key
    c.receive("bob", "a1", "ok", t + 1)  # out of order, from the skipped key
    c.receive("bob", "a1", "ratchet_duplicate", t + 2)  # its key is gone
    c.send("bob", "b1", "bob 1")  # bob's first send turns the ratchet
    c.send("bob", "b2", "bob 2")
    c.receive("alice", "b2", "ok", t + 3)  # a DH turn on alice's side; b1 skipped
    c.receive("bob", "a3", "ok", t + 4)  # late, in alice's first chain, still current for bob
    c.receive("alice", "b1", "ok", t + 5)
    c.send("alice", "a4", "alice 4")  # alice turns: pn = 3
    c.send("alice", "a5", "alice 5")
    c.receive("bob", "a5", "ratchet_failed", t + 6, tamper=True)  # state unchanged
    c.receive("bob", "a5", "ok", t + 7)  # a new chain for bob, a4 skipped
    c.receive("bob", "a4", "ok", t + 8)
    c.send("bob", "b3", "bob 3")
    c.receive("alice", "b3", "ok", t + 9)
    c.receive("alice", "b3", "ratchet_duplicate", t + 10)
    return {
        "initiator": "alice_laptop",
        "responder": "bob_phone",
        "one_time_prekey_id": 1001,
        "ephemeral_private_hex": secret("ratchet-scenario", "ephemeral").hex(),
        "extra_ad_hex": EXTRA_AD.hex(),
        "steps": c.steps,
    }


def _chain_states(count: int, now: int) -> tuple[SessionState, list[RatchetMessage]]:
    """Bob's state after the setup message ``a0`` and alice's messages 1..count after it
    in the same chain (made here by advancing her chain key, as sending would)."""
    alice, bob = DEVICES["alice_laptop"], DEVICES["bob_phone"]
    state = initiate_session(
        alice.party, alice.dh_private, bob.party, bob.spk, None, secret("limits", "ephemeral")
    )
    first, state = ratchet_encrypt(state, b"a0", EXTRA_AD, lambda n: secret("limits", "ratchet")[:n])
    accepted = accept_session(
        bob.party, bob.dh_private, alice.party, first, {7: bob.spk_private}, {}, EXTRA_AD, now
    )
    return accepted.state, _advance(state, count)


def _advance(state: SessionState, count: int) -> list[RatchetMessage]:
    """Messages at positions 1..count, encrypting only the ones the cases use."""
    wanted = {1, 2, 3, 50, 100, 101, 2100, MAX_SKIP + 1, MAX_SKIP + 2}
    out: list[RatchetMessage] = []
    for n in range(1, count + 1):
        if n in wanted or n == count:
            message, state = ratchet_encrypt(state, f"a{n}".encode(), EXTRA_AD, lambda k: b"")
            out.append(message)
        else:
            _, cks = kdf_ck(state.cks)
            state = replace(state, cks=cks, ns=state.ns + 1)
    return out


def skipped_limits_section() -> list[dict[str, Any]]:
    import hashlib as _h

    now = T0 + 120_000
    bob_state, messages = _chain_states(MAX_SKIP + 2, now)
    by_n = {m.n: m for m in messages}
    cases: list[dict[str, Any]] = []

    def case(name: str, note: str, script: list[tuple[int, int, str]]) -> None:
        state = bob_state
        steps = []
        for n, at, expected in script:
            message = by_n[n]
            step = {"n": n, "now": at, "wire": message.to_wire(), "expected": expected, "name": f"{name}/{n}"}
            current = state
            expect(
                step,
                lambda current=current, message=message, at=at: ratchet_decrypt(
                    current, message, EXTRA_AD, at
                ),
            )
            before = state.to_bytes()
            if expected == "ok":
                plaintext, state = ratchet_decrypt(state, message, EXTRA_AD, at)
                step["plaintext_hex"] = plaintext.hex()
            else:
                assert state.to_bytes() == before
            step["skipped_after"] = len(state.skipped)
            step["state_after_sha256_hex"] = _h.sha256(state.to_bytes()).hexdigest()
            del step["name"]
            steps.append(step)
        cases.append(
            {"name": name, "note": note, "receiver_state_hex": bob_state.to_bytes().hex(), "steps": steps}
        )

    ttl = SKIPPED_KEY_TTL_MS
    case(
        "stored_2000_oldest_evicted",
        "position 2100 first: 2,099 keys are skipped and the newest 2,000 kept (positions 100..2099); "
        "position 50's key was evicted, 100's is kept",
        [(2100, now, "ok"), (50, now, "ratchet_duplicate"), (100, now, "ok"), (101, now, "ok")],
    )
    case(
        "jump_of_25000_accepted",
        "position 25,001 from next position 1: a jump of exactly 25,000",
        [(MAX_SKIP + 1, now, "ok"), (MAX_SKIP + 2, now, "ok")],
    )
    case(
        "jump_of_25001_refused",
        "position 25,002 from next position 1: refused, nothing derived or stored",
        [(MAX_SKIP + 2, now, "ratchet_too_far"), (1, now, "ok")],
    )
    case(
        "expiry_at_30_days",
        "skipped keys stored at now expire at now + 30 days exactly",
        [(3, now, "ok"), (1, now + ttl - 1, "ok"), (2, now + ttl, "ratchet_duplicate")],
    )
    case(
        "duplicate_after_open",
        "a position already opened: its key is gone",
        [(2, now, "ok"), (2, now, "ratchet_duplicate"), (1, now, "ok"), (1, now, "ratchet_duplicate")],
    )
    return cases


def open_envelope(wire: dict[str, Any], receiver: VDevice, sender: VDevice, now: int) -> bytes:
    """A receiving device's path through 15.8 for a first message (with a setup)."""
    envelope = EnvelopeV2.from_wire(wire)
    try:
        verify_envelope(envelope, sender.device)
    except VerificationFailed as exc:
        raise _Outcome("bad_signature") from exc
    slot = envelope.slot_for(receiver.username, receiver.device.device_id)
    if slot is None:
        raise _Outcome("not_for_me")
    accepted = accept_session(
        receiver.party,
        receiver.dh_private,
        sender.party,
        slot.message,
        {7: receiver.spk_private},
        receiver.opk_privates,
        envelope.binding,
        now,
    )
    try:
        return open_body(envelope, open_key_slot(envelope, accepted.plaintext))
    except VerificationFailed as exc:
        raise _Outcome("undecryptable") from exc


class _Outcome(ProtocolError):
    """A refusal with a v1 reason code of PROTOCOL.md 14 (for the envelope cases)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def envelopes_section() -> dict[str, Any]:
    laptop, phone, bob = DEVICES["alice_laptop"], DEVICES["alice_phone"], DEVICES["bob_phone"]
    targets = {"alice_phone": phone, "bob_phone": bob}
    sessions = {
        (d.username, d.device.device_id): initiate_session(
            laptop.party,
            laptop.dh_private,
            d.party,
            d.spk,
            d.opks[1001],
            secret("envelope", "ephemeral", key),
        )
        for key, d in targets.items()
    }
    header = HeaderV2(
        parse_message_id("3f0c6a6e-8d1b-4c2a-9e57-1b2f3c4d5e6f"),
        direct_conversation_id(laptop.username, bob.username),
        laptop.username,
        laptop.device.device_id,
        T0 + 10_000,
        (
            Target(phone.username, 2, (phone.device.device_id,)),
            Target(bob.username, 1, (bob.device.device_id,)),
        ),
    )
    payload = encode_payload({"type": "text", "text": "Hello, Bob!"})
    content_key, iv = secret("envelope", "content-key"), secret("envelope", "iv")[:12]
    randoms = iter(secret("envelope", "ratchet", str(i)) for i in range(10))
    ratchet_privates: list[str] = []

    def random(n: int) -> bytes:
        value = next(randoms)[:n]
        ratchet_privates.append(value.hex())
        return value

    envelope, _ = seal_envelope(header, payload, content_key, iv, sessions, laptop.signing_seed, random)
    wire = envelope.to_wire()
    header_bytes = header.to_bytes()
    now = T0 + 20_000

    altered_body = copy.deepcopy(wire)
    body = bytearray(b64decode(altered_body["body"]))
    body[0] ^= 1
    altered_body["body"] = b64encode(bytes(body))
    fewer_targets = copy.deepcopy(wire)
    fewer_targets["targets"] = fewer_targets["targets"][1:]
    fewer_targets["slots"] = fewer_targets["slots"][1:]
    moved_slot = copy.deepcopy(wire)
    moved_slot["slots"][1]["message"] = wire["slots"][0]["message"]
    only_bob = copy.deepcopy(wire)
    only_bob["slots"] = wire["slots"][1:]
    unsorted = copy.deepcopy(wire)
    unsorted["slots"] = list(reversed(wire["slots"]))
    own_device = copy.deepcopy(wire)
    own_device["targets"][0]["devices"] = [laptop.device.device_id]
    cases = [
        ("bob_opens", wire, "bob_phone", "ok", "the peer's device"),
        ("alice_phone_opens", wire, "alice_phone", "ok", "the sender's other device"),
        (
            "bob_opens_his_own_slot_alone",
            only_bob,
            "bob_phone",
            "ok",
            "the server delivers each device only its slot",
        ),
        ("altered_body", altered_body, "bob_phone", "bad_signature", "one bit of the body flipped"),
        (
            "fewer_targets",
            fewer_targets,
            "bob_phone",
            "bad_signature",
            "a target removed from the signed header",
        ),
        ("slot_moved", moved_slot, "bob_phone", "ratchet_failed", "alice_phone's slot put in bob's place"),
        ("phone_not_a_target", only_bob, "alice_phone", "not_for_me", "no slot for this device"),
        ("slots_unsorted", unsorted, "bob_phone", "malformed", "slots out of order"),
        (
            "sender_device_a_target",
            own_device,
            "bob_phone",
            "malformed",
            "the sender's own device as a target",
        ),
    ]
    out = []
    for name, case_wire, receiver, expected, note in cases:
        case = {
            "name": name,
            "note": note,
            "receiver": receiver,
            "now": now,
            "wire": case_wire,
            "expected": expected,
        }
        expect(case, lambda w=case_wire, r=DEVICES[receiver]: open_envelope(w, r, laptop, now))
        if expected == "ok":
            assert open_envelope(case_wire, DEVICES[receiver], laptop, now) == payload
        out.append(case)
    return {
        "sender": "alice_laptop",
        "sessions": [
            {"device": key, "ephemeral_private_hex": secret("envelope", "ephemeral", key).hex()}
            for key in targets
        ],
        "one_time_prekey_id": 1001,
        "content_key_hex": content_key.hex(),
        "iv_hex": iv.hex(),
        "payload_hex": payload.hex(),
        "padded_hex": pad(payload).hex(),
        "ratchet_privates_hex": ratchet_privates,
        "header_bytes_hex": header_bytes.hex(),
        "binding_hex": envelope.binding.hex(),
        "key_slot_plaintext_hex": key_slot_plaintext(content_key, envelope.binding).hex(),
        "signature_input_hex": envelope_signature_input(header_bytes, envelope.binding).hex(),
        "wire": wire,
        "cases": out,
    }


def device_auth_section() -> list[dict[str, Any]]:
    """What a device signs for a device credential (15.16), and its signature (Ed25519 is
    deterministic, so both languages must produce these bytes exactly)."""
    out = []
    for key in sorted(DEVICES)[:2]:
        d = DEVICES[key]
        nonce = secret("device-auth", key)
        signed = device_auth_bytes(d.username, d.device.device_id, nonce)
        out.append(
            {
                "device": key,
                "username": d.username,
                "device_id": d.device.device_id,
                "nonce_hex": nonce.hex(),
                "signed_bytes_hex": signed.hex(),
                "signature_hex": ed25519_sign_raw(d.signing_seed, signed).hex(),
            }
        )
    return out


def build() -> dict[str, Any]:
    setups = setups_section()
    return {
        "note": "Protocol v2 test vectors (PROTOCOL.md 10 and 15). Made by scripts/make_v2_vectors.py.",
        "protocol_version": PROTOCOL_VERSION,
        "labels": {name: getattr(labels, name) for name in vars(labels) if name.isupper()},
        "constants": {
            "max_skip": MAX_SKIP,
            "max_skipped_keys": 2000,
            "skipped_key_ttl_ms": SKIPPED_KEY_TTL_MS,
            "signed_prekey_max_age_ms": 30 * DAY_MS,
        },
        "devices": devices_section(),
        "device_lists": device_lists_section(),
        "prekeys": prekeys_section(),
        "setups": setups,
        "setup_refusals": setup_refusals_section(setups),
        "ratchet": ratchet_section(),
        "skipped_limits": skipped_limits_section(),
        "envelopes": envelopes_section(),
        "device_auth": device_auth_section(),
    }


def main() -> int:
    return vector_file.main(__doc__, OUTPUT, __file__, build)


if __name__ == "__main__":
    sys.exit(main())
