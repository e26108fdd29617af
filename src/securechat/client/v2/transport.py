"""The server's v2 endpoints (PROTOCOL.md 15.16), one method each; answers are the
server's word and are checked by the caller (lists and bundles through client.core.v2)."""

from __future__ import annotations

from typing import Any

from ..api import ApiClient
from ..errors import ServerMisbehaved
from .device_auth import DeviceCredentials

PREFIX = "/api/v1"


def _object(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise ServerMisbehaved("the server's answer is not an object")
    return answer


class V2Api:
    def __init__(self, api: ApiClient) -> None:
        self.api = api
        # The per-device calls (inbox and acknowledgement) carry the device's credential.
        self.credentials = DeviceCredentials(api)

    async def publish_device_list(self, document: dict[str, object]) -> dict[str, Any]:
        return _object(await self.api.request("PUT", f"{PREFIX}/devices", json=document))

    async def device_list(self, username: str) -> Any:
        return await self.api.request("GET", f"{PREFIX}/users/{username}/devices")

    async def put_signed_prekey(self, device_id: str, prekey: dict[str, object]) -> dict[str, Any]:
        path = f"{PREFIX}/devices/{device_id}/signed-prekey"
        return _object(await self.api.request("PUT", path, json=prekey))

    async def add_one_time_prekeys(self, device_id: str, prekeys: list[dict[str, object]]) -> dict[str, Any]:
        path = f"{PREFIX}/devices/{device_id}/one-time-prekeys"
        return _object(await self.api.request("POST", path, json={"prekeys": prekeys}))

    async def one_time_prekey_count(self, device_id: str) -> int:
        answer = _object(
            await self.api.request("GET", f"{PREFIX}/devices/{device_id}/one-time-prekeys/count")
        )
        remaining = answer.get("remaining")
        if not isinstance(remaining, int) or isinstance(remaining, bool) or remaining < 0:
            raise ServerMisbehaved("the server's prekey count is not a count")
        return remaining

    async def claim_bundles(self, username: str, device_ids: list[str]) -> dict[str, Any]:
        path = f"{PREFIX}/users/{username}/bundles"
        return _object(await self.api.request("POST", path, json={"device_ids": device_ids}))

    async def send(self, envelope: dict[str, object]) -> dict[str, Any]:
        return _object(await self.api.request("POST", f"{PREFIX}/v2/messages", json={"envelope": envelope}))

    async def inbox(self, device_id: str, since: int, limit: int) -> dict[str, Any]:
        """The device's entries (with its credential: ``credentials.use`` it first)."""
        path = f"{PREFIX}/devices/{device_id}/inbox"
        params = {"since": since, "limit": limit}
        return _object(
            await self.credentials.call(
                device_id, lambda headers: self.api.request("GET", path, params=params, headers=headers)
            )
        )

    async def identity_transitions(self, username: str, since_key: bytes) -> dict[str, Any]:
        path = f"{PREFIX}/users/{username}/identity-transitions"
        return _object(await self.api.request("GET", path, params={"since_key": since_key.hex()}))

    async def rotate_identity(self, body: dict[str, object]) -> dict[str, Any]:
        return _object(await self.api.request("POST", f"{PREFIX}/account/identity-transition", json=body))

    async def account_key_seal(self) -> dict[str, Any]:
        return _object(await self.api.request("GET", f"{PREFIX}/account/identity-key-seal"))

    async def ack(self, device_id: str, seq: int) -> None:
        path = f"{PREFIX}/devices/{device_id}/inbox/ack"
        await self.credentials.call(
            device_id, lambda headers: self.api.request("POST", path, json={"seq": seq}, headers=headers)
        )
