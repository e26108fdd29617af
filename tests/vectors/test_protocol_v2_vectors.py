"""The protocol v2 vectors (``tests/data/protocol_v2_vectors.json``, PROTOCOL.md 10 and 15)
against the Python implementation, one test id per case.

Everything is rebuilt from the hex values in the file (seeds, private keys, ``now``), not
from the generator, so these tests check what a second implementation must reproduce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from securechat.protocol.envelope import pad
from securechat.protocol.errors import MalformedInput, ProtocolError, UnsupportedVersion, VerificationFailed
from securechat.protocol.identifiers import parse_username
from securechat.protocol.v2 import labels
from securechat.protocol.v2.device_auth import device_auth_bytes, sign_device_auth, verify_device_auth
from securechat.protocol.v2.devices import Device, KnownList, certificate_bytes, check_device_list
from securechat.protocol.v2.envelope import (
    EnvelopeV2,
    envelope_signature_input,
    key_slot_plaintext,
    open_body,
    open_key_slot,
    seal_envelope,
    verify_envelope,
)
from securechat.protocol.v2.errors import Refusal
from securechat.protocol.v2.prekeys import (
    check_one_time_prekey,
    check_signed_prekey,
    one_time_prekey_bytes,
    signed_prekey_bytes,
)
from securechat.protocol.v2.primitives import (
    device_id,
    ed25519_raw_public,
    ed25519_sign_raw,
    ed25519_verify_raw,
    x25519_public,
)
from securechat.protocol.v2.ratchet import (
    RatchetMessage,
    SessionState,
    SetupMessage,
    message_key_material,
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

REPO = Path(__file__).resolve().parents[2]
VECTORS: dict[str, Any] = json.loads((REPO / "tests" / "data" / "protocol_v2_vectors.json").read_text())
DEVICES: dict[str, Any] = VECTORS["devices"]


def outcome(action: Callable[[], object]) -> str:
    try:
        action()
    except Refusal as exc:
        return exc.reason
    except UnsupportedVersion:
        return "unsupported_version"
    except MalformedInput:
        return "malformed"
    except ProtocolError:
        return "unverifiable"
    return "ok"


def device(name: str) -> Device:
    d = DEVICES[name]
    return Device(
        d["device_id"],
        bytes.fromhex(d["signing_key_hex"]),
        bytes.fromhex(d["dh_key_hex"]),
        d["created_at"],
        bytes.fromhex(d["certificate_hex"]),
    )


def party(name: str) -> Party:
    d = DEVICES[name]
    return Party(parse_username(d["username"]), bytes.fromhex(d["account_key_hex"]), device(name))


def secret(name: str, member: str) -> bytes:
    return bytes.fromhex(DEVICES[name][member])


def test_labels_are_exactly_those_of_labels_py() -> None:
    assert VECTORS["labels"] == {name: getattr(labels, name) for name in vars(labels) if name.isupper()}
    assert VECTORS["protocol_version"] == 2


def test_the_vector_file_is_what_the_generator_makes() -> None:
    completed = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_v2_vectors.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


# ---------------------------------------------------------------------------
# Devices and prekeys (15.1, 15.3, 15.4).
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DEVICES))
def test_device_keys_ids_certificates_and_prekeys(name: str) -> None:
    d = DEVICES[name]
    assert ed25519_raw_public(secret(name, "account_seed_hex")).hex() == d["account_key_hex"]
    assert ed25519_raw_public(secret(name, "signing_seed_hex")).hex() == d["signing_key_hex"]
    assert x25519_public(secret(name, "dh_private_hex")).hex() == d["dh_key_hex"]
    assert device_id(bytes.fromhex(d["signing_key_hex"])) == d["device_id"]
    signed = certificate_bytes(
        d["username"],
        bytes.fromhex(d["account_key_hex"]),
        d["device_id"],
        bytes.fromhex(d["signing_key_hex"]),
        bytes.fromhex(d["dh_key_hex"]),
        d["created_at"],
    )
    assert signed.hex() == d["certificate_bytes_hex"]
    assert ed25519_sign_raw(secret(name, "account_seed_hex"), signed).hex() == d["certificate_hex"]
    spk = d["signed_prekey"]
    spk_public = x25519_public(bytes.fromhex(spk["private_hex"]))
    spk_bytes = signed_prekey_bytes(
        d["username"], d["device_id"], spk["wire"]["prekey_id"], spk_public, spk["wire"]["created_at"]
    )
    assert spk_bytes.hex() == spk["signed_bytes_hex"]
    ed25519_verify_raw(
        bytes.fromhex(d["signing_key_hex"]),
        ed25519_sign_raw(secret(name, "signing_seed_hex"), spk_bytes),
        spk_bytes,
    )
    for opk in d["one_time_prekeys"]:
        public = x25519_public(bytes.fromhex(opk["private_hex"]))
        assert (
            one_time_prekey_bytes(d["username"], d["device_id"], opk["wire"]["prekey_id"], public).hex()
            == (opk["signed_bytes_hex"])
        )


@pytest.mark.parametrize("case", VECTORS["device_lists"], ids=lambda case: case["name"])
def test_device_lists(case: dict[str, Any]) -> None:
    known = case["known"]
    known_list = None if known is None else KnownList(known["version"], bytes.fromhex(known["list_hash_hex"]))
    username = parse_username(case["username"])
    key = bytes.fromhex(case["account_key_hex"])
    assert outcome(lambda: check_device_list(case["wire"], username, key, known_list)) == case["expected"], (
        case["note"]
    )
    if case["expected"] == "ok":
        checked = check_device_list(case["wire"], username, key, known_list)
        assert checked.signed_bytes.hex() == case["list_bytes_hex"]
        assert hashlib.sha256(checked.signed_bytes).hexdigest() == case["list_hash_hex"]
        assert checked.to_wire() == case["wire"]


@pytest.mark.parametrize("case", VECTORS["prekeys"], ids=lambda case: case["name"])
def test_prekeys(case: dict[str, Any]) -> None:
    owner = DEVICES[case["device"]]["username"]
    dev = device(case["device"])
    if case["kind"] == "signed":
        got = outcome(lambda: check_signed_prekey(case["wire"], owner, dev, case["now"]))
    else:
        got = outcome(lambda: check_one_time_prekey(case["wire"], owner, dev))
    assert got == case["expected"], case["note"]


# ---------------------------------------------------------------------------
# Setup (15.5).
# ---------------------------------------------------------------------------


def bundle(name: str, one_time_prekey_id: int | None) -> tuple[Any, Any]:
    d = DEVICES[name]
    dev = device(name)
    spk = check_signed_prekey(d["signed_prekey"]["wire"], d["username"], dev, d["created_at"])
    opk = None
    if one_time_prekey_id is not None:
        (wire,) = [o["wire"] for o in d["one_time_prekeys"] if o["wire"]["prekey_id"] == one_time_prekey_id]
        opk = check_one_time_prekey(wire, d["username"], dev)
    return spk, opk


@pytest.mark.parametrize("case", VECTORS["setups"], ids=lambda case: case["name"])
def test_setups(case: dict[str, Any]) -> None:
    initiator, responder = case["initiator"], case["responder"]
    spk, opk = bundle(responder, case["one_time_prekey_id"])
    ephemeral = bytes.fromhex(case["ephemeral_private_hex"])
    got = initiator_secrets(
        party(initiator), secret(initiator, "dh_private_hex"), party(responder), spk, opk, ephemeral
    )
    assert [value.hex() for value in got.dh] == case["dh_hex"]
    assert len(got.dh) == (4 if case["one_time_prekey_id"] is not None else 3)
    assert got.parties.hex() == case["parties_hex"]
    assert got.setup_bytes.hex() == case["setup_bytes_hex"]
    assert got.info.hex() == case["info_hex"]
    assert got.shared_key.hex() == case["shared_key_hex"]
    assert got.ad_hash.hex() == case["ad_hash_hex"]
    assert got.session_id.hex() == case["session_id_hex"]
    setup = SetupMessage.from_wire(case["setup_wire"])
    assert setup.to_bytes() == got.setup_bytes
    opk_private = None
    if case["one_time_prekey_id"] is not None:
        opk_private = bytes.fromhex(DEVICES[responder]["one_time_prekeys"][0]["private_hex"])
    spk_private = bytes.fromhex(DEVICES[responder]["signed_prekey"]["private_hex"])
    assert (
        responder_secrets(
            party(responder),
            secret(responder, "dh_private_hex"),
            party(initiator),
            setup,
            spk_private,
            opk_private,
        )
        == got
    )
    state = initiate_session(
        party(initiator), secret(initiator, "dh_private_hex"), party(responder), spk, opk, ephemeral
    )
    assert state.to_bytes().hex() == case["initiator_state_hex"]
    first = case["first_message"]
    ratchet_private = bytes.fromhex(first["ratchet_private_hex"])
    message, _ = ratchet_encrypt(
        state,
        bytes.fromhex(first["plaintext_hex"]),
        bytes.fromhex(first["extra_ad_hex"]),
        lambda n: ratchet_private[:n],
    )
    assert message.to_wire() == first["wire"]


def accept(case: dict[str, Any], wire: dict[str, Any], now: int, opk_ids: list[int]) -> Any:
    responder, initiator = case.get("responder", "bob_phone"), case.get("initiator", "alice_laptop")
    d = DEVICES[responder]
    opks = {
        o["wire"]["prekey_id"]: bytes.fromhex(o["private_hex"])
        for o in d["one_time_prekeys"]
        if o["wire"]["prekey_id"] in opk_ids
    }
    spks = {d["signed_prekey"]["wire"]["prekey_id"]: bytes.fromhex(d["signed_prekey"]["private_hex"])}
    return accept_session(
        party(responder),
        secret(responder, "dh_private_hex"),
        party(initiator),
        RatchetMessage.from_wire(wire),
        spks,
        opks,
        bytes.fromhex(case["extra_ad_hex"]),
        now,
    )


@pytest.mark.parametrize("case", VECTORS["setup_refusals"], ids=lambda case: case["name"])
def test_setup_refusals(case: dict[str, Any]) -> None:
    assert (
        outcome(lambda: accept(case, case["wire"], case["now"], case["one_time_prekey_ids"]))
        == case["expected"]
    ), case["note"]
    if case["expected"] == "ok":
        accepted = accept(case, case["wire"], case["now"], case["one_time_prekey_ids"])
        assert accepted.plaintext.hex() == case["plaintext_hex"]
        assert accepted.state.to_bytes().hex() == case["state_after_hex"]


# ---------------------------------------------------------------------------
# The ratchet, step by step (15.6, 15.7).
# ---------------------------------------------------------------------------

RATCHET = VECTORS["ratchet"]


def scenario_initial_states() -> dict[str, SessionState | None]:
    spk, opk = bundle(RATCHET["responder"], RATCHET["one_time_prekey_id"])
    alice = initiate_session(
        party(RATCHET["initiator"]),
        secret(RATCHET["initiator"], "dh_private_hex"),
        party(RATCHET["responder"]),
        spk,
        opk,
        bytes.fromhex(RATCHET["ephemeral_private_hex"]),
    )
    return {"alice": alice, "bob": None}


def step_id(step: dict[str, Any]) -> str:
    return step.get("name") or f"{step['actor']}_sends_{step['label']}"


@pytest.mark.parametrize(
    "index",
    range(len(RATCHET["steps"])),
    ids=[f"{i:02d}_{step_id(s)}" for i, s in enumerate(RATCHET["steps"])],
)
def test_ratchet_steps(index: int) -> None:
    """Step ``index`` from the state the file records after the step before it."""
    step = RATCHET["steps"][index]
    extra_ad = bytes.fromhex(RATCHET["extra_ad_hex"])
    # The actor's state before this step: the last state_after of an earlier step of the actor.
    before: SessionState | None = scenario_initial_states()[step["actor"]]
    for earlier in RATCHET["steps"][:index]:
        if earlier["actor"] == step["actor"] and earlier["state_after_hex"] is not None:
            before = SessionState.from_bytes(bytes.fromhex(earlier["state_after_hex"]))
    if step["action"] == "send":
        assert before is not None
        private = bytes.fromhex(step["ratchet_private_hex"]) if step["ratchet_private_hex"] else None

        def random(n: int) -> bytes:
            assert private is not None, "the ratchet turned where the file says it does not"
            return private[:n]

        message, after = ratchet_encrypt(before, bytes.fromhex(step["plaintext_hex"]), extra_ad, random)
        assert message.header_bytes.hex() == step["header_bytes_hex"]
        assert message.to_wire() == step["wire"]
        message_key = bytes.fromhex(step["message_key_hex"])
        assert message_key_material(message_key) == (
            bytes.fromhex(step["aes_key_hex"]),
            bytes.fromhex(step["nonce_hex"]),
        )
        assert after.to_bytes().hex() == step["state_after_hex"]
        return
    message = RatchetMessage.from_wire(step["wire"])
    if before is None:
        assert step.get("accept_setup")

        def run() -> tuple[bytes, SessionState]:
            got = accept(
                {"extra_ad_hex": RATCHET["extra_ad_hex"]},
                step["wire"],
                step["now"],
                [RATCHET["one_time_prekey_id"]],
            )
            return got.plaintext, got.state
    else:
        state = before

        def run() -> tuple[bytes, SessionState]:
            return ratchet_decrypt(state, message, extra_ad, step["now"])

    assert outcome(run) == step["expected"]
    if step["expected"] == "ok":
        plaintext, after = run()
        assert plaintext.hex() == step["plaintext_hex"]
        assert after.to_bytes().hex() == step["state_after_hex"]
    else:
        # A refusal leaves the state as it was.
        assert (before.to_bytes().hex() if before else None) == step["state_after_hex"]


@pytest.mark.parametrize("case", VECTORS["skipped_limits"], ids=lambda case: case["name"])
def test_skipped_key_limits(case: dict[str, Any]) -> None:
    state = SessionState.from_bytes(bytes.fromhex(case["receiver_state_hex"]))
    extra_ad = bytes.fromhex(RATCHET["extra_ad_hex"])
    for step in case["steps"]:
        message = RatchetMessage.from_wire(step["wire"])
        current = state
        got = outcome(
            lambda current=current, message=message, step=step: ratchet_decrypt(
                current, message, extra_ad, step["now"]
            )
        )
        assert got == step["expected"], (case["note"], step["n"])
        if got == "ok":
            plaintext, state = ratchet_decrypt(state, message, extra_ad, step["now"])
            assert plaintext.hex() == step["plaintext_hex"]
        assert len(state.skipped) == step["skipped_after"]
        assert hashlib.sha256(state.to_bytes()).hexdigest() == step["state_after_sha256_hex"]


# ---------------------------------------------------------------------------
# Independent re-implementations of PROTOCOL.md 15 constructions, from the text alone
# (hashlib and hmac, canonical encoding by hand), against the vector values.
# ---------------------------------------------------------------------------


def spec_canonical(label: str, fields: list[bytes]) -> bytes:
    out = b""
    for item in [label.encode(), *fields]:
        out += len(item).to_bytes(4, "big") + item
    return out


def spec_hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def spec_u64(value: int) -> bytes:
    return value.to_bytes(8, "big")


@pytest.mark.parametrize("case", VECTORS["setups"], ids=lambda case: case["name"])
def test_spec_setup_derivation(case: dict[str, Any]) -> None:
    """15.5 from the text: parties, setup bytes, the HKDF info, SK, ad_hash, session_id."""
    fields: list[bytes] = []
    for name in (case["initiator"], case["responder"]):
        d = DEVICES[name]
        fields += [
            d["username"].encode(),
            bytes.fromhex(d["account_key_hex"]),
            d["device_id"].encode(),
            bytes.fromhex(d["signing_key_hex"]),
            bytes.fromhex(d["dh_key_hex"]),
        ]
    parties = spec_canonical("securechat/v2/session-parties", fields)
    assert parties.hex() == case["parties_hex"]
    setup = case["setup_wire"]
    opk = b"" if setup["one_time_prekey_id"] is None else spec_u64(setup["one_time_prekey_id"])
    setup_bytes = spec_canonical(
        "securechat/v2/session-setup",
        [
            spec_u64(2),
            base64.b64decode(setup["ephemeral_key"]),
            spec_u64(setup["signed_prekey_id"]),
            opk,
            b"",
        ],
    )
    assert setup_bytes.hex() == case["setup_bytes_hex"]
    info = spec_canonical("securechat/v2/session-kdf", [parties, setup_bytes])
    assert info.hex() == case["info_hex"]
    ikm = b"\xff" * 32 + b"".join(bytes.fromhex(dh) for dh in case["dh_hex"])
    assert spec_hkdf(ikm, bytes(32), info, 32).hex() == case["shared_key_hex"]
    assert hashlib.sha256(parties).hexdigest() == case["ad_hash_hex"]
    assert (
        hashlib.sha256(spec_canonical("securechat/v2/session-id", [parties, setup_bytes])).hexdigest()
        == case["session_id_hex"]
    )


@pytest.mark.parametrize(
    "index",
    [i for i, s in enumerate(RATCHET["steps"]) if s["action"] == "send"],
    ids=lambda i: RATCHET["steps"][i]["label"],
)
def test_spec_message_keys_headers_and_ciphertexts(index: int) -> None:
    """15.6 from the text: the header bytes, the AAD, the message key's AES key and nonce,
    the ciphertext; and KDF_CK from the sender's chain key in its state after the step."""
    step = RATCHET["steps"][index]
    wire = step["wire"]
    dh = base64.b64decode(wire["dh"])
    header = spec_canonical("securechat/v2/ratchet-header", [dh, spec_u64(wire["pn"]), spec_u64(wire["n"])])
    assert header.hex() == step["header_bytes_hex"]
    state = SessionState.from_bytes(bytes.fromhex(step["state_after_hex"]))
    aad = spec_canonical(
        "securechat/v2/ratchet-aad", [state.ad_hash, header, bytes.fromhex(RATCHET["extra_ad_hex"])]
    )
    assert aad.hex() == step["aad_hex"]
    out = spec_hkdf(bytes.fromhex(step["message_key_hex"]), bytes(32), b"securechat/v2/message-key", 44)
    assert out[:32].hex() == step["aes_key_hex"] and out[32:].hex() == step["nonce_hex"]
    ciphertext = AESGCM(out[:32]).encrypt(out[32:], bytes.fromhex(step["plaintext_hex"]), aad)
    assert base64.b64encode(ciphertext).decode() == wire["ciphertext"]
    # KDF_CK: within a chain, this message key is HMAC(ck, 0x01) of the chain key the
    # sender's state held after its previous message in the same chain.
    previous = [
        s
        for s in RATCHET["steps"][:index]
        if s["action"] == "send" and s["actor"] == step["actor"] and s["wire"]["dh"] == wire["dh"]
    ]
    if previous:
        chain_key = SessionState.from_bytes(bytes.fromhex(previous[-1]["state_after_hex"])).cks
        assert hmac.new(chain_key, b"\x01", hashlib.sha256).hexdigest() == step["message_key_hex"]
        next_chain = hmac.new(chain_key, b"\x02", hashlib.sha256).digest()
        assert state.cks == next_chain


def test_spec_state_layout_of_the_last_step() -> None:
    """15.7.6 from the text: the fields of a serialised state, in order."""
    step = RATCHET["steps"][-1]
    raw = bytes.fromhex(step["state_after_hex"])
    fields, offset = [], 0
    while offset < len(raw):
        size = int.from_bytes(raw[offset : offset + 4], "big")
        fields.append(raw[offset + 4 : offset + 4 + size])
        offset += 4 + size
    assert fields[0] == b"securechat/v2/session-state"
    assert fields[1] == spec_u64(2)
    assert [len(f) for f in fields[2:9]] == [32, 32, 32, 32, 32, 0, 32]  # after a turn: no cks
    count = int.from_bytes(fields[13], "big")
    assert len(fields) == 14 + 4 * count


@pytest.mark.parametrize("case", VECTORS["setups"], ids=lambda case: case["name"])
def test_spec_kdf_rk_and_the_first_message(case: dict[str, Any]) -> None:
    """15.6 and 15.7.2 from the text: the initiator's first send turns the ratchet from SK
    against the signed prekey, KDF_RK gives the chain key, KDF_CK the message key."""
    first = case["first_message"]
    ratchet_private = X25519PrivateKey.from_private_bytes(bytes.fromhex(first["ratchet_private_hex"]))
    signed_prekey = X25519PublicKey.from_public_bytes(
        base64.b64decode(DEVICES[case["responder"]]["signed_prekey"]["wire"]["public_key"])
    )
    out = spec_hkdf(
        ratchet_private.exchange(signed_prekey),
        bytes.fromhex(case["shared_key_hex"]),
        b"securechat/v2/ratchet-root",
        64,
    )
    message_key = hmac.new(out[32:], b"\x01", hashlib.sha256).digest()
    material = spec_hkdf(message_key, bytes(32), b"securechat/v2/message-key", 44)
    dh = ratchet_private.public_key().public_bytes_raw()
    header = spec_canonical("securechat/v2/ratchet-header", [dh, spec_u64(0), spec_u64(0)])
    aad = spec_canonical(
        "securechat/v2/ratchet-aad",
        [bytes.fromhex(case["ad_hash_hex"]), header, bytes.fromhex(first["extra_ad_hex"])],
    )
    ciphertext = AESGCM(material[:32]).encrypt(material[32:], bytes.fromhex(first["plaintext_hex"]), aad)
    assert first["wire"]["dh"] == base64.b64encode(dh).decode()
    assert first["wire"]["ciphertext"] == base64.b64encode(ciphertext).decode()
    assert first["wire"]["setup"] == case["setup_wire"]


# ---------------------------------------------------------------------------
# The fan-out envelope (15.8).
# ---------------------------------------------------------------------------

ENVELOPES = VECTORS["envelopes"]


def test_envelope_sealing_reproduces_the_wire() -> None:
    sender = ENVELOPES["sender"]
    sessions = {}
    for entry in ENVELOPES["sessions"]:
        name = entry["device"]
        spk, opk = bundle(name, ENVELOPES["one_time_prekey_id"])
        sessions[(DEVICES[name]["username"], DEVICES[name]["device_id"])] = initiate_session(
            party(sender),
            secret(sender, "dh_private_hex"),
            party(name),
            spk,
            opk,
            bytes.fromhex(entry["ephemeral_private_hex"]),
        )
    privates = iter(bytes.fromhex(value) for value in ENVELOPES["ratchet_privates_hex"])
    parsed = EnvelopeV2.from_wire(ENVELOPES["wire"])
    envelope, _ = seal_envelope(
        parsed.header,
        bytes.fromhex(ENVELOPES["payload_hex"]),
        bytes.fromhex(ENVELOPES["content_key_hex"]),
        bytes.fromhex(ENVELOPES["iv_hex"]),
        sessions,
        secret(sender, "signing_seed_hex"),
        lambda n: next(privates)[:n],
    )
    assert envelope.to_wire() == ENVELOPES["wire"]
    assert envelope.header.to_bytes().hex() == ENVELOPES["header_bytes_hex"]
    assert envelope.binding.hex() == ENVELOPES["binding_hex"]
    assert pad(bytes.fromhex(ENVELOPES["payload_hex"])).hex() == ENVELOPES["padded_hex"]
    assert (
        key_slot_plaintext(bytes.fromhex(ENVELOPES["content_key_hex"]), envelope.binding).hex()
        == ENVELOPES["key_slot_plaintext_hex"]
    )
    assert (
        envelope_signature_input(envelope.header.to_bytes(), envelope.binding).hex()
        == ENVELOPES["signature_input_hex"]
    )


class EnvelopeRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def open_envelope(wire: dict[str, Any], receiver: str, now: int) -> bytes:
    """15.8's receiving order, for a first message that carries a setup."""
    envelope = EnvelopeV2.from_wire(wire)
    try:
        verify_envelope(envelope, device(ENVELOPES["sender"]))
    except VerificationFailed as exc:
        raise EnvelopeRefused("bad_signature") from exc
    slot = envelope.slot_for(DEVICES[receiver]["username"], DEVICES[receiver]["device_id"])
    if slot is None:
        raise EnvelopeRefused("not_for_me")
    d = DEVICES[receiver]
    accepted = accept_session(
        party(receiver),
        secret(receiver, "dh_private_hex"),
        party(ENVELOPES["sender"]),
        slot.message,
        {d["signed_prekey"]["wire"]["prekey_id"]: bytes.fromhex(d["signed_prekey"]["private_hex"])},
        {o["wire"]["prekey_id"]: bytes.fromhex(o["private_hex"]) for o in d["one_time_prekeys"]},
        envelope.binding,
        now,
    )
    try:
        return open_body(envelope, open_key_slot(envelope, accepted.plaintext))
    except VerificationFailed as exc:
        raise EnvelopeRefused("undecryptable") from exc


@pytest.mark.parametrize("case", ENVELOPES["cases"], ids=lambda case: case["name"])
def test_envelopes(case: dict[str, Any]) -> None:
    def run() -> object:
        return open_envelope(case["wire"], case["receiver"], case["now"])

    try:
        got = outcome(run)
    except EnvelopeRefused as refused:
        got = refused.reason
    assert got == case["expected"], case["note"]
    if got == "ok":
        assert open_envelope(case["wire"], case["receiver"], case["now"]).hex() == ENVELOPES["payload_hex"]


# ---------------------------------------------------------------------------
# Device credentials (15.16): what a device signs for one.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS["device_auth"], ids=lambda case: str(case["device"]))
def test_device_auth_bytes_and_signature(case: dict[str, Any]) -> None:
    nonce = bytes.fromhex(case["nonce_hex"])
    device = VECTORS["devices"][case["device"]]
    seed, key = bytes.fromhex(device["signing_seed_hex"]), bytes.fromhex(device["signing_key_hex"])
    signed = device_auth_bytes(case["username"], case["device_id"], nonce)
    assert signed.hex() == case["signed_bytes_hex"]
    signature = sign_device_auth(seed, case["username"], case["device_id"], nonce)
    assert signature.hex() == case["signature_hex"]
    verify_device_auth(key, signature, case["username"], case["device_id"], nonce)
    # Any other device id, account or nonce: it proves nothing.
    for other in (("mallory", case["device_id"], nonce), (case["username"], "0" * 32, nonce)):
        with pytest.raises(VerificationFailed):
            verify_device_auth(key, signature, *other)
    with pytest.raises(MalformedInput):
        device_auth_bytes(case["username"], case["device_id"], nonce[:31])
