"""Protocol v2 prekeys and bundles (PROTOCOL.md 15.4, 15.16).

A device of the caller's current list publishes a signed prekey and batches of
one-time prekeys, each checked with that device's signing key from the list (the
server's defence in depth; fetchers check them again). Prekey ids only go up per
device and kind, so an id is never stored for two keys (409 ``prekey_id_reused``).

A bundle claim hands out, for every device of a user's current list, its signed
prekey and one one-time prekey, deleted in the statement that returns it: each
one-time prekey goes to one claimer only, on any number of instances. Claims are
limited per claiming account (``bundle_claims_per_minute``) and, for another user's
bundles, count as lookups (services/lookups.py): draining someone's one-time prekeys or
testing names through this door is as slow as through the others.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ...protocol.errors import ProtocolError
from ...protocol.v2.devices import Device
from ...protocol.v2.errors import Refusal
from ...protocol.v2.prekeys import check_one_time_prekey, check_signed_prekey
from ..errors import DeviceNotListed, InvalidPrekey, NoDevices, NotFound, PrekeyIdReused, TooManyPrekeys
from ..storage import devices as device_store
from ..storage import prekeys as store
from . import ratelimit
from .context import ServiceContext, now_ms
from .devices import count_update
from .principal import Principal

CLAIM_ACTION = "bundle_claim"


def _json(wire: dict[str, object]) -> str:
    return json.dumps(wire, separators=(",", ":"))


async def _listed_device(ctx: ServiceContext, principal: Principal, device_id: str) -> Device:
    """The caller's device as the server knows it (id and signing key), or 404."""
    async with ctx.database.read() as conn:
        row = await device_store.get_device(conn, principal.user_id, device_id)
    if row is None:
        raise DeviceNotListed("this device is not in the account's current device list")
    # Only the id and signing key matter to the prekey checks.
    return Device(device_id, bytes(row["signing_key"]), b"", 0, b"")


def _invalid(exc: ProtocolError, index: int | None = None) -> InvalidPrekey:
    reason = exc.reason if isinstance(exc, Refusal) else "malformed"
    message = f"the prekey is refused: {reason}"
    if index is None:
        return InvalidPrekey(message, reason=reason)
    return InvalidPrekey(message, reason=reason, index=index)


def _refuse(written: store.PrekeyWrite, limit: int) -> None:
    if written.refused == "not_listed":
        # The list changed between the check and the write.
        raise DeviceNotListed("this device is not in the account's current device list")
    if written.refused == "reused":
        raise PrekeyIdReused(
            "a prekey id this device used before, for another key", next_prekey_id=written.next_prekey_id
        )
    if written.refused == "too_many":
        raise TooManyPrekeys(
            "the device would hold more unclaimed one-time prekeys than the server keeps",
            remaining=written.remaining,
            max=limit,
        )


async def put_signed_prekey(
    ctx: ServiceContext, principal: Principal, device_id: str, raw: Any
) -> dict[str, Any]:
    await count_update(ctx, principal)
    device = await _listed_device(ctx, principal, device_id)
    try:
        prekey = check_signed_prekey(raw, principal.username, device, now_ms())
    except ProtocolError as exc:
        raise _invalid(exc) from exc
    async with ctx.database.write() as conn:
        written = await store.put_signed_prekey(
            conn, principal.user_id, device_id, prekey.prekey_id, _json(prekey.to_wire())
        )
    _refuse(written, ctx.settings.max_one_time_prekeys)
    return {"device_id": device_id, "prekey_id": prekey.prekey_id, "next_prekey_id": written.next_prekey_id}


async def add_one_time_prekeys(
    ctx: ServiceContext, principal: Principal, device_id: str, raw_prekeys: Sequence[Any]
) -> dict[str, Any]:
    await count_update(ctx, principal)
    device = await _listed_device(ctx, principal, device_id)
    checked: list[tuple[int, str]] = []
    for index, raw in enumerate(raw_prekeys):
        try:
            prekey = check_one_time_prekey(raw, principal.username, device)
        except ProtocolError as exc:
            raise _invalid(exc, index) from exc
        checked.append((prekey.prekey_id, _json(prekey.to_wire())))
    if len({prekey_id for prekey_id, _ in checked}) != len(checked):
        raise PrekeyIdReused("a batch names one prekey id twice")
    limit = ctx.settings.max_one_time_prekeys
    async with ctx.database.write() as conn:
        written = await store.add_one_time_prekeys(conn, principal.user_id, device_id, checked, limit)
    _refuse(written, limit)
    return {
        "device_id": device_id,
        "stored": written.stored,
        "remaining": written.remaining,
        "next_prekey_id": written.next_prekey_id,
    }


async def count_one_time_prekeys(ctx: ServiceContext, principal: Principal, device_id: str) -> dict[str, Any]:
    async with ctx.database.read() as conn:
        if await device_store.get_device(conn, principal.user_id, device_id) is None:
            raise DeviceNotListed("this device is not in the account's current device list")
        remaining = await store.count_one_time_prekeys(conn, principal.user_id, device_id)
    return {"remaining": remaining}


async def claim_bundles(
    ctx: ServiceContext, principal: Principal, username: str, device_ids: Sequence[str] | None
) -> dict[str, Any]:
    """``POST /users/{u}/bundles``: a bundle for every device of ``username``'s current
    list (or of those in ``device_ids``), each with one one-time prekey if it has one
    left. A device that has published no signed prekey yet has no bundle (nobody could
    set up a session with it), and none of its one-time prekeys is spent."""
    await ratelimit.hit(
        ctx, CLAIM_ACTION, f"user:{principal.user_id}", ctx.settings.bundle_claims_per_minute, who="account"
    )
    wanted = None if device_ids is None else set(device_ids)
    async with ctx.database.write() as conn:
        user_id = await device_store.get_user_id(conn, username)
        if user_id is None:
            raise NotFound("no such user")
        listed = await device_store.get_list(conn, user_id)
        if listed is None:
            raise NoDevices("this user has published no device list")
        bundles: list[dict[str, Any]] = []
        for row in await device_store.get_devices(conn, user_id):
            if wanted is not None and row["device_id"] not in wanted:
                continue
            signed = row["signed_prekey"]
            if signed is None:
                continue
            one_time = await store.claim_one_time_prekey(conn, user_id, row["device_id"])
            bundles.append(
                {
                    "device_id": row["device_id"],
                    "signed_prekey": json.loads(signed),
                    "one_time_prekey": None if one_time is None else json.loads(one_time),
                }
            )
    return {"username": username, "version": int(listed["version"]), "bundles": bundles}
