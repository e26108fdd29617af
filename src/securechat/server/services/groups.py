"""Groups (PROTOCOL.md 13): the server stores the signed membership chain, checks every
change with the same rules clients apply (with the keys users registered), keeps
``conversation_members`` in step with it, and tells members of each change through
their inboxes. It cannot add anyone by itself: clients replay the chain and compare.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.engine import Connection

from ...protocol import errors as protocol_errors
from ...protocol.groups import GroupChange, GroupState, Invite, genesis, verify_chain
from ...protocol.identifiers import Username, parse_conversation_id, parse_message_id
from ...protocol.keys import PublicIdentity
from ..errors import Forbidden, GroupConflict, InvalidGroupChange, InvalidInput, NotFound
from ..realtime.broker import InboxEvent
from ..storage import batch as batch_store
from ..storage import groups as store
from .context import ServiceContext, now_ms
from .principal import Principal
from .writer import data_entry


def _parse_change(raw: Any) -> GroupChange:
    try:
        return GroupChange.from_wire(raw)
    except protocol_errors.ProtocolError as exc:
        raise InvalidGroupChange(str(exc)) from exc


def _group_id(value: str) -> str:
    try:
        group_id = parse_conversation_id(value)
    except protocol_errors.ProtocolError as exc:
        raise InvalidInput(str(exc), field="group_id") from exc
    if not group_id.startswith("grp-"):
        raise InvalidInput("not a group id", field="group_id")
    return group_id


class _Keys:
    """Registered public keys of the users a chain names, loaded once per transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.rows: dict[str, Any] = {}

    def load(self, names: Iterable[str]) -> None:
        missing = [n for n in set(names) if n not in self.rows]
        self.rows.update(store.get_users(self.conn, missing))

    def __call__(self, name: Username) -> PublicIdentity | None:
        row = self.rows.get(name)
        if row is None:
            return None
        return PublicIdentity(
            Username(row["username"]),
            bytes(row["signing_key"]),
            bytes(row["encryption_key"]),
            bytes(row["encryption_key_signature"]),
        )

    def user_id(self, name: str) -> int:
        return int(self.rows[name]["id"])


def _names(change: GroupChange) -> set[str]:
    names: set[str] = {change.actor, *change.members}
    if change.invite is not None:
        names.add(change.invite.inviter)
    return names


def _stored_state(conn: Connection, keys: _Keys, group_id: str) -> GroupState | None:
    changes = [GroupChange.from_wire(json.loads(text)) for text in store.get_changes(conn, group_id)]
    if not changes:
        return None
    keys.load(name for change in changes for name in _names(change))
    return verify_chain(changes, keys, group_id=group_id)


def _deliver(
    conn: Connection, user_ids: Iterable[int], group_id: str, change: GroupChange, now: int
) -> list[InboxEvent]:
    """One inbox entry per user carrying the change (PROTOCOL.md 13.6)."""
    ids = sorted(set(user_ids))
    data = json.dumps({"group_id": group_id, "change": change.to_wire()}, separators=(",", ":"))
    starts = batch_store.allocate_inbox_seqs(conn, {uid: 1 for uid in ids})
    made = [data_entry(uid, starts[uid], "group", data, now) for uid in ids]
    batch_store.add_inbox_entries(conn, [row for row, _ in made])
    return [event for _, event in made]


def _answer(state: GroupState) -> dict[str, Any]:
    return {"group_id": state.group_id, "seq": state.seq, "members": sorted(state.members)}


def _own_change(principal: Principal, raw_change: Any) -> GroupChange:
    change = _parse_change(raw_change)
    if change.actor != principal.username:
        raise Forbidden("a change must be made by the authenticated user", reason="actor_mismatch")
    return change


async def _commit(
    ctx: ServiceContext,
    apply: Callable[[Connection, GroupChange], tuple[dict[str, Any], list[InboxEvent]]],
    change: GroupChange,
) -> dict[str, Any]:
    answer, events = await ctx.database.run_batch(apply, change)
    await ctx.broker.publish(events)
    return answer


async def create_group(ctx: ServiceContext, principal: Principal, raw_change: Any) -> dict[str, Any]:
    return await _commit(ctx, _create, _own_change(principal, raw_change))


def _create(conn: Connection, change: GroupChange) -> tuple[dict[str, Any], list[InboxEvent]]:
    if batch_store.get_conversation_ids(conn, [change.group_id]):
        raise GroupConflict("a conversation with this id exists")
    keys = _Keys(conn)
    keys.load(_names(change))
    unknown = sorted(name for name in change.members if name not in keys.rows)
    if unknown:
        raise NotFound("no such user", field="members", unknown=unknown)
    try:
        state = genesis(change, keys)
    except protocol_errors.VerificationFailed as exc:
        raise InvalidGroupChange(str(exc)) from exc
    now = now_ms()
    member_ids = [keys.user_id(name) for name in sorted(state.members)]
    batch_store.add_conversation(conn, change.group_id, "group", member_ids, now)
    store.add_change(conn, change.group_id, 0, json.dumps(change.to_wire(), separators=(",", ":")), now)
    return _answer(state), _deliver(conn, member_ids, change.group_id, change, now)


async def add_change(
    ctx: ServiceContext, principal: Principal, group_id: str, raw_change: Any
) -> dict[str, Any]:
    gid = _group_id(group_id)
    change = _own_change(principal, raw_change)
    if change.group_id != gid:
        raise InvalidGroupChange("the change is for another group")
    return await _commit(ctx, _append, change)


def _append(conn: Connection, change: GroupChange) -> tuple[dict[str, Any], list[InboxEvent]]:
    keys = _Keys(conn)
    state = _stored_state(conn, keys, change.group_id)
    if state is None or (change.action != "join" and change.actor not in state.members):
        raise NotFound("no such group")
    if change.seq != state.seq + 1:
        raise GroupConflict("the group changed meanwhile; fetch its changes and try again", head=state.seq)
    now = now_ms()
    if change.action == "join":
        _check_stored_invite(conn, change, now)
    keys.load(_names(change))
    unknown = sorted(name for name in change.members if name not in keys.rows)
    if unknown:
        raise NotFound("no such user", field="members", unknown=unknown)
    try:
        new_state = state.apply(change, keys)
    except protocol_errors.VerificationFailed as exc:
        raise InvalidGroupChange(str(exc)) from exc
    added = new_state.members - state.members
    removed = state.members - new_state.members
    store.add_members(conn, change.group_id, [keys.user_id(n) for n in added], now)
    store.remove_members(conn, change.group_id, [keys.user_id(n) for n in removed])
    if change.invite is not None:
        store.use_invite(conn, change.invite.invite_id)
    store.add_change(
        conn, change.group_id, change.seq, json.dumps(change.to_wire(), separators=(",", ":")), now
    )
    told = [keys.user_id(n) for n in state.members | new_state.members]
    return _answer(new_state), _deliver(conn, told, change.group_id, change, now)


def _check_stored_invite(conn: Connection, change: GroupChange, now: int) -> None:
    invite = change.invite
    row = store.get_invite(conn, invite.invite_id) if invite is not None else None
    if (
        invite is None
        or row is None
        or row["conversation_id"] != change.group_id
        or json.loads(row["invite"]) != invite.to_wire()
        or now > row["expires_at"]
        or row["uses"] >= row["max_uses"]
    ):
        raise Forbidden("the invite is unknown, expired or used up", reason="invite_invalid")


async def list_changes(
    ctx: ServiceContext, principal: Principal, group_id: str, after: int
) -> dict[str, Any]:
    gid = _group_id(group_id)

    def read(conn: Connection) -> list[str]:
        members = batch_store.get_members_by_conversation(conn, [gid])[gid]
        if principal.username not in members:
            raise NotFound("no such group")
        return store.get_changes(conn, gid, after)

    texts = await ctx.database.run_batch(read)
    return {"group_id": gid, "changes": [json.loads(text) for text in texts]}


async def create_invite(
    ctx: ServiceContext, principal: Principal, group_id: str, raw_invite: Any
) -> dict[str, Any]:
    gid = _group_id(group_id)
    try:
        invite = Invite.from_wire(raw_invite)
    except protocol_errors.ProtocolError as exc:
        raise InvalidGroupChange(str(exc)) from exc
    if invite.group_id != gid or invite.inviter != principal.username:
        raise Forbidden(
            "an invite is made by the authenticated user for this group", reason="inviter_mismatch"
        )

    def write(conn: Connection) -> None:
        keys = _Keys(conn)
        state = _stored_state(conn, keys, gid)
        if state is None or principal.username not in state.members:
            raise NotFound("no such group")
        if principal.username not in state.admins:
            raise Forbidden("only the group's admins make invites", reason="not_admin")
        identity = keys(principal.username)
        try:
            assert identity is not None
            invite.verify(identity)
        except (AssertionError, protocol_errors.VerificationFailed) as exc:
            raise InvalidGroupChange("the invite's signature does not verify") from exc
        now = now_ms()
        if invite.expires_at <= now:
            raise InvalidGroupChange("the invite has already expired")
        if store.get_invite(conn, invite.invite_id) is not None:
            raise GroupConflict("an invite with this id exists")
        text = json.dumps(invite.to_wire(), separators=(",", ":"))
        store.add_invite(conn, invite.invite_id, gid, text, invite.expires_at, invite.max_uses, now)

    await ctx.database.run_batch(write)
    return {
        "invite_id": invite.invite_id,
        "group_id": gid,
        "expires_at": invite.expires_at,
        "max_uses": invite.max_uses,
    }


async def get_invite(ctx: ServiceContext, principal: Principal, invite_id: str) -> dict[str, Any]:
    del principal  # any logged-in user holding the code may read it
    try:
        code = parse_message_id(invite_id)
    except protocol_errors.ProtocolError as exc:
        raise NotFound("no such invite") from exc

    def read(conn: Connection) -> tuple[Any, list[str]]:
        row = store.get_invite(conn, code)
        changes = store.get_changes(conn, row["conversation_id"]) if row is not None else []
        return row, changes

    row, changes = await ctx.database.run_batch(read)
    if row is None or now_ms() > row["expires_at"] or row["uses"] >= row["max_uses"]:
        raise NotFound("no such invite")
    # The chain comes along: the joiner must verify it and sign a change extending it.
    return {
        "invite": json.loads(row["invite"]),
        "group_id": row["conversation_id"],
        "changes": [json.loads(text) for text in changes],
    }
