"""Receipts signed by their reader (protocol v1, PROTOCOL.md 9.3).

A receipt says: in this conversation, this reader has these messages ("delivered") or
has shown them ("read"). The reader signs it with its Ed25519 key, as it signs its
messages, so a server can relay a receipt but not make one up, alter it, or move it to
another reader, status or message. Senders check it against their pinned keys and their
own record of what they sent (the client core's ``decide_receipt``, PROTOCOL.md 14.7).

Pure, like the rest of this package: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .encoding import b64decode, b64encode, canonical, u64
from .errors import MalformedInput, UnsupportedVersion, VerificationFailed
from .identifiers import (
    ConversationId,
    MessageId,
    Username,
    parse_conversation_id,
    parse_message_id,
    parse_username,
)
from .keys import PrivateIdentity, PublicIdentity
from .labels import RECEIPT
from .primitives import ed25519_sign, ed25519_verify, load_ed25519_public_key

RECEIPT_VERSION = 1
RECEIPT_STATUSES = ("delivered", "read")
# Message ids in one receipt; a reader with more to report signs several.
MAX_RECEIPT_IDS = 100
RECEIPT_FIELDS = frozenset({"v", "conversation_id", "reader", "status", "message_ids", "signature"})


@dataclass(frozen=True)
class Receipt:
    """A reader's signed statement about messages of one conversation."""

    conversation_id: ConversationId
    reader: Username
    status: str  # one of RECEIPT_STATUSES
    message_ids: tuple[MessageId, ...]  # strictly ascending, 1 to MAX_RECEIPT_IDS
    signature: bytes

    def signed_bytes(self) -> bytes:
        return receipt_signed_bytes(self.conversation_id, self.reader, self.status, self.message_ids)

    def to_wire(self) -> dict[str, Any]:
        return {
            "v": RECEIPT_VERSION,
            "conversation_id": self.conversation_id,
            "reader": self.reader,
            "status": self.status,
            "message_ids": list(self.message_ids),
            "signature": b64encode(self.signature),
        }

    @classmethod
    def from_wire(cls, data: object) -> Receipt:
        """Parse strictly (shape only); :meth:`verify` checks the signature."""
        if not isinstance(data, Mapping) or set(data) != RECEIPT_FIELDS:
            raise MalformedInput(f"a receipt has exactly the members {sorted(RECEIPT_FIELDS)}")
        version = data.get("v")
        if not isinstance(version, int) or isinstance(version, bool):
            raise MalformedInput("v must be an integer")
        if version != RECEIPT_VERSION:
            raise UnsupportedVersion(f"receipt version {version} is not supported")
        conversation_id = parse_conversation_id(data.get("conversation_id"))
        reader = parse_username(data.get("reader"))
        if reader != data.get("reader"):
            raise MalformedInput("reader must be a username in normalised form")
        status = data.get("status")
        if status not in RECEIPT_STATUSES:
            raise MalformedInput(f"status must be one of {', '.join(RECEIPT_STATUSES)}")
        raw_ids = data.get("message_ids")
        if not isinstance(raw_ids, list) or not 1 <= len(raw_ids) <= MAX_RECEIPT_IDS:
            raise MalformedInput(f"message_ids must be a list of 1 to {MAX_RECEIPT_IDS} message ids")
        message_ids = tuple(parse_message_id(m) for m in raw_ids)
        if list(message_ids) != sorted(set(message_ids)):
            raise MalformedInput("message_ids must be sorted and distinct")
        signature_text = data.get("signature")
        if not isinstance(signature_text, str):
            raise MalformedInput("signature must be a string")
        signature = b64decode(signature_text, max_bytes=64)
        if len(signature) != 64:
            raise MalformedInput("signature must be 64 bytes")
        return cls(conversation_id, reader, str(status), message_ids, signature)

    def verify(self, reader_identity: PublicIdentity) -> None:
        """Raise VerificationFailed unless the reader's pinned signing key signed this."""
        if reader_identity.username != self.reader:
            raise VerificationFailed()
        try:
            key = load_ed25519_public_key(reader_identity.signing_key)
        except MalformedInput as exc:
            raise VerificationFailed() from exc
        ed25519_verify(key, self.signature, self.signed_bytes())


def receipt_signed_bytes(conversation_id: str, reader: str, status: str, message_ids: Iterable[str]) -> bytes:
    """``canonical(RECEIPT, u64(1), conversation_id, reader, status, u64(n), id_1, …, id_n)``."""
    ids = list(message_ids)
    return canonical(RECEIPT, [u64(RECEIPT_VERSION), conversation_id, reader, status, u64(len(ids)), *ids])


def make_receipt(
    reader: PrivateIdentity, conversation_id: str, status: str, message_ids: Iterable[str]
) -> Receipt:
    """Sign a receipt as ``reader``; the ids are sorted and de-duplicated here.

    Refuses (MalformedInput) what :meth:`Receipt.from_wire` would refuse, so nothing is
    signed that no receiver could parse.
    """
    conversation = parse_conversation_id(conversation_id)
    if status not in RECEIPT_STATUSES:
        raise MalformedInput(f"status must be one of {', '.join(RECEIPT_STATUSES)}")
    ids = tuple(sorted({parse_message_id(m) for m in message_ids}))
    if not 1 <= len(ids) <= MAX_RECEIPT_IDS:
        raise MalformedInput(f"a receipt names 1 to {MAX_RECEIPT_IDS} message ids")
    signed = receipt_signed_bytes(conversation, reader.username, status, ids)
    return Receipt(conversation, reader.username, status, ids, ed25519_sign(reader.signing_private, signed))
