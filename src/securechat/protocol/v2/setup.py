"""Asynchronous session setup in the manner of X3DH (PROTOCOL.md 15.5).

Without XEdDSA the device's DH key is not its signing key; the device certificate
(15.3) binds the two, and both are in ``parties``, which goes into the HKDF info and,
hashed, into every ratchet message's associated data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from ..encoding import canonical
from ..identifiers import Username
from ..primitives import hkdf_sha256
from .devices import Device
from .errors import Refusal, V2Reason
from .labels import SESSION_ID, SESSION_KDF, SESSION_PARTIES
from .prekeys import OneTimePrekey, SignedPrekey
from .primitives import x25519, x25519_public
from .ratchet import RatchetMessage, SessionState, SetupMessage, ratchet_decrypt

_F = b"\xff" * 32
_ZERO_SALT = bytes(32)


@dataclass(frozen=True)
class Party:
    """One side of a session: the account and one of its listed devices."""

    username: Username
    account_key: bytes
    device: Device


@dataclass(frozen=True)
class SetupSecrets:
    """Everything 15.5 derives; the vectors compare each value."""

    dh: tuple[bytes, ...]  # DH1, DH2, DH3 and, with a one-time prekey, DH4
    parties: bytes
    setup_bytes: bytes
    info: bytes
    shared_key: bytes
    ad_hash: bytes
    session_id: bytes


def parties_bytes(initiator: Party, responder: Party) -> bytes:
    fields: list[bytes | str] = []
    for party in (initiator, responder):
        fields += [
            party.username,
            party.account_key,
            party.device.device_id,
            party.device.signing_key,
            party.device.dh_key,
        ]
    return canonical(SESSION_PARTIES, fields)


def _derive(initiator: Party, responder: Party, setup: SetupMessage, dh: tuple[bytes, ...]) -> SetupSecrets:
    parties = parties_bytes(initiator, responder)
    setup_bytes = setup.to_bytes()
    info = canonical(SESSION_KDF, [parties, setup_bytes])
    shared_key = hkdf_sha256(_F + b"".join(dh), salt=_ZERO_SALT, info=info, length=32)
    return SetupSecrets(
        dh=dh,
        parties=parties,
        setup_bytes=setup_bytes,
        info=info,
        shared_key=shared_key,
        ad_hash=hashlib.sha256(parties).digest(),
        session_id=hashlib.sha256(canonical(SESSION_ID, [parties, setup_bytes])).digest(),
    )


def _agree(pairs: list[tuple[bytes, bytes]], refusal: V2Reason) -> tuple[bytes, ...]:
    """DH1..DH4 in order; a zero output (a small-order public key) refuses the setup."""
    outputs = [x25519(private, public) for private, public in pairs]
    dh = tuple(out for out in outputs if out is not None)
    if len(dh) != len(outputs):
        raise Refusal(refusal)
    return dh


def initiator_secrets(
    initiator: Party,
    initiator_dh_private: bytes,
    responder: Party,
    signed_prekey: SignedPrekey,
    one_time_prekey: OneTimePrekey | None,
    ephemeral_private: bytes,
) -> SetupSecrets:
    """The initiator's side of 15.5, from a checked bundle; ``prekey_invalid`` on a zero DH."""
    setup = SetupMessage(
        x25519_public(ephemeral_private),
        signed_prekey.prekey_id,
        None if one_time_prekey is None else one_time_prekey.prekey_id,
    )
    pairs = [
        (initiator_dh_private, signed_prekey.public_key),
        (ephemeral_private, responder.device.dh_key),
        (ephemeral_private, signed_prekey.public_key),
    ]
    if one_time_prekey is not None:
        pairs.append((ephemeral_private, one_time_prekey.public_key))
    return _derive(initiator, responder, setup, _agree(pairs, "prekey_invalid"))


def initiate_session(
    initiator: Party,
    initiator_dh_private: bytes,
    responder: Party,
    signed_prekey: SignedPrekey,
    one_time_prekey: OneTimePrekey | None,
    ephemeral_private: bytes,
) -> SessionState:
    """A new session with ``responder``'s device; the ephemeral key is forgotten here."""
    secrets = initiator_secrets(
        initiator, initiator_dh_private, responder, signed_prekey, one_time_prekey, ephemeral_private
    )
    return SessionState(
        session_id=secrets.session_id,
        ad_hash=secrets.ad_hash,
        root_key=secrets.shared_key,
        dhs_private=b"",
        dhr=signed_prekey.public_key,
        cks=b"",
        ckr=b"",
        ns=0,
        nr=0,
        pn=0,
        pending_setup=secrets.setup_bytes,
    )


def responder_secrets(
    responder: Party,
    responder_dh_private: bytes,
    initiator: Party,
    setup: SetupMessage,
    signed_prekey_private: bytes,
    one_time_prekey_private: bytes | None,
) -> SetupSecrets:
    pairs = [
        (signed_prekey_private, initiator.device.dh_key),
        (responder_dh_private, setup.ephemeral_key),
        (signed_prekey_private, setup.ephemeral_key),
    ]
    if one_time_prekey_private is not None:
        pairs.append((one_time_prekey_private, setup.ephemeral_key))
    return _derive(initiator, responder, setup, _agree(pairs, "ratchet_failed"))


@dataclass(frozen=True)
class AcceptedSetup:
    plaintext: bytes
    state: SessionState
    # The one-time prekey whose private half the caller must now delete, if any.
    used_one_time_prekey_id: int | None


def accept_session(
    responder: Party,
    responder_dh_private: bytes,
    initiator: Party,
    message: RatchetMessage,
    signed_prekeys: Mapping[int, bytes],
    one_time_prekeys: Mapping[int, bytes],
    extra_ad: bytes,
    now: int,
) -> AcceptedSetup:
    """15.5 steps 2-3 for the responder: find the named prekeys' private halves (else
    ``prekey_unknown``), derive the session, open the message with it (else
    ``ratchet_failed``). Nothing is kept unless the message opens."""
    setup = message.setup
    if setup is None:
        raise Refusal("session_unknown")
    signed_private = signed_prekeys.get(setup.signed_prekey_id)
    one_time_private = None
    if setup.one_time_prekey_id is not None:
        one_time_private = one_time_prekeys.get(setup.one_time_prekey_id)
        if one_time_private is None:
            raise Refusal("prekey_unknown")
    if signed_private is None:
        raise Refusal("prekey_unknown")
    secrets = responder_secrets(
        responder, responder_dh_private, initiator, setup, signed_private, one_time_private
    )
    state = SessionState(
        session_id=secrets.session_id,
        ad_hash=secrets.ad_hash,
        root_key=secrets.shared_key,
        dhs_private=signed_private,
        dhr=b"",
        cks=b"",
        ckr=b"",
        ns=0,
        nr=0,
        pn=0,
        pending_setup=b"",
    )
    plaintext, state = ratchet_decrypt(state, message, extra_ad, now)
    return AcceptedSetup(plaintext, state, setup.one_time_prekey_id)


def setup_session_id(initiator: Party, responder: Party, setup: SetupMessage) -> bytes:
    """The session id a setup would make (15.5 step 1: a setup of a session already held
    is no new setup)."""
    return hashlib.sha256(
        canonical(SESSION_ID, [parties_bytes(initiator, responder), setup.to_bytes()])
    ).digest()
