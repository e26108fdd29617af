"""Reading this device's v2 inbox (PROTOCOL.md 15.8, 15.16) from the stored position.

Each entry is decided by ``client.core.v2.receive_direct_v2``; an accepted one's session
set, the spent one-time prekey, its seen record, the message and the position are stored
in one transaction, then the position is acknowledged. A refused one is kept as an
unverifiable item with its reason (never dropped, never shown as valid) and changes no
session, list or seen record. Device-list changes and session repairs become notices.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ...protocol import errors as protocol_errors
from ...protocol.identifiers import Username
from ...protocol.v2.devices import DeviceList
from ...protocol.v2.envelope import EnvelopeV2
from ..core import Duplicate, Refused
from ..core.v2 import AcceptedV2, MeV2, ReceiptV2Accepted, is_receipt_payload, receive_direct_v2
from ..core.v2.receive import ReceiveDecision, receive_envelope_v2
from ..errors import ApiError
from ..receiving import InboxItem, store_item
from ..state import StateStore
from .device import LocalDevice
from .directory import DeviceDirectory, ListNotice, ListRefused
from .files import shared_file
from .link import import_history, is_history_link, link_item
from .prekeys import PrekeyKeeper
from .receipts import V2Receipts
from .sending import REPAIRS
from .store import INBOX_POSITION, V2Store
from .transport import V2Api

PAGE = 100


def notice_item(notice: ListNotice | str, peer: str, seq: int = 0) -> InboxItem:
    text = notice.text if isinstance(notice, ListNotice) else notice
    username = notice.username if isinstance(notice, ListNotice) else peer
    return InboxItem(kind="notice", seq=seq, verified=True, sender=username, peer=peer, text=text)


class Receiver:
    def __init__(
        self,
        state: StateStore,
        store: V2Store,
        api: V2Api,
        directory: DeviceDirectory,
        prekeys: PrekeyKeeper,
        now: Callable[[], int],
    ) -> None:
        self.state, self.store, self.api = state, store, api
        self.directory, self.prekeys, self.now = directory, prekeys, now
        # Set by the client: receipts to make and check (15.17); None makes none.
        self.receipts: V2Receipts | None = None

    def position(self) -> int:
        with self.state.transaction() as conn:
            return self.store.number(conn, INBOX_POSITION)

    async def sync(self, me: MeV2Source) -> list[InboxItem]:
        items: list[InboxItem] = []
        device = me.device
        while True:
            since = self.position()
            page = await self.api.inbox(device.device_id, since, PAGE)
            entries = page.get("entries")
            if not isinstance(entries, list):
                return items
            for entry in entries:
                seq = entry.get("seq") if isinstance(entry, dict) else None
                if not isinstance(seq, int) or isinstance(seq, bool) or seq <= self.position():
                    continue
                items += await self.entry(me, seq, entry)
            if entries:
                await self.api.ack(device.device_id, self.position())
            # A page is cut by bytes too (15.16): ``more`` says entries wait beyond it.
            if (len(entries) < PAGE and page.get("more") is not True) or self.position() == since:
                return items

    async def _lists_for(self, envelope: EnvelopeV2 | None) -> tuple[dict[str, DeviceList], list[ListNotice]]:
        """The accepted lists the entry needs; fetched again when it names a device or a
        version newer than what was accepted (a new device of the sender's, say)."""
        if envelope is None:
            return {}, []
        header = envelope.header
        wanted = {target.username: target.device_list_version for target in header.targets}
        wanted[header.sender] = max(wanted.get(header.sender, 0), 1)
        lists: dict[str, DeviceList] = {}
        notices: list[ListNotice] = []
        for name, version in sorted(wanted.items()):
            accepted = self.directory.accepted(name)
            stale = accepted is None or accepted.version < version
            if name == header.sender and accepted is not None:
                stale = stale or header.sender_device not in {d.device_id for d in accepted.devices}
            if stale:
                try:
                    accepted, news = await self.directory.refresh(name)
                    notices += news
                except (ListRefused, ApiError):
                    # The entry is then decided with what was accepted before (and refused
                    # if that does not cover it): a bad list never becomes trusted.
                    pass
            if accepted is not None:
                lists[name] = accepted
        return lists, notices

    async def entry(self, me: MeV2Source, seq: int, entry: dict[str, Any]) -> list[InboxItem]:
        wire = entry.get("envelope")
        try:
            parsed: EnvelopeV2 | None = EnvelopeV2.from_wire(wire)
        except protocol_errors.ProtocolError:
            parsed = None
        lists, list_notices = await self._lists_for(parsed)
        mev2 = me.me_v2()
        header = None if parsed is None else parsed.header
        key: tuple[str, str] | None = None if header is None else (str(header.sender), header.sender_device)
        with self.state.transaction() as conn:
            sessions = {} if key is None else {key: self.store.session_set(conn, *key)}
            seen_record = None if header is None else self.state.seen_record(header.message_id)
        decision: ReceiveDecision
        if parsed is None:
            # Not an envelope: the core gives the reason (malformed, unsupported_version).
            decision = receive_direct_v2(
                wire,
                me=mev2,
                delivered_in=None,
                device_lists={},
                seen={},
                inbox_seq=seq,
                sessions={},
                now=self.now(),
            )
        else:
            # Decided as parsed above, not parsed a second time (about 15 us of Python).
            decision = receive_envelope_v2(
                parsed,
                me=mev2,
                delivered_in=None,
                device_lists=lists,
                seen={} if seen_record is None else {parsed.header.message_id: seen_record},
                inbox_seq=seq,
                sessions=sessions,
                now=self.now(),
            )
        server_ts = entry.get("server_ts") if isinstance(entry.get("server_ts"), int) else None
        items = [notice_item(n, n.username) for n in list_notices]
        if isinstance(decision, Duplicate):
            with self.state.transaction() as conn:
                self.state.put_seen(decision.message_id, decision.seen)
                self.store.put_number(conn, INBOX_POSITION, seq)
            return items
        if isinstance(decision, AcceptedV2) and is_receipt_payload(decision.payload):
            return items + self._receipt(me.username, seq, decision)
        if isinstance(decision, AcceptedV2):
            # The core checked a `file` descriptor (12.3) as part of the payload (15.18).
            shared = shared_file(decision.payload)
            item = InboxItem(
                kind="message",
                seq=seq,
                verified=True,
                message_id=decision.message_id,
                conversation_id=decision.conversation_id,
                sender=decision.sender,
                peer=decision.peer,
                text=decision.payload.get("text") if isinstance(decision.payload.get("text"), str) else None,
                sent_at=decision.sent_at,
                server_ts=server_ts,
                file=None if shared is None else {k: v for k, v in shared.items() if k != "key"},
                file_with_key=shared,
            )
            # A history hand-over (15.10.2) is kept as a notice or a refusal, not a text.
            link = None
            if is_history_link(decision.payload):
                item, link = link_item(
                    self.state, decision, parsed, me.username, me.device.device_id, item, self.now()
                )
            with self.state.transaction() as conn:
                self.store.put_session_set(conn, decision.sender, decision.sender_device, decision.sessions)
                if shared is not None:
                    self.state.add_file(shared["id"], decision.message_id, decision.sender, shared)
                if decision.one_time_prekey_used is not None:
                    self.prekeys.forget_one_time(conn, decision.one_time_prekey_used)
                self.state.put_seen(decision.message_id, decision.seen)
                self._store(item, "received" if decision.sender != me.username else "sent")
                self.store.put_number(conn, INBOX_POSITION, seq)
            items.append(item)
            if link is not None:
                items.append(await import_history(self.state, self.api.api, me.username, link, seq))
            # Never a receipt for a message shown refused (15.17): a history_link the
            # link core refused is one, though 15.8 accepted its envelope.
            if self.receipts is not None and decision.sender != me.username and item.verified:
                self.receipts.delivered(decision.sender, decision.message_id)
            if "session_repaired" in decision.notices:
                items.append(
                    notice_item(
                        f"a new secure session was started with a device of {decision.sender}", decision.peer
                    )
                )
            return items
        claim = decision.claim
        item = InboxItem(
            kind="message",
            seq=seq,
            verified=False,
            reason=decision.reason,
            server_ts=server_ts,
            # Unverified: the envelope's own words, shown as such.
            message_id=None if claim is None else claim.message_id,
            conversation_id=None if claim is None else claim.conversation_id,
            sender=None if claim is None else claim.sender,
            sent_at=None if claim is None else claim.sent_at,
        )
        if claim is not None and header is not None:
            others = [t.username for t in header.targets if t.username != me.username]
            item.peer = (
                claim.sender if claim.sender != me.username else (others[0] if others else me.username)
            )
        with self.state.transaction() as conn:
            self._store(item, "received")
            if decision.repair_needed and key is not None:
                repairs = self.store.record(conn, REPAIRS) or []
                if list(key) not in repairs:
                    self.store.put_record(conn, REPAIRS, [*repairs, list(key)])
            self.store.put_number(conn, INBOX_POSITION, seq)
        items.append(item)
        return items

    def _receipt(self, me: str, seq: int, accepted: AcceptedV2) -> list[InboxItem]:
        """A receipt message (15.17): its sessions, seen record and position are kept as
        any message's, but it is no chat item, is never receipted itself, and moves my
        messages forward only as the core decides. A "read" from my own other device only
        keeps this one from receipting those messages read again (the terminal keeps no
        unread state)."""
        decision = self.receipts.decide(me, accepted) if self.receipts is not None else Refused("not_for_me")
        with self.state.transaction() as conn:
            self.store.put_session_set(conn, accepted.sender, accepted.sender_device, accepted.sessions)
            if accepted.one_time_prekey_used is not None:
                self.prekeys.forget_one_time(conn, accepted.one_time_prekey_used)
            self.state.put_seen(accepted.message_id, accepted.seen)
            if isinstance(decision, ReceiptV2Accepted) and not decision.own:
                for message_id in decision.message_ids:
                    self.state.set_status(message_id, decision.status)
            self.store.put_number(conn, INBOX_POSITION, seq)
        if isinstance(decision, ReceiptV2Accepted):
            if decision.own:
                if decision.status == "read" and self.receipts is not None:
                    self.receipts.read_elsewhere(decision.message_ids)
                return []
            return [
                InboxItem(
                    kind="receipt",
                    seq=seq,
                    verified=True,
                    conversation_id=decision.conversation_id,
                    recipient=decision.reader,
                    status=decision.status,
                    message_ids=list(decision.message_ids),
                )
            ]
        # Shown as a refused receipt (with no reader or status), as v1's are (14.7).
        return [InboxItem(kind="receipt", seq=seq, reason=decision.reason)]

    def _store(self, item: InboxItem, status: str) -> None:
        recipients = json.dumps(sorted({item.sender or "", item.peer or ""} - {""}))
        store_item(self.state, item, seq=None, status=status, recipients=recipients)


class MeV2Source:
    """What the receiver needs of this device, built fresh for each entry (the prekeys
    change as setups spend them)."""

    def __init__(self, username: str, account_key: bytes, device: LocalDevice, prekeys: PrekeyKeeper) -> None:
        self.username, self.account_key, self.device, self.prekeys = username, account_key, device, prekeys

    def me_v2(self) -> MeV2:
        signed, one_time = self.prekeys.private_halves()
        return MeV2(
            Username(self.username),
            self.account_key,
            self.device.device,
            self.device.dh_private,
            signed,
            one_time,
        )
