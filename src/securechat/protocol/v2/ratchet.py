"""The double ratchet of a device pair (PROTOCOL.md 15.6, 15.7).

Signal's "The Double Ratchet Algorithm" with HKDF-SHA256 for KDF_RK, HMAC-SHA256 with
constants 0x01 and 0x02 for KDF_CK, and message keys expanded by HKDF to an AES-256-GCM
key and nonce. Two choices make the functions pure:

- a new sending ratchet key is made at the first send after a turn (from the injected
  ``random``), not on receipt, so decryption needs no randomness; the keys derived are
  the same as in the specification's pseudocode;
- ``now`` is an argument, used only to date and expire skipped message keys.

``ratchet_encrypt`` and ``ratchet_decrypt`` take a :class:`SessionState` and return a
new one; the argument is never changed (it is frozen), and a refusal returns nothing, so
"a failed decryption leaves the state unchanged" holds by construction.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..encoding import b64decode, b64encode, canonical, split_canonical, u64
from ..errors import MalformedInput, VerificationFailed
from ..primitives import aes_gcm_decrypt, aes_gcm_encrypt, hkdf_sha256
from .errors import Refusal
from .labels import MESSAGE_KEY, RATCHET_AAD, RATCHET_HEADER, RATCHET_ROOT, SESSION_SETUP, SESSION_STATE
from .primitives import KEY_BYTES, X25519Key, check_x25519_raw
from .wire import exact_bytes, integer, members

MAX_SKIP = 25_000
MAX_SKIPPED_KEYS = 2_000
SKIPPED_KEY_TTL_MS = 30 * 86_400_000
MAX_PLAINTEXT_BYTES = 65_536
POSITION_LIMIT = 2**32
_TAG_BYTES = 16
_ZERO_SALT = bytes(32)
_STATE_VERSION = 2

RandomSource = Callable[[int], bytes]


@dataclass(frozen=True)
class SetupMessage:
    """What an initiator states about its setup (PROTOCOL.md 15.5)."""

    ephemeral_key: bytes
    signed_prekey_id: int
    one_time_prekey_id: int | None

    def to_bytes(self) -> bytes:
        """``setup_bytes``: bound into the setup's HKDF info and the session id."""
        opk = b"" if self.one_time_prekey_id is None else u64(self.one_time_prekey_id)
        return canonical(SESSION_SETUP, [u64(2), self.ephemeral_key, u64(self.signed_prekey_id), opk, b""])

    @classmethod
    def from_bytes(cls, data: bytes) -> SetupMessage:
        fields = split_canonical(data, SESSION_SETUP)
        if len(fields) != 5 or fields[0] != u64(2) or len(fields[2]) != 8 or fields[4] != b"":
            raise MalformedInput("setup bytes")
        if len(fields[3]) not in (0, 8):
            raise MalformedInput("setup bytes")
        opk = int.from_bytes(fields[3], "big") if fields[3] else None
        return cls(check_x25519_raw(fields[1]), int.from_bytes(fields[2], "big"), opk)

    def to_wire(self) -> dict[str, object]:
        return {
            "ephemeral_key": b64encode(self.ephemeral_key),
            "signed_prekey_id": self.signed_prekey_id,
            "one_time_prekey_id": self.one_time_prekey_id,
        }

    @classmethod
    def from_wire(cls, data: object) -> SetupMessage:
        obj = members(data, ("ephemeral_key", "signed_prekey_id", "one_time_prekey_id"))
        opk = obj["one_time_prekey_id"]
        return cls(
            check_x25519_raw(exact_bytes(obj["ephemeral_key"], KEY_BYTES)),
            integer(obj["signed_prekey_id"], below=POSITION_LIMIT),
            None if opk is None else integer(opk, below=POSITION_LIMIT),
        )


@dataclass(frozen=True)
class RatchetMessage:
    dh: bytes
    pn: int
    n: int
    ciphertext: bytes
    setup: SetupMessage | None = None

    @property
    def header_bytes(self) -> bytes:
        return ratchet_header_bytes(self.dh, self.pn, self.n)

    def to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {
            "dh": b64encode(self.dh),
            "pn": self.pn,
            "n": self.n,
            "ciphertext": b64encode(self.ciphertext),
        }
        if self.setup is not None:
            wire["setup"] = self.setup.to_wire()
        return wire

    @classmethod
    def from_wire(cls, data: object) -> RatchetMessage:
        obj = members(data, ("dh", "pn", "n", "ciphertext"), ("setup",))
        ciphertext = obj["ciphertext"]
        if not isinstance(ciphertext, str):
            raise MalformedInput("ciphertext")
        raw = b64decode(ciphertext, max_bytes=MAX_PLAINTEXT_BYTES + _TAG_BYTES)
        if len(raw) < _TAG_BYTES:
            raise MalformedInput("ciphertext too short")
        return cls(
            check_x25519_raw(exact_bytes(obj["dh"], KEY_BYTES)),
            integer(obj["pn"], below=POSITION_LIMIT),
            integer(obj["n"], below=POSITION_LIMIT),
            raw,
            SetupMessage.from_wire(obj["setup"]) if "setup" in obj else None,
        )


@dataclass(frozen=True)
class SkippedKey:
    dh: bytes
    n: int
    message_key: bytes
    stored_at: int


class _RatchetKeyCache:
    """The loaded form of a session's current ratchet private key (see X25519Key).

    One is shared by a state and every state made from it with ``replace``; it holds at
    most the key last used, and is only a cache: a state whose ``dhs_private`` is not the
    very object cached loads its own. Not part of the state's value or stored form.
    """

    __slots__ = ("key",)

    def __init__(self) -> None:
        self.key: X25519Key | None = None

    def load(self, private: bytes) -> X25519Key:
        key = self.key
        # Identity, not equality: no comparison of secret bytes, and a state read back
        # from storage (a new object) simply loads its key once.
        if key is None or key.private is not private:
            key = self.key = X25519Key(private)
        return key


@dataclass(frozen=True)
class SessionState:
    """One device's half of a session with one peer device (PROTOCOL.md 15.7.1).

    Empty byte strings stand for "none". It holds private keys: store it sealed.
    """

    session_id: bytes
    ad_hash: bytes
    root_key: bytes
    dhs_private: bytes
    dhr: bytes
    cks: bytes
    ckr: bytes
    ns: int
    nr: int
    pn: int
    pending_setup: bytes
    skipped: tuple[SkippedKey, ...] = ()
    _ratchet_key: _RatchetKeyCache = field(default_factory=_RatchetKeyCache, compare=False, repr=False)

    def to_bytes(self) -> bytes:
        """The canonical serialised form of 15.7.6."""
        fields: list[bytes | str] = [
            u64(_STATE_VERSION),
            self.session_id,
            self.ad_hash,
            self.root_key,
            self.dhs_private,
            self.dhr,
            self.cks,
            self.ckr,
            u64(self.ns),
            u64(self.nr),
            u64(self.pn),
            self.pending_setup,
            u64(len(self.skipped)),
        ]
        for key in self.skipped:
            fields += [key.dh, u64(key.n), key.message_key, u64(key.stored_at)]
        return canonical(SESSION_STATE, fields)

    @classmethod
    def from_bytes(cls, data: bytes) -> SessionState:
        fields = split_canonical(data, SESSION_STATE)
        if len(fields) < 13 or fields[0] != u64(_STATE_VERSION):
            raise MalformedInput("session state")

        def number(raw: bytes) -> int:
            if len(raw) != 8:
                raise MalformedInput("session state")
            return int.from_bytes(raw, "big")

        def key(raw: bytes, *, optional: bool) -> bytes:
            if len(raw) != KEY_BYTES and not (optional and raw == b""):
                raise MalformedInput("session state")
            return raw

        count = number(fields[12])
        if len(fields) != 13 + 4 * count or count > MAX_SKIPPED_KEYS:
            raise MalformedInput("session state")
        skipped = tuple(
            SkippedKey(
                key(fields[13 + 4 * i], optional=False),
                number(fields[14 + 4 * i]),
                key(fields[15 + 4 * i], optional=False),
                number(fields[16 + 4 * i]),
            )
            for i in range(count)
        )
        if fields[11]:
            SetupMessage.from_bytes(fields[11])
        return cls(
            session_id=key(fields[1], optional=False),
            ad_hash=key(fields[2], optional=False),
            root_key=key(fields[3], optional=False),
            dhs_private=key(fields[4], optional=True),
            dhr=key(fields[5], optional=True),
            cks=key(fields[6], optional=True),
            ckr=key(fields[7], optional=True),
            ns=number(fields[8]),
            nr=number(fields[9]),
            pn=number(fields[10]),
            pending_setup=fields[11],
            skipped=skipped,
        )


# ---------------------------------------------------------------------------
# The key derivations of 15.6.
# ---------------------------------------------------------------------------


def kdf_rk(root_key: bytes, dh_out: bytes) -> tuple[bytes, bytes]:
    """KDF_RK: (new root key, new chain key)."""
    out = hkdf_sha256(dh_out, salt=root_key, info=RATCHET_ROOT.encode(), length=64)
    return out[:32], out[32:]


def kdf_ck(chain_key: bytes) -> tuple[bytes, bytes]:
    """KDF_CK: (message key, next chain key)."""
    return hmac.digest(chain_key, b"\x01", hashlib.sha256), hmac.digest(chain_key, b"\x02", hashlib.sha256)


def message_key_material(message_key: bytes) -> tuple[bytes, bytes]:
    """The AES-256-GCM key and 12-byte nonce of a message key."""
    out = hkdf_sha256(message_key, salt=_ZERO_SALT, info=MESSAGE_KEY.encode(), length=44)
    return out[:32], out[32:]


def ratchet_header_bytes(dh: bytes, pn: int, n: int) -> bytes:
    return canonical(RATCHET_HEADER, [dh, u64(pn), u64(n)])


def ratchet_aad(ad_hash: bytes, header_bytes: bytes, extra_ad: bytes) -> bytes:
    return canonical(RATCHET_AAD, [ad_hash, header_bytes, extra_ad])


def _seal(message_key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    key, nonce = message_key_material(message_key)
    return aes_gcm_encrypt(key, nonce, plaintext, aad)


def _open(message_key: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    key, nonce = message_key_material(message_key)
    try:
        return aes_gcm_decrypt(key, nonce, ciphertext, aad)
    except VerificationFailed as exc:
        raise Refusal("ratchet_failed") from exc


# ---------------------------------------------------------------------------
# Encrypt and decrypt (15.7.2, 15.7.3).
# ---------------------------------------------------------------------------


def ratchet_encrypt(
    state: SessionState, plaintext: bytes, extra_ad: bytes, random: RandomSource
) -> tuple[RatchetMessage, SessionState]:
    """Encrypt one message; ``random(32)`` is called only when the ratchet turns."""
    if len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise MalformedInput("plaintext too long")
    if not state.cks:
        if not state.dhr:
            raise Refusal("session_unknown")
        dhs = X25519Key(random(KEY_BYTES))
        shared = dhs.exchange(state.dhr)
        if shared is None:
            raise Refusal("ratchet_failed")
        root_key, cks = kdf_rk(state.root_key, shared)
        state = replace(
            state,
            dhs_private=dhs.private,
            root_key=root_key,
            cks=cks,
            pn=state.ns,
            ns=0,
            _ratchet_key=_RatchetKeyCache(),
        )
        state._ratchet_key.key = dhs
    message_key, cks = kdf_ck(state.cks)
    dh = state._ratchet_key.load(state.dhs_private).public
    header = ratchet_header_bytes(dh, state.pn, state.ns)
    ciphertext = _seal(message_key, plaintext, ratchet_aad(state.ad_hash, header, extra_ad))
    setup = SetupMessage.from_bytes(state.pending_setup) if state.pending_setup else None
    message = RatchetMessage(dh, state.pn, state.ns, ciphertext, setup)
    return message, replace(state, cks=cks, ns=state.ns + 1)


def _skip(chain_key: bytes, dh: bytes, start: int, until: int, now: int) -> tuple[bytes, list[SkippedKey]]:
    keys: list[SkippedKey] = []
    for n in range(start, until):
        message_key, chain_key = kdf_ck(chain_key)
        keys.append(SkippedKey(dh, n, message_key, now))
    return chain_key, keys


def _live(skipped: tuple[SkippedKey, ...] | list[SkippedKey], now: int) -> list[SkippedKey]:
    return [key for key in skipped if now < key.stored_at + SKIPPED_KEY_TTL_MS]


def ratchet_decrypt(
    state: SessionState, message: RatchetMessage, extra_ad: bytes, now: int
) -> tuple[bytes, SessionState]:
    """Open one message, or raise :class:`Refusal` (``ratchet_duplicate``,
    ``ratchet_too_far``, ``ratchet_failed``) and change nothing."""
    aad = ratchet_aad(state.ad_hash, message.header_bytes, extra_ad)
    live = _live(state.skipped, now)
    for index, key in enumerate(live):
        if key.dh == message.dh and key.n == message.n:
            plaintext = _open(key.message_key, message.ciphertext, aad)
            return plaintext, _finish(state, live[:index] + live[index + 1 :])

    root_key, ckr, nr, cks = state.root_key, state.ckr, state.nr, state.cks
    new_keys: list[SkippedKey] = []
    if state.dhr and message.dh == state.dhr:
        if message.n < nr:
            raise Refusal("ratchet_duplicate")
        if message.n - nr > MAX_SKIP:
            raise Refusal("ratchet_too_far")
        if not ckr:
            raise Refusal("ratchet_failed")
    else:
        if message.n > MAX_SKIP or (state.dhr and ckr and message.pn - nr > MAX_SKIP):
            raise Refusal("ratchet_too_far")
        if state.dhr and ckr:
            _, new_keys = _skip(ckr, state.dhr, nr, message.pn, now)
        if not state.dhs_private:
            raise Refusal("ratchet_failed")
        shared = state._ratchet_key.load(state.dhs_private).exchange(message.dh)
        if shared is None:
            raise Refusal("ratchet_failed")
        root_key, ckr = kdf_rk(root_key, shared)
        nr, cks = 0, b""
    ckr, more = _skip(ckr, message.dh, nr, message.n, now) if message.n > nr else (ckr, [])
    message_key, ckr = kdf_ck(ckr)
    plaintext = _open(message_key, message.ciphertext, aad)
    # After a turn cks is empty: the next send makes a new ratchet key and sets pn (15.7.2).
    # Built whole rather than by two ``replace`` calls: this runs for every message, and
    # a dataclass copy costs microseconds (the same fields as _finish changes, too).
    new_state = SessionState(
        session_id=state.session_id,
        ad_hash=state.ad_hash,
        root_key=root_key,
        dhs_private=state.dhs_private,
        dhr=message.dh,
        cks=cks,
        ckr=ckr,
        ns=state.ns,
        nr=message.n + 1,
        pn=state.pn,
        pending_setup=b"",
        skipped=_kept(live + new_keys + more) if live or new_keys or more else (),
        _ratchet_key=state._ratchet_key,
    )
    return plaintext, new_state


def _finish(state: SessionState, skipped: list[SkippedKey]) -> SessionState:
    """After a successful decryption: keep at most the newest 2,000 skipped keys, and
    forget the pending setup (the peer has the session)."""
    return replace(state, skipped=_kept(skipped), pending_setup=b"")


def _kept(skipped: list[SkippedKey]) -> tuple[SkippedKey, ...]:
    return tuple(skipped[-MAX_SKIPPED_KEYS:])


def expire_skipped_keys(state: SessionState, now: int) -> SessionState:
    """Drop the skipped keys that have expired by ``now`` (callers may run it any time)."""
    return replace(state, skipped=tuple(_live(state.skipped, now)))
