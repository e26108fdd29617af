"""The inbox WebSocket. The access token arrives in the first frame, never in the URL."""

from __future__ import annotations

import asyncio
import contextlib
import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from ..errors import RateLimited, SecureChatError
from ..realtime.slots import ConnectionSlots
from ..services import ratelimit
from ..services.accounts import authenticate
from ..services.context import ServiceContext
from .connection import InboxConnection, error_frame
from .deps import client_ip

router = APIRouter()

CLOSE_UNAUTHORIZED = 4401
CLOSE_BAD_FRAME = 4400
CLOSE_RATE_LIMITED = 4429
CLOSE_SERVER_FULL = 4503


def origin_allowed(websocket: WebSocket, ctx: ServiceContext) -> bool:
    """Only the server's own web origin (or a configured one) may open the socket.

    Browsers always send Origin, so this stops a page on another site from opening a
    socket in the user's name; clients that are not browsers send their server's origin.
    A missing or "null" Origin is refused. The own origin is the configured public
    origin if there is one; else the one the Host header names (the client's word).
    """
    origin = websocket.headers.get("origin", "").strip().lower().rstrip("/")
    if not origin or origin == "null":
        return False
    if ctx.settings.public_origin:
        allowed = {ctx.settings.public_origin}
    else:
        host = websocket.headers.get("host", "").strip().lower()
        scheme = "https" if websocket.url.scheme in ("https", "wss") else "http"
        allowed = {f"{scheme}://{host}"} if host else set()
    allowed |= {o.strip().lower().rstrip("/") for o in ctx.settings.allowed_origins.split(",") if o.strip()}
    return origin in allowed


@router.websocket("/api/v1/ws")
async def inbox_socket(websocket: WebSocket) -> None:
    ctx: ServiceContext = websocket.app.state.context
    if not origin_allowed(websocket, ctx):
        # Refused in the handshake: the client sees HTTP 403 and no socket opens.
        await websocket.close(code=1008)
        return
    slots: ConnectionSlots = websocket.app.state.slots
    if not slots.open():
        await websocket.accept()
        await websocket.send_text(error_frame("too_many_connections", "the server is full; try again later"))
        await websocket.close(CLOSE_SERVER_FULL)
        return
    # Behind a trusted proxy this is the forwarded client address; canonical, so each
    # address has one count however it is spelled.
    address = client_ip(websocket)
    try:
        if not await slots.acquire_address(address):
            await websocket.accept()
            await websocket.send_text(
                error_frame("too_many_connections", "too many open connections from this address")
            )
            await websocket.close(CLOSE_RATE_LIMITED)
            return
        try:
            await _serve(websocket, ctx, slots)
        finally:
            await slots.free_address(address)
    finally:
        slots.close()


async def _serve(websocket: WebSocket, ctx: ServiceContext, slots: ConnectionSlots) -> None:
    await websocket.accept()
    ip = client_ip(websocket)
    try:
        await ratelimit.hit(ctx, "ws_connect", ip, ctx.settings.ws_connects_per_minute)
    except RateLimited as exc:
        await websocket.send_text(error_frame(exc.code, exc.message, **exc.fields))
        await websocket.close(CLOSE_RATE_LIMITED)
        return
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
    if not await slots.acquire_user(principal.user_id):
        await websocket.send_text(
            error_frame("too_many_connections", "too many open connections for this account")
        )
        await websocket.close(CLOSE_RATE_LIMITED)
        return
    ctx.metrics.connections.inc()
    try:
        await InboxConnection(ctx, principal, websocket).run(since)
    except WebSocketDisconnect:
        return
    finally:
        ctx.metrics.connections.dec()
        await slots.free_user(principal.user_id)
