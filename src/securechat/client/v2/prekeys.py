"""This device's prekeys (PROTOCOL.md 15.4): a signed prekey replaced every 7 days (a
replaced private half kept 30 days for setups still in flight, then deleted), and
one-time prekeys uploaded 100 at a time whenever fewer than 20 are left on the server.

Ids come from counters kept here and only go up (the server refuses an id it has seen
for this device). A private half is stored (sealed) before its public half is
uploaded, so an upload whose answer is lost never leaves a published prekey this
device cannot use.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ...protocol.encoding import b64decode, b64encode
from ...protocol.v2.prekeys import (
    ONE_TIME_PREKEY_BATCH,
    ONE_TIME_PREKEY_LOW_WATER,
    SIGNED_PREKEY_ROTATION_MS,
    make_one_time_prekey,
    make_signed_prekey,
    signed_prekey_private_expired,
)
from ..state import StateStore
from .device import LocalDevice
from .store import V2Store
from .transport import V2Api

SIGNED_RECORD = "signed_prekeys"
ONE_TIME_RECORD = "one_time_prekeys"
NEXT_SIGNED_ID = "v2_next_signed_prekey_id"
NEXT_ONE_TIME_ID = "v2_next_one_time_prekey_id"


class PrekeyKeeper:
    def __init__(self, state: StateStore, store: V2Store, api: V2Api) -> None:
        self.state, self.store, self.api = state, store, api

    def private_halves(self) -> tuple[dict[int, bytes], dict[int, bytes]]:
        """(signed, one-time) prekey id -> private half, as the receiving decision needs them."""
        with self.state.transaction() as conn:
            signed = self.store.record(conn, SIGNED_RECORD) or {"keys": {}}
            one_time = self.store.record(conn, ONE_TIME_RECORD) or {}
        return (
            {int(k): b64decode(v["private"]) for k, v in signed["keys"].items()},
            {int(k): b64decode(v) for k, v in one_time.items()},
        )

    def forget_one_time(self, conn: Any, prekey_id: int) -> None:
        """A setup used this one-time prekey: its private half goes (15.5, forward secrecy)."""
        one_time = self.store.record(conn, ONE_TIME_RECORD) or {}
        if one_time.pop(str(prekey_id), None) is not None:
            self.store.put_record(conn, ONE_TIME_RECORD, one_time)

    async def maintain(self, device: LocalDevice, username: str, now: int) -> None:
        await self._signed(device, username, now)
        await self._one_time(device, username)

    async def _signed(self, device: LocalDevice, username: str, now: int) -> None:
        with self.state.transaction() as conn:
            stored = self.store.record(conn, SIGNED_RECORD)
            record: dict[str, Any] = (
                json.loads(json.dumps(stored)) if stored else {"current": None, "keys": {}}
            )
            keys: dict[str, dict[str, Any]] = record["keys"]
            current = keys.get(str(record["current"])) if record["current"] is not None else None
            if current is None or now - int(current["created_at"]) >= SIGNED_PREKEY_ROTATION_MS:
                prekey_id = self.store.number(conn, NEXT_SIGNED_ID) + 1
                self.store.put_number(conn, NEXT_SIGNED_ID, prekey_id)
                if current is not None:
                    current["replaced_at"] = now
                keys[str(prekey_id)] = {
                    "private": b64encode(os.urandom(32)),
                    "created_at": now,
                    "replaced_at": None,
                    "uploaded": False,
                }
                record["current"] = prekey_id
            for ident in [k for k, v in keys.items() if signed_prekey_private_expired(v["replaced_at"], now)]:
                del keys[ident]
            if record != stored:
                self.store.put_record(conn, SIGNED_RECORD, record)
            current_id = int(record["current"])
            current = keys[str(current_id)]
        if current["uploaded"]:
            return
        prekey = make_signed_prekey(
            device.signing_seed,
            username,
            device.device_id,
            current_id,
            b64decode(current["private"]),
            int(current["created_at"]),
        )
        await self.api.put_signed_prekey(device.device_id, prekey.to_wire())
        with self.state.transaction() as conn:
            record = self.store.record(conn, SIGNED_RECORD)
            record["keys"][str(current_id)]["uploaded"] = True
            self.store.put_record(conn, SIGNED_RECORD, record)

    async def _one_time(self, device: LocalDevice, username: str) -> None:
        if await self.api.one_time_prekey_count(device.device_id) >= ONE_TIME_PREKEY_LOW_WATER:
            return
        with self.state.transaction() as conn:
            first = self.store.number(conn, NEXT_ONE_TIME_ID) + 1
            self.store.put_number(conn, NEXT_ONE_TIME_ID, first + ONE_TIME_PREKEY_BATCH - 1)
            one_time: dict[str, str] = self.store.record(conn, ONE_TIME_RECORD) or {}
            privates = {first + n: os.urandom(32) for n in range(ONE_TIME_PREKEY_BATCH)}
            one_time.update({str(k): b64encode(v) for k, v in privates.items()})
            self.store.put_record(conn, ONE_TIME_RECORD, one_time)
        prekeys = [
            make_one_time_prekey(device.signing_seed, username, device.device_id, k, v).to_wire()
            for k, v in privates.items()
        ]
        await self.api.add_one_time_prekeys(device.device_id, prekeys)
