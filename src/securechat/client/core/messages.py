"""Is this envelope a genuine new message, and whose, in which conversation (PROTOCOL.md 14.1, 14.2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ...protocol import errors as protocol_errors
from ...protocol.encoding import b64encode
from ...protocol.envelope import Envelope, decode_payload, decrypt_padded_payload, verify_signature
from ...protocol.identifiers import Username, direct_conversation_id
from ...protocol.keys import PrivateIdentity, PublicIdentity
from .groups import GroupView, membership_start
from .reasons import Reason, Refused


@dataclass(frozen=True)
class Pin:
    """A contact's pinned identity (8.1), and the new one if a key change waits (8.3)."""

    identity: PublicIdentity
    pending: PublicIdentity | None = None


@dataclass(frozen=True)
class SeenRecord:
    """An accepted message: its signature (base64) and the inbox position it first came
    at (None: first seen in history, or sent from this device)."""

    signature: str
    seq: int | None

    def to_wire(self) -> dict[str, Any]:
        return {"signature": self.signature, "seq": self.seq}


@dataclass(frozen=True)
class Claim:
    """What a refused envelope says about itself: to show, marked as unverified."""

    message_id: str
    conversation_id: str
    sender: str
    sent_at: int


@dataclass(frozen=True)
class Accepted:
    message_id: str
    conversation_id: str
    kind: Literal["direct", "group"]
    # The other member of a direct conversation, derived from the id (None in a group).
    peer: Username | None
    sender: Username
    sent_at: int
    recipients: tuple[Username, ...]
    payload: dict[str, Any]
    # What to store as seen (PROTOCOL.md 14.2).
    seen: SeenRecord
    outcome: Literal["accepted"] = "accepted"

    def to_wire(self) -> dict[str, Any]:
        """The decision as the ``decisions.messages`` vectors write it."""
        return {
            "outcome": self.outcome,
            "conversation_id": self.conversation_id,
            "kind": self.kind,
            "peer": self.peer,
            "sender": self.sender,
            "sent_at": self.sent_at,
            "payload": self.payload,
            "seen": self.seen.to_wire(),
        }


@dataclass(frozen=True)
class Duplicate:
    """The same envelope, already accepted and shown: nothing new to show."""

    message_id: str
    # The seen record to store (it may have gained its inbox position).
    seen: SeenRecord
    outcome: Literal["duplicate"] = "duplicate"

    def to_wire(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "seen": self.seen.to_wire()}


MessageDecision = Accepted | Duplicate | Refused


def _claim(envelope: Envelope) -> Claim:
    header = envelope.header
    return Claim(header.message_id, header.conversation_id, header.sender, header.sent_at)


def _signature_reason(envelope: Envelope, pin: Pin) -> Reason | None:
    try:
        verify_signature(envelope, pin.identity)
        return None
    except protocol_errors.ProtocolError:
        pass
    if pin.pending is not None:
        try:
            verify_signature(envelope, pin.pending)
            return "key_changed"
        except protocol_errors.ProtocolError:
            pass
    return "bad_signature"


def _members_reason(
    envelope: Envelope, me: Username, groups: Mapping[str, GroupView]
) -> tuple[Reason | None, Username | None]:
    """14.1 step 5: (a refusal, or None) and a direct conversation's derived peer."""
    header = envelope.header
    recipients = frozenset(envelope.recipients)
    if header.conversation_id.startswith("grp-"):
        group = groups.get(header.conversation_id)
        if group is None:
            return "unknown_group", None
        since = membership_start(group, me)
        if since is None or not any(
            members == recipients and header.sender in members for members in group.history[since:]
        ):
            return "wrong_members", None
        return None, None
    peer: Username | None
    if header.sender != me:
        peer = header.sender
    else:
        others = sorted(recipients - {me})
        peer = others[0] if len(others) == 1 else me if not others else None
    if peer is None or direct_conversation_id(me, peer) != header.conversation_id:
        return "wrong_conversation", None
    if recipients != frozenset({me, peer}):
        return "wrong_members", None
    return None, peer


def _replay(
    seen: SeenRecord | None, signature: str, inbox_seq: int | None
) -> tuple[Literal["new", "duplicate", "replayed"], SeenRecord]:
    """14.2's table."""
    if seen is None:
        return "new", SeenRecord(signature, inbox_seq)
    if seen.signature != signature:
        return "replayed", seen
    if inbox_seq is None or seen.seq == inbox_seq:
        return "duplicate", seen
    if seen.seq is None:
        return "duplicate", SeenRecord(signature, inbox_seq)
    return "replayed", seen


def decide_message(
    wire: object,
    *,
    me: PrivateIdentity,
    delivered_in: str | None,
    pins: Mapping[str, Pin],
    groups: Mapping[str, GroupView],
    seen: Mapping[str, SeenRecord],
    inbox_seq: int | None,
) -> MessageDecision:
    """PROTOCOL.md 14.1: accepted, duplicate, or refused with its reason.

    ``delivered_in`` is the conversation being read (a history page's), None for the
    inbox; ``inbox_seq`` the inbox position, None for history.
    """
    try:
        envelope = Envelope.from_wire(wire)
    except protocol_errors.UnsupportedVersion:
        return Refused("unsupported_version")
    except protocol_errors.ProtocolError:
        return Refused("malformed")
    header = envelope.header
    claim = _claim(envelope)
    pin = pins.get(header.sender)
    if pin is None:
        return Refused("unknown_sender", claim)
    reason = _signature_reason(envelope, pin)
    if reason is not None:
        return Refused(reason, claim)
    if delivered_in is not None and delivered_in != header.conversation_id:
        return Refused("wrong_conversation", claim)
    reason, peer = _members_reason(envelope, me.username, groups)
    if reason is not None:
        return Refused(reason, claim)
    signature = b64encode(envelope.signature)
    verdict, record = _replay(seen.get(header.message_id), signature, inbox_seq)
    if verdict == "replayed":
        return Refused("replayed", claim)
    if verdict == "duplicate":
        return Duplicate(header.message_id, record)
    if me.username not in envelope.recipients:
        return Refused("not_for_me", claim)
    try:
        payload_bytes = decrypt_padded_payload(envelope, me)
    except protocol_errors.ProtocolError:
        return Refused("undecryptable", claim)
    try:
        payload = decode_payload(payload_bytes)
    except protocol_errors.ProtocolError:
        return Refused("bad_payload", claim)
    return Accepted(
        message_id=header.message_id,
        conversation_id=header.conversation_id,
        kind="group" if header.conversation_id.startswith("grp-") else "direct",
        peer=peer,
        sender=header.sender,
        sent_at=header.sent_at,
        recipients=envelope.recipients,
        payload=payload,
        seen=record,
    )
