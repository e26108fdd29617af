"""Groups (PROTOCOL.md 13): the server stores the signed membership chain, checks every
change with the same rules clients apply (with the keys users registered), keeps
``conversation_members`` in step with it, and tells members of each change through
their inboxes. It cannot add anyone by itself: clients replay the chain and compare.

A change costs the same at seq 1,000 as at seq 10. The server keeps each group's
verified head (``ChainHead``: seq, hash, time, members, admins) and checks a new change
against it alone, outside the write transaction (so signature checks never hold the
writer's thread, which other users' sends share). The short write then moves the head
only if it is still where the check read it (compare-and-set), so two changes for one
head, on any number of instances, cannot both be stored: the loser gets
``group_conflict``. Each account may make ``group_changes_per_minute`` changes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from ...protocol import errors as protocol_errors
from ...protocol.groups import ChainHead, GroupChange, Invite, check_next, genesis
from ...protocol.identifiers import Username, parse_conversation_id, parse_message_id
from ...protocol.keys import PublicIdentity
from ..errors import Forbidden, GroupConflict, InvalidGroupChange, InvalidInput, NotFound
from ..realtime.broker import InboxEvent
from ..storage import batch as batch_store
from ..storage import groups as store
from . import ratelimit
from .context import ServiceContext, now_ms
from .principal import Principal
from .writer import data_entry

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


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
    """Registered public keys (and ids) of the users a change concerns, read once."""

    def __init__(self, rows: Mapping[str, RowMapping]) -> None:
        self.rows = rows

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

    def unknown(self, names: Iterable[str]) -> list[str]:
        return sorted(name for name in names if name not in self.rows)


def _names(change: GroupChange) -> set[str]:
    names: set[str] = {change.actor, *change.members}
    if change.invite is not None:
        names.add(change.invite.inviter)
    return names


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


def _answer(head: ChainHead) -> dict[str, Any]:
    return {"group_id": head.group_id, "seq": head.seq, "members": sorted(head.members)}


def _own_change(principal: Principal, raw_change: Any) -> GroupChange:
    change = _parse_change(raw_change)
    if change.actor != principal.username:
        raise Forbidden("a change must be made by the authenticated user", reason="actor_mismatch")
    return change


async def _count_change(ctx: ServiceContext, principal: Principal) -> None:
    """One change by this account (429 ``rate_limited`` past the setting), counted before
    any of its work is done, so refused changes count too."""
    await ratelimit.hit(
        ctx, "group_change", f"user:{principal.user_id}", ctx.settings.group_changes_per_minute, who="account"
    )


async def _read(
    ctx: ServiceContext, function: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run ``function(connection, ...)`` on a read connection: never the writer's thread."""
    async with ctx.database.read() as conn:
        return await conn.run_sync(function, *args, **kwargs)


async def _commit(
    ctx: ServiceContext,
    apply: Callable[Concatenate[Connection, P], tuple[dict[str, Any], list[InboxEvent]]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> dict[str, Any]:
    try:
        answer, events = await ctx.database.run_batch(apply, *args, **kwargs)
    except IntegrityError as exc:
        # A row another instance stored first (the same new group id, made twice at once).
        raise GroupConflict("the group changed meanwhile; fetch its changes and try again") from exc
    await ctx.broker.publish(events)
    return answer


async def create_group(ctx: ServiceContext, principal: Principal, raw_change: Any) -> dict[str, Any]:
    change = _own_change(principal, raw_change)
    await _count_change(ctx, principal)
    keys = _Keys(await _read(ctx, store.get_users, _names(change)))
    unknown = keys.unknown(change.members)
    if unknown:
        raise NotFound("no such user", field="members", unknown=unknown)
    try:
        head = ChainHead.of(genesis(change, keys))
    except protocol_errors.VerificationFailed as exc:
        raise InvalidGroupChange(str(exc)) from exc
    member_ids = [keys.user_id(name) for name in sorted(head.members)]
    return await _commit(ctx, _create, change, head, member_ids)


def _create(
    conn: Connection, change: GroupChange, head: ChainHead, member_ids: list[int]
) -> tuple[dict[str, Any], list[InboxEvent]]:
    if batch_store.get_conversation_ids(conn, [change.group_id]):
        raise GroupConflict("a conversation with this id exists")
    now = now_ms()
    batch_store.add_conversation(conn, change.group_id, "group", member_ids, now)
    store.add_change(conn, change.group_id, 0, json.dumps(change.to_wire(), separators=(",", ":")), now)
    store.add_head(conn, head)
    return _answer(head), _deliver(conn, member_ids, change.group_id, change, now)


def _load_for_append(
    conn: Connection, change: GroupChange
) -> tuple[ChainHead | None, _Keys, RowMapping | None]:
    """What checking ``change`` needs: the stored head, the keys and ids of the head's
    members and of everyone the change names, and the invite it uses. Bounded by the
    group's size (at most 256 members), whatever the chain's length."""
    head = store.get_head(conn, change.group_id)
    names = _names(change) | (head.members if head is not None else set())
    invite = store.get_invite(conn, change.invite.invite_id) if change.invite is not None else None
    return head, _Keys(store.get_users(conn, names)), invite


async def add_change(
    ctx: ServiceContext, principal: Principal, group_id: str, raw_change: Any
) -> dict[str, Any]:
    gid = _group_id(group_id)
    change = _own_change(principal, raw_change)
    if change.group_id != gid:
        raise InvalidGroupChange("the change is for another group")
    await _count_change(ctx, principal)
    now = now_ms()
    head, keys, invite_row = await _read(ctx, _load_for_append, change)
    if head is None or (change.action != "join" and change.actor not in head.members):
        raise NotFound("no such group")
    if change.seq != head.seq + 1:
        raise GroupConflict("the group changed meanwhile; fetch its changes and try again", head=head.seq)
    invite_uses = _check_stored_invite(invite_row, change, now) if change.action == "join" else 0
    unknown = keys.unknown(change.members)
    if unknown:
        raise NotFound("no such user", field="members", unknown=unknown)
    try:
        new_head = check_next(head, change, keys, invite_uses=invite_uses)
    except protocol_errors.VerificationFailed as exc:
        raise InvalidGroupChange(str(exc)) from exc
    return await _commit(ctx, _append, change, head, new_head, keys, now)


def _append(
    conn: Connection, change: GroupChange, head: ChainHead, new_head: ChainHead, keys: _Keys, now: int
) -> tuple[dict[str, Any], list[InboxEvent]]:
    """Store a change checked against ``head``: only if the head is still there."""
    if not store.advance_head(conn, head, new_head):
        current = store.get_head(conn, change.group_id)
        logger.info("group %s: head moved from seq %d while a change was checked", change.group_id, head.seq)
        raise GroupConflict(
            "the group changed meanwhile; fetch its changes and try again",
            head=current.seq if current is not None else None,
        )
    # The invite's uses changed only with the head, which has not moved; counted again
    # here all the same, so no write can take it past max_uses.
    if change.invite is not None and not store.use_invite(conn, change.invite.invite_id):
        raise Forbidden("the invite is unknown, expired or used up", reason="invite_invalid")
    added = new_head.members - head.members
    removed = head.members - new_head.members
    store.add_members(conn, change.group_id, [keys.user_id(n) for n in added], now)
    store.remove_members(conn, change.group_id, [keys.user_id(n) for n in removed])
    store.add_change(
        conn, change.group_id, change.seq, json.dumps(change.to_wire(), separators=(",", ":")), now
    )
    told = [keys.user_id(n) for n in head.members | new_head.members]
    return _answer(new_head), _deliver(conn, told, change.group_id, change, now)


def _check_stored_invite(row: RowMapping | None, change: GroupChange, now: int) -> int:
    """How many joins used the change's invite so far, if the server holds that invite
    for this group and it is still valid; else 403 ``invite_invalid``."""
    invite = change.invite
    if (
        invite is None
        or row is None
        or row["conversation_id"] != change.group_id
        or json.loads(row["invite"]) != invite.to_wire()
        or now > row["expires_at"]
        or row["uses"] >= row["max_uses"]
    ):
        raise Forbidden("the invite is unknown, expired or used up", reason="invite_invalid")
    return int(row["uses"])


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

    def load(conn: Connection) -> tuple[ChainHead | None, _Keys]:
        return store.get_head(conn, gid), _Keys(store.get_users(conn, [principal.username]))

    head, keys = await _read(ctx, load)
    _require_admin(head, principal)
    identity = keys(principal.username)
    try:
        if identity is None:
            raise protocol_errors.VerificationFailed()
        invite.verify(identity)
    except protocol_errors.VerificationFailed as exc:
        raise InvalidGroupChange("the invite's signature does not verify") from exc

    def write(conn: Connection) -> None:
        # The head may have moved since it was read: an admin then must be one now.
        _require_admin(store.get_head(conn, gid), principal)
        now = now_ms()
        if invite.expires_at <= now:
            raise InvalidGroupChange("the invite has already expired")
        if store.get_invite(conn, invite.invite_id) is not None:
            raise GroupConflict("an invite with this id exists")
        text = json.dumps(invite.to_wire(), separators=(",", ":"))
        store.add_invite(conn, invite.invite_id, gid, text, invite.expires_at, invite.max_uses, now)

    try:
        await ctx.database.run_batch(write)
    except IntegrityError as exc:  # the same invite id stored at once by another instance
        raise GroupConflict("an invite with this id exists") from exc
    return {
        "invite_id": invite.invite_id,
        "group_id": gid,
        "expires_at": invite.expires_at,
        "max_uses": invite.max_uses,
    }


def _require_admin(head: ChainHead | None, principal: Principal) -> None:
    if head is None or principal.username not in head.members:
        raise NotFound("no such group")
    if principal.username not in head.admins:
        raise Forbidden("only the group's admins make invites", reason="not_admin")


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
