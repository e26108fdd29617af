"""Sending, the inbox (for clients that poll), conversations and history."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query

from ..services import lookups, messages, presence, ratelimit, receipts
from .deps import Context, CurrentUser
from .identifiers import ConversationId, RowId
from .models import AckBody, DirectConversationBody, ReadBody, ReceiptBody, SendBody

router = APIRouter(prefix="/api/v1", tags=["messages"])


@router.post("/messages", status_code=201)
async def send(body: SendBody, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    await ratelimit.hit(
        ctx, "send", f"user:{principal.user_id}", ctx.settings.messages_per_minute, who="account"
    )
    return (await messages.send_message(ctx, principal, body.envelope)).to_wire()


@router.get("/inbox")
async def inbox(
    principal: CurrentUser,
    ctx: Context,
    since: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    frames = await messages.inbox_frames(ctx, principal.user_id, since, limit)
    head = await messages.inbox_head(ctx, principal.user_id)
    return {"entries": [json.loads(frame) for _seq, frame in frames], "head": head}


@router.post("/inbox/ack")
async def ack(body: AckBody, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    acknowledged = await messages.acknowledge(
        ctx, principal, body.seq, server_receipts=not body.signed_receipts
    )
    return {"acknowledged": acknowledged}


@router.post("/receipts")
async def relay_receipt(body: ReceiptBody, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    """A receipt signed by its reader, the caller, for the senders of its messages (PROTOCOL.md 9.3);
    idempotent, and counted against the caller's receipt limit (in the service, as for the
    WebSocket frame)."""
    return {"relayed": await receipts.relay_receipt(ctx, principal, body.receipt)}


@router.get("/conversations")
async def conversations(principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    return {"conversations": await messages.list_conversations(ctx, principal)}


@router.post("/conversations/direct")
async def open_direct(body: DirectConversationBody, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    await lookups.look_up(ctx, principal, body.peer)
    return await messages.open_direct_conversation(ctx, principal, body.peer)


@router.post("/conversations/{conversation_id}/read")
async def mark_read(
    conversation_id: ConversationId, body: ReadBody, principal: CurrentUser, ctx: Context
) -> dict[str, Any]:
    """Unsigned read receipts, the server's claim (transitional, PROTOCOL.md 9.3): for
    clients that do not sign receipts yet; the WebSocket has a ``read`` frame. Idempotent,
    and counted against the caller's receipt limit."""
    return {"receipts": await presence.mark_read(ctx, principal, conversation_id, body.message_ids)}


@router.get("/conversations/{conversation_id}/messages")
async def history(
    conversation_id: ConversationId,
    principal: CurrentUser,
    ctx: Context,
    before: Annotated[RowId | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    return await messages.history(ctx, principal, conversation_id, before=before, limit=limit)
