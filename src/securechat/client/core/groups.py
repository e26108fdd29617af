"""Group decisions (PROTOCOL.md 14.3-14.5): a chain offered by the server, a group's
name, and an invite code."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ...protocol import errors as protocol_errors
from ...protocol.groups import GroupChange, GroupState, Invite, verify_chain
from ...protocol.identifiers import Username, parse_message_id
from ...protocol.keys import PublicIdentity
from .reasons import Refused

if TYPE_CHECKING:
    from .messages import Pin


class GroupView(Protocol):
    """What the decisions need of a verified group: its member sets by seq, and admins."""

    @property
    def history(self) -> Sequence[frozenset[Username]]: ...

    @property
    def admins(self) -> frozenset[Username]: ...


@dataclass(frozen=True)
class MemberHistory:
    """A plain GroupView: member sets by seq and the admins (as the vectors give them)."""

    history: tuple[frozenset[Username], ...]
    admins: frozenset[Username]

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> MemberHistory:
        return cls(
            tuple(frozenset(Username(n) for n in members) for members in wire["history"]),
            frozenset(Username(n) for n in wire["admins"]),
        )


def membership_start(group: GroupView, name: str) -> int | None:
    """The seq at which ``name``'s latest stretch of membership began (None: never a member)."""
    positions = [k for k, members in enumerate(group.history) if name in members]
    if not positions:
        return None
    k = positions[-1]
    while k > 0 and name in group.history[k - 1]:
        k -= 1
    return k


def _lookup(pins: Mapping[str, Pin]) -> Any:
    def identity(name: Username) -> PublicIdentity | None:
        pin = pins.get(name)
        return pin.identity if pin is not None else None

    return identity


# A change from the inbox, against the verified local chain.
ChangePosition = Literal["known", "next", "ahead", "fork"]


def change_position(
    local: Sequence[Mapping[str, Any]], change: Mapping[str, Any]
) -> ChangePosition | Refused:
    """Where an inbox entry's change stands (14.3): already ``known`` (never shown again),
    the ``next`` one, ``ahead`` (fetch the chain), or a ``fork`` of what was verified."""
    try:
        seq = GroupChange.from_wire(change).seq
    except protocol_errors.ProtocolError:
        return Refused("malformed")
    if seq < len(local):
        return "known" if dict(local[seq]) == dict(change) else "fork"
    return "next" if seq == len(local) else "ahead"


@dataclass(frozen=True)
class ChainAccepted:
    state: GroupState
    # The changes after the local chain, in order: each is shown once.
    new: tuple[GroupChange, ...]
    outcome: Literal["accepted"] = "accepted"


ChainDecision = ChainAccepted | Refused


def decide_group_chain(
    local: Sequence[Mapping[str, Any]],
    offered: Sequence[Mapping[str, Any]],
    *,
    group_id: str,
    pins: Mapping[str, Pin],
) -> ChainDecision:
    """14.3: the offered chain must start with the local one and verify as a whole.

    The local chain's signatures were checked when it was accepted, with the keys pinned
    then; they are not checked again (13.7).
    """
    try:
        changes = [GroupChange.from_wire(wire) for wire in offered]
    except protocol_errors.ProtocolError:
        return Refused("malformed")
    if [dict(w) for w in offered[: len(local)]] != [dict(w) for w in local]:
        return Refused("chain_fork")
    try:
        state = verify_chain(changes, _lookup(pins), group_id=group_id, verified_prefix=len(local))
    except protocol_errors.ProtocolError:
        return Refused("chain_invalid")
    return ChainAccepted(state, tuple(changes[len(local) :]))


@dataclass(frozen=True)
class NameRecord:
    """The name a group has on this device, and the naming message it came from."""

    name: str
    sent_at: int
    message_id: str


NameDecision = NameRecord | Refused


def decide_group_name(
    current: NameRecord | None,
    *,
    sender: str,
    name: str,
    sent_at: int,
    message_id: str,
    group: GroupView,
) -> NameDecision:
    """14.4: an accepted ``group_info`` renames the group if an admin sent it and it is
    newer, by the admin's signed clock (then by message id), than the current name."""
    if sender not in group.admins:
        return Refused("not_admin")
    if current is not None and (sent_at, message_id.encode()) <= (
        current.sent_at,
        current.message_id.encode(),
    ):
        return Refused("older_name")
    return NameRecord(name, sent_at, message_id)


# 14.5: the invite id, a dot, and 16 bytes of the invite's hash in lower-case hex.
_INVITE_CODE = re.compile(r"([0-9a-f-]{36})\.([0-9a-f]{32})")
INVITE_COMMITMENT_BYTES = 16
# Only ASCII white space around a code is removed (14.5).
_ASCII_SPACE = " \t\n\r\x0b\x0c"


def invite_code(invite: Invite) -> str:
    """The code people pass on: it names the invite and commits to all of it."""
    return f"{invite.invite_id}.{invite.digest()[:INVITE_COMMITMENT_BYTES].hex()}"


def parse_invite_code(code: str) -> tuple[str, bytes]:
    """(invite id, commitment); MalformedInput for anything else, a bare id included."""
    match = _INVITE_CODE.fullmatch(code.strip(_ASCII_SPACE))
    if match is None:
        raise protocol_errors.MalformedInput("an invite code is the invite id, a dot and 32 hex digits")
    return parse_message_id(match.group(1)), bytes.fromhex(match.group(2))


@dataclass(frozen=True)
class InviteAccepted:
    invite: Invite
    state: GroupState
    outcome: Literal["accepted"] = "accepted"


InviteDecision = InviteAccepted | Refused


def decide_invite(
    code: str,
    answer: Mapping[str, Any],
    *,
    pins: Mapping[str, Pin],
    local: Sequence[Mapping[str, Any]],
    now: int,
) -> InviteDecision:
    """14.5: may I join with this code, given what the server answered for it?"""
    if not isinstance(answer, Mapping):
        return Refused("malformed")
    try:
        invite_id, commitment = parse_invite_code(code)
        invite = Invite.from_wire(answer.get("invite"))
        offered = answer.get("changes")
        if not isinstance(offered, list) or not all(isinstance(w, Mapping) for w in offered):
            raise protocol_errors.MalformedInput("changes must be a list of objects")
    except protocol_errors.ProtocolError:
        return Refused("malformed")
    if invite.invite_id != invite_id or invite.digest()[:INVITE_COMMITMENT_BYTES] != commitment:
        return Refused("invite_mismatch")
    chain = decide_group_chain(local, offered, group_id=invite.group_id, pins=pins)
    if isinstance(chain, Refused):
        return chain
    pin = pins.get(invite.inviter)
    if pin is None:
        return Refused("unknown_sender")
    try:
        invite.verify(pin.identity)
    except protocol_errors.ProtocolError:
        return Refused("bad_signature")
    if invite.inviter not in chain.state.admins:
        return Refused("not_admin")
    if now > invite.expires_at:
        return Refused("invite_expired")
    return InviteAccepted(invite, chain.state)
