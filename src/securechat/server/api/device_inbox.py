"""Protocol v2: direct messages through per-device inboxes (PROTOCOL.md 15.16)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field

from ..services import device_inbox
from .deps import Context, CurrentUser
from .device_auth import DeviceToken
from .devices import DeviceId
from .models import Strict

router = APIRouter(prefix="/api/v1", tags=["devices"])

SEQ_MAX = 2**62


class EnvelopeV2Body(Strict):
    # Checked by the protocol layer's strict parser (400 invalid_envelope with a reason).
    envelope: dict[str, Any]


class DeviceAckBody(Strict):
    seq: int = Field(ge=0, le=SEQ_MAX)


@router.post("/v2/messages", status_code=201)
async def send_v2(body: EnvelopeV2Body, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    return await device_inbox.send(ctx, principal, body.envelope)


@router.get("/devices/{device_id}/inbox")
async def read_inbox(
    device_id: DeviceId,
    principal: CurrentUser,
    ctx: Context,
    device_token: DeviceToken = None,
    since: Annotated[int, Query(ge=0, le=SEQ_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    return await device_inbox.read_inbox(ctx, principal, device_id, device_token, since, limit)


@router.post("/devices/{device_id}/inbox/ack")
async def acknowledge(
    device_id: DeviceId,
    body: DeviceAckBody,
    principal: CurrentUser,
    ctx: Context,
    device_token: DeviceToken = None,
) -> dict[str, Any]:
    return await device_inbox.acknowledge(ctx, principal, device_id, device_token, body.seq)
