"""Receipts signed by their reader (PROTOCOL.md 9.3, 14.7): the ones this device makes,
and the state the core needs to check the ones it gets.

Making: a message accepted from someone else is queued for a signed "delivered" receipt,
sent with the acknowledgement that covers it (over the socket, or over HTTP after a
sync); a message shown to the user gets a signed "read" receipt, unless read receipts
are off. Receipts are signed per conversation and per sender (the server gives each
sender named in a receipt the whole receipt, so one per sender tells nobody about
another's messages), with at most 100 ids each.

Checking: the decision itself is ``core.decide_receipt``; this gathers its inputs from
the local state only. A receipt's reader must already be pinned (receipts come from
people this device sent to), so a receipt never makes the client fetch or pin keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..protocol import errors as protocol_errors
from ..protocol.identifiers import parse_username
from ..protocol.receipts import MAX_RECEIPT_IDS, make_receipt
from .api import ApiClient
from .contacts import ContactBook
from .core import Pin, ReceiptDecision, decide_receipt
from .errors import ApiError
from .session import Session
from .state import StateStore


def _chunks(ids: Iterable[str]) -> list[list[str]]:
    ordered = sorted(set(ids))
    return [ordered[start : start + MAX_RECEIPT_IDS] for start in range(0, len(ordered), MAX_RECEIPT_IDS)]


class ReceiptBook:
    def __init__(self, state: StateStore, api: ApiClient, session: Session, contacts: ContactBook) -> None:
        self.state = state
        self.api = api
        self.session = session
        self.contacts = contacts
        # (conversation id, sender) -> message ids awaiting a signed "delivered" receipt.
        # Kept in memory: a process that dies before its acknowledgement also leaves the
        # entries unacknowledged, and the sender only sees "sent" for a little longer.
        self._delivered: dict[tuple[str, str], set[str]] = {}

    # Making -----------------------------------------------------------------------
    def delivered(self, conversation_id: str, sender: str, message_id: str) -> None:
        """A message from ``sender`` was accepted: receipt it with the next acknowledgement."""
        self._delivered.setdefault((conversation_id, sender), set()).add(message_id)

    def take_delivered(self) -> list[dict[str, Any]]:
        """Sign the queued "delivered" receipts (wire form) and empty the queue."""
        if not self._delivered or self.session.identity is None:
            return []
        me = self.session.me()
        pending, self._delivered = self._delivered, {}
        return [
            make_receipt(me, conversation_id, "delivered", chunk).to_wire()
            for (conversation_id, _sender), ids in sorted(pending.items())
            for chunk in _chunks(ids)
        ]

    async def send_delivered(self) -> int:
        """Sign and send the queued "delivered" receipts over HTTP; how many ids went."""
        return await self._post(self.take_delivered())

    async def send_read(self, conversation_id: str, message_ids: list[str]) -> int:
        """Sign and send "read" receipts for messages of others shown to the user."""
        me = self.session.me()
        by_sender: dict[str, list[str]] = {}
        for row in self.state.verified_messages(message_ids):
            if row["conversation_id"] == conversation_id and row["sender"] != me.username:
                by_sender.setdefault(str(row["sender"]), []).append(str(row["message_id"]))
        receipts = [
            make_receipt(me, conversation_id, "read", chunk).to_wire()
            for _sender, ids in sorted(by_sender.items())
            for chunk in _chunks(ids)
        ]
        return await self._post(receipts)

    async def _post(self, receipts: list[dict[str, Any]]) -> int:
        relayed = 0
        for receipt in receipts:
            try:
                relayed += int((await self.api.post_receipt(receipt))["relayed"])
            except ApiError:
                # Refused (say, by a group this user has since left) or not delivered: a
                # receipt is news for the sender, never a reason to stop reading the inbox.
                continue
        return relayed

    # Checking ---------------------------------------------------------------------
    def decide(self, frame: Mapping[str, Any]) -> ReceiptDecision:
        """The core's decision (14.7) on an inbox receipt, with its inputs from local state."""
        signed = frame.get("receipt")
        claimed = signed if isinstance(signed, Mapping) else {}
        return decide_receipt(
            frame,
            me=self.session.username,
            pins=self._pins(claimed.get("reader")),
            sent=self._sent(claimed.get("message_ids")),
        )

    def _pins(self, reader: object) -> dict[str, Pin]:
        try:
            name = parse_username(reader)
        except protocol_errors.ProtocolError:
            return {}
        pinned = self.contacts.pinned_identity(name)
        contact = self.state.get_contact(name)
        if pinned is None or contact is None:
            return {}
        return {name: Pin(pinned, self.contacts.pending_identity(contact))}

    def _sent(self, message_ids: object) -> dict[str, dict[str, list[str]]]:
        """By conversation, the named messages this user sent and who each was sealed for."""
        if not isinstance(message_ids, list):
            return {}
        me = self.session.username
        ids = [m for m in message_ids[:MAX_RECEIPT_IDS] if isinstance(m, str)]
        sent: dict[str, dict[str, list[str]]] = {}
        for row in self.state.verified_messages(ids):
            if row["sender"] != me:
                continue
            if row["recipients"]:
                recipients = list(json.loads(row["recipients"]))
            elif str(row["conversation_id"]).startswith("dm-") and row["peer"]:
                # Recorded before recipients were kept: a direct message went to its peer.
                recipients = sorted({me, str(row["peer"])})
            else:
                continue
            sent.setdefault(str(row["conversation_id"]), {})[str(row["message_id"])] = recipients
        return sent
