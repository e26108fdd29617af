"""Device lists (PROTOCOL.md 15.3): fetching and accepting others' (and our own)
through ``client.core.v2.accept_device_list`` against the pinned account key, following
a signed identity-key rotation (15.11, ``accept_identity_transition``) when the served
list names another key, and publishing this account's with this device in it, or
without a revoked one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...protocol import errors as protocol_errors
from ...protocol.identifiers import Username
from ...protocol.keys import PrivateIdentity
from ...protocol.v2.devices import Device, DeviceList, sign_device_list
from ...protocol.v2.wire import exact_bytes
from ..contacts import ContactBook
from ..core import Refused
from ..core.v2 import ListAccepted, accept_device_list
from ..core.v2.transitions import TransitionAccepted, accept_identity_transition, rotation_drop_sessions
from ..errors import ApiError, ClientError, ServerMisbehaved
from ..state import StateStore
from .rotation import AccountKeys, Pins, StaleAccountKey, check_holds, rotated_notice, set_up_again
from .store import V2Store
from .transport import V2Api


@dataclass(frozen=True)
class ListNotice:
    """Something to tell the user about an account's devices."""

    username: str
    kind: str  # "device_added", "device_removed", "identity_key_rotated"
    device_ids: tuple[str, ...]

    @property
    def text(self) -> str:
        if self.kind == "identity_key_rotated":
            return rotated_notice(self.username)
        count = len(self.device_ids)
        if self.kind == "device_added":
            return f"{self.username} added a new device" + (f" ({count})" if count > 1 else "")
        return f"{self.username} removed a device" + (f" ({count})" if count > 1 else "")


class ListRefused(ClientError):
    """The server's list for an account was refused (its reason is a code of 15.14)."""

    def __init__(self, username: str, reason: str) -> None:
        super().__init__(_refused_text(username, reason))
        self.username, self.reason = username, reason


def _refused_text(username: str, reason: str) -> str:
    if reason == "key_changed":
        return (
            f"{username}'s identity key changed without a hand-over signed by the key pinned "
            f"here (key_changed): nothing is sent to {username} in v2 until this is resolved; "
            "compare the safety number with them"
        )
    return f"the device list the server gives for {username} is not accepted: {reason}"


def _served_key(document: Any) -> bytes | None:
    """The ``account_key`` a served list names, if it has that form (else the list's own
    checks refuse it)."""
    try:
        return exact_bytes(document.get("account_key") if isinstance(document, dict) else None, 32)
    except protocol_errors.ProtocolError:
        return None


class DeviceDirectory:
    def __init__(self, state: StateStore, store: V2Store, api: V2Api, contacts: ContactBook) -> None:
        self.state, self.store, self.api, self.contacts = state, store, api, contacts
        self.pins = Pins(state, contacts)
        self.keys = AccountKeys(state, store, api)

    def accepted(self, username: str) -> DeviceList | None:
        with self.state.transaction() as conn:
            return self.store.device_list(conn, username)

    async def account_key(self, username: str) -> bytes:
        """The pinned account key: v1's signing key pinned on first use (15.12), or where a
        followed rotation moved the pin (15.11)."""
        return (await self.pins.pin(username)).key

    async def refresh(self, username: str) -> tuple[DeviceList | None, list[ListNotice]]:
        """Fetch ``username``'s list and accept it if it passes 15.3; the accepted list
        (None: the account has none) and what changed. A list under another account key is
        accepted only through a signed chain from the pinned key (15.11). A refused list
        keeps the one accepted before (and the pin) and raises :class:`ListRefused`."""
        document = await self.api.device_list(username)
        if document is None:  # 204: the account has published no list
            return self.accepted(username), []
        pin = await self.pins.pin(username)
        before = self.accepted(username)
        decision = accept_device_list(document, Username(username), pin.key, before)
        served = _served_key(document)
        if (
            isinstance(decision, Refused)
            and decision.reason == "device_list_invalid"
            and served not in (None, pin.key)
        ):
            return await self._follow(username, document, served, before)
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
        return decision.device_list, self._notices(username, decision)

    @staticmethod
    def _notices(username: str, decision: ListAccepted) -> list[ListNotice]:
        notices = []
        if decision.added:
            notices.append(ListNotice(username, "device_added", decision.added))
        if decision.removed:
            notices.append(ListNotice(username, "device_removed", decision.removed))
        return notices

    async def _follow(
        self, username: str, document: Any, served: bytes, before: DeviceList | None
    ) -> tuple[DeviceList | None, list[ListNotice]]:
        """The served list names a key other than the pin: fetch the chain from the pinned
        key and let the core decide (15.11). Accepted: the pin moves (not verified), the
        list is checked under the new key with the one accepted before, and only
        ``rotation_drop_sessions`` go. Refused: nothing changes."""
        pin = await self.pins.pin(username)
        try:
            answer = await self.api.identity_transitions(username, pin.key)
            transitions: Any = answer.get("transitions")
        except ApiError as exc:
            if exc.status != 404:
                raise
            transitions = []  # the server knows no chain from the pin: an unsigned change
        decision = accept_identity_transition(pin, served, transitions)
        if not isinstance(decision, TransitionAccepted):
            reason = decision.reason if isinstance(decision, Refused) else "device_list_invalid"
            raise ListRefused(username, reason)
        listed = accept_device_list(document, Username(username), decision.pin.key, before)
        if isinstance(listed, Refused):
            raise ListRefused(username, listed.reason)
        if not isinstance(listed, ListAccepted):
            raise ListRefused(username, "device_list_invalid")
        dropped = (
            listed.drop_sessions if before is None else rotation_drop_sessions(before, listed.device_list)
        )
        with self.state.transaction() as conn:
            if self.pins.stored(conn, username) not in (None, pin):
                # Another process of this home moved the pin meanwhile: decide again.
                raise ListRefused(username, "device_list_rollback")
            self.pins.put(conn, decision.pin)
            self.store.put_device_list(conn, listed.device_list)
            self.store.drop_session_sets(conn, username, list(dropped))
            set_up_again(conn, self.store, None if username == self.state.get("username") else username)
            # The verified mark belongs to the key the user compared (8.2).
            self.state.set_verified(username, False)
        notices = [ListNotice(username, "identity_key_rotated", ()), *self._notices(username, listed)]
        return listed.device_list, notices

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
            seed = self.keys.seed(identity)
            check_holds(seed, await self.account_key(username))
            signed = sign_device_list(seed, username, version, now, list(devices.values()))
            try:
                await self.api.publish_device_list(signed.to_wire())
            except ApiError as exc:
                if exc.status == 409 and exc.code == "device_list_stale" and attempt == 0:
                    continue
                if exc.status == 400 and exc.body.get("reason") == "device_list_invalid":
                    # Signed with a key the account rotated away from (the pin here has
                    # not caught up): the server refuses it, as every client would.
                    raise StaleAccountKey() from exc
                raise
            refreshed, _ = await self.refresh(username)
            if refreshed is None:
                raise ServerMisbehaved("the server lost the device list it just accepted")
            return refreshed
        raise ClientError("the device list keeps changing; try again")
