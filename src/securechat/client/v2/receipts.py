"""Receipts in v2 direct conversations (PROTOCOL.md 15.17): the ones this device makes,
and what the core needs to decide the ones it gets.

A v2 receipt is an ordinary v2 message, sealed with 15.8's fan-out to the original
sender's devices and this account's other devices, whose payload names the messages:
the server cannot tell it from a chat message. Making: each message of the peer accepted
from the device inbox is queued for a "delivered" receipt, sent once the inbox page is
acknowledged; messages of the peer shown to the user get a "read" receipt (the caller
respects the user's switch). One receipt per peer and status, at most 100 ids each.
A receipt is never receipted, never shown as a chat item, never makes anything be sent.

Checking: the decision is ``core.v2.decide_receipt_v2``, with the messages this user
sent (and who each was sealed for) and those it received, from the local state only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ...protocol.receipts import MAX_RECEIPT_IDS
from ..core.v2 import AcceptedV2, ReceiptV2Decision, decide_receipt_v2, receipt_payload
from ..state import StateStore


def _chunks(ids: Iterable[str]) -> list[list[str]]:
    ordered = sorted(set(ids))
    return [ordered[start : start + MAX_RECEIPT_IDS] for start in range(0, len(ordered), MAX_RECEIPT_IDS)]


class V2Receipts:
    def __init__(self, state: StateStore) -> None:
        self.state = state
        # peer -> ids of its messages awaiting a "delivered" receipt. In memory: a process
        # that dies first leaves the peer's messages "sent" a little longer, nothing more.
        self._delivered: dict[str, set[str]] = {}
        # Messages another device of this account said it has shown (an own "read"
        # receipt): this device sends no read receipt for them again. In memory: the
        # same entries are read and then marked read in one run of the client.
        self._read_elsewhere: set[str] = set()

    # Making -----------------------------------------------------------------------
    def delivered(self, peer: str, message_id: str) -> None:
        """A message of ``peer`` (not a receipt) was accepted: receipt it after the ack."""
        self._delivered.setdefault(peer, set()).add(message_id)

    def take_delivered(self) -> list[tuple[str, dict[str, Any]]]:
        """The queued "delivered" receipts as (peer, payload), and an empty queue."""
        pending, self._delivered = self._delivered, {}
        return [
            (peer, receipt_payload("delivered", chunk))
            for peer, ids in sorted(pending.items())
            for chunk in _chunks(ids)
        ]

    def read_elsewhere(self, message_ids: Iterable[str]) -> None:
        """Another device of this account has shown these (15.17, an own receipt)."""
        self._read_elsewhere.update(message_ids)

    def read(self, me: str, conversation_id: str, message_ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
        """ "read" receipts as (peer, payload) for the named messages of others in this
        direct conversation that this device accepted."""
        by_sender: dict[str, list[str]] = {}
        for row in self.state.verified_messages(message_ids):
            if row["message_id"] in self._read_elsewhere:
                continue
            if row["conversation_id"] == conversation_id and row["sender"] != me:
                by_sender.setdefault(str(row["sender"]), []).append(str(row["message_id"]))
        return [
            (sender, receipt_payload("read", chunk))
            for sender, ids in sorted(by_sender.items())
            for chunk in _chunks(ids)
        ]

    # Checking ---------------------------------------------------------------------
    def decide(self, me: str, accepted: AcceptedV2) -> ReceiptV2Decision:
        """The core's decision (15.17) on an accepted receipt message, with its inputs
        (the named messages sent and received here) from local state."""
        raw = accepted.payload.get("message_ids")
        named = [m for m in raw[:MAX_RECEIPT_IDS] if isinstance(m, str)] if isinstance(raw, list) else []
        sent: dict[str, dict[str, list[str]]] = {}
        received: dict[str, list[str]] = {}
        for row in self.state.verified_messages(named):
            conversation, message_id = str(row["conversation_id"]), str(row["message_id"])
            if row["sender"] == me:
                recipients = list(json.loads(row["recipients"])) if row["recipients"] else []
                if not recipients and conversation.startswith("dm-") and row["peer"]:
                    # Recorded before recipients were kept: a direct message went to its peer.
                    recipients = sorted({me, str(row["peer"])})
                sent.setdefault(conversation, {})[message_id] = recipients
            else:
                received.setdefault(conversation, []).append(message_id)
        return decide_receipt_v2(
            sender=accepted.sender,
            conversation_id=accepted.conversation_id,
            payload=accepted.payload,
            me=me,
            sent=sent,
            received=received,
        )
