"""Group membership as a signed hash chain (protocol v1, PROTOCOL.md section 13).

Who belongs to a group is not the server's word: it is the result of replaying a chain
of membership changes, each signed by the member who made it and each naming the hash
of the one before. Every client replays the chain itself and refuses to send to, or
accept from, a recipient list that no position of the verified chain allowed. A server
that inserts a member, reorders, drops or forges a change is caught here.

Pure: identities are looked up through a callable the caller supplies (the client's
pinned keys, or the server's registered keys).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .encoding import b64decode, b64encode, canonical, u64
from .errors import MalformedInput, UnsupportedVersion, VerificationFailed
from .identifiers import (
    ConversationId,
    Username,
    new_group_conversation_id,
    new_message_id,
    parse_conversation_id,
    parse_message_id,
    parse_username,
)
from .keys import PrivateIdentity, PublicIdentity
from .labels import GROUP_CHANGE, GROUP_CHANGE_HASH, GROUP_INVITE, GROUP_INVITE_HASH
from .primitives import ed25519_sign, ed25519_verify, load_ed25519_public_key

GROUP_VERSION = 1
MAX_GROUP_MEMBERS = 256
MAX_INVITE_USES = 1000
MAX_TIME = 2**53
ACTIONS = ("create", "add", "remove", "leave", "promote", "join")
CHANGE_FIELDS = frozenset(
    {"v", "group_id", "seq", "prev", "actor", "action", "members", "invite", "at", "signature"}
)
INVITE_FIELDS = frozenset({"v", "group_id", "invite_id", "inviter", "expires_at", "max_uses", "signature"})

IdentityLookup = Callable[[Username], PublicIdentity | None]


def _int(data: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value < high:
        raise MalformedInput(f"{name} must be an integer in [{low}, {high})")
    return value


def _version(data: Mapping[str, Any]) -> None:
    value = data.get("v")
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedInput("v must be an integer")
    if value != GROUP_VERSION:
        raise UnsupportedVersion(f"group version {value} is not supported")


def _normalised(value: object) -> Username:
    name = parse_username(value)
    if name != value:
        raise MalformedInput("usernames must be in normalised form")
    return name


@dataclass(frozen=True)
class Invite:
    """An admin's signed permission for anyone holding its id to join, until a time, a
    number of times."""

    group_id: ConversationId
    invite_id: str
    inviter: Username
    expires_at: int
    max_uses: int
    signature: bytes

    def signed_bytes(self) -> bytes:
        return invite_signed_bytes(
            self.group_id, self.invite_id, self.inviter, self.expires_at, self.max_uses
        )

    def digest(self) -> bytes:
        """What a join change signs: SHA-256 of the signed bytes and the signature."""
        return hashlib.sha256(canonical(GROUP_INVITE_HASH, [self.signed_bytes(), self.signature])).digest()

    def to_wire(self) -> dict[str, Any]:
        return {
            "v": GROUP_VERSION,
            "group_id": self.group_id,
            "invite_id": self.invite_id,
            "inviter": self.inviter,
            "expires_at": self.expires_at,
            "max_uses": self.max_uses,
            "signature": b64encode(self.signature),
        }

    @classmethod
    def from_wire(cls, data: object) -> Invite:
        if not isinstance(data, Mapping) or set(data) != INVITE_FIELDS:
            raise MalformedInput(f"an invite has exactly the members {sorted(INVITE_FIELDS)}")
        _version(data)
        group_id = _group_id(data.get("group_id"))
        invite_id = parse_message_id(data.get("invite_id"))
        inviter = _normalised(data.get("inviter"))
        expires_at = _int(data, "expires_at", 0, MAX_TIME)
        max_uses = _int(data, "max_uses", 1, MAX_INVITE_USES + 1)
        signature = _signature(data.get("signature"))
        return cls(group_id, invite_id, inviter, expires_at, max_uses, signature)

    def verify(self, inviter_identity: PublicIdentity) -> None:
        _verify(inviter_identity, self.inviter, self.signature, self.signed_bytes())


def invite_signed_bytes(group_id: str, invite_id: str, inviter: str, expires_at: int, max_uses: int) -> bytes:
    return canonical(
        GROUP_INVITE, [u64(GROUP_VERSION), group_id, invite_id, inviter, u64(expires_at), u64(max_uses)]
    )


def make_invite(
    admin: PrivateIdentity,
    group_id: ConversationId,
    *,
    expires_at: int,
    max_uses: int,
    invite_id: str | None = None,
) -> Invite:
    invite_id = parse_message_id(invite_id) if invite_id is not None else new_message_id()
    if not 1 <= max_uses <= MAX_INVITE_USES:
        raise MalformedInput("max_uses out of range")
    signed = invite_signed_bytes(group_id, invite_id, admin.username, expires_at, max_uses)
    return Invite(
        group_id, invite_id, admin.username, expires_at, max_uses, ed25519_sign(admin.signing_private, signed)
    )


def _group_id(value: object) -> ConversationId:
    group_id = parse_conversation_id(value)
    if not group_id.startswith("grp-"):
        raise MalformedInput("group_id must be a group conversation id")
    return group_id


def _signature(value: object) -> bytes:
    if not isinstance(value, str):
        raise MalformedInput("signature must be a string")
    signature = b64decode(value, max_bytes=64)
    if len(signature) != 64:
        raise MalformedInput("signature must be 64 bytes")
    return signature


def _verify(identity: PublicIdentity, signer: str, signature: bytes, message: bytes) -> None:
    if identity.username != signer:
        raise VerificationFailed()
    try:
        key = load_ed25519_public_key(identity.signing_key)
    except MalformedInput as exc:
        raise VerificationFailed() from exc
    ed25519_verify(key, signature, message)


@dataclass(frozen=True)
class GroupChange:
    group_id: ConversationId
    seq: int
    prev: bytes  # the previous change's hash; empty for the first change
    actor: Username
    action: str
    members: tuple[Username, ...]  # the change's targets, sorted
    invite: Invite | None
    at: int
    signature: bytes

    def signed_bytes(self) -> bytes:
        return change_signed_bytes(
            self.group_id, self.seq, self.prev, self.actor, self.action, self.members, self.invite, self.at
        )

    def digest(self) -> bytes:
        """The hash the next change names as ``prev``."""
        return hashlib.sha256(canonical(GROUP_CHANGE_HASH, [self.signed_bytes(), self.signature])).digest()

    def to_wire(self) -> dict[str, Any]:
        return {
            "v": GROUP_VERSION,
            "group_id": self.group_id,
            "seq": self.seq,
            "prev": self.prev.hex(),
            "actor": self.actor,
            "action": self.action,
            "members": list(self.members),
            "invite": self.invite.to_wire() if self.invite else None,
            "at": self.at,
            "signature": b64encode(self.signature),
        }

    @classmethod
    def from_wire(cls, data: object) -> GroupChange:
        """Parse strictly (shape only); :class:`GroupState` checks the rules."""
        if not isinstance(data, Mapping) or set(data) != CHANGE_FIELDS:
            raise MalformedInput(f"a group change has exactly the members {sorted(CHANGE_FIELDS)}")
        _version(data)
        group_id = _group_id(data.get("group_id"))
        seq = _int(data, "seq", 0, 2**32)
        prev_text = data.get("prev")
        if not isinstance(prev_text, str) or not (prev_text == "" or _is_hex64(prev_text)):
            raise MalformedInput("prev must be empty or 64 lower-case hex digits")
        actor = _normalised(data.get("actor"))
        action = data.get("action")
        if action not in ACTIONS:
            raise MalformedInput(f"action must be one of {', '.join(ACTIONS)}")
        raw_members = data.get("members")
        if not isinstance(raw_members, list) or len(raw_members) > MAX_GROUP_MEMBERS:
            raise MalformedInput("members must be a list of at most 256 usernames")
        members = tuple(_normalised(m) for m in raw_members)
        if list(members) != sorted(set(members)):
            raise MalformedInput("members must be sorted and distinct")
        invite = Invite.from_wire(data["invite"]) if data.get("invite") is not None else None
        at = _int(data, "at", 0, MAX_TIME)
        signature = _signature(data.get("signature"))
        return cls(
            group_id, seq, bytes.fromhex(prev_text), actor, str(action), members, invite, at, signature
        )


def _is_hex64(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def change_signed_bytes(
    group_id: str,
    seq: int,
    prev: bytes,
    actor: str,
    action: str,
    members: Sequence[str],
    invite: Invite | None,
    at: int,
) -> bytes:
    return canonical(
        GROUP_CHANGE,
        [
            u64(GROUP_VERSION),
            group_id,
            u64(seq),
            prev,
            actor,
            action,
            u64(len(members)),
            *members,
            invite.digest() if invite else b"",
            u64(at),
        ],
    )


def sign_change(
    actor: PrivateIdentity,
    state: GroupState | None,
    action: str,
    members: Sequence[str] = (),
    *,
    group_id: ConversationId | None = None,
    invite: Invite | None = None,
    at: int,
) -> GroupChange:
    """Make the next change of ``state`` (None: a new group), signed by ``actor``."""
    if state is None:
        group_id = group_id or new_group_conversation_id()
        seq, prev = 0, b""
    else:
        group_id, seq, prev = state.group_id, state.seq + 1, state.head
    targets = tuple(sorted({_normalised(m) for m in members}))
    signed = change_signed_bytes(group_id, seq, prev, actor.username, action, targets, invite, at)
    signature = ed25519_sign(actor.signing_private, signed)
    return GroupChange(group_id, seq, prev, actor.username, action, targets, invite, at, signature)


@dataclass(frozen=True)
class GroupState:
    """The verified result of a chain: who is in, who may change it, and its history."""

    group_id: ConversationId
    seq: int
    head: bytes
    at: int
    members: frozenset[Username]
    admins: frozenset[Username]
    invite_uses: Mapping[str, int] = field(default_factory=dict)
    # The member set after each change, by seq: what a message's recipients may equal.
    history: tuple[frozenset[Username], ...] = ()

    def members_at(self, seq: int) -> frozenset[Username]:
        return self.history[seq]

    def accepts_recipients(
        self, recipients: frozenset[Username], sender: Username, *, since: int = 0
    ) -> bool:
        """True if some verified position at or after ``since`` had exactly these members,
        the sender among them (PROTOCOL.md 13.5)."""
        if not isinstance(since, int) or isinstance(since, bool) or since < 0:
            raise ValueError("since must be a non-negative chain position")
        return any(members == recipients and sender in members for members in self.history[since:])

    def joined_at(self, name: Username) -> int | None:
        """The seq from which ``name`` has been a member without a break (None: not one)."""
        if name not in self.members:
            return None
        position = len(self.history) - 1
        while position > 0 and name in self.history[position - 1]:
            position -= 1
        return position

    def apply(
        self, change: GroupChange, identities: IdentityLookup, *, check_signature: bool = True
    ) -> GroupState:
        """The state after ``change``, or VerificationFailed if it breaks a rule.

        ``check_signature=False`` is for changes this client verified before (with the
        keys pinned then); their rules and hashes are still checked.
        """
        if change.group_id != self.group_id or change.seq != self.seq + 1 or change.prev != self.head:
            raise VerificationFailed("the change does not extend the chain")
        if change.at < self.at:
            raise VerificationFailed("the change is dated before the previous one")
        if check_signature:
            _check_signature(change, identities)
        members, admins, uses = set(self.members), set(self.admins), dict(self.invite_uses)
        targets = set(change.members)
        actor = change.actor
        if change.action != "join" and change.invite is not None:
            raise VerificationFailed("only a join carries an invite")
        if change.action == "add":
            _require(actor in admins and targets and not targets & members, "only an admin adds non-members")
            members |= targets
        elif change.action == "remove":
            _require(
                actor in admins and targets and targets <= members and actor not in targets,
                "only an admin removes other members",
            )
            members -= targets
            admins -= targets
        elif change.action == "promote":
            _require(
                actor in admins and targets and targets <= members - admins, "only an admin promotes members"
            )
            admins |= targets
        elif change.action == "leave":
            _require(actor in members and not targets, "only a member leaves, and only itself")
            members.discard(actor)
            admins.discard(actor)
        elif change.action == "join":
            invite = change.invite
            _require(invite is not None and actor not in members and not targets, "a join needs an invite")
            assert invite is not None
            _require(
                invite.group_id == self.group_id and invite.inviter in admins, "the invite is not an admin's"
            )
            _require(change.at <= invite.expires_at, "the invite had expired")
            _require(uses.get(invite.invite_id, 0) < invite.max_uses, "the invite is used up")
            if check_signature:
                inviter = identities(invite.inviter)
                if inviter is None:
                    raise VerificationFailed("the inviter's keys are unknown")
                invite.verify(inviter)
            uses[invite.invite_id] = uses.get(invite.invite_id, 0) + 1
            members.add(actor)
        else:  # "create" is only valid as the first change
            raise VerificationFailed("a group is created only once")
        _require(len(members) <= MAX_GROUP_MEMBERS, "too many members")
        frozen = frozenset(members)
        return replace(
            self,
            seq=change.seq,
            head=change.digest(),
            at=change.at,
            members=frozen,
            admins=frozenset(admins),
            invite_uses=uses,
            history=(*self.history, frozen),
        )


def _require(condition: object, reason: str) -> None:
    if not condition:
        raise VerificationFailed(reason)


def _check_signature(change: GroupChange, identities: IdentityLookup) -> None:
    identity = identities(change.actor)
    if identity is None:
        raise VerificationFailed("the actor's keys are unknown")
    _verify(identity, change.actor, change.signature, change.signed_bytes())


def genesis(change: GroupChange, identities: IdentityLookup, *, check_signature: bool = True) -> GroupState:
    """The state a ``create`` change makes."""
    _require(
        change.seq == 0 and change.prev == b"" and change.action == "create", "a chain starts with create"
    )
    _require(change.invite is None and change.actor not in change.members, "malformed create")
    _require(len(change.members) < MAX_GROUP_MEMBERS, "too many members")
    if check_signature:
        _check_signature(change, identities)
    members = frozenset({change.actor, *change.members})
    return GroupState(
        group_id=change.group_id,
        seq=0,
        head=change.digest(),
        at=change.at,
        members=members,
        admins=frozenset({change.actor}),
        history=(members,),
    )


def verify_chain(
    changes: Sequence[GroupChange],
    identities: IdentityLookup,
    *,
    group_id: str | None = None,
    verified_prefix: int = 0,
) -> GroupState:
    """Replay a whole chain from its first change; VerificationFailed on any fault.

    The signatures of the first ``verified_prefix`` changes are not checked again: a
    client verifies each change once, with the keys pinned when it first saw it, so a
    member's later key change does not void what it signed before (PROTOCOL.md 13.7).
    """
    if not changes:
        raise VerificationFailed("empty chain")
    state = genesis(changes[0], identities, check_signature=verified_prefix < 1)
    if group_id is not None and state.group_id != group_id:
        raise VerificationFailed("the chain is for another group")
    for position, change in enumerate(changes[1:], start=1):
        state = state.apply(change, identities, check_signature=position >= verified_prefix)
    return state


@dataclass(frozen=True)
class ChainHead:
    """What checking the next change needs of a verified chain, and nothing that grows
    with its length: the head's seq, hash and time, the members and the admins. A server
    keeps this for each group and checks each new change against it alone, instead of
    replaying the chain (PROTOCOL.md 13.6). How often an invite was used is the one other
    input a ``join`` needs; the caller counts it (the server in its invite rows)."""

    group_id: ConversationId
    seq: int
    head: bytes
    at: int
    members: frozenset[Username]
    admins: frozenset[Username]

    @classmethod
    def of(cls, state: GroupState) -> ChainHead:
        return cls(state.group_id, state.seq, state.head, state.at, state.members, state.admins)


def check_next(
    head: ChainHead, change: GroupChange, identities: IdentityLookup, *, invite_uses: int = 0
) -> ChainHead:
    """The head after ``change``, or VerificationFailed: exactly 13.3's checks of one
    change (it extends the head, its signature and, for a join, the invite's verify, the
    rules hold), given how many earlier joins used the invite the change carries."""
    uses = {change.invite.invite_id: invite_uses} if change.invite is not None else {}
    state = GroupState(
        group_id=head.group_id,
        seq=head.seq,
        head=head.head,
        at=head.at,
        members=head.members,
        admins=head.admins,
        invite_uses=uses,
    )
    return ChainHead.of(state.apply(change, identities))


def extend(state: GroupState, changes: Sequence[GroupChange], identities: IdentityLookup) -> GroupState:
    """Apply further changes to a verified state (the chain must continue from it)."""
    for change in changes:
        state = state.apply(change, identities)
    return state
