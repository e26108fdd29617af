"""The terminal client's device credential (PROTOCOL.md 15.16), against a scripted server
(httpx.MockTransport): got by signing the server's nonce with the device key, reused
while fresh, renewed before it expires and once on 401 ``device_auth_required``; any
other refusal reaches the caller, and a device whose key this process lacks gets none."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from securechat.client.api import ApiClient
from securechat.client.errors import ApiError
from securechat.client.v2.device import LocalDevice
from securechat.client.v2.transport import V2Api
from securechat.protocol.encoding import b64decode, b64encode
from securechat.protocol.v2.device_auth import verify_device_auth
from securechat.protocol.v2.devices import Device
from securechat.protocol.v2.primitives import device_id as device_id_of
from securechat.protocol.v2.primitives import ed25519_raw_public

SEED = bytes(range(32))
DEVICE = LocalDevice(
    SEED,
    bytes(32),
    Device(device_id_of(ed25519_raw_public(SEED)), ed25519_raw_public(SEED), bytes(32), 0, b""),
)


class Server:
    """Issues credentials for signed nonces and serves the inbox to the newest one only
    (or to none, when told to refuse)."""

    def __init__(self) -> None:
        self.issued: list[str] = []
        self.inbox_calls: list[str | None] = []
        self.refuse_with: str | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/challenge"):
            nonce = b64encode(bytes([len(self.issued)]) * 32)
            return httpx.Response(200, json={"device_id": DEVICE.device_id, "nonce": nonce, "expires_at": 0})
        if path.endswith("/token"):
            body = json.loads(request.content)
            verify_device_auth(
                DEVICE.device.signing_key,
                b64decode(body["signature"]),
                "alice",
                DEVICE.device_id,
                b64decode(body["nonce"]),
            )
            self.issued.append(f"credential-{len(self.issued)}")
            return httpx.Response(200, json={"device_token": self.issued[-1], "expires_in": 600})
        token = request.headers.get("x-device-token")
        self.inbox_calls.append(token)
        assert request.headers["authorization"] == "Bearer session"
        if self.refuse_with is not None:
            return httpx.Response(
                404 if self.refuse_with == "device_not_listed" else 401, json=error(self.refuse_with)
            )
        if token != self.issued[-1]:
            return httpx.Response(401, json=error("device_auth_required"))
        return httpx.Response(200, json={"entries": [], "head": 0, "more": False})


def error(code: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": code}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def v2_api(server: Server, clock: Clock, *, with_key: bool = True) -> V2Api:
    api = ApiClient("http://server", transport=httpx.MockTransport(server))
    api.access_token = "session"
    v2 = V2Api(api)
    v2.credentials.clock = clock
    if with_key:
        v2.credentials.use("alice", DEVICE)
    return v2


async def test_a_credential_is_got_once_and_reused_while_fresh() -> None:
    server, clock = Server(), Clock()
    v2 = v2_api(server, clock)
    await v2.inbox(DEVICE.device_id, 0, 100)
    await v2.ack(DEVICE.device_id, 0)
    assert server.issued == ["credential-0"]
    assert server.inbox_calls == ["credential-0", "credential-0"]


async def test_it_is_renewed_before_it_expires() -> None:
    server, clock = Server(), Clock()
    v2 = v2_api(server, clock)
    await v2.inbox(DEVICE.device_id, 0, 100)
    clock.now += 600 - 29  # inside the renewal margin
    await v2.inbox(DEVICE.device_id, 0, 100)
    assert server.inbox_calls == ["credential-0", "credential-1"]


async def test_a_refused_credential_is_renewed_once() -> None:
    server, clock = Server(), Clock()
    v2 = v2_api(server, clock)
    await v2.inbox(DEVICE.device_id, 0, 100)
    server.issued.append("credential-from-elsewhere")  # the server no longer takes ours
    await v2.inbox(DEVICE.device_id, 0, 100)
    assert server.inbox_calls == ["credential-0", "credential-0", "credential-2"]


@pytest.mark.parametrize(("code", "status"), [("device_auth_required", 401), ("device_not_listed", 404)])
async def test_a_lasting_refusal_reaches_the_caller_after_one_renewal(code: str, status: int) -> None:
    server, clock = Server(), Clock()
    v2 = v2_api(server, clock)
    server.issued.append("x")
    server.refuse_with = code
    with pytest.raises(ApiError) as raised:
        await v2.inbox(DEVICE.device_id, 0, 100)
    assert (raised.value.status, raised.value.code) == (status, code)
    # One retry for a refused credential, none for a revoked device.
    assert len(server.inbox_calls) == (2 if code == "device_auth_required" else 1)


async def test_without_the_device_key_there_is_no_credential() -> None:
    server, clock = Server(), Clock()
    v2 = v2_api(server, clock, with_key=False)
    with pytest.raises(ApiError) as raised:
        await v2.inbox(DEVICE.device_id, 0, 100)
    assert raised.value.code == "device_auth_required"
    assert server.inbox_calls == [] and server.issued == []
