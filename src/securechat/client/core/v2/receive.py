"""Is this v2 envelope a genuine new direct message for this device (PROTOCOL.md 15.8).

15.8's receiving order as one decision: parse, the sender device in the sender's accepted
list, its signature, the conversation and members, the targets, replay (14.2), the
session or setup (15.5, 15.9.1), the ratchet, the binding and body, the payload. Nothing
is changed in place: an acceptance returns the new session set and seen record to store
together; a refusal returns no state at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ....protocol import errors as protocol_errors
from ....protocol.encoding import b64encode
from ....protocol.envelope import decode_payload
from ....protocol.identifiers import Username, direct_conversation_id
from ....protocol.v2.devices import Device, DeviceList
from ....protocol.v2.envelope import EnvelopeV2, HeaderV2, open_body, open_key_slot, verify_envelope
from ....protocol.v2.errors import Refusal
from ....protocol.v2.ratchet import RatchetMessage, SessionState
from ....protocol.v2.setup import Party, accept_session, setup_session_id
from ..messages import Claim, Duplicate, SeenRecord, _replay
from ..reasons import Reason
from .sessions import EMPTY, Notice, SessionSet, open_message

# Refusals after which this device's next send to the sender device starts a new
# session (15.9): the session is missing or out of step. Nothing else triggers a repair.
REPAIR_REASONS: frozenset[Reason] = frozenset({"session_unknown", "ratchet_failed"})


@dataclass(frozen=True)
class MeV2:
    """This device: its account, listed entry, DH key and the prekeys it still holds."""

    username: Username
    account_key: bytes
    device: Device
    dh_private: bytes
    # prekey id -> private half; signed prekeys include those still in their 30-day grace.
    signed_prekeys: Mapping[int, bytes]
    one_time_prekeys: Mapping[int, bytes]

    @property
    def party(self) -> Party:
        return Party(self.username, self.account_key, self.device)


@dataclass(frozen=True)
class AcceptedV2:
    message_id: str
    conversation_id: str
    # The other member of the direct conversation, derived from the id, never the server.
    peer: Username
    sender: Username
    sender_device: str
    sent_at: int
    payload: dict[str, Any]
    # Store together, atomically: the seen record (14.2) and the sender device's sessions.
    seen: SeenRecord
    sessions: SessionSet
    # The one-time prekey whose private half the caller deletes now, if the setup used one.
    one_time_prekey_used: int | None
    notices: tuple[Notice, ...]
    outcome: Literal["accepted"] = "accepted"


@dataclass(frozen=True)
class RefusedV2:
    """A refused v2 message: shown as unverifiable under what it claims, never dropped.
    ``repair_needed``: the next send to the sender device starts a new session (15.9)."""

    reason: Reason
    claim: Claim | None = None
    repair_needed: bool = False
    outcome: Literal["refused"] = "refused"


ReceiveDecision = AcceptedV2 | Duplicate | RefusedV2


def _peer(header: HeaderV2, me: Username) -> tuple[Reason | None, Username | None]:
    """15.8's conversation and members: a direct id of ``me`` and the derived peer, whose
    accounts are exactly the targets' (14.1 step 5)."""
    accounts = {target.username for target in header.targets}
    peer: Username | None
    if header.sender != me:
        peer = header.sender
    else:
        others = sorted(accounts - {me})
        peer = others[0] if len(others) == 1 else me if not others else None
    if peer is None or direct_conversation_id(me, peer) != header.conversation_id:
        return "wrong_conversation", None
    if accounts != {me, peer}:
        return "wrong_members", None
    return None, peer


def _targets_listed(header: HeaderV2, device_lists: Mapping[str, DeviceList]) -> bool:
    """Every target device is in its account's list of the named version, where this
    device has accepted that version (a newer one is the caller's to fetch first)."""
    for target in header.targets:
        accepted = device_lists.get(target.username)
        if accepted is not None and accepted.version == target.device_list_version:
            listed = {device.device_id for device in accepted.devices}
            if not set(target.devices) <= listed:
                return False
    return True


def _listed(device_list: DeviceList, device_id: str) -> Device | None:
    return next((device for device in device_list.devices if device.device_id == device_id), None)


def _refused(reason: Reason, claim: Claim | None) -> RefusedV2:
    return RefusedV2(reason, claim, repair_needed=reason in REPAIR_REASONS)


def receive_direct_v2(
    entry: object,
    *,
    me: MeV2,
    delivered_in: str | None,
    device_lists: Mapping[str, DeviceList],
    seen: Mapping[str, SeenRecord],
    inbox_seq: int | None,
    sessions: Mapping[tuple[str, str], SessionSet],
    now: int,
) -> ReceiveDecision:
    """PROTOCOL.md 15.8: accepted, duplicate, or refused with its reason.

    ``entry`` is the envelope as the server delivers it to this device (its own slot);
    ``device_lists`` the accepted list per username; ``sessions`` the session sets per
    (username, device id); ``delivered_in`` and ``inbox_seq`` as in 14.1.
    """
    try:
        envelope = EnvelopeV2.from_wire(entry)
    except protocol_errors.UnsupportedVersion:
        return RefusedV2("unsupported_version")
    except protocol_errors.ProtocolError:
        return RefusedV2("malformed")
    return receive_envelope_v2(
        envelope,
        me=me,
        delivered_in=delivered_in,
        device_lists=device_lists,
        seen=seen,
        inbox_seq=inbox_seq,
        sessions=sessions,
        now=now,
    )


def receive_envelope_v2(
    envelope: EnvelopeV2,
    *,
    me: MeV2,
    delivered_in: str | None,
    device_lists: Mapping[str, DeviceList],
    seen: Mapping[str, SeenRecord],
    inbox_seq: int | None,
    sessions: Mapping[tuple[str, str], SessionSet],
    now: int,
) -> ReceiveDecision:
    """:func:`receive_direct_v2` after its parse, for a caller that already holds the
    envelope ``EnvelopeV2.from_wire`` made of the entry (to know which lists and session
    set to load), so that the entry is not parsed twice. The same steps and decisions."""
    header = envelope.header
    claim = Claim(header.message_id, header.conversation_id, header.sender, header.sent_at)
    sender_list = device_lists.get(header.sender)
    sender_device = None if sender_list is None else _listed(sender_list, header.sender_device)
    if sender_list is None or sender_device is None:
        return _refused("device_not_listed", claim)
    try:
        verify_envelope(envelope, sender_device)
    except protocol_errors.ProtocolError:
        return _refused("bad_signature", claim)
    if delivered_in is not None and delivered_in != header.conversation_id:
        return _refused("wrong_conversation", claim)
    reason, peer = _peer(header, me.username)
    if reason is not None or peer is None:
        return _refused(reason or "wrong_conversation", claim)
    if not _targets_listed(header, device_lists):
        return _refused("device_not_listed", claim)
    slot = envelope.slot_for(me.username, me.device.device_id)
    if slot is None:
        return _refused("not_for_me", claim)
    verdict, record = _replay(seen.get(header.message_id), b64encode(envelope.signature), inbox_seq)
    if verdict == "replayed":
        return _refused("replayed", claim)
    if verdict == "duplicate":
        return Duplicate(header.message_id, record)

    sender_party = Party(header.sender, sender_list.account_key, sender_device)
    binding = envelope.binding

    def accept_setup(message: RatchetMessage) -> tuple[bytes, SessionState, int | None]:
        accepted = accept_session(
            me.party,
            me.dh_private,
            sender_party,
            message,
            me.signed_prekeys,
            me.one_time_prekeys,
            binding,
            now,
        )
        return accepted.plaintext, accepted.state, accepted.used_one_time_prekey_id

    setup = slot.message.setup
    setup_id = None if setup is None else setup_session_id(sender_party, me.party, setup)
    current = sessions.get((header.sender, header.sender_device), EMPTY)
    try:
        opened = open_message(current, slot.message, setup_id, accept_setup, binding, header.sent_at, now)
    except Refusal as exc:
        return _refused(exc.reason, claim)
    try:
        payload_bytes = open_body(envelope, open_key_slot(envelope, opened.plaintext))
    except protocol_errors.ProtocolError:
        return _refused("undecryptable", claim)
    try:
        payload = decode_payload(payload_bytes)
    except protocol_errors.ProtocolError:
        return _refused("bad_payload", claim)
    return AcceptedV2(
        message_id=header.message_id,
        conversation_id=header.conversation_id,
        peer=peer,
        sender=header.sender,
        sender_device=header.sender_device,
        sent_at=header.sent_at,
        payload=payload,
        seen=record,
        sessions=opened.sessions,
        one_time_prekey_used=opened.one_time_prekey_used,
        notices=opened.notices,
    )
