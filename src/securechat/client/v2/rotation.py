"""Identity-key rotation in the client (PROTOCOL.md 15.11): the v2 pins that follow a
contact's signed hand-over, this home's current account key, and rotating it.

The pins start as v1's (the account key is v1's signing key until the first rotation,
15.12) and move only on a chain the core accepts (``accept_identity_transition``). The
account private key is v1's signing seed until this account rotates; after that it is
the seed sealed under the password (``protocol.v2.account_key_seal``), opened at login
or unlock and kept here sealed like the device's own keys.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass

from ...protocol import errors as protocol_errors
from ...protocol.der import check_ed25519_spki
from ...protocol.identifiers import Username
from ...protocol.keys import PrivateIdentity, PublicIdentity
from ...protocol.v2.account_key_seal import open_account_key, seal_account_key
from ...protocol.v2.devices import Device, DeviceList, certify_device, sign_device_list
from ...protocol.v2.primitives import ed25519_raw_public
from ...protocol.v2.transitions import IdentityTransition, make_transition
from ..contacts import ContactBook
from ..core.v2.transitions import IdentityPin, pin_from_wire
from ..errors import ClientError, ServerMisbehaved
from ..state import StateStore
from .device import account_seed
from .store import V2Store
from .transport import V2Api

PINS_SCHEMA = "CREATE TABLE IF NOT EXISTS v2_pins (username TEXT PRIMARY KEY, document TEXT NOT NULL)"
# This home's account private key after a rotation (a sealed v2 record).
ACCOUNT_KEY_RECORD = "account_key"
# The v1 key form (5.1): SPKI prefix of an Ed25519 public key.
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


class StaleAccountKey(ClientError):
    """This device holds an account key the account has rotated away from."""

    def __init__(self) -> None:
        super().__init__(
            "your account's identity key was rotated on another device, and this device does "
            "not hold the new one yet: log in (or unlock) again to load it, then retry"
        )


def rotated_notice(username: str) -> str:
    return f"{username}'s identity key changed; the change is signed by the previous key"


class Pins:
    """The v2 pin of each account (15.11): ``{username, key, since, verified}``. Absent
    means v1's pin: the pinned signing key, ``since`` null, v1's verified mark."""

    def __init__(self, state: StateStore, contacts: ContactBook) -> None:
        self.state, self.contacts = state, contacts
        with state.transaction() as conn:
            conn.execute(PINS_SCHEMA)

    def stored(self, conn: sqlite3.Connection, username: str) -> IdentityPin | None:
        row = conn.execute("SELECT document FROM v2_pins WHERE username = ?", (username,)).fetchone()
        return None if row is None else pin_from_wire(json.loads(row[0]))

    def put(self, conn: sqlite3.Connection, pin: IdentityPin) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO v2_pins (username, document) VALUES (?, ?)",
            (pin.username, json.dumps(pin.to_wire(), separators=(",", ":"))),
        )

    def rotated(self, username: str) -> IdentityPin | None:
        """The pin a followed rotation left, if any."""
        with self.state.transaction() as conn:
            return self.stored(conn, username)

    async def pin(self, username: str) -> IdentityPin:
        """The pin to decide with: the rotated one, else v1's (pinned now on first use)."""
        rotated = self.rotated(username)
        if rotated is not None:
            return rotated
        pinned = self.contacts.pinned_identity(username)
        identity = pinned if pinned is not None else await self.contacts.trusted_identity(username)
        try:
            key = check_ed25519_spki(identity.signing_key)
        except protocol_errors.ProtocolError as exc:
            raise ServerMisbehaved(f"the signing key pinned for {username} is not Ed25519") from exc
        contact = self.state.get_contact(username)
        return IdentityPin(Username(username), key, None, bool(contact is not None and contact.verified))

    def safety_identity(self, username: str) -> PublicIdentity | None:
        """The identity a safety number is computed with (5.6): v1's pinned keys, with the
        signing key replaced by the rotated account key if the pin moved."""
        pinned = self.contacts.pinned_identity(username)
        rotated = self.rotated(username)
        if pinned is None or rotated is None:
            return pinned
        return PublicIdentity(
            pinned.username,
            ED25519_SPKI_PREFIX + rotated.key,
            pinned.encryption_key,
            pinned.encryption_key_signature,
        )


class AccountKeys:
    """This home's account private key: v1's signing seed until the account rotates."""

    def __init__(self, state: StateStore, store: V2Store, api: V2Api) -> None:
        self.state, self.store, self.api = state, store, api

    def seed(self, identity: PrivateIdentity) -> bytes:
        with self.state.transaction() as conn:
            record = self.store.record(conn, ACCOUNT_KEY_RECORD)
        return account_seed(identity) if record is None else bytes.fromhex(record["seed"])

    def keep(self, seed: bytes) -> None:
        with self.state.transaction() as conn:
            self.store.put_record(conn, ACCOUNT_KEY_RECORD, {"seed": seed.hex()})

    def held(self) -> bytes | None:
        """The account key this home keeps after a rotation (None: v1's signing seed)."""
        with self.state.transaction() as conn:
            record = self.store.record(conn, ACCOUNT_KEY_RECORD)
        return None if record is None else bytes.fromhex(record["seed"])

    async def load(self, username: Username, wrap_key: bytes | None, current_key: bytes) -> None:
        """Open the sealed account key the server keeps (if the account rotated) with the
        password's wrap key, and keep it if it is ``current_key``: the account key of this
        account's accepted list (or its own pin), as followed through a signed chain. Without
        the wrap key (not unlocked with the password in this process) what is kept stays."""
        if wrap_key is None:
            return
        sealed = (await self.api.account_key_seal()).get("account_key_seal")
        if sealed is None:
            return  # never rotated: v1's key bundle carries the account key
        self.accept(open_sealed(wrap_key, username, sealed), current_key)

    def accept(self, seed: bytes, current_key: bytes) -> None:
        """Keep an opened account key only if it is the account's current one: a seal of a
        retired key (an old seal served again, or left by a race) must never replace the
        key this home holds, which alone can sign the account's lists."""
        if ed25519_raw_public(seed) != current_key:
            raise SealNotCurrent()
        if self.held() != seed:
            self.keep(seed)


class SealNotCurrent(ServerMisbehaved):
    """The server's sealed account key opens, but to a key that is not the account's
    current one (15.11): refused, the key this home holds is kept."""

    def __init__(self) -> None:
        super().__init__(
            "the server's sealed identity key is not your account's current identity key (an "
            "old seal served again): refused, and the key this device holds is kept"
        )


def open_sealed(wrap_key: bytes, username: Username, sealed: object) -> bytes:
    try:
        return open_account_key(wrap_key, username, sealed)
    except protocol_errors.ProtocolError as exc:
        raise ServerMisbehaved("your sealed account key does not open with this password") from exc


@dataclass(frozen=True)
class Rotation:
    transition: IdentityTransition
    device_list: DeviceList
    new_seed: bytes


def prepare_rotation(
    old_seed: bytes, username: Username, current: DeviceList, last_at: int | None, now: int
) -> Rotation:
    """15.11 "Rotating": a new key, the transition signed by both, every listed device
    certified again (same keys and ``created_at``, so the same ids) and the list signed
    by the new key as the next version."""
    new_seed = os.urandom(32)
    at = now if last_at is None or now > last_at else last_at + 1
    transition = make_transition(old_seed, new_seed, username, at)
    devices: list[Device] = [
        certify_device(new_seed, username, device.signing_key, device.dh_key, device.created_at)
        for device in current.devices
    ]
    signed = sign_device_list(new_seed, username, current.version + 1, now, devices)
    return Rotation(transition, signed, new_seed)


def check_holds(seed: bytes, pinned_key: bytes) -> None:
    """Signing for the account needs its current key: else the server refuses anyway."""
    if ed25519_raw_public(seed) != pinned_key:
        raise StaleAccountKey()


def seal_for_password(wrap_key: bytes, username: Username, seed: bytes) -> dict[str, object]:
    return seal_account_key(wrap_key, username, seed).to_wire()


# The record of devices to set up a new session with at the next send (sending.py's
# REPAIRS; not imported from there, which imports this module's users).
REPAIRS_RECORD = "repair"


def set_up_again(conn: sqlite3.Connection, store: V2Store, username: str | None) -> list[tuple[str, str]]:
    """After a rotation this home made or followed: the session sets (with ``username``'s
    devices, or with everyone's for this account's own rotation) whose active session this
    device set up and is still unanswered. Its setup, sent again with every message, binds
    the old account key, and a session id depends on it (15.5), so a device that follows
    the rotation no longer recognises it. They are marked so that the next message sets
    up anew under the new key; the old session stays among the previous ones, so answers
    on it still open."""
    rows = conn.execute("SELECT username, device_id FROM v2_sessions").fetchall()
    marked = [
        (name, device_id)
        for name, device_id in rows
        if (username is None or name == username)
        and (active := store.session_set(conn, name, device_id).active) is not None
        and active.pending_setup
    ]
    if marked:
        repairs = store.record(conn, REPAIRS_RECORD) or []
        store.put_record(
            conn, REPAIRS_RECORD, [*repairs, *([n, d] for n, d in marked if [n, d] not in repairs)]
        )
    return marked
