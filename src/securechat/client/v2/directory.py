"""Device lists (PROTOCOL.md 15.3): fetching and accepting others' (and our own)
through ``client.core.v2.accept_device_list`` against the pinned account key, and
publishing this account's with this device in it, or without a revoked one."""

from __future__ import annotations

from dataclasses import dataclass

from ...protocol import errors as protocol_errors
from ...protocol.der import check_ed25519_spki
from ...protocol.identifiers import Username
from ...protocol.keys import PrivateIdentity
from ...protocol.v2.devices import Device, DeviceList, sign_device_list
from ..contacts import ContactBook
from ..core import Refused
from ..core.v2 import ListAccepted, accept_device_list
from ..errors import ApiError, ClientError, ServerMisbehaved
from ..state import StateStore
from .device import account_seed
from .store import V2Store
from .transport import V2Api


@dataclass(frozen=True)
class ListNotice:
    """Something to tell the user about an account's devices."""

    username: str
    kind: str  # "device_added", "device_removed"
    device_ids: tuple[str, ...]

    @property
    def text(self) -> str:
        count = len(self.device_ids)
        if self.kind == "device_added":
            return f"{self.username} added a new device" + (f" ({count})" if count > 1 else "")
        return f"{self.username} removed a device" + (f" ({count})" if count > 1 else "")


class ListRefused(ClientError):
    """The server's list for an account was refused (its reason is a code of 15.14)."""

    def __init__(self, username: str, reason: str) -> None:
        super().__init__(f"the device list the server gives for {username} is not accepted: {reason}")
        self.username, self.reason = username, reason


class DeviceDirectory:
    def __init__(self, state: StateStore, store: V2Store, api: V2Api, contacts: ContactBook) -> None:
        self.state, self.store, self.api, self.contacts = state, store, api, contacts

    def accepted(self, username: str) -> DeviceList | None:
        with self.state.transaction() as conn:
            return self.store.device_list(conn, username)

    async def account_key(self, username: str) -> bytes:
        """The pinned account key (v1's signing key, 15.12): pinned on first use like v1."""
        pinned = self.contacts.pinned_identity(username)
        identity = pinned if pinned is not None else await self.contacts.trusted_identity(username)
        try:
            return check_ed25519_spki(identity.signing_key)
        except protocol_errors.ProtocolError as exc:
            raise ServerMisbehaved(f"the signing key pinned for {username} is not Ed25519") from exc

    async def refresh(self, username: str) -> tuple[DeviceList | None, list[ListNotice]]:
        """Fetch ``username``'s list and accept it if it passes 15.3; the accepted list
        (None: the account has none) and what changed. A refused list keeps the one
        accepted before and raises :class:`ListRefused`."""
        try:
            document = await self.api.device_list(username)
        except ApiError as exc:
            if exc.status == 404 and exc.code == "no_devices":
                return self.accepted(username), []
            raise
        key = await self.account_key(username)
        before = self.accepted(username)
        decision = accept_device_list(document, Username(username), key, before)
        if isinstance(decision, Refused):
            raise ListRefused(username, decision.reason)
        if not isinstance(decision, ListAccepted):
            return before, []
        with self.state.transaction() as conn:
            # A list accepted meanwhile by another process of this home: never go back.
            current = self.store.device_list(conn, username)
            if current is not None and current.version >= decision.device_list.version:
                return current, []
            self.store.put_device_list(conn, decision.device_list)
            self.store.drop_session_sets(conn, username, list(decision.drop_sessions))
        notices = []
        if decision.added:
            notices.append(ListNotice(username, "device_added", decision.added))
        if decision.removed:
            notices.append(ListNotice(username, "device_removed", decision.removed))
        return decision.device_list, notices

    async def publish(
        self, identity: PrivateIdentity, add: Device | None, remove: str | None, now: int
    ) -> DeviceList:
        """Sign and publish the account's list with ``add`` in it and ``remove`` out of it,
        as version accepted + 1, keeping every other device; one retry if another device
        published meanwhile (409)."""
        username = identity.username
        for attempt in range(2):
            current, _ = await self.refresh(username)
            devices = {d.device_id: d for d in (current.devices if current else ())}
            if add is not None:
                devices[add.device_id] = add
            if remove is not None:
                devices.pop(remove, None)
            if current is not None and list(devices.values()) == list(current.devices):
                return current
            version = 1 if current is None else current.version + 1
            signed = sign_device_list(account_seed(identity), username, version, now, list(devices.values()))
            try:
                await self.api.publish_device_list(signed.to_wire())
            except ApiError as exc:
                if exc.status == 409 and exc.code == "device_list_stale" and attempt == 0:
                    continue
                raise
            refreshed, _ = await self.refresh(username)
            if refreshed is None:
                raise ServerMisbehaved("the server lost the device list it just accepted")
            return refreshed
        raise ClientError("the device list keeps changing; try again")
