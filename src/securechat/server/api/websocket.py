"""The inbox WebSocket. The access token arrives in the first frame, never in the URL."""

from __future__ import annotations

import asyncio
import contextlib
import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from ..errors import SecureChatError
from ..realtime.connection import InboxConnection, error_frame
from ..services.accounts import authenticate
from ..services.context import ServiceContext

router = APIRouter()

CLOSE_UNAUTHORIZED = 4401
CLOSE_BAD_FRAME = 4400


@router.websocket("/api/v1/ws")
async def inbox_socket(websocket: WebSocket) -> None:
    ctx: ServiceContext = websocket.app.state.context
    await websocket.accept()
    try:
        text = await asyncio.wait_for(websocket.receive_text(), ctx.settings.ws_auth_timeout_seconds)
        frame = json.loads(text)
    except (TimeoutError, WebSocketDisconnect, RuntimeError, KeyError, ValueError):
        with contextlib.suppress(Exception):
            await websocket.close(CLOSE_BAD_FRAME)
        return
    token = frame.get("token") if isinstance(frame, dict) else None
    since = frame.get("since", 0) if isinstance(frame, dict) else None
    if (
        not isinstance(frame, dict)
        or frame.get("type") != "auth"
        or not isinstance(token, str)
        or not isinstance(since, int)
        or isinstance(since, bool)
        or not 0 <= since < 2**62
    ):
        await websocket.send_text(
            error_frame("invalid_frame", "first frame must be {type: auth, token, since}")
        )
        await websocket.close(CLOSE_BAD_FRAME)
        return
    try:
        principal = await authenticate(ctx, token)
    except SecureChatError as exc:
        await websocket.send_text(error_frame(exc.code, exc.message))
        await websocket.close(CLOSE_UNAUTHORIZED)
        return
    try:
        await InboxConnection(ctx, principal, websocket).run(since)
    except WebSocketDisconnect:
        return
