"""Receipts signed by their reader (PROTOCOL.md 9.3): relayed, never made up.

The server checks a receipt's shape, that its reader is the caller and a member of the
conversation, and which senders its messages have; it gives each of those senders one
inbox entry carrying the receipt unchanged. It does not check the signature (as with
envelopes, the senders do, with the keys they pinned; PROTOCOL.md 14.7), and it cannot
know whether the reader's client really has or showed the messages.

A receipt is news once: a reader gives each message at most one receipt of each status
and kind (signed, or the server's transitional unsigned claim), recorded in
``receipt_marks`` whose key holds on every instance. Sending it again, re-signed or not,
adds no inbox entry. Every call that hands the server receipts to relay (this one and the
transitional ``read``, ``presence.mark_read``) counts against the reader's
``RECEIPTS_PER_MINUTE``, over HTTP and the WebSocket alike.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Connection

from ...protocol import errors as protocol_errors
from ...protocol.receipts import Receipt
from ..errors import Forbidden, InvalidReceipt, NotFound
from ..realtime.broker import InboxEvent
from ..storage import batch as batch_store
from . import ratelimit
from .context import ServiceContext, now_ms
from .principal import Principal
from .writer import data_entry


async def count_receipt_call(ctx: ServiceContext, principal: Principal) -> None:
    """One call that hands the server receipts, against the caller's per-account limit
    (429 ``rate_limited``), whichever path it came by."""
    await ratelimit.hit(
        ctx, "receipt", f"user:{principal.user_id}", ctx.settings.receipts_per_minute, who="account"
    )


def first_receipts(
    conn: Connection,
    reader_id: int,
    status: str,
    signed: bool,
    by_sender: dict[int, list[dict[str, Any]]],
    now: int,
) -> dict[int, list[str]]:
    """Of each sender's messages (rows with ``id`` and ``message_id``), the message ids for
    which the reader gives this receipt for the first time, now recorded; senders left
    with none are left out."""
    pks = [row["id"] for rows in by_sender.values() for row in rows]
    first = batch_store.add_receipt_marks(conn, reader_id, status, signed, pks, now)
    news = {
        sender: sorted(row["message_id"] for row in rows if row["id"] in first)
        for sender, rows in by_sender.items()
    }
    return {sender: ids for sender, ids in news.items() if ids}


def receipt_candidates(
    conn: Connection, principal: Principal, cid: str, message_ids: list[str]
) -> dict[int, list[dict[str, Any]]]:
    """The messages of ``message_ids`` a receipt from ``principal`` may be about, by sender.

    The reader must be a member of ``cid``; only messages of that conversation from other
    senders still in it count: a receipt is the reader's news for them.
    """
    members = batch_store.get_members_by_conversation(conn, [cid])[cid]
    if principal.username not in members:
        raise NotFound("no such conversation")
    current = set(members.values())
    candidates: dict[int, list[dict[str, Any]]] = {}
    for row in batch_store.get_messages_by_message_ids(conn, message_ids).values():
        if (
            row["conversation_id"] == cid
            and row["sender_id"] != principal.user_id
            and row["sender_id"] in current
        ):
            candidates.setdefault(row["sender_id"], []).append(row)
    return candidates


def parse_receipt(raw: Any) -> Receipt:
    try:
        return Receipt.from_wire(raw)
    except protocol_errors.ProtocolError as exc:
        raise InvalidReceipt(str(exc)) from exc


async def relay_receipt(ctx: ServiceContext, principal: Principal, raw: Any) -> int:
    """Give each sender of the receipt's messages the reader's signed receipt; returns
    how many of the named messages it went to the senders of."""
    await count_receipt_call(ctx, principal)
    receipt = parse_receipt(raw)
    if receipt.reader != principal.username:
        raise Forbidden("a receipt is signed by its reader, who must be the caller", reason="not_reader")
    count, events = await ctx.database.run_batch(_relay, principal, receipt)
    await ctx.broker.publish(events)
    return count


def _relay(conn: Connection, principal: Principal, receipt: Receipt) -> tuple[int, list[InboxEvent]]:
    candidates = receipt_candidates(conn, principal, receipt.conversation_id, list(receipt.message_ids))
    now = now_ms()
    # Only what this reader has not yet signed this status for: the rest is no news.
    by_sender = first_receipts(conn, principal.user_id, receipt.status, True, candidates, now)
    if not by_sender:
        return 0, []
    signed = receipt.to_wire()
    starts = batch_store.allocate_inbox_seqs(conn, dict.fromkeys(by_sender, 1))
    made = [
        data_entry(
            sender,
            starts[sender],
            "receipt",
            # Beside the signed receipt, the server's view for clients that do not check
            # signatures yet (PROTOCOL.md 9.3): it counts for nothing in 14.7.
            json.dumps(
                {
                    "message_ids": found,
                    "recipient": principal.username,
                    "status": receipt.status,
                    "at": now,
                    "receipt": signed,
                },
                separators=(",", ":"),
            ),
            now,
        )
        for sender, found in sorted(by_sender.items())
    ]
    batch_store.add_inbox_entries(conn, [row for row, _ in made])
    return sum(len(found) for found in by_sender.values()), [event for _, event in made]
