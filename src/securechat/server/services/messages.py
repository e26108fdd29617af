"""Messages: send (idempotent by message id), inbox replay, acknowledgements and
receipts, conversations and history. Envelopes stay opaque: the server checks their
shape, sender and recipient list, never their contents."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from ...protocol import errors as protocol_errors
from ...protocol.envelope import Envelope
from ...protocol.identifiers import ConversationId, direct_conversation_id, parse_conversation_id
from ..errors import Forbidden, InvalidEnvelope, InvalidInput, MessageIdReused, NotFound, TooLarge
from ..realtime.broker import InboxEvent
from ..storage import accounts as account_store
from ..storage import messages as store
from .accounts import Principal, _username
from .context import ServiceContext, now_ms


@dataclass(frozen=True)
class SendResult:
    message_id: str
    conversation_id: str
    seq: int
    server_ts: int

    def to_wire(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "conversation_id": self.conversation_id,
            "seq": self.seq,
            "server_ts": self.server_ts,
        }


def message_frame(seq: int, message_id: str, conversation_id: str, sender: str, server_ts: int, envelope: str) -> str:
    """The WebSocket frame for an inbox message; the stored envelope text is embedded as is."""
    return (
        f'{{"type":"message","seq":{seq},"message_id":"{message_id}","conversation_id":"{conversation_id}",'
        f'"sender":"{sender}","server_ts":{server_ts},"envelope":{envelope}}}'
    )


def receipt_frame(seq: int, data: str) -> str:
    return f'{{"type":"receipt","seq":{seq},{data[1:]}'


def entry_frame(row: Any) -> str:
    if row["kind"] == "message":
        return message_frame(
            row["seq"], row["message_id"], row["conversation_id"], row["sender"], row["server_ts"], row["envelope"]
        )
    return receipt_frame(row["seq"], row["data"])


def parse_envelope(ctx: ServiceContext, raw: Any) -> tuple[Envelope, str]:
    """Validate an envelope's shape; return it and the exact text the server stores."""
    try:
        envelope = Envelope.from_wire(raw)
    except protocol_errors.ProtocolError as exc:
        raise InvalidEnvelope(str(exc)) from exc
    text = json.dumps(envelope.to_wire(), separators=(",", ":"))
    if len(text) > ctx.settings.max_envelope_bytes:
        raise TooLarge("envelope is too large", limit=ctx.settings.max_envelope_bytes)
    return envelope, text


async def send_message(ctx: ServiceContext, principal: Principal, raw_envelope: Any) -> SendResult:
    envelope, text = parse_envelope(ctx, raw_envelope)
    header = envelope.header
    if header.sender != principal.username:
        raise Forbidden("the envelope's sender is not the authenticated user", reason="sender_mismatch")
    digest = hashlib.sha256(text.encode()).digest()
    try:
        result, events = await _store_message(ctx, principal, envelope, text, digest)
    except IntegrityError:
        # Another request stored the same message id first; answer as a retry.
        result, events = await _store_message(ctx, principal, envelope, text, digest)
    await ctx.broker.publish(events)
    return result


async def _store_message(
    ctx: ServiceContext, principal: Principal, envelope: Envelope, text: str, digest: bytes
) -> tuple[SendResult, list[InboxEvent]]:
    header = envelope.header
    async with ctx.database.write() as conn:
        existing = await store.get_message_by_message_id(conn, header.message_id)
        if existing is not None:
            return await _existing_result(conn, principal, existing, digest), []
        conversation = await store.get_conversation(conn, header.conversation_id)
        if conversation is None:
            await _create_direct_conversation(conn, principal, envelope)
        members = await store.get_members(conn, header.conversation_id)
        if principal.username not in members:
            raise Forbidden("not a member of this conversation", reason="not_member")
        if set(envelope.recipients) != set(members):
            raise InvalidEnvelope(
                "wrapped keys must cover exactly the conversation's members", reason="recipients_mismatch"
            )
        now = now_ms()
        message_pk = await store.add_message(
            conn,
            message_id=header.message_id,
            conversation_id=header.conversation_id,
            sender_id=principal.user_id,
            client_ts=header.sent_at,
            server_ts=now,
            size=len(text),
            envelope_sha256=digest,
            envelope=text,
        )
        first_seqs = await store.allocate_inbox_seqs(conn, {uid: 1 for uid in members.values()})
        await store.add_inbox_entries(
            conn,
            [
                {"user_id": uid, "seq": seq, "kind": "message", "message_pk": message_pk, "created_at": now}
                for uid, seq in first_seqs.items()
            ],
        )
        await store.set_last_message_at(conn, header.conversation_id, now)
    events = [
        InboxEvent(uid, seq, message_frame(seq, header.message_id, header.conversation_id, header.sender, now, text))
        for uid, seq in first_seqs.items()
    ]
    return SendResult(header.message_id, header.conversation_id, first_seqs[principal.user_id], now), events


async def _existing_result(conn: Any, principal: Principal, existing: Any, digest: bytes) -> SendResult:
    if existing["sender_id"] != principal.user_id or existing["envelope_sha256"] != digest:
        raise MessageIdReused("this message id was already used for a different message")
    seq = await store.get_inbox_seq_for_message(conn, principal.user_id, existing["id"])
    return SendResult(existing["message_id"], existing["conversation_id"], seq, existing["server_ts"])


async def _create_direct_conversation(conn: Any, principal: Principal, envelope: Envelope) -> None:
    """A first message to someone creates the direct conversation, if its id is theirs."""
    conversation_id = envelope.header.conversation_id
    others = [name for name in envelope.recipients if name != principal.username]
    if len(others) != 1 or direct_conversation_id(principal.username, others[0]) != conversation_id:
        raise NotFound("no such conversation")
    ids = await account_store.get_user_ids(conn, [principal.username, others[0]])
    if len(ids) != 2:
        raise NotFound("no such user", field="recipient")
    await store.add_conversation(conn, conversation_id, "direct", list(ids.values()), now_ms())


async def open_direct_conversation(ctx: ServiceContext, principal: Principal, peer: str) -> dict[str, Any]:
    peer_name = _username(peer)
    conversation_id = direct_conversation_id(principal.username, peer_name)
    async with ctx.database.write() as conn:
        if await store.get_conversation(conn, conversation_id) is None:
            ids = await account_store.get_user_ids(conn, [principal.username, peer_name])
            if peer_name not in ids:
                raise NotFound("no such user", field="peer")
            await store.add_conversation(conn, conversation_id, "direct", list(ids.values()), now_ms())
        members = await store.get_members(conn, conversation_id)
    return {"id": conversation_id, "kind": "direct", "members": sorted(members)}


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
        rows = await store.get_history(conn, cid, before, limit)
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


async def inbox_frames(ctx: ServiceContext, user_id: int, after_seq: int, limit: int) -> list[tuple[int, str]]:
    """Inbox entries after ``after_seq``, in order, as (seq, WebSocket frame text)."""
    async with ctx.database.read() as conn:
        rows = await store.get_inbox_after(conn, user_id, after_seq, limit)
    return [(row["seq"], entry_frame(row)) for row in rows]


async def inbox_head(ctx: ServiceContext, user_id: int) -> int:
    async with ctx.database.read() as conn:
        return await store.get_inbox_head(conn, user_id)


async def acknowledge(ctx: ServiceContext, principal: Principal, up_to_seq: int) -> int:
    """Mark messages up to ``up_to_seq`` delivered and put a receipt in each sender's inbox."""
    now = now_ms()
    async with ctx.database.write() as conn:
        rows = await store.get_undelivered_messages(conn, principal.user_id, up_to_seq)
        await store.mark_delivered(conn, principal.user_id, [row["seq"] for row in rows], now)
        receipts = [row for row in rows if row["sender_id"] != principal.user_id]
        counts: dict[int, int] = {}
        for row in receipts:
            counts[row["sender_id"]] = counts.get(row["sender_id"], 0) + 1
        first = await store.allocate_inbox_seqs(conn, counts)
        entries = []
        for row in receipts:
            seq = first[row["sender_id"]]
            first[row["sender_id"]] = seq + 1
            data = json.dumps(
                {
                    "message_id": row["message_id"],
                    "conversation_id": row["conversation_id"],
                    "recipient": principal.username,
                    "status": "delivered",
                    "at": now,
                },
                separators=(",", ":"),
            )
            entries.append(
                {"user_id": row["sender_id"], "seq": seq, "kind": "receipt", "data": data, "created_at": now}
            )
        await store.add_inbox_entries(conn, entries)
    await ctx.broker.publish(
        [InboxEvent(entry["user_id"], entry["seq"], receipt_frame(entry["seq"], entry["data"])) for entry in entries]
    )
    return len(rows)
