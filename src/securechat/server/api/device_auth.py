"""Protocol v2: device credentials (PROTOCOL.md 15.16): a challenge to sign, a
credential for the signature, and the header per-device calls carry it in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from pydantic import Field

from ..services import device_auth
from .deps import Context, CurrentUser
from .devices import DeviceId
from .models import Strict

router = APIRouter(prefix="/api/v1", tags=["devices"])

# The credential travels beside the account's bearer token, never instead of it.
DEVICE_TOKEN_HEADER = "X-Device-Token"  # noqa: S105 - a header name, not a secret

DeviceToken = Annotated[str | None, Header(alias=DEVICE_TOKEN_HEADER, max_length=2048)]


class DeviceTokenBody(Strict):
    # Strict base64 and sizes are checked by the service (422 invalid_input).
    nonce: str = Field(max_length=64)
    signature: str = Field(max_length=128)


@router.post("/devices/{device_id}/challenge")
async def challenge(device_id: DeviceId, principal: CurrentUser, ctx: Context) -> dict[str, object]:
    return await device_auth.challenge(ctx, principal, device_id)


@router.post("/devices/{device_id}/token")
async def token(
    device_id: DeviceId, body: DeviceTokenBody, principal: CurrentUser, ctx: Context
) -> dict[str, object]:
    return await device_auth.issue(ctx, principal, device_id, body.nonce, body.signature)
