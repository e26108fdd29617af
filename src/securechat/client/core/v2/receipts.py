"""Does this v2 receipt move any of my messages forward (PROTOCOL.md 15.17)?

A v2 receipt is an ordinary v2 message (15.8) whose payload is
``{"type": "receipt", "status": ..., "message_ids": [...]}``: ``receive_direct_v2`` has
already checked who sent it (a listed device of the reader, by its signature), in which
direct conversation, and that it is new. This decides only what it says: which of my
messages, sent in that conversation with the reader among their recipients, it covers;
or, sent by one of my own other devices, which messages I received there its user has
read (so my devices agree on what was read).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

from ....protocol import errors as protocol_errors
from ....protocol.identifiers import MessageId, parse_message_id
from ....protocol.receipts import MAX_RECEIPT_IDS, RECEIPT_STATUSES
from ..reasons import Refused

RECEIPT_TYPE = "receipt"
RECEIPT_PAYLOAD_FIELDS = frozenset({"type", "status", "message_ids"})

# conversation id -> message id -> the accounts the message was sealed for.
SentMessages = Mapping[str, Mapping[str, Collection[str]]]
# conversation id -> ids of the messages of others this device accepted there.
ReceivedMessages = Mapping[str, Collection[str]]


@dataclass(frozen=True)
class ReceiptV2Accepted:
    conversation_id: str
    # The account whose device sent the receipt (the envelope's verified sender).
    reader: str
    status: str  # "delivered" or "read"
    # Ascending. From a peer: my messages it covers (sent there, the reader a recipient).
    # From my own other device (``own``): messages of others I received there.
    message_ids: tuple[MessageId, ...]
    own: bool
    outcome: Literal["accepted"] = "accepted"


ReceiptV2Decision = ReceiptV2Accepted | Refused


def is_receipt_payload(payload: Mapping[str, Any]) -> bool:
    """A payload that is a receipt, well-formed or not: never shown as a chat item and
    never itself receipted (15.17)."""
    return payload.get("type") == RECEIPT_TYPE


def parse_receipt_payload(payload: object) -> tuple[str, tuple[MessageId, ...]]:
    """The status and ids of a receipt payload; ``MalformedInput`` for anything else."""
    if not isinstance(payload, Mapping) or set(payload) != RECEIPT_PAYLOAD_FIELDS:
        raise protocol_errors.MalformedInput("a receipt payload has exactly type, status and message_ids")
    if payload["type"] != RECEIPT_TYPE:
        raise protocol_errors.MalformedInput("not a receipt payload")
    status = payload["status"]
    if not isinstance(status, str) or status not in RECEIPT_STATUSES:
        raise protocol_errors.MalformedInput("status must be delivered or read")
    raw = payload["message_ids"]
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_RECEIPT_IDS:
        raise protocol_errors.MalformedInput("message_ids must hold 1 to 100 ids")
    ids = tuple(parse_message_id(value) for value in raw)
    if any(not earlier < later for earlier, later in pairwise(ids)):
        raise protocol_errors.MalformedInput("message_ids must be strictly ascending")
    return status, ids


def receipt_payload(status: str, message_ids: Collection[str]) -> dict[str, Any]:
    """The payload a reader seals (ids sorted, at most 100: the caller splits)."""
    ids = sorted(set(message_ids))
    if status not in RECEIPT_STATUSES or not 1 <= len(ids) <= MAX_RECEIPT_IDS:
        raise protocol_errors.MalformedInput("a receipt names 1 to 100 ids with status delivered or read")
    return {"type": RECEIPT_TYPE, "status": status, "message_ids": ids}


def decide_receipt_v2(
    *,
    sender: str,
    conversation_id: str,
    payload: object,
    me: str,
    sent: SentMessages,
    received: ReceivedMessages,
) -> ReceiptV2Decision:
    """PROTOCOL.md 15.17: accepted, or refused with its reason.

    ``sender``, ``conversation_id`` and ``payload`` are those of a message
    ``receive_direct_v2`` accepted; ``sent`` holds, by conversation, the messages this
    user sent and who each was sealed for; ``received``, by conversation, the ids of the
    messages of others this device accepted (only those the receipt names need be given).
    """
    try:
        status, ids = parse_receipt_payload(payload)
    except protocol_errors.ProtocolError:
        return Refused("malformed")
    if sender == me:
        # One of my other devices: what its user has seen here counts as seen.
        mine = received.get(conversation_id, ())
        named = tuple(message_id for message_id in ids if message_id in mine)
        if not named:
            return Refused("not_for_me")
        return ReceiptV2Accepted(conversation_id, sender, status, named, own=True)
    sent_here = sent.get(conversation_id, {})
    in_conversation = [message_id for message_id in ids if message_id in sent_here]
    if not in_conversation:
        return Refused("not_for_me")
    covered = tuple(message_id for message_id in in_conversation if sender in sent_here[message_id])
    if not covered:
        return Refused("wrong_members")
    return ReceiptV2Accepted(conversation_id, sender, status, covered, own=False)


def receipt_decision_to_wire(decision: ReceiptV2Decision) -> dict[str, Any]:
    """A decision in the vector file's form."""
    if isinstance(decision, Refused):
        return {"outcome": "refused", "reason": decision.reason}
    return {
        "outcome": "accepted",
        "conversation_id": decision.conversation_id,
        "reader": decision.reader,
        "status": decision.status,
        "message_ids": list(decision.message_ids),
        "own": decision.own,
    }
