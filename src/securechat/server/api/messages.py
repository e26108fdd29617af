"""Sending, the inbox (for clients that poll), conversations and history."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from ..services import messages, presence, ratelimit
from .deps import Context, CurrentUser
from .models import AckBody, DirectConversationBody, ReadBody, SendBody

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
    return {"acknowledged": await messages.acknowledge(ctx, principal, body.seq)}


@router.get("/conversations")
async def conversations(principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    return {"conversations": await messages.list_conversations(ctx, principal)}


@router.post("/conversations/direct")
async def open_direct(body: DirectConversationBody, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    return await messages.open_direct_conversation(ctx, principal, body.peer)


@router.post("/conversations/{conversation_id}/read")
async def mark_read(
    conversation_id: Annotated[str, Path(max_length=64)], body: ReadBody, principal: CurrentUser, ctx: Context
) -> dict[str, Any]:
    """Read receipts for clients without a socket (the WebSocket has a ``read`` frame)."""
    return {"receipts": await presence.mark_read(ctx, principal, conversation_id, body.message_ids)}


@router.get("/conversations/{conversation_id}/messages")
async def history(
    conversation_id: str,
    principal: CurrentUser,
    ctx: Context,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    return await messages.history(ctx, principal, conversation_id[:64], before=before, limit=limit)
