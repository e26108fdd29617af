"""Groups in the client library (PROTOCOL.md 13): keep each group's signed membership
chain, verify it with pinned keys, refuse a chain that does not extend the one verified
before, and seal only for the verified members, never the server's list.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..protocol import errors as protocol_errors
from ..protocol.envelope import Envelope, check_group_name, seal_message
from ..protocol.groups import GroupChange, GroupState, Invite, make_invite, sign_change, verify_chain
from ..protocol.identifiers import ConversationId, Username, parse_conversation_id, parse_username
from .core import NameRecord, Pin, Refused, decide_group_chain, decide_invite, parse_invite_code
from .errors import ApiError, ClientError, GroupUnverifiable, MembershipMismatch

if TYPE_CHECKING:
    from .api import ApiClient
    from .contacts import ContactBook
    from .session import Session
    from .state import StateStore

_CONFLICT_RETRIES = 3


def now_ms() -> int:
    return int(time.time() * 1000)


# How a group is named explicitly where a username could also be meant: '#' and its name.
GROUP_NAME_PREFIX = "#"


def _is_group_id(text: str) -> bool:
    try:
        return parse_conversation_id(text).startswith("grp-")
    except protocol_errors.ProtocolError:
        return False


def _by_name(name: str, groups: Sequence[Mapping[str, Any]]) -> str:
    matches = [g for g in groups if g.get("name") == name]
    if len(matches) == 1:
        return str(matches[0]["group_id"])
    if matches:
        # One line, and the name in repr() form: the name is an admin's text, and this
        # message is printed to a terminal.
        choices = ", ".join(f"{g['group_id']} ({g.get('status')})" for g in matches)
        raise ClientError(f"several groups are named {name!r}: {choices}; use the id of the one you mean")
    raise ClientError(f"no group named {name!r} on this device (see `securechat group list`)")


def _by_id(group_id: str, groups: Sequence[Mapping[str, Any]]) -> str:
    if any(g["group_id"] == group_id for g in groups):
        return group_id
    raise ClientError(f"no group {group_id} on this device (see `securechat group list`)")


def group_address(target: str, groups: Iterable[Mapping[str, Any]]) -> str | None:
    """Where a message to ``target`` goes: the id of a group on this device, or None for
    the user ``target``.

    A group is addressed only explicitly: by its id, or by ``#`` and its name. A word that
    is a valid username is always that user, even when a group here has that name: a
    group's name is chosen by its admins, and must not let them capture messages meant
    for someone else. (A group id is never a valid username: it is 36 characters long.)
    """
    groups = list(groups)
    if _is_group_id(target):
        return _by_id(target, groups)
    if target.startswith(GROUP_NAME_PREFIX):
        return _by_name(target.removeprefix(GROUP_NAME_PREFIX), groups)
    try:
        parse_username(target)
    except protocol_errors.ProtocolError:
        raise ClientError(
            f"{target!r} is not a username; write a group as '#' and its name, or its id"
        ) from None
    return None


def find_group(reference: str, groups: Iterable[Mapping[str, Any]]) -> str:
    """The id of the one group on this device that ``reference`` names: its id, or ``#``
    and its name, or its bare name (for commands that take only a group, where no user
    can be meant)."""
    groups = list(groups)
    if reference.startswith(GROUP_NAME_PREFIX):
        return _by_name(reference.removeprefix(GROUP_NAME_PREFIX), groups)
    if any(g["group_id"] == reference for g in groups):
        return reference
    return _by_name(reference, groups)


_INVITE_PROBLEMS = {
    "malformed": "the invite or the server's answer for it is malformed",
    "invite_mismatch": "the server answered this code with another invite: it is not the invite the code names",
    "chain_invalid": "the group's membership chain does not verify",
    "chain_fork": "the group's chain does not extend the one verified on this device",
    "unknown_sender": "the inviter's keys are unknown",
    "bad_signature": "the invite's signature does not verify with the inviter's key",
    "not_admin": "the inviter is not an admin of the group",
    "invite_expired": "the invite has expired",
}


def _names(change: GroupChange) -> set[str]:
    names: set[str] = {change.actor}
    if change.invite is not None:
        names.add(change.invite.inviter)
    return names


class GroupBook:
    """This device's groups: their verified chains and names, changes, invites, sending."""

    def __init__(
        self,
        state: StateStore,
        api: ApiClient,
        session: Session,
        contacts: ContactBook,
        record_sent: Callable[[Envelope, str | None, dict[str, Any]], None],
    ) -> None:
        self.state = state
        self.api = api
        self.session = session
        self.contacts = contacts
        # How a sent message is recorded on this device (the messenger's, for every conversation).
        self.record_sent = record_sent
        # Verified states by (group id, chain length): replaying once per new change.
        self._verified: dict[tuple[str, int], GroupState] = {}

    # Verification ---------------------------------------------------------------------
    async def pins_for(self, wires: Sequence[Mapping[str, Any]]) -> dict[str, Pin]:
        """Pins of everyone who signed a change or an invite in ``wires``, pinning on first use."""
        names: set[str] = set()
        for wire in wires:
            with contextlib.suppress(protocol_errors.ProtocolError):
                names |= _names(GroupChange.from_wire(wire))
        pins: dict[str, Pin] = {}
        for name in sorted(names):
            identity = self.contacts.pinned_identity(name) or await self.contacts.identity_on_first_use(
                Username(name)
            )
            if identity is not None:
                pins[name] = Pin(identity)
        return pins

    async def accept_chain(self, group_id: str, offered: list[dict[str, Any]]) -> GroupState:
        """The core's verdict on a chain the server offers (14.3); stored if accepted."""
        local = self.local_chain(group_id)
        decision = decide_group_chain(local, offered, group_id=group_id, pins=await self.pins_for(offered))
        if isinstance(decision, Refused):
            problem = {
                "chain_fork": "the server's chain does not extend the one verified on this device",
                "chain_invalid": "its membership chain does not verify",
                "malformed": "its membership chain is malformed",
            }.get(decision.reason, decision.reason)
            raise GroupUnverifiable(f"group {group_id}: {problem}", reason=decision.reason)
        self.store_verified(group_id, offered, decision.state)
        return decision.state

    def store_verified(self, group_id: str, wires: list[dict[str, Any]], state: GroupState) -> None:
        self._verified[(group_id, len(wires))] = state
        with self.state.transaction():
            status = "member" if self.session.username in state.members else "removed"
            self.state.put_group(group_id, wires, status)

    def local_chain(self, group_id: str) -> list[dict[str, Any]]:
        record = self.state.get_group(group_id)
        return list(record["chain"]) if record else []

    async def local_state(self, group_id: str) -> GroupState | None:
        """The state of the chain verified and stored here (checked when it was stored)."""
        chain = self.local_chain(group_id)
        if not chain:
            return None
        cached = self._verified.get((group_id, len(chain)))
        if cached is not None:
            return cached
        decision = decide_group_chain([], chain, group_id=group_id, pins=await self.pins_for(chain))
        if isinstance(decision, Refused):
            # Verified when stored, with the keys pinned then (13.7): rules and hashes again.
            try:
                state = verify_chain(
                    [GroupChange.from_wire(w) for w in chain],
                    self.contacts.pinned_identity,
                    verified_prefix=len(chain),
                )
            except protocol_errors.ProtocolError:
                return None
        else:
            state = decision.state
        self._verified[(group_id, len(chain))] = state
        return state

    async def verified_state(self, group_id: str, *, fresh: bool) -> GroupState | None:
        """The verified state, after fetching the server's chain if ``fresh``; None if none verifies."""
        if not fresh:
            return await self.local_state(group_id)
        record = self.state.get_group(group_id)
        if record is not None and record["status"] == "removed":
            return await self.local_state(group_id)
        try:
            return await self.refresh(group_id)
        except (GroupUnverifiable, ApiError):
            return await self.local_state(group_id)

    async def fetch_chain(self, group_id: str) -> list[dict[str, Any]]:
        await self.session.ensure_token()
        return list(await self.api.group_changes(group_id))

    async def refresh(self, group_id: str) -> GroupState:
        """Fetch the whole chain, check it extends ours, verify and store it."""
        return await self.accept_chain(group_id, await self.fetch_chain(group_id))

    async def after_change(self, group_id: str, change: GroupChange, state: GroupState) -> None:
        """An admin tells a joiner the group's name, which it cannot know (13.5)."""
        if (
            change.action == "join"
            and change.actor != self.session.username
            and self.session.username in state.admins
        ):
            record = self.state.get_group(group_id)
            if record and record.get("name"):
                with contextlib.suppress(ClientError):
                    await self.send(group_id, {"type": "group_info", "name": record["name"]})

    # Making changes ----------------------------------------------------------------------
    async def create(self, name: str, members: list[str]) -> str:
        check_group_name(name)
        me = self.session.me()
        await self.session.ensure_token()
        identities = [await self.contacts.trusted_identity(n) for n in members]
        targets = sorted({i.username for i in identities} - {me.username})
        change = sign_change(me, None, "create", targets, at=now_ms())
        await self.api.create_group(change.to_wire())
        await self.accept_chain(change.group_id, [change.to_wire()])
        await self.send(change.group_id, {"type": "group_info", "name": name})
        return change.group_id

    async def change(
        self,
        group_id: str,
        action: str,
        members: Sequence[str] = (),
        *,
        invite: Invite | None = None,
    ) -> GroupState:
        """Sign and submit the next change, fetching and retrying if someone got there first."""
        me = self.session.me()
        targets = (
            [(await self.contacts.trusted_identity(n)).username for n in members]
            if action == "add"
            else list(members)
        )
        for _ in range(_CONFLICT_RETRIES):
            state = await self.refresh(group_id)
            change = sign_change(me, state, action, targets, invite=invite, at=max(now_ms(), state.at))
            try:
                await self.api.group_change(group_id, change.to_wire())
            except ApiError as exc:
                if exc.code == "group_conflict":
                    continue
                raise
            new_state = await self.accept_chain(group_id, [*self.local_chain(group_id), change.to_wire()])
            record = self.state.get_group(group_id)
            if action == "add" and record and record.get("name"):
                await self.send(group_id, {"type": "group_info", "name": record["name"]})
            return new_state
        raise ClientError("the group keeps changing; try again")

    async def make_invite(self, group_id: str, *, hours: float, uses: int) -> Invite:
        await self.refresh(group_id)
        invite = make_invite(
            self.session.me(),
            ConversationId(group_id),
            expires_at=now_ms() + int(hours * 3_600_000),
            max_uses=uses,
        )
        await self.api.create_invite(group_id, invite.to_wire())
        return invite

    async def join(self, code: str) -> str:
        """Join with an invite code: the core checks the invite against the code, and the
        chain (14.5); then sign the join."""
        me = self.session.me()
        await self.session.ensure_token()
        try:
            invite_id, _ = parse_invite_code(code)
        except protocol_errors.ProtocolError as exc:
            raise GroupUnverifiable(
                "not an invite code: a code is the invite id, a dot and 32 hex digits (ask for a new one)",
                reason="malformed",
            ) from exc
        answer = await self.api.get_invite(invite_id)
        offered = answer.get("changes")
        wires: list[dict[str, Any]] = (
            [w for w in offered if isinstance(w, dict)] if isinstance(offered, list) else []
        )
        invite_wire = answer.get("invite")
        pins = await self.pins_for(wires)
        with contextlib.suppress(protocol_errors.ProtocolError):
            inviter = Invite.from_wire(invite_wire).inviter
            if inviter not in pins:
                identity = self.contacts.pinned_identity(
                    inviter
                ) or await self.contacts.identity_on_first_use(inviter)
                if identity is not None:
                    pins[inviter] = Pin(identity)
        group_id_claimed = answer.get("group_id")
        local = self.local_chain(group_id_claimed) if isinstance(group_id_claimed, str) else []
        decision = decide_invite(code, answer, pins=pins, local=local, now=now_ms())
        if isinstance(decision, Refused):
            raise GroupUnverifiable(
                _INVITE_PROBLEMS.get(decision.reason, decision.reason), reason=decision.reason
            )
        group_id = decision.invite.group_id
        change = sign_change(
            me, decision.state, "join", invite=decision.invite, at=max(now_ms(), decision.state.at)
        )
        await self.api.group_change(group_id, change.to_wire())
        await self.accept_chain(group_id, [*wires, change.to_wire()])
        return group_id

    # Sending ------------------------------------------------------------------------------
    async def seal(self, group_id: str, payload: dict[str, Any]) -> Envelope:
        """Seal for the verified members, after checking the server agrees on them."""
        me = self.session.me()
        record = self.state.get_group(group_id)
        if record is not None and record["status"] == "removed":
            raise ClientError(f"you are not a member of group {group_id} any more")
        try:
            state = await self.refresh(group_id)
        except ApiError as exc:
            if exc.status == 404:
                raise ClientError(f"you are not a member of group {group_id}") from exc
            raise
        if me.username not in state.members:
            raise ClientError(f"you are not a member of group {group_id}")
        listed = next((c for c in await self.api.conversations() if c["id"] == group_id), None)
        server_members = set(listed["members"]) if listed else set()
        verified = {str(name) for name in state.members}
        if server_members != verified:
            raise MembershipMismatch(group_id, server_members - verified, verified - server_members)
        recipients = {
            name: me.public if name == me.username else await self.contacts.trusted_identity(name)
            for name in sorted(state.members)
        }
        return seal_message(me, ConversationId(group_id), recipients, payload)

    async def send(self, group_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        envelope = await self.seal(group_id, payload)
        result = await self.api.send(envelope.to_wire())
        text = (
            payload.get("text")
            if payload.get("type") != "group_info"
            else f"named the group “{payload['name']}”"
        )
        self.record_sent(envelope, text, result)
        if payload.get("type") == "group_info":
            header = envelope.header
            with self.state.transaction():
                self.state.set_group_name(
                    group_id, NameRecord(str(payload["name"]), header.sent_at, header.message_id)
                )
        return result

    def resolve(self, reference: str) -> str:
        """A group id from a group's id, ``#name`` or name on this device (see find_group)."""
        return find_group(reference, self.state.list_groups())

    def address(self, target: str) -> str | None:
        """The group a message to ``target`` goes to, or None for a user (see group_address)."""
        return group_address(target, self.state.list_groups())

    def all(self) -> list[dict[str, Any]]:
        """The groups on this device: id, name, status and stored chain."""
        return self.state.list_groups()

    def record(self, group_id: str) -> dict[str, Any] | None:
        return self.state.get_group(group_id)

    async def server_members(self, group_id: str) -> set[str]:
        """The server's member list for a group (to compare with the verified one)."""
        await self.session.ensure_token()
        listed = next((c for c in await self.api.conversations() if c["id"] == group_id), None)
        return set(listed["members"]) if listed else set()

    def named(self, name: str) -> list[str]:
        """The ids of the groups on this device called ``name``."""
        return [str(g["group_id"]) for g in self.state.list_groups() if g.get("name") == name]
