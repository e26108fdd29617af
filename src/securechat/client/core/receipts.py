"""Does this receipt move any of my messages forward (PROTOCOL.md 14.7)?

Only a receipt signed by its reader, with the key this device pinned for the reader,
about messages I sent in that conversation to that reader, does. The members of the
inbox frame beside the signed receipt (``message_ids``, ``recipient``, ``status``) are
the server's word and are never read here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from ...protocol import errors as protocol_errors
from ...protocol.identifiers import MessageId, Username
from ...protocol.receipts import Receipt
from .messages import Pin
from .reasons import Reason, Refused


@dataclass(frozen=True)
class ReceiptAccepted:
    conversation_id: str
    reader: Username
    status: str  # "delivered" or "read"
    # Those of the receipt's messages that I sent in that conversation with the reader
    # among their recipients: the only ones whose status may move (ascending).
    message_ids: tuple[MessageId, ...]
    outcome: Literal["accepted"] = "accepted"


ReceiptDecision = ReceiptAccepted | Refused

# conversation id -> message id -> the recipients the message was sealed for.
SentMessages = Mapping[str, Mapping[str, Collection[str]]]


def _signature_reason(receipt: Receipt, pin: Pin) -> Reason | None:
    try:
        receipt.verify(pin.identity)
        return None
    except protocol_errors.ProtocolError:
        pass
    if pin.pending is not None:
        try:
            receipt.verify(pin.pending)
            return "key_changed"
        except protocol_errors.ProtocolError:
            pass
    return "bad_signature"


def decide_receipt(frame: object, *, me: str, pins: Mapping[str, Pin], sent: SentMessages) -> ReceiptDecision:
    """PROTOCOL.md 14.7: accepted (the reader, status and my message ids it covers), or
    refused with its reason.

    ``frame`` is the inbox entry (``{"type": "receipt", ..., "receipt": {...}}``); ``sent``
    holds, by conversation, the messages this user sent and who each was sealed for (only
    those the receipt names need be given).
    """
    if not isinstance(frame, Mapping):
        return Refused("malformed")
    if "receipt" not in frame:
        # The server's own claim (from an acknowledgement or an unsigned read frame).
        return Refused("unsigned")
    try:
        receipt = Receipt.from_wire(frame["receipt"])
    except protocol_errors.UnsupportedVersion:
        return Refused("unsupported_version")
    except protocol_errors.ProtocolError:
        return Refused("malformed")
    pin = pins.get(receipt.reader)
    if pin is None:
        return Refused("unknown_sender")
    reason = _signature_reason(receipt, pin)
    if reason is not None:
        return Refused(reason)
    mine = sent.get(receipt.conversation_id, {})
    named = [message_id for message_id in receipt.message_ids if message_id in mine]
    if not named:
        return Refused("not_for_me")
    covered = tuple(
        message_id for message_id in named if receipt.reader != me and receipt.reader in mine[message_id]
    )
    if not covered:
        return Refused("wrong_members")
    return ReceiptAccepted(receipt.conversation_id, receipt.reader, receipt.status, covered)
