"""Typing indicators and read receipts (PROTOCOL.md 9.2): metadata a member chooses to
share with the other members of a conversation. Clients may turn either off; the
server only passes on what it is given.

Typing indicators are not stored: they go to the other members' open sockets on this
instance, and are lost if nobody is listening (they are hints, not messages). Read
receipts are inbox entries, like delivery receipts.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Connection

from ...protocol import errors as protocol_errors
from ...protocol.identifiers import parse_conversation_id, parse_message_id
from ..errors import InvalidInput, NotFound
from ..realtime.broker import InboxEvent
from ..storage import batch as batch_store
from . import receipts
from .context import ServiceContext, now_ms
from .principal import Principal
from .writer import data_entry

MAX_READ_IDS = 100


def _conversation(value: Any) -> str:
    try:
        return parse_conversation_id(value)
    except protocol_errors.ProtocolError as exc:
        raise InvalidInput(str(exc), field="conversation_id") from exc


async def typing(ctx: ServiceContext, principal: Principal, conversation_id: Any) -> None:
    cid = _conversation(conversation_id)

    def members(conn: Connection) -> dict[str, int]:
        return batch_store.get_members_by_conversation(conn, [cid])[cid]

    found = await ctx.database.run_batch(members)
    if principal.username not in found:
        raise NotFound("no such conversation")
    frame = json.dumps({"type": "typing", "conversation_id": cid, "from": principal.username})
    await ctx.broker.publish(
        [
            InboxEvent(uid, 0, frame, ephemeral=True)
            for name, uid in found.items()
            if name != principal.username
        ]
    )


async def mark_read(ctx: ServiceContext, principal: Principal, conversation_id: Any, message_ids: Any) -> int:
    """Tell the senders of these messages that the caller has read them; returns how many
    were news (a message's unsigned read receipt goes to its sender once, and not after the
    reader's signed one). Counts against the caller's receipt limit."""
    await receipts.count_receipt_call(ctx, principal)
    cid = _conversation(conversation_id)
    if not isinstance(message_ids, list) or not 1 <= len(message_ids) <= MAX_READ_IDS:
        raise InvalidInput(f"message_ids must be a list of 1 to {MAX_READ_IDS} ids", field="message_ids")
    try:
        ids: list[str] = sorted({str(parse_message_id(m)) for m in message_ids})
    except protocol_errors.ProtocolError as exc:
        raise InvalidInput(str(exc), field="message_ids") from exc
    count, events = await ctx.database.run_batch(_read, principal, cid, ids)
    await ctx.broker.publish(events)
    return count


def _read(conn: Connection, principal: Principal, cid: str, ids: list[str]) -> tuple[int, list[InboxEvent]]:
    candidates = receipts.receipt_candidates(conn, principal, cid, ids)
    now = now_ms()
    by_sender = receipts.first_receipts(conn, principal.user_id, "read", False, candidates, now)
    if not by_sender:
        return 0, []
    starts = batch_store.allocate_inbox_seqs(conn, {sender: 1 for sender in by_sender})
    made = [
        data_entry(
            sender,
            starts[sender],
            "receipt",
            json.dumps(
                {"message_ids": found, "recipient": principal.username, "status": "read", "at": now},
                separators=(",", ":"),
            ),
            now,
        )
        for sender, found in sorted(by_sender.items())
    ]
    rows_out = [row for row, _ in made]
    events = [event for _, event in made]
    batch_store.add_inbox_entries(conn, rows_out)
    return sum(len(found) for found in by_sender.values()), events
