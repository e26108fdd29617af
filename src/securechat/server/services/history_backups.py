"""History backups (PROTOCOL.md 15.10.1): the latest sealed backup per account.

The server cannot open a backup: it is AES-256-GCM under a key derived from a recovery
key that never leaves the user's devices (and is not derived from the password). It
checks only what it can: the size (``HISTORY_BACKUP_MAX_BYTES`` and the account's
storage quota, which backups share with files) and that each upload is the next version,
the stored one plus one (1 when none is stored), compared and set under the account's
row lock: a replayed older upload never replaces a newer backup, and no upload jumps
ahead (anyone with the password can upload, and a version near 2^53 would leave the
genuine client no version to go on with). Deleting the backup starts the count again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ...protocol.encoding import b64decode, b64encode
from ...protocol.errors import MalformedInput
from ..errors import BackupVersionStale, InvalidInput, NoHistoryBackup, QuotaExceeded, TooLarge
from ..storage import files as file_store
from ..storage import history_backups as store
from ..storage.tables import users
from .context import ServiceContext, now_ms
from .principal import Principal

# The smallest sealed backup: a 12-byte IV, the 4096-byte padded minimum and the tag.
MIN_SEALED_BYTES = 12 + 4096 + 16


async def put_backup(
    ctx: ServiceContext, principal: Principal, version: int, sealed_b64: str
) -> dict[str, Any]:
    limit = ctx.settings.history_backup_max_bytes
    if len(sealed_b64) > 4 * ((limit + 2) // 3):
        raise TooLarge("this backup is larger than the server keeps", limit=limit)
    try:
        sealed = b64decode(sealed_b64)  # its length is bounded just above
    except MalformedInput as exc:
        raise InvalidInput("sealed must be standard base64", field="sealed") from exc
    if len(sealed) > limit:
        raise TooLarge("this backup is larger than the server keeps", limit=limit)
    if len(sealed) < MIN_SEALED_BYTES:
        raise InvalidInput("sealed is shorter than any backup", field="sealed")
    quota = ctx.settings.file_quota_bytes
    async with ctx.database.write() as conn:
        # Lock the account's row first: uploads of one account are ordered, so each is
        # compared with the version stored before it and none is lost to a race.
        await conn.execute(select(users.c.id).where(users.c.id == principal.user_id).with_for_update())
        stored = await store.get_meta(conn, principal.user_id)
        current = int(stored["version"]) if stored is not None else 0
        if version != current + 1:
            raise BackupVersionStale(
                f"the next version of this account's backup is {current + 1}", version=current
            )
        previous = int(stored["size"]) if stored is not None else 0
        if not await file_store.reserve_bytes(conn, principal.user_id, len(sealed) - previous, quota):
            used = await file_store.get_stored_bytes(conn, principal.user_id)
            raise QuotaExceeded(
                "this backup would pass the account's storage quota",
                quota_bytes=quota,
                stored_bytes=used,
                needed_bytes=len(sealed) - previous,
            )
        await store.put(conn, principal.user_id, version, sealed, now_ms(), replace=stored is not None)
    return {"version": version, "size": len(sealed)}


async def get_backup(ctx: ServiceContext, principal: Principal) -> dict[str, Any]:
    async with ctx.database.read() as conn:
        row = await store.get(conn, principal.user_id)
    if row is None:
        raise NoHistoryBackup("this account has no history backup")
    return {
        "version": int(row["version"]),
        "sealed": b64encode(bytes(row["sealed"])),
        "size": int(row["size"]),
        "updated_at": int(row["updated_at"]),
    }


async def delete_backup(ctx: ServiceContext, principal: Principal) -> dict[str, Any]:
    async with ctx.database.write() as conn:
        size = await store.remove(conn, principal.user_id)
        if size:
            # Given back to the quota (never below zero: the reservation added exactly this).
            await file_store.reserve_bytes(conn, principal.user_id, -size, ctx.settings.file_quota_bytes)
    return {"deleted": size > 0}
