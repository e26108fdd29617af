"""Protocol v2 device directory (PROTOCOL.md 15.3, 15.16): each account publishes its
signed device list and anyone logged in may fetch it.

The server relays public, signed material only and checks it as clients will (15.3
steps 1-3, with the account key it holds: the registered v1 signing key, 15.12), so a
list for another account, one signed by another key or with a bad certificate is never
stored. Clients remain the judges: they check every list themselves against the key
they pinned and refuse rollbacks with their own memory of the last list they accepted.
The server adds its own rollback rule, which is what keeps a replayed old list (or an
older list of the same account sent by a second device) from replacing the current
one: a new list must have a higher version (409 ``device_list_stale``).

A device the new list leaves out is revoked: its row and its prekeys are deleted in
the transaction that stores the list, so no bundle hands out its keys afterwards.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy.exc import IntegrityError

from ...protocol.errors import ProtocolError, UnsupportedVersion
from ...protocol.v2.devices import DeviceList, check_device_list
from ...protocol.v2.errors import Refusal
from ..errors import DeviceListStale, InvalidDeviceList, NotFound
from ..storage import devices as store
from ..storage import identity_transitions as transition_store
from . import ratelimit
from .context import ServiceContext, now_ms
from .principal import Principal

logger = logging.getLogger(__name__)

UPDATE_ACTION = "device_update"


async def count_update(ctx: ServiceContext, principal: Principal) -> None:
    """One publication or prekey upload by this account (429 past the setting), counted
    before its signatures are checked, so refused ones count too."""
    await ratelimit.hit(
        ctx, UPDATE_ACTION, f"user:{principal.user_id}", ctx.settings.device_updates_per_minute, who="account"
    )


def _refusal_reason(exc: ProtocolError) -> str:
    if isinstance(exc, Refusal):
        return exc.reason
    if isinstance(exc, UnsupportedVersion):
        return "unsupported_version"
    return "malformed"


async def _account_key(ctx: ServiceContext, principal: Principal) -> bytes:
    """The account's identity key: the registered v1 key, or the last rotation's (15.11)."""
    async with ctx.database.read() as conn:
        key = await transition_store.current_key(conn, principal.user_id)
    if key is None:  # the account was deleted after the token was checked
        raise NotFound("no such user")
    return key


def check_list(raw: Any, principal: Principal, account_key: bytes) -> DeviceList:
    """15.3 steps 1-3 for the caller's own account, or 400 ``invalid_device_list`` with
    the 15.14 reason (``malformed``, ``unsupported_version``, ``device_list_invalid``,
    ``device_certificate_invalid``)."""
    try:
        return check_device_list(raw, principal.username, account_key, None)
    except ProtocolError as exc:
        reason = _refusal_reason(exc)
        raise InvalidDeviceList(f"the device list is refused: {reason}", reason=reason) from exc


async def publish_device_list(ctx: ServiceContext, principal: Principal, raw: Any) -> dict[str, Any]:
    """Store the caller's new device list (``PUT /devices``)."""
    await count_update(ctx, principal)
    device_list = check_list(raw, principal, await _account_key(ctx, principal))
    # As sent: strict parsing guarantees nothing else in it, and clients check the
    # signature over these very values.
    document = json.dumps(raw, separators=(",", ":"), ensure_ascii=False)
    listed = [(device.device_id, device.signing_key) for device in device_list.devices]
    try:
        async with ctx.database.write() as conn:
            written = await store.put_list(
                conn,
                principal.user_id,
                device_list.version,
                device_list.list_hash,
                document,
                listed,
                now_ms(),
            )
            key_now = await transition_store.current_key(conn, principal.user_id)
            if written.outcome == "stored" and key_now != device_list.account_key:
                # The account rotated its identity key since this list was checked: storing
                # it would leave a list that does not verify under the stored key (15.11).
                raise DeviceListStale("the account's identity key changed; sign the list with the new key")
    except IntegrityError as exc:
        # Another instance stored this account's first list at the same moment.
        raise DeviceListStale("another device list was stored meanwhile; fetch it and try again") from exc
    if written.outcome == "stale":
        async with ctx.database.read() as conn:
            current = await store.get_list(conn, principal.user_id)
        raise DeviceListStale(
            "a device list's version must be higher than the stored one",
            version=None if current is None else int(current["version"]),
        )
    if written.removed:
        logger.info(
            "device list of user %s: version %d, %d devices revoked",
            principal.user_id,
            device_list.version,
            len(written.removed),
        )
    return {
        "version": device_list.version,
        "devices": [device.device_id for device in device_list.devices],
        "added": list(written.added),
        "removed": list(written.removed),
        "unchanged": written.outcome == "unchanged",
    }


async def get_device_list(ctx: ServiceContext, username: str) -> dict[str, Any] | None:
    """The latest list ``username`` published, as published (``GET /users/{u}/devices``);
    None if the account has published none (a normal state for an account whose devices
    have not turned v2 on, so the route answers 204, not an error)."""
    async with ctx.database.read() as conn:
        user_id = await store.get_user_id(conn, username)
        if user_id is None:
            raise NotFound("no such user")
        row = await store.get_list(conn, user_id)
    if row is None:
        return None
    document: dict[str, Any] = json.loads(row["document"])
    return document
