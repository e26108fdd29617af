"""Device credentials for tests (PROTOCOL.md 15.16): a device signs the server's
challenge with its own signing key and gets a credential for its per-device calls."""

from __future__ import annotations

import httpx

from securechat.protocol.encoding import b64decode, b64encode
from securechat.protocol.v2.device_auth import sign_device_auth

from .test_devices import DeviceKeys

DEVICE_TOKEN_HEADER = "X-Device-Token"


async def challenge(http: httpx.AsyncClient, headers: dict[str, str], device_id: str) -> httpx.Response:
    return await http.post(f"/api/v1/devices/{device_id}/challenge", headers=headers)


async def answer(
    http: httpx.AsyncClient, headers: dict[str, str], device_id: str, nonce: str, signature: bytes
) -> httpx.Response:
    return await http.post(
        f"/api/v1/devices/{device_id}/token",
        headers=headers,
        json={"nonce": nonce, "signature": b64encode(signature)},
    )


def sign(device: DeviceKeys, nonce: str, *, as_device: str | None = None) -> bytes:
    """The device's signature over a challenge (for ``as_device`` if given: a lie)."""
    return sign_device_auth(
        device.signing_seed, device.username, as_device or device.device_id, b64decode(nonce)
    )


async def device_token(http: httpx.AsyncClient, headers: dict[str, str], device: DeviceKeys) -> str:
    """A credential of ``device`` for the session of ``headers``."""
    asked = await challenge(http, headers, device.device_id)
    assert asked.status_code == 200, asked.text
    nonce = asked.json()["nonce"]
    got = await answer(http, headers, device.device_id, nonce, sign(device, nonce))
    assert got.status_code == 200, got.text
    token: str = got.json()["device_token"]
    return token


async def device_headers(
    http: httpx.AsyncClient, headers: dict[str, str], device: DeviceKeys
) -> dict[str, str]:
    """``headers`` (the account's session) with a fresh credential of ``device``."""
    return {**headers, DEVICE_TOKEN_HEADER: await device_token(http, headers, device)}
