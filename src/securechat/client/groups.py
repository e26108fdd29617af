"""Groups in the client library (PROTOCOL.md 13): keep each group's signed membership
chain, verify it with pinned keys, refuse a chain that does not extend the one verified
before, and seal only for the verified members, never the server's list.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..protocol import errors as protocol_errors
from ..protocol.envelope import Envelope, check_group_name, seal_message
from ..protocol.groups import GroupChange, GroupState, Invite, make_invite, sign_change, verify_chain
from ..protocol.identifiers import ConversationId, Username, parse_conversation_id, parse_username
from ..protocol.keys import PublicIdentity
from .errors import ApiError, ClientError, GroupUnverifiable, MembershipMismatch

if TYPE_CHECKING:
    from .messenger import Messenger

_CONFLICT_RETRIES = 3


def now_ms() -> int:
    return int(time.time() * 1000)


def membership_start(state: GroupState, name: str) -> int | None:
    """The seq at which ``name``'s latest stretch of membership began (None: never a member)."""
    positions = [k for k, members in enumerate(state.history) if name in members]
    if not positions:
        return None
    k = positions[-1]
    while k > 0 and name in state.history[k - 1]:
        k -= 1
    return k


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


def _names(change: GroupChange) -> set[str]:
    names: set[str] = {change.actor}
    if change.invite is not None:
        names.add(change.invite.inviter)
    return names


class GroupBook:
    def __init__(self, messenger: Messenger) -> None:
        self.m = messenger
        # Verified states by (group id, chain length): replaying once per new change.
        self._verified: dict[tuple[str, int], GroupState] = {}

    # Verification ---------------------------------------------------------------------
    async def verify(self, group_id: str, wires: list[dict[str, Any]]) -> GroupState:
        """Replay a chain with pinned keys (pinning signers on first use)."""
        cached = self._verified.get((group_id, len(wires)))
        if cached is not None:
            return cached
        try:
            changes = [GroupChange.from_wire(w) for w in wires]
            for name in sorted({n for c in changes for n in _names(c)}):
                if self.m.pinned_identity(name) is None:
                    await self.m._sender_identity(Username(name))
            # What this device verified and stored before is not re-checked with keys
            # pinned since (a member's key change must not void its earlier changes).
            local = self.local_chain(group_id)
            prefix = len(local) if wires[: len(local)] == local else 0
            state = verify_chain(changes, self.m.pinned_identity, group_id=group_id, verified_prefix=prefix)
        except protocol_errors.ProtocolError as exc:
            raise GroupUnverifiable(
                f"group {group_id}: its membership chain does not verify ({exc})"
            ) from exc
        self._verified[(group_id, len(wires))] = state
        return state

    def local_chain(self, group_id: str) -> list[dict[str, Any]]:
        record = self.m.state.get_group(group_id)
        return list(record["chain"]) if record else []

    async def local_state(self, group_id: str) -> GroupState | None:
        chain = self.local_chain(group_id)
        return await self.verify(group_id, chain) if chain else None

    async def _store(self, group_id: str, wires: list[dict[str, Any]]) -> GroupState:
        local = self.local_chain(group_id)
        if wires[: len(local)] != local:
            raise GroupUnverifiable(
                f"group {group_id}: the server's chain does not extend the one verified on this device"
            )
        state = await self.verify(group_id, wires)
        with self.m.state.transaction():
            status = "member" if self.m.username in state.members else "removed"
            self.m.state.put_group(group_id, wires, status)
        return state

    async def refresh(self, group_id: str) -> GroupState:
        """Fetch the whole chain, check it extends ours, verify and store it."""
        await self.m.ensure_token()
        return await self._store(group_id, await self.m.api.group_changes(group_id))

    # Inbox ------------------------------------------------------------------------------
    async def on_change(self, frame: dict[str, Any]) -> tuple[str, GroupChange | None, str | None]:
        """Take in a ``group`` inbox entry; returns (group id, the change, a problem)."""
        try:
            group_id = parse_conversation_id(frame.get("group_id"))
            change = GroupChange.from_wire(frame.get("change"))
        except protocol_errors.ProtocolError as exc:
            return str(frame.get("group_id")), None, f"malformed group change: {exc}"
        local = self.local_chain(group_id)
        if change.to_wire() in local:
            return group_id, change, None
        try:
            if len(local) == change.seq:
                state = await self._store(group_id, [*local, change.to_wire()])
            else:
                state = await self.refresh(group_id)
        except GroupUnverifiable as exc:
            return group_id, change, str(exc)
        except ApiError as exc:
            return group_id, change, f"cannot fetch the group's changes: {exc}"
        if change.action == "join" and change.actor != self.m.username and self.m.username in state.admins:
            # The joiner cannot know the group's name; an admin tells it (PROTOCOL.md 13.5).
            record = self.m.state.get_group(group_id)
            if record and record.get("name"):
                with contextlib.suppress(ClientError):
                    await self.send(group_id, {"type": "group_info", "name": record["name"]})
        return group_id, change, None

    async def recipients_for(self, envelope: Envelope) -> frozenset[Username] | None:
        """The verified member set this group message may be opened against (13.5), or None."""
        group_id = envelope.header.conversation_id
        recipients = frozenset(envelope.recipients)
        sender = envelope.header.sender
        for attempt in range(2):
            try:
                state = await (self.local_state(group_id) if attempt == 0 else self.refresh(group_id))
            except (GroupUnverifiable, ApiError):
                state = None
            if state is not None:
                since = membership_start(state, self.m.username)
                if since is not None and state.accepts_recipients(recipients, sender, since=since):
                    return recipients
        return None

    def note_info(
        self, group_id: str, sender: str, payload: dict[str, Any], state: GroupState | None
    ) -> None:
        if state is not None and sender in state.admins:
            with self.m.state.transaction():
                self.m.state.set_group_name(group_id, str(payload["name"]))

    # Making changes ----------------------------------------------------------------------
    async def create(self, name: str, members: list[str]) -> str:
        check_group_name(name)
        me = self.m._me()
        await self.m.ensure_token()
        identities = [await self.m.trusted_identity(n) for n in members]
        targets = sorted({i.username for i in identities} - {me.username})
        change = sign_change(me, None, "create", targets, at=now_ms())
        await self.m.api.create_group(change.to_wire())
        await self._store(change.group_id, [change.to_wire()])
        with self.m.state.transaction():
            self.m.state.set_group_name(change.group_id, name)
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
        me = self.m._me()
        targets = (
            [(await self.m.trusted_identity(n)).username for n in members]
            if action == "add"
            else list(members)
        )
        for _ in range(_CONFLICT_RETRIES):
            state = await self.refresh(group_id)
            change = sign_change(me, state, action, targets, invite=invite, at=max(now_ms(), state.at))
            try:
                await self.m.api.group_change(group_id, change.to_wire())
            except ApiError as exc:
                if exc.code == "group_conflict":
                    continue
                raise
            new_state = await self._store(group_id, [*self.local_chain(group_id), change.to_wire()])
            record = self.m.state.get_group(group_id)
            if action == "add" and record and record.get("name"):
                await self.send(group_id, {"type": "group_info", "name": record["name"]})
            return new_state
        raise ClientError("the group keeps changing; try again")

    async def make_invite(self, group_id: str, *, hours: float, uses: int) -> Invite:
        await self.refresh(group_id)
        invite = make_invite(
            self.m._me(),
            ConversationId(group_id),
            expires_at=now_ms() + int(hours * 3_600_000),
            max_uses=uses,
        )
        await self.m.api.create_invite(group_id, invite.to_wire())
        return invite

    async def join(self, code: str) -> str:
        """Join with an invite code: verify the invite and the chain, then sign the join."""
        me = self.m._me()
        await self.m.ensure_token()
        answer = await self.m.api.get_invite(code.strip())
        try:
            invite = Invite.from_wire(answer["invite"])
        except protocol_errors.ProtocolError as exc:
            raise GroupUnverifiable(f"the invite is malformed: {exc}") from exc
        group_id = invite.group_id
        state = await self.verify(group_id, answer["changes"])
        inviter: PublicIdentity = await self.m.trusted_identity(invite.inviter)
        try:
            invite.verify(inviter)
        except protocol_errors.VerificationFailed as exc:
            raise GroupUnverifiable("the invite's signature does not verify with the inviter's key") from exc
        if invite.inviter not in state.admins:
            raise GroupUnverifiable(f"{invite.inviter} is not an admin of the group")
        change = sign_change(me, state, "join", invite=invite, at=max(now_ms(), state.at))
        await self.m.api.group_change(group_id, change.to_wire())
        await self._store(group_id, [*answer["changes"], change.to_wire()])
        return group_id

    # Sending ------------------------------------------------------------------------------
    async def seal(self, group_id: str, payload: dict[str, Any]) -> Envelope:
        """Seal for the verified members, after checking the server agrees on them."""
        me = self.m._me()
        record = self.m.state.get_group(group_id)
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
        listed = next((c for c in await self.m.api.conversations() if c["id"] == group_id), None)
        server_members = set(listed["members"]) if listed else set()
        verified = {str(name) for name in state.members}
        if server_members != verified:
            raise MembershipMismatch(group_id, server_members - verified, verified - server_members)
        recipients = {
            name: me.public if name == me.username else await self.m.trusted_identity(name)
            for name in sorted(state.members)
        }
        return seal_message(me, ConversationId(group_id), recipients, payload)

    async def send(self, group_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        envelope = await self.seal(group_id, payload)
        result = await self.m.api.send(envelope.to_wire())
        text = (
            payload.get("text")
            if payload.get("type") != "group_info"
            else f"named the group “{payload['name']}”"
        )
        self.m.record_sent(envelope, text, result)
        if payload.get("type") == "group_info":
            with self.m.state.transaction():
                self.m.state.set_group_name(group_id, str(payload["name"]))
        return result

    def resolve(self, reference: str) -> str:
        """A group id from a group's id, ``#name`` or name on this device (see find_group)."""
        return find_group(reference, self.m.state.list_groups())

    def address(self, target: str) -> str | None:
        """The group a message to ``target`` goes to, or None for a user (see group_address)."""
        return group_address(target, self.m.state.list_groups())

    def named(self, name: str) -> list[str]:
        """The ids of the groups on this device called ``name``."""
        return [str(g["group_id"]) for g in self.m.state.list_groups() if g.get("name") == name]
