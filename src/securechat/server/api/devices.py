"""Protocol v2: the device directory, prekeys and bundles (PROTOCOL.md 15.16)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from pydantic import AfterValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

from ...protocol.v2.devices import MAX_DEVICES
from ...protocol.v2.prekeys import ONE_TIME_PREKEY_BATCH
from ..services import devices, lookups, prekeys
from .deps import Context, CurrentUser
from .identifiers import Username
from .models import Strict

router = APIRouter(prefix="/api/v1", tags=["devices"])

_DEVICE_ID = re.compile(r"[0-9a-f]{32}")


def parse_device_id(value: str) -> str:
    """A device id as 15.1 derives it: 32 lower-case hex digits, nothing else."""
    if not _DEVICE_ID.fullmatch(value):
        # Fixed text: the value itself is never repeated (identifiers.py).
        raise PydanticCustomError("invalid_device_id", "a device id is 32 lower-case hex digits")
    return value


DeviceId = Annotated[str, StringConstraints(max_length=32), AfterValidator(parse_device_id)]


class OneTimePrekeysBody(Strict):
    # Each prekey is checked by the protocol layer's strict parser (400 invalid_prekey).
    prekeys: list[dict[str, Any]] = Field(min_length=1, max_length=ONE_TIME_PREKEY_BATCH)


class BundleClaimBody(Strict):
    # Only these devices' bundles (a client that already has sessions with the others
    # spends none of their one-time prekeys); absent: every listed device.
    device_ids: list[DeviceId] | None = Field(default=None, min_length=1, max_length=MAX_DEVICES)


@router.put("/devices")
async def publish_devices(
    document: Annotated[dict[str, Any], Body()], principal: CurrentUser, ctx: Context
) -> dict[str, Any]:
    """The caller's signed device list (15.3), as the body itself."""
    return await devices.publish_device_list(ctx, principal, document)


@router.get(
    "/users/{username}/devices",
    responses={204: {"description": "The account has published no device list."}},
)
async def device_list(username: Username, principal: CurrentUser, ctx: Context) -> Any:
    await lookups.look_up(ctx, principal, username)
    document = await devices.get_device_list(ctx, username)
    return Response(status_code=204) if document is None else document


@router.put("/devices/{device_id}/signed-prekey")
async def put_signed_prekey(
    device_id: DeviceId, prekey: Annotated[dict[str, Any], Body()], principal: CurrentUser, ctx: Context
) -> dict[str, Any]:
    return await prekeys.put_signed_prekey(ctx, principal, device_id, prekey)


@router.post("/devices/{device_id}/one-time-prekeys")
async def add_one_time_prekeys(
    device_id: DeviceId, body: OneTimePrekeysBody, principal: CurrentUser, ctx: Context
) -> dict[str, Any]:
    return await prekeys.add_one_time_prekeys(ctx, principal, device_id, body.prekeys)


@router.get("/devices/{device_id}/one-time-prekeys/count")
async def count_one_time_prekeys(device_id: DeviceId, principal: CurrentUser, ctx: Context) -> dict[str, Any]:
    return await prekeys.count_one_time_prekeys(ctx, principal, device_id)


@router.post("/users/{username}/bundles")
async def claim_bundles(
    username: Username,
    principal: CurrentUser,
    ctx: Context,
    body: Annotated[BundleClaimBody | None, Body()] = None,
) -> dict[str, Any]:
    """Consumes one-time prekeys, hence POST."""
    await lookups.look_up(ctx, principal, username)
    return await prekeys.claim_bundles(ctx, principal, username, None if body is None else body.device_ids)
