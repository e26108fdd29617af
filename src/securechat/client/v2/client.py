"""This home's v2 side, composed: the device (made once), the account's list, prekeys,
sending and the inbox; and 15.12's rule for which protocol a direct conversation uses."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from ...protocol.identifiers import Username
from ...protocol.v2.devices import DeviceList
from ..contacts import ContactBook
from ..errors import ApiError, ClientError, NotLoggedIn
from ..receiving import InboxItem
from ..session import Session
from ..state import StateStore
from .device import DEVICE_RECORD, LocalDevice, account_seed
from .directory import DeviceDirectory
from .prekeys import PrekeyKeeper
from .receipts import V2Receipts
from .receiving import MeV2Source, Receiver, notice_item
from .rotate import FollowingSource, RotationDone, rotate, seal_for_new_password
from .sealed import local_state_key
from .sending import Sender, Sent
from .store import V2Store
from .transport import V2Api

logger = logging.getLogger(__name__)

# This home's device id once a list has named it: a later list without it is a revocation.
LISTED = "v2_listed_device"


def now_ms() -> int:
    return int(time.time() * 1000)


class Revoked(ClientError):
    def __init__(self) -> None:
        super().__init__(
            "this device was revoked from your account (its device list no longer names it): "
            "it receives nothing more and sends in v1; use another device, or log in in a new "
            "home (SECURECHAT_HOME=<new folder> securechat login), which becomes a new device"
        )


@dataclass(frozen=True)
class DeviceEntry:
    device_id: str
    created_at: int
    this_device: bool


class V2Client:
    def __init__(self, state: StateStore, session: Session, contacts: ContactBook) -> None:
        self.state, self.session = state, session
        self.store = V2Store(state)
        self.api = V2Api(session.api)
        # The inbox calls carry this home's device credential, signed by its key (15.16).
        self.api.credentials.lookup = self._own_device
        self.directory = DeviceDirectory(state, self.store, self.api, contacts)
        self.prekeys = PrekeyKeeper(state, self.store, self.api)
        self.sender = Sender(state, self.store, self.api, self.directory, now_ms)
        self.receiver = Receiver(state, self.store, self.api, self.directory, self.prekeys, now_ms)
        self.receipts = V2Receipts(state)
        self.receiver.receipts = self.receipts
        # Sending and reading both read session sets, await the server, then write them:
        # one at a time, or one would write over the other's ratchet step (a chat sends
        # while its socket reads).
        self._sessions_lock = asyncio.Lock()

    # This device ---------------------------------------------------------------
    def _unlock(self) -> None:
        self.store.unlock(local_state_key(account_seed(self.session.me())))

    def device(self) -> LocalDevice | None:
        """This home's device, if it has one (needs the unlocked keys)."""
        self._unlock()
        with self.state.transaction() as conn:
            record = self.store.record(conn, DEVICE_RECORD)
        return None if record is None else LocalDevice.from_record(record)

    async def enable(self) -> LocalDevice:
        """Make this home's device (once), make sure the account's list names it and its
        prekeys are on the server. Idempotent: run on every start."""
        await self.session.ensure_token()
        identity = self.session.me()
        device = self.device()
        # Fetched each time: a list accepted earlier may be older than a revocation. First,
        # so that this account's own rotation is followed (the pin moves) before the sealed
        # key is loaded and checked against it (15.11).
        listed, _ = await self.directory.refresh(identity.username)
        current_key = await self.directory.account_key(identity.username)
        await self.directory.keys.load(identity.username, self.session.wrap_key, current_key)
        if device is None:
            created = LocalDevice.create(identity, now_ms(), self.directory.keys.seed(identity))
            with self.state.transaction() as conn:
                # Another process of this home may have made one meanwhile: keep that one.
                record = self.store.record(conn, DEVICE_RECORD)
                if record is None:
                    self.store.put_record(conn, DEVICE_RECORD, created.to_record())
                    record = created.to_record()
            device = LocalDevice.from_record(record)
        if listed is None or device.device_id not in {d.device_id for d in listed.devices}:
            if self.state.get(LISTED) == device.device_id:
                # Listed once and now left out: revoked from another device. It must not
                # put itself back (only a new device, in a new home, joins again).
                raise Revoked()
            await self.directory.publish(identity, device.device, None, now_ms())
        else:
            device = self._recertify(device, listed)
        self.state.put(LISTED, device.device_id)
        await self.prekeys.maintain(device, identity.username, now_ms())
        return device

    def _own_device(self, device_id: str) -> tuple[str, LocalDevice] | None:
        device = self.device()
        return None if device is None or device.device_id != device_id else (self.session.username, device)

    def _ready(self) -> LocalDevice:
        device = self.device()
        if device is None:
            raise NotLoggedIn("this home has no v2 device yet")
        return device

    def _source(self) -> MeV2Source:
        identity = self.session.me()
        v1_key = identity.signing_private.public_key().public_bytes_raw()
        return FollowingSource(identity.username, self.directory.pins, v1_key, self._ready(), self.prekeys)

    def _recertify(self, device: LocalDevice, listed: DeviceList) -> LocalDevice:
        """Keep the certificate the accepted list carries for this device (re-issued after
        a rotation, 15.11)."""
        entry = next((d for d in listed.devices if d.device_id == device.device_id), None)
        updated = device if entry is None else device.recertified(entry)
        if updated is not device:
            with self.state.transaction() as conn:
                self.store.put_record(conn, DEVICE_RECORD, updated.to_record())
        return updated

    # 15.11 -----------------------------------------------------------------------
    async def rotate_identity(self) -> RotationDone:
        """Replace the account key (15.11 "Rotating"): needs the keys unlocked with the
        password in this process (its wrap key seals the new key for the other devices)."""
        await self.session.ensure_token()
        identity = self.session.me()
        if self.session.wrap_key is None:
            raise NotLoggedIn("rotating the identity key needs your password")
        return await rotate(self, identity, self.session.wrap_key, now_ms())

    # 15.12 -----------------------------------------------------------------------
    async def uses_v2(self, peer: str) -> bool:
        """A direct conversation uses v2 once both accounts have an accepted device list
        (and this home has a device); else v1."""
        device = self.device()
        if self.session.identity is None or device is None:
            return False
        own = self.directory.accepted(self.session.username)
        # A device revoked from another one no longer sends in v2: it carries on in v1.
        if own is None or device.device_id not in {d.device_id for d in own.devices}:
            return False
        if self.directory.accepted(peer) is not None:
            return True
        try:
            accepted, _ = await self.directory.refresh(peer)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return accepted is not None

    async def account_key_seal_for(self, old_wrap: bytes, new_wrap: bytes) -> dict[str, object] | None:
        """For a password change, before anything changes: the account key sealed under the
        new password (None if the account never rotated); sent with the change (15.11)."""
        self._unlock()
        return await seal_for_new_password(self, self.session.me(), old_wrap, new_wrap)

    # Sending and receiving -------------------------------------------------------------
    async def send(
        self, peer: str, payload: dict[str, Any], *, keep: bool = True
    ) -> tuple[Sent, list[InboxItem]]:
        """Seal and post ``payload`` to ``peer``; ``keep=False`` for a receipt (15.17),
        which is no message of this home's history."""
        await self.session.ensure_token()
        source = self._source()
        try:
            async with self._sessions_lock:
                sent = await self.sender.send(
                    source.username, source.account_key, source.device, peer, payload, keep=keep
                )
        except ApiError as exc:
            if exc.status == 429 and keep:
                # The user's own message was refused: receipts wait until it may go (15.17).
                self.receipts.pause(exc.body.get("retry_after_ms"))
            raise
        return sent, [notice_item(n, n.username) for n in sent.notices]

    async def _send_receipts(self) -> list[dict[str, Any]]:
        """Send the receipts due now (15.17, paced by receipts.py); the payloads that went. A
        receipt refused with 429 waits in the queue for later; one that fails otherwise is
        news lost for its sender, never a reason to stop reading the inbox."""
        went = []
        for peer, payload in self.receipts.take_due():
            try:
                await self.send(peer, payload, keep=False)
                went.append(payload)
            except ApiError as exc:
                if exc.status == 429:
                    self.receipts.refused(peer, payload, exc.body.get("retry_after_ms"))
                else:
                    logger.warning("a v2 receipt to %s was not sent: %s", peer, exc.code)
            except ClientError as exc:
                logger.warning("a v2 receipt to %s was not sent: %s", peer, type(exc).__name__)
        return went

    async def send_read(self, conversation_id: str, message_ids: list[str]) -> int | None:
        """Read receipts in v2 for messages of others shown to the user in a direct
        conversation that uses v2 (15.12); None when it does not (v1's receipts then)."""
        if not conversation_id.startswith("dm-") or self.session.identity is None or self.device() is None:
            return None
        me = self.session.username
        receipts = self.receipts.read(me, conversation_id, message_ids)
        peers = {peer for peer, _ in receipts}
        if not peers:
            return 0
        for peer in peers:
            if not await self.uses_v2(peer):
                return None
        for peer, payload in receipts:
            self.receipts.queue(peer, "read", payload["message_ids"])
        # How many read now; the rest go when their batch is due.
        went = await self._send_receipts()
        return sum(len(p["message_ids"]) for p in went if p["status"] == "read")

    async def sync(self) -> list[InboxItem]:
        """Read this device's inbox from the stored position: items and notices."""
        await self.session.ensure_token()
        source = self._source()
        try:
            async with self._sessions_lock:
                items = await self.receiver.sync(source)
        except ApiError as exc:
            if exc.status == 404 and exc.code == "device_not_listed":
                raise Revoked() from exc
            raise
        # "delivered" receipts once the entries are acknowledged (15.17), outside the
        # sessions lock: sending takes it.
        await self._send_receipts()
        await self.prekeys.maintain(source.device, source.username, now_ms())
        return items

    # The account's devices -------------------------------------------------------
    async def devices(self) -> list[DeviceEntry]:
        await self.session.ensure_token()
        mine = self.device()
        listed, _ = await self.directory.refresh(self.session.username)
        if listed is None:
            return []
        return [
            DeviceEntry(d.device_id, d.created_at, mine is not None and d.device_id == mine.device_id)
            for d in listed.devices
        ]

    async def revoke(self, device_id: str) -> None:
        """Sign and publish a new list without the device (15.3)."""
        await self.session.ensure_token()
        identity = self.session.me()
        listed, _ = await self.directory.refresh(identity.username)
        if listed is None or device_id not in {d.device_id for d in listed.devices}:
            raise ClientError(f"no device {device_id} in your device list")
        await self.directory.publish(identity, None, device_id, now_ms())


__all__ = ["DeviceEntry", "Username", "V2Client"]
