"""Messages: send (idempotent by message id), inbox replay, acknowledgements and
receipts, conversations and history. Envelopes stay opaque: the server checks their
shape, sender and recipient list, never their contents."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from ...protocol import errors as protocol_errors
from ...protocol.envelope import Envelope
from ...protocol.identifiers import ConversationId, direct_conversation_id, parse_conversation_id
from ..errors import Forbidden, InvalidEnvelope, InvalidInput, NotFound, TooLarge, V1Retired
from ..storage import batch as batch_store
from ..storage import messages as store
from . import clock
from .accounts import username_field
from .context import ServiceContext, now_ms
from .principal import Principal
from .writer import SendResult, data_frame, message_frame

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def entry_frame(row: Any) -> str:
    if row["kind"] == "message":
        return message_frame(
            row["seq"],
            row["message_id"],
            row["conversation_id"],
            row["sender"],
            row["server_ts"],
            row["envelope"],
        )
    return data_frame(row["kind"], row["seq"], row["data"])


def parse_envelope(ctx: ServiceContext, raw: Any) -> tuple[Envelope, str]:
    """Validate an envelope's shape; return it and the exact text the server stores."""
    try:
        envelope = Envelope.from_wire(raw)
    except protocol_errors.ProtocolError as exc:
        raise InvalidEnvelope(str(exc)) from exc
    text = envelope.to_json()
    if len(text) > ctx.settings.max_envelope_bytes:
        raise TooLarge("envelope is too large", limit=ctx.settings.max_envelope_bytes)
    return envelope, text


def submit_message(
    ctx: ServiceContext, principal: Principal, raw_envelope: Any
) -> asyncio.Future[SendResult]:
    """Validate, then queue for the group-commit writer without waiting for it.

    Synchronous up to the queue, so messages from one connection keep their order.
    """
    refuse_after_v1_cutoff(ctx)
    envelope, text = parse_envelope(ctx, raw_envelope)
    if envelope.header.sender != principal.username:
        raise Forbidden("the envelope's sender is not the authenticated user", reason="sender_mismatch")
    digest = hashlib.sha256(text.encode()).digest()
    return ctx.writer.submit_send(principal, envelope, text, digest)


def refuse_after_v1_cutoff(ctx: ServiceContext) -> None:
    """PROTOCOL.md 15.12: from ``V1_SENDS_UNTIL`` on (the instant itself included), every
    v1 send, direct or group, over HTTP or the WebSocket, is refused before anything is
    parsed or stored. Reads are untouched, so v1 history stays readable."""
    until = ctx.settings.v1_sends_until
    if until is None:
        return
    until_ms = (until - _EPOCH) // timedelta(milliseconds=1)
    if clock.now_ms() >= until_ms:
        raise V1Retired(
            "this server no longer accepts protocol v1 messages; send in v2",
            sends_until=until.isoformat().replace("+00:00", "Z"),
        )


async def send_message(ctx: ServiceContext, principal: Principal, raw_envelope: Any) -> SendResult:
    """Store a message; returns once it is committed, with the sender's sequence number."""
    return await submit_message(ctx, principal, raw_envelope)


async def open_direct_conversation(ctx: ServiceContext, principal: Principal, peer: str) -> dict[str, Any]:
    peer_name = username_field(peer)
    conversation_id = direct_conversation_id(principal.username, peer_name)
    members = await ctx.database.run_batch(
        _ensure_direct_conversation, conversation_id, principal.username, peer_name
    )
    return {"id": conversation_id, "kind": "direct", "members": sorted(members)}


def _ensure_direct_conversation(conn: Connection, conversation_id: str, me: str, peer: str) -> dict[str, int]:
    """The direct conversation's members, creating it first if needed (one transaction)."""
    if not batch_store.get_conversation_ids(conn, [conversation_id]):
        ids = batch_store.get_user_ids(conn, [me, peer])
        if peer not in ids:
            raise NotFound("no such user", field="peer")
        batch_store.add_conversation(
            conn, conversation_id, "direct", list(ids.values()), now_ms(), if_absent=True
        )
    return batch_store.get_members_by_conversation(conn, [conversation_id])[conversation_id]


async def list_conversations(ctx: ServiceContext, principal: Principal) -> list[dict[str, Any]]:
    async with ctx.database.read() as conn:
        rows = await store.get_conversations_for_user(conn, principal.user_id)
        members = await store.get_members_for_conversations(conn, [row["id"] for row in rows])
    return [
        {
            "id": row["id"],
            "kind": row["kind"],
            "members": members[row["id"]],
            "created_at": row["created_at"],
            "last_message_at": row["last_message_at"],
        }
        for row in rows
    ]


def _conversation_id(value: str) -> ConversationId:
    try:
        return parse_conversation_id(value)
    except protocol_errors.ProtocolError as exc:
        raise InvalidInput(str(exc), field="conversation_id") from exc


async def history(
    ctx: ServiceContext, principal: Principal, conversation_id: str, *, before: int | None, limit: int
) -> dict[str, Any]:
    """A page of a conversation, newest first; ``next_before`` pages further back."""
    cid = _conversation_id(conversation_id)
    limit = max(1, min(limit, ctx.settings.history_page_max))
    async with ctx.database.read() as conn:
        members = await store.get_members(conn, cid)
        if principal.username not in members:
            # The same answer whether the conversation exists or not.
            raise NotFound("no such conversation")
        since = 0
        if cid.startswith("grp-"):
            since = await store.get_joined_at(conn, cid, principal.user_id) or 0
        rows = await store.get_history(conn, cid, before, limit, since)
        delivered = await store.get_delivered_to(conn, [row["id"] for row in rows])
    items = [
        {
            "id": row["id"],
            "message_id": row["message_id"],
            "sender": row["sender"],
            "server_ts": row["server_ts"],
            "delivered_to": sorted(set(delivered[row["id"]]) - {row["sender"]}),
            "envelope": json.loads(row["envelope"]),
        }
        for row in rows
    ]
    next_before = rows[-1]["id"] if len(rows) == limit else None
    return {"conversation_id": cid, "members": sorted(members), "messages": items, "next_before": next_before}


async def inbox_frames(
    ctx: ServiceContext, user_id: int, after_seq: int, limit: int
) -> list[tuple[int, str]]:
    """Inbox entries after ``after_seq``, in order, as (seq, WebSocket frame text)."""
    async with ctx.database.read() as conn:
        rows = await store.get_inbox_after(conn, user_id, after_seq, limit)
    return [(row["seq"], entry_frame(row)) for row in rows]


async def inbox_head(ctx: ServiceContext, user_id: int) -> int:
    async with ctx.database.read() as conn:
        return await store.get_inbox_head(conn, user_id)


async def acknowledge(
    ctx: ServiceContext, principal: Principal, up_to_seq: int, *, server_receipts: bool = True
) -> int:
    """Mark messages up to ``up_to_seq`` delivered. With ``server_receipts`` each sender
    also gets an unsigned receipt, the server's claim (transitional, PROTOCOL.md 9.3);
    a client that signs its own receipts asks for none."""
    return await ctx.writer.acknowledge(principal, up_to_seq, server_receipts=server_receipts)
